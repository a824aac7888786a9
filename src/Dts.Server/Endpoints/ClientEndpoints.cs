using Dts.Contracts;
using Dts.Core;
using Dts.Core.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Dts.Server.Endpoints;

/// <summary>Endpoints for clients: submit, look at, cancel jobs, and receive results.</summary>
internal static class ClientEndpoints
{
    public static void Map(IEndpointRouteBuilder app, ServerContext s)
    {
        app.MapPost(ApiRoutes.Jobs, Api.Signed(s, Roles.Client, batch: false, (ctx, caller) => SubmitOneAsync(s, ctx, caller)));
        app.MapPost(ApiRoutes.JobsBatch, Api.Signed(s, Roles.Client, batch: true, (ctx, caller) => SubmitBatchAsync(s, ctx, caller)));
        app.MapGet("/v1/jobs/{id}", Api.Signed(s, Roles.Client, batch: false, (ctx, caller) => GetAsync(s, ctx, caller)));
        app.MapPost("/v1/jobs/{id}/cancel", Api.Signed(s, Roles.Client, batch: false, (ctx, caller) => CancelAsync(s, ctx, caller)));
        app.MapGet(ApiRoutes.Results, Api.Signed(s, Roles.Client, batch: false, (ctx, caller) => ResultsAsync(s, ctx, caller)));
        app.MapPost(ApiRoutes.ResultsAck, Api.Signed(s, Roles.Client, batch: true, (ctx, caller) => AckAsync(s, ctx, caller)));
    }

    private static async Task SubmitOneAsync(ServerContext s, HttpContext ctx, Http.Caller caller)
    {
        // Checked before anything is stored: a bad wait refuses the whole submit.
        var wait = QueryWait(ctx);
        var request = Http.RequestBody.Parse(caller.Body, DtsJsonContext.Default.SubmitJobRequest);
        await s.FunctionDefaults.ApplyAsync(request, ctx.RequestAborted);
        var now = s.Time.GetUtcNow();
        var job = JobRules.Normalize(request, caller.Name, now);
        await Limits.SubmitGate.CheckAsync(s, ctx, caller.User, 1);
        // With a wait, the registration for the new job's end is taken before the insert: an end that
        // comes before the wait begins is then not missed, and the wait needs no first look.
        using var early = wait is null ? null : s.Signals.WaitForJobEnd(caller.Name, job.Id);
        // With a wait, nobody hears of the job before the answer, so the insert commits without its own
        // flush (Durable = false) and the flush happens once, below, before the answer is written;
        // often the worker's durable report has flushed it already and FlushAsync returns at once.
        var results = await InsertAsync(s, [job], now, durable: wait is null);
        var r = results[0];
        var answer = new SubmitJobResponse { Id = r.Id, State = r.State, Coalesced = r.Coalesced };
        if (wait is { } w)
        {
            // The job is committed: a client that hangs up now ends only this wait, never the job.
            // Its owner is the caller (coalescing stays within one owner); a job this insert made is
            // waited for on the registration taken before the insert, an attached one from a first look.
            var record = await WaitForEndAsync(s, r.Id, caller, caller.Name, w, ctx.RequestAborted, r.Coalesced ? null : early);
            if (record is not null) answer.Job = record.ToView();
            // Whatever the wait's outcome (ended, timed out, server stopping): the insert must be
            // durable before the answer acknowledges it. Not the request's token: the answer waits
            // for the flush. When the wait throws instead (the client hung up, a failed read), no
            // flush runs and the job may stay unflushed until the next durable write, so a power
            // loss could drop it: the client had no acknowledgement, and its SDK sends the submit
            // again with the same automatic unique key.
            // A job seen succeeded needs no flush: only a worker's report makes a job succeeded, that
            // report's commit is durable (IJobStore.FlushAsync), and it came after the insert's, so
            // its flush covered the insert too. On PostgreSQL this saves the flush's round trip.
            if (record?.State != JobState.Succeeded) await s.Store.FlushAsync(CancellationToken.None);
        }
        ctx.Response.Headers.Location = ApiRoutes.Job(r.Id);
        await Api.WriteAsync(ctx, r.Coalesced ? 200 : 201, answer, DtsJsonContext.Default.SubmitJobResponse);
    }

