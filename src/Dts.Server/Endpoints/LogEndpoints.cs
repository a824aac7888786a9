using Dts.Contracts;
using Dts.Core;
using Dts.Core.Storage;
using Dts.Server.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Dts.Server.Endpoints;

/// <summary>The tracer's endpoints: workers send job log lines in batches; owners and administrators read and follow them.</summary>
internal static class LogEndpoints
{
    /// <summary>Longer lines are cut here, so one line cannot eat a job's whole log budget unnoticed.</summary>
    private const int MaxLineChars = 16 * 1024;

    public static void Map(IEndpointRouteBuilder app, ServerContext s)
    {
        app.MapPost("/v1/workers/{workerId}/logs", Api.Signed(s, Roles.Worker, batch: true, (ctx, caller) => AppendAsync(s, ctx, caller)));
        app.MapGet("/v1/jobs/{id}/logs", Api.Signed(s, Roles.Client, batch: false, (ctx, caller) => ReadAsync(s, ctx, caller)));
    }

    private static async Task AppendAsync(ServerContext s, HttpContext ctx, Caller caller)
    {
        var workerId = ctx.Request.RouteValues["workerId"] as string;
        var worker = JobIds.IsWellFormed(workerId) ? await s.Store.WorkerGetAsync(workerId!, ctx.RequestAborted) : null;
        if (worker is null || (worker.Owner != caller.Name && !caller.IsAdministrator))
            throw new DtsException(ErrorCodes.WorkerNotFound, $"No worker has the id '{workerId}'; register again.");
        var r = RequestBody.Parse(caller.Body, DtsJsonContext.Default.LogBatchRequest);
        if (r.Lines is null) throw new DtsException(ErrorCodes.MissingField, "'lines' is required: an array of log lines.", "lines");
        if (r.Lines.Count > ApiRoutes.MaxLogLines) throw new DtsException(ErrorCodes.InvalidField, $"At most {ApiRoutes.MaxLogLines} lines at once.", "lines");
        var now = s.Time.GetUtcNow();
        var lines = new List<NewLogLine>(r.Lines.Count);
        var refused = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < r.Lines.Count; i++)
        {
            var l = r.Lines[i];
            var f = $"lines[{i}]";
            if (l is null) throw new DtsException(ErrorCodes.MissingField, "A log line must be an object.", f);
            if (l.JobId is null) throw new DtsException(ErrorCodes.MissingField, "'job_id' is required.", f + ".job_id");
            if (l.LeaseToken is null) throw new DtsException(ErrorCodes.MissingField, "'lease_token' is required: the token the lease gave.", f + ".lease_token");
            if (l.Text is null) throw new DtsException(ErrorCodes.MissingField, "'text' is required.", f + ".text");
            var stream = l.Stream ?? LogStreams.Log;
            if (!LogStreams.IsWorkerStream(stream))
                throw new DtsException(ErrorCodes.InvalidField, "'stream' must be log, stdout or stderr.", f + ".stream");
            // A malformed id names no job: its lines are refused like those of any unknown job.
            if (!JobIds.IsWellFormed(l.JobId))
            {
                refused.Add(l.JobId);
                continue;
            }
            var text = l.Text.Length <= MaxLineChars ? l.Text : l.Text[..MaxLineChars] + "... (line cut)";
            lines.Add(new NewLogLine(l.JobId, l.LeaseToken, l.At ?? now, stream, text));
        }
        var result = lines.Count == 0
            ? new JobLogAppendResult(0, 0, [], [])
            // Not the request's token: once queued the write commits or fails whole, and the answer must say which.
            : await s.Store.JobLogAppendAsync(new JobLogAppendParams(worker.Id, lines, s.Options.LogMaxLinesPerJob, s.Options.LogMaxBytesPerJob), CancellationToken.None);
        foreach (var id in result.JobsWithNewLines) s.LogSignals.LinesStored(id);
        refused.UnionWith(result.RefusedJobs);
        await Api.WriteAsync(ctx, 200, new LogBatchResponse { Stored = result.Stored, Dropped = result.Dropped, Refused = [.. refused] },
            DtsJsonContext.Default.LogBatchResponse);
    }

    private static async Task ReadAsync(ServerContext s, HttpContext ctx, Caller caller)
    {
        var id = Api.JobId(ctx);
        var after = Api.QueryLong(ctx, "after", 0, 0, long.MaxValue);
        var max = Api.QueryInt(ctx, "max", 1000, 1, ApiRoutes.MaxLogLines);
        var wait = TimeSpan.FromSeconds(Api.QueryDouble(ctx, "wait_seconds", 0, 0, ApiRoutes.MaxWaitSeconds));
        var deadline = s.Time.GetUtcNow() + wait;
        while (true)
        {
            // Tickets first, then the look: a line or an ending between the look and the wait still wakes us.
            var linesTicket = s.LogSignals.Ticket(id);
            var job = await s.Store.JobGetAsync(new JobGetParams(id), ctx.RequestAborted);
            if (job is null || (job.Owner != caller.Name && !caller.IsAdministrator))
                throw new DtsException(ErrorCodes.JobNotFound, $"No job has the id '{id}'.");
            var endTicket = s.Signals.ResultsTicket(job.Owner);
            // Read the state before the lines, so "finished" never hides lines stored before the end.
            var lines = await s.Store.JobLogReadAsync(new JobLogReadParams(id, after, max), ctx.RequestAborted);
            var finished = job.State.IsTerminal() && lines.Count < max;
            var remaining = deadline - s.Time.GetUtcNow();
            if (lines.Count > 0 || job.State.IsTerminal() || remaining <= TimeSpan.Zero || s.Stopping.IsCancellationRequested)
            {
                var views = new List<LogLineView>(lines.Count);
                foreach (var l in lines) views.Add(new LogLineView { Seq = l.Seq, At = l.At, Stream = l.Stream, Text = l.Text });
                await Api.WriteAsync(ctx, 200, new JobLogsResponse
                {
                    JobId = id,
                    Lines = views,
                    Next = lines.Count > 0 ? lines[^1].Seq : after,
                    State = job.State,
                    Finished = finished,
                }, DtsJsonContext.Default.JobLogsResponse);
                return;
            }
            // A running job's end fires its owner's results signal; a retry or requeue does not end the follow.
            var endOrLines = Task.WhenAny(linesTicket, endTicket);
            await s.WaitAsync(endOrLines, remaining, ctx.RequestAborted);
        }
    }
}
