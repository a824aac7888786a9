using Dts.Contracts;
using Dts.Core;
using Dts.Core.Storage;
using Dts.Server.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;

namespace Dts.Server.Endpoints;

/// <summary>Endpoints for workers: register, heartbeat, lease jobs and report on them.</summary>
internal static class WorkerEndpoints
{
    private const int MaxFunctions = 1000;
    private const int MaxConcurrency = 10_000;
    private const int MaxNameLength = 200;
    private const int MaxReports = 10 * ApiRoutes.MaxBatch;

    public static void Map(IEndpointRouteBuilder app, ServerContext s)
    {
        var logger = s.LoggerFactory.CreateLogger("Dts.Server.Workers");
        app.MapPost(ApiRoutes.Workers, Api.Signed(s, Roles.Worker, batch: false, (ctx, caller) => RegisterAsync(s, logger, ctx, caller)));
        app.MapPost("/v1/workers/{workerId}/heartbeat", Api.Signed(s, Roles.Worker, batch: true, (ctx, caller) => HeartbeatAsync(s, ctx, caller)));
        app.MapPost("/v1/workers/{workerId}/lease", Api.Signed(s, Roles.Worker, batch: false, (ctx, caller) => LeaseAsync(s, ctx, caller)));
        app.MapPost("/v1/workers/{workerId}/reports", Api.Signed(s, Roles.Worker, batch: true, (ctx, caller) => ReportsAsync(s, ctx, caller)));
        app.MapPost("/v1/jobs/{id}/progress", Api.Signed(s, Roles.Worker, batch: false, (ctx, caller) => ReportOneAsync(s, ctx, caller, JobReportKind.Progress)));
        app.MapPost("/v1/jobs/{id}/complete", Api.Signed(s, Roles.Worker, batch: true, (ctx, caller) => ReportOneAsync(s, ctx, caller, JobReportKind.Succeed)));
        app.MapPost("/v1/jobs/{id}/fail", Api.Signed(s, Roles.Worker, batch: false, (ctx, caller) => ReportOneAsync(s, ctx, caller, JobReportKind.Fail)));
    }

    private static async Task RegisterAsync(ServerContext s, ILogger logger, HttpContext ctx, Caller caller)
    {
        var r = RequestBody.Parse(caller.Body, DtsJsonContext.Default.RegisterWorkerRequest);
        if (r.Functions is null || r.Functions.Count == 0)
            throw new DtsException(ErrorCodes.MissingField, "'functions' is required: the names of the functions this worker can run.", "functions");
        if (r.Functions.Count > MaxFunctions) throw new DtsException(ErrorCodes.InvalidField, $"At most {MaxFunctions} functions.", "functions");
        foreach (var f in r.Functions)
        {
            if (!JobRules.IsValidFunctionName(f)) throw new DtsException(ErrorCodes.InvalidField, $"'{f}' is not a valid function name.", "functions");
            if (caller.User.Functions is { } allowed && !allowed.Contains(f, StringComparer.Ordinal))
                throw new DtsException(ErrorCodes.FunctionNotAllowed, $"User '{caller.Name}' may only register {string.Join(", ", allowed)}; '{f}' is not among them.", "functions");
        }
        var concurrency = r.Concurrency ?? 1;
        if (concurrency is < 1 or > MaxConcurrency)
            throw new DtsException(ErrorCodes.InvalidField, $"'concurrency' must be from 1 to {MaxConcurrency}.", "concurrency");
        var name = r.Name ?? "worker";
        if (name.Length is 0 or > MaxNameLength) throw new DtsException(ErrorCodes.InvalidField, $"'name' must be 1 to {MaxNameLength} characters.", "name");

        var now = s.Time.GetUtcNow();
        var id = JobIds.New(now);
        var functions = r.Functions.Distinct(StringComparer.Ordinal).ToList();
        await s.Store.WorkerUpsertAsync(new WorkerUpsertParams(id, caller.Name, name, functions, concurrency, now), CancellationToken.None);
        Log.WorkerRegistered(logger, id, name, caller.Name, string.Join(",", functions));
        ctx.Response.Headers.Location = ApiRoutes.WorkerHeartbeat(id);
        await Api.WriteAsync(ctx, 201, new RegisterWorkerResponse
        {
            WorkerId = id,
            HeartbeatIntervalSeconds = s.Options.HeartbeatInterval.TotalSeconds,
            LeaseTimeoutSeconds = s.Options.LeaseTimeout.TotalSeconds,
        }, DtsJsonContext.Default.RegisterWorkerResponse);
    }

    /// <summary>The worker named in the route, which must belong to the caller (or the caller is an administrator).</summary>
    private static async Task<WorkerRecord> WorkerAsync(ServerContext s, HttpContext ctx, Caller caller)
    {
        var id = ctx.Request.RouteValues["workerId"] as string;
        var worker = JobIds.IsWellFormed(id) ? await s.Store.WorkerGetAsync(id!, ctx.RequestAborted) : null;
        if (worker is null || (worker.Owner != caller.Name && !caller.IsAdministrator))
            throw new DtsException(ErrorCodes.WorkerNotFound, $"No worker has the id '{id}'; register again.");
        return worker;
    }

