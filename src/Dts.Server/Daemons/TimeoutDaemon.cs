using Dts.Core.Storage;
using Microsoft.Extensions.Logging;

namespace Dts.Server.Daemons;

/// <summary>
/// The server's side of hard timeouts: a running job still running
/// <see cref="DtsServerOptions.TimeoutGrace"/> after its attempt's timeout is failed with
/// <c>timeout</c> and retried after a backoff (dead when no attempt is left). The worker enforces
/// the timeout itself first; this catches a worker that cannot (hung, cut off but heartbeating).
/// Its lease token goes stale, so a late completion is refused, and its next heartbeat lists the
/// job in <c>cancel</c>. Counts timed-out jobs in <see cref="Daemon.Items"/>.
/// </summary>
public sealed class TimeoutDaemon(ServerContext server) : Daemon(server, "timeouts")
{
    private const int BatchLimit = 1000;
    private readonly ILogger _logger = server.LoggerFactory.CreateLogger<TimeoutDaemon>();

    protected override async Task<TimeSpan> RunOnceAsync(CancellationToken cancellationToken)
    {
        var result = await Server.Store.JobTimeoutExpiredAsync(
            new JobTimeoutExpiredParams(Server.Time.GetUtcNow(), Server.Options.TimeoutGrace, BatchLimit, Server.RetryPolicy), cancellationToken);
        var total = result.Requeued + result.Dead;
        if (total > 0)
        {
            Log.TimedOut(_logger, result.Requeued, result.Dead);
            Count(total);
            // Retried jobs wait in awaiting_retry: the scheduler must look at their run-at.
            Server.Signals.Scheduled();
            foreach (var owner in result.OwnersWithResults) Server.Signals.ResultsReady(owner);
            AlertDead(result.DeadJobs);
        }
        return total >= BatchLimit ? TimeSpan.Zero : Server.Options.TimeoutInterval;
    }
}