    private static async Task SubmitBatchAsync(ServerContext s, HttpContext ctx, Http.Caller caller)
    {
        var request = Http.RequestBody.Parse(caller.Body, DtsJsonContext.Default.SubmitBatchRequest);
        if (request.Jobs is null) throw new DtsException(ErrorCodes.MissingField, "'jobs' is required: an array of jobs to submit.", "jobs");
        if (request.Jobs.Count is 0 or > ApiRoutes.MaxBatch)
            throw new DtsException(ErrorCodes.InvalidField, $"'jobs' must hold 1 to {ApiRoutes.MaxBatch} jobs.", "jobs");
        foreach (var r in request.Jobs) await s.FunctionDefaults.ApplyAsync(r, ctx.RequestAborted);
        var now = s.Time.GetUtcNow();
        // Validate every job before storing any: a batch is accepted whole or refused whole.
        var jobs = new NewJob[request.Jobs.Count];
        for (var i = 0; i < jobs.Length; i++) jobs[i] = JobRules.Normalize(request.Jobs[i], caller.Name, now, $"jobs[{i}]");
        await Limits.SubmitGate.CheckAsync(s, ctx, caller.User, jobs.Length);
        var results = await InsertAsync(s, jobs, now);
        var answer = new List<SubmitJobResponse>(results.Count);
        foreach (var r in results) answer.Add(new SubmitJobResponse { Id = r.Id, State = r.State, Coalesced = r.Coalesced });
        await Api.WriteAsync(ctx, 200, new SubmitBatchResponse { Jobs = answer }, DtsJsonContext.Default.SubmitBatchResponse);
    }

    private static async Task<IReadOnlyList<JobInsertResult>> InsertAsync(ServerContext s, IReadOnlyList<NewJob> jobs, DateTimeOffset now, bool durable = true)
    {
        // No request token: once handed to the store the write commits or fails as a whole, and the
        // answer must reflect what was committed.
        var results = await s.Store.JobInsertManyAsync(new JobInsertManyParams(jobs, now) { Durable = durable }, CancellationToken.None);
        // One wake-up per new queued job, per function: a batch of 100 wakes up to 100 waiting workers at once.
        Dictionary<string, int>? ready = null;
        var scheduled = false;
        foreach (var r in results)
        {
            if (r.Coalesced) continue;
            if (r.State == JobState.Queued)
            {
                ready ??= new Dictionary<string, int>(StringComparer.Ordinal);
                ready[r.Function] = ready.GetValueOrDefault(r.Function) + 1;
            }
            else if (r.State == JobState.Scheduled)
            {
                scheduled = true;
            }
        }
        if (ready is not null)
        {
            foreach (var (function, count) in ready) s.Signals.JobsReady(function, count);
        }
        if (scheduled) s.Signals.Scheduled();
        return results;
    }

    private static async Task GetAsync(ServerContext s, HttpContext ctx, Http.Caller caller)
    {
        var id = Api.JobId(ctx);
        var wait = QueryWait(ctx) ?? TimeSpan.Zero;
        // A caller who is not an administrator sees only its own jobs, so it knows the owner already.
        var job = await WaitForEndAsync(s, id, caller, caller.IsAdministrator ? null : caller.Name, wait, ctx.RequestAborted)
            ?? throw new DtsException(ErrorCodes.JobNotFound, $"No job has the id '{id}'.");
        await Api.WriteAsync(ctx, 200, job.ToView(), DtsJsonContext.Default.JobView);
    }

    /// <summary>The optional <c>wait_seconds</c> (0 to <see cref="ApiRoutes.MaxWaitSeconds"/>); null when absent.</summary>
    private static TimeSpan? QueryWait(HttpContext ctx) =>
        ctx.Request.Query.ContainsKey("wait_seconds")
            ? TimeSpan.FromSeconds(Api.QueryDouble(ctx, "wait_seconds", 0, 0, ApiRoutes.MaxWaitSeconds))
            : null;

    /// <summary>
    /// Looks at job <paramref name="id"/> until it has ended, <paramref name="wait"/> has passed or the
    /// server is stopping, and returns the last look; null when no job has the id or
    /// <paramref name="caller"/> may not see it (then at once, without waiting).
    /// </summary>
    /// <param name="owner">
    /// The job's owner when the caller knows it, so the first look already happens under a
    /// registration for the job's end; null takes it from the first look (a second look follows).
    /// </param>
    /// <param name="registered">
    /// A registration for the job's end taken before the caller inserted it (so it was unfinished
    /// then): the first sleep is on it, without a look before.
    /// </param>
    /// <remarks>
    /// Every sleep is on a registration (<see cref="JobSignals.WaitForJobEnd"/>) taken before the look
    /// that found the job unfinished (or before its insert), so an end in between is never slept through.
    /// </remarks>
    private static async Task<JobRecord?> WaitForEndAsync(ServerContext s, string id, Http.Caller caller, string? owner, TimeSpan wait,
        CancellationToken requestAborted, JobEndWaiter? registered = null)
    {
        var deadline = s.Time.GetUtcNow() + wait;
        if (registered is not null && wait > TimeSpan.Zero && !s.Stopping.IsCancellationRequested)
            await s.WaitAsync(registered.Ended, wait, requestAborted);
        while (true)
        {
            using var ended = owner is null ? null : s.Signals.WaitForJobEnd(owner, id);
            var job = await s.Store.JobGetAsync(new JobGetParams(id), requestAborted);
            if (job is null || (job.Owner != caller.Name && !caller.IsAdministrator)) return null;
            var remaining = deadline - s.Time.GetUtcNow();
            if (job.State.IsTerminal() || remaining < ServerContext.WaitGranularity || s.Stopping.IsCancellationRequested) return job;
            if (ended is null || job.Owner != owner)
            {
                owner = job.Owner;
                continue;
            }
            await s.WaitAsync(ended.Ended, remaining, requestAborted);
        }
    }