    private static async Task HeartbeatAsync(ServerContext s, HttpContext ctx, Caller caller)
    {
        var worker = await WorkerAsync(s, ctx, caller);
        var r = caller.Body.Length == 0 ? new HeartbeatRequest() : RequestBody.Parse(caller.Body, DtsJsonContext.Default.HeartbeatRequest);
        var running = r.Running ?? [];
        if (running.Count > MaxReports) throw new DtsException(ErrorCodes.InvalidField, $"At most {MaxReports} running jobs.", "running");
        var now = s.Time.GetUtcNow();
        var expires = now + s.Options.LeaseTimeout;
        var result = await s.Store.WorkerHeartbeatAsync(new WorkerHeartbeatParams(worker.Id, running, now, expires), CancellationToken.None);
        if (!result.Found) throw new DtsException(ErrorCodes.WorkerNotFound, $"No worker has the id '{worker.Id}'; register again.");
        foreach (var owner in result.FinishedOwners) s.Signals.ResultsReady(owner);
        await Api.WriteAsync(ctx, 200, new HeartbeatResponse { Cancel = [.. result.Cancel], LeaseExpiresAt = expires }, DtsJsonContext.Default.HeartbeatResponse);
    }

    private static async Task LeaseAsync(ServerContext s, HttpContext ctx, Caller caller)
    {
        var worker = await WorkerAsync(s, ctx, caller);
        var r = caller.Body.Length == 0 ? new LeaseRequest() : RequestBody.Parse(caller.Body, DtsJsonContext.Default.LeaseRequest);
        var max = r.Max ?? 1;
        if (max is < 1 or > ApiRoutes.MaxLease) throw new DtsException(ErrorCodes.InvalidField, $"'max' must be from 1 to {ApiRoutes.MaxLease}.", "max");
        var waitSeconds = r.WaitSeconds ?? 0;
        if (!double.IsFinite(waitSeconds) || waitSeconds < 0 || waitSeconds > ApiRoutes.MaxWaitSeconds)
            throw new DtsException(ErrorCodes.InvalidField, $"'wait_seconds' must be from 0 to {ApiRoutes.MaxWaitSeconds}.", "wait_seconds");
        IReadOnlyList<string> functions = worker.Functions;
        if (r.Functions is { Count: > 0 } asked)
        {
            foreach (var f in asked)
            {
                if (!worker.Functions.Contains(f, StringComparer.Ordinal))
                    throw new DtsException(ErrorCodes.FunctionNotAllowed, $"This worker did not register '{f}'; register it with that function.", "functions");
            }
            functions = asked;
        }

        // Once the store has leased jobs they must reach the worker, so the request's token is not passed to the store.
        // The request's arrival is a sign of life; a long poll outliving the lease timeout with no heartbeat since is not.
        var requestedAt = s.Time.GetUtcNow();
        // Waiters are woken one per ready job; a worker the store leases nothing to (draining, or
        // silent past the lease timeout) must not use up wake-ups, so an empty woken look checks it.
        var jobs = await s.LeasePollAsync(functions, max, eligible: !worker.Draining,
            now =>
            {
                s.CountLeaseLook();
                return s.Store.JobLeaseAsync(new JobLeaseParams(worker.Id, functions, max, now, s.Options.LeaseTimeout) { RequestedAt = requestedAt }, CancellationToken.None);
            },
            async now =>
            {
                var current = await s.Store.WorkerGetAsync(worker.Id, CancellationToken.None);
                if (current is null || current.Draining) return false;
                var silentBefore = now - s.Options.LeaseTimeout;
                return requestedAt >= silentBefore || current.LastHeartbeatAt >= silentBefore;
            },
            TimeSpan.FromSeconds(waitSeconds), ctx.RequestAborted);
        var leased = new List<LeasedJob>(jobs.Count);
        foreach (var j in jobs) leased.Add(j.ToLeased());
        await Api.WriteAsync(ctx, 200, new LeaseResponse { Jobs = leased }, DtsJsonContext.Default.LeaseResponse);
    }

    private static async Task ReportsAsync(ServerContext s, HttpContext ctx, Caller caller)
    {
        await WorkerAsync(s, ctx, caller);
        var r = RequestBody.Parse(caller.Body, DtsJsonContext.Default.ReportBatchRequest);
        if (r.Reports is null) throw new DtsException(ErrorCodes.MissingField, "'reports' is required.", "reports");
        if (r.Reports.Count > MaxReports) throw new DtsException(ErrorCodes.InvalidField, $"At most {MaxReports} reports at once.", "reports");
        var items = new List<JobReportItem>(r.Reports.Count);
        for (var i = 0; i < r.Reports.Count; i++) items.Add(ToItem(r.Reports[i], null, null, $"reports[{i}]"));
        var results = items.Count == 0 ? [] : await ApplyAsync(s, items);
        var outcomes = new List<ReportOutcome>(results.Count);
        foreach (var x in results) outcomes.Add(Outcome(x));
        await Api.WriteAsync(ctx, 200, new ReportBatchResponse { Outcomes = outcomes }, DtsJsonContext.Default.ReportBatchResponse);
    }

    private static async Task ReportOneAsync(ServerContext s, HttpContext ctx, Caller caller, JobReportKind kind)
    {
        var id = Api.JobId(ctx);
        var report = RequestBody.Parse(caller.Body, DtsJsonContext.Default.JobReport);
        if (report.JobId is not null && report.JobId != id)
            throw new DtsException(ErrorCodes.InvalidField, "'job_id' in the body differs from the job in the path.", "job_id");
        var item = ToItem(report, id, kind, "");
        var result = (await ApplyAsync(s, [item]))[0];
        switch (result.Status)
        {
            case JobReportStatus.NotFound:
                throw new DtsException(ErrorCodes.JobNotFound, $"No job has the id '{id}'.");
            case JobReportStatus.StaleLease:
                throw new DtsException(ErrorCodes.StaleLease);
        }
        await Api.WriteAsync(ctx, 200, Outcome(result), DtsJsonContext.Default.ReportOutcome);
    }

    private static JobReportItem ToItem(JobReport r, string? pathId, JobReportKind? kind, string field)
    {
        string F(string name) => field.Length == 0 ? name : $"{field}.{name}";
        var id = pathId ?? r.JobId;
        if (id is null) throw new DtsException(ErrorCodes.MissingField, "'job_id' is required.", F("job_id"));
        if (r.LeaseToken is null) throw new DtsException(ErrorCodes.MissingField, "'lease_token' is required: the token the lease gave.", F("lease_token"));
        kind ??= r.Error is not null ? JobReportKind.Fail
            : r.Progress is not null && r.Result is null ? JobReportKind.Progress
            : JobReportKind.Succeed;
        if (kind == JobReportKind.Progress)
        {
            if (r.Progress is null) throw new DtsException(ErrorCodes.MissingField, "'progress' is required: {\"numerator\": N, \"denominator\": D}.", F("progress"));
            if (r.Progress.Numerator < 0 || r.Progress.Denominator < 0)
                throw new DtsException(ErrorCodes.InvalidField, "Progress numbers must not be negative.", F("progress"));
        }
        if (kind == JobReportKind.Fail && r.Error is null)
            throw new DtsException(ErrorCodes.MissingField, "'error' is required: {\"code\": ..., \"message\": ...}.", F("error"));
        if (r.Error?.Code is { Length: > 100 }) throw new DtsException(ErrorCodes.InvalidField, "'error.code' is at most 100 characters.", F("error.code"));
        return new JobReportItem
        {
            JobId = id,
            LeaseToken = r.LeaseToken,
            Kind = kind.Value,
            ResultJson = kind == JobReportKind.Succeed ? (r.Result?.GetRawText() ?? "null") : null,
            ErrorCode = kind == JobReportKind.Fail ? (r.Error!.Code ?? "error") : null,
            ErrorMessage = kind == JobReportKind.Fail ? Truncate(r.Error!.Message, 64 * 1024) : null,
            Retry = r.Retry ?? true,
            ProgressNumerator = r.Progress?.Numerator,
            ProgressDenominator = r.Progress?.Denominator,
        };
    }

    private static async Task<IReadOnlyList<JobReportResult>> ApplyAsync(ServerContext s, IReadOnlyList<JobReportItem> items)
    {
        var results = await s.Store.JobReportManyAsync(new JobReportManyParams(items, s.Time.GetUtcNow(), s.RetryPolicy), CancellationToken.None);
        // The owners whose jobs ended, with which ones: a foreground wait for one job wakes only at its end.
        Dictionary<string, List<string>>? ended = null;
        var scheduled = false;
        for (var i = 0; i < results.Count; i++)
        {
            var x = results[i];
            if (x.Status != JobReportStatus.Ok || x.State is not { } state) continue;
            if (state == JobState.Dead)
                s.Alerts.JobDead(x.JobId, x.Function ?? "?", x.Owner ?? "?", items[i].ErrorCode, items[i].ErrorMessage, s.Time.GetUtcNow());
            if (state.IsTerminal() && x.Owner is { } owner)
            {
                ended ??= new Dictionary<string, List<string>>(StringComparer.Ordinal);
                if (!ended.TryGetValue(owner, out var ids)) ended[owner] = ids = [];
                ids.Add(x.JobId);
            }
            else if (state == JobState.AwaitingRetry)
            {
                scheduled = true;
            }
        }
        if (ended is not null)
        {
            foreach (var (owner, ids) in ended) s.Signals.ResultsReady(owner, ids);
        }
        if (scheduled) s.Signals.Scheduled();
        return results;
    }

    private static ReportOutcome Outcome(JobReportResult x) => new()
    {
        JobId = x.JobId,
        Status = x.Status switch
        {
            JobReportStatus.Ok => "ok",
            JobReportStatus.StaleLease => ErrorCodes.StaleLease.Code,
            _ => ErrorCodes.JobNotFound.Code,
        },
        State = x.Status == JobReportStatus.Ok ? x.State : null,
    };

    private static string? Truncate(string? s, int max) => s is null || s.Length <= max ? s : s[..max] + "... (cut)";
}