    private static async Task CancelAsync(ServerContext s, HttpContext ctx, Http.Caller caller) =>
        await Api.WriteAsync(ctx, 200, await CancelJobAsync(s, Api.JobId(ctx), caller.IsAdministrator ? null : caller.Name), DtsJsonContext.Default.JobView);

    /// <summary>Cancels a job for its owner, or for anyone when <paramref name="owner"/> is null (administrators).</summary>
    internal static async Task<JobView> CancelJobAsync(ServerContext s, string id, string? owner)
    {
        var result = await s.Store.JobCancelAsync(new JobCancelParams(id, owner, s.Time.GetUtcNow()), CancellationToken.None);
        switch (result.Status)
        {
            case JobCancelStatus.NotFound:
                throw new DtsException(ErrorCodes.JobNotFound, $"No job has the id '{id}'.");
            case JobCancelStatus.AlreadyFinished:
                throw new DtsException(ErrorCodes.JobFinished, $"Job '{id}' has already finished as {result.Job?.State.ToWire()}; there is nothing to cancel.");
            case JobCancelStatus.Cancelled:
                s.Signals.ResultsReady(result.Job!.Owner, [id]);
                break;
        }
        return result.Job!.ToView();
    }

    private static async Task ResultsAsync(ServerContext s, HttpContext ctx, Http.Caller caller)
    {
        var max = Api.QueryInt(ctx, "max", 100, 1, ApiRoutes.MaxBatch);
        var wait = TimeSpan.FromSeconds(Api.QueryDouble(ctx, "wait_seconds", 0, 0, ApiRoutes.MaxWaitSeconds));
        var tag = QueryTag(ctx);
        var jobs = await s.LongPollAsync(() => s.Signals.ResultsTicket(caller.Name),
            _ => s.Store.JobResultsGetAsync(new JobResultsGetParams(caller.Name, max, tag), ctx.RequestAborted), wait, ctx.RequestAborted);
        var views = new List<JobView>(jobs.Count);
        foreach (var j in jobs) views.Add(j.ToView());
        await Api.WriteAsync(ctx, 200, new ResultsResponse { Results = views }, DtsJsonContext.Default.ResultsResponse);
    }

    private static async Task AckAsync(ServerContext s, HttpContext ctx, Http.Caller caller)
    {
        var request = Http.RequestBody.Parse(caller.Body, DtsJsonContext.Default.AckRequest);
        if (request.Ids is null) throw new DtsException(ErrorCodes.MissingField, "'ids' is required: the ids of the results to acknowledge.", "ids");
        if (request.Ids.Count > 10 * ApiRoutes.MaxBatch)
            throw new DtsException(ErrorCodes.InvalidField, $"At most {10 * ApiRoutes.MaxBatch} ids at once.", "ids");
        var ids = request.Ids.Where(JobIds.IsWellFormed).ToList();
        var count = ids.Count == 0 ? 0 : await s.Store.JobResultsAckAsync(new JobResultsAckParams(caller.Name, ids), CancellationToken.None);
        await Api.WriteAsync(ctx, 200, new AckResponse { Acknowledged = count }, DtsJsonContext.Default.AckResponse);
    }

    /// <summary>The optional <c>tag</c> filter, held to the same rule as a job's tags so a filter can always match.</summary>
    private static string? QueryTag(HttpContext ctx)
    {
        var raw = ctx.Request.Query["tag"];
        if (raw.Count == 0) return null;
        if (raw.Count > 1 || string.IsNullOrEmpty(raw[0]) || raw[0]!.Length > JobRules.MaxTagLength)
            throw new DtsException(ErrorCodes.InvalidQuery, $"'tag' must be one tag of 1 to {JobRules.MaxTagLength} characters.", "tag");
        return raw[0];
    }
}
