using Dts.Core.Storage;
using Microsoft.Extensions.Logging;

namespace Dts.Server.Daemons;

/// <summary>
/// Listens for worker heartbeats: a worker silent for the lease timeout is declared lost, its
/// running jobs are released at once (queued again with the attempt counted, or dead when none is
/// left), a <c>lost</c> event is recorded in <c>worker_events</c>, and a "worker lost" alert is raised. The worker's own heartbeat,
/// should it come back, clears the mark and lists the released jobs in its <c>cancel</c> answer;
/// its old lease tokens get 409 stale_lease. Counts lost workers in <see cref="Daemon.Items"/>.
/// </summary>
public sealed class StethoscopeDaemon(ServerContext server) : Daemon(server, "stethoscope")
{
    private const int BatchLimit = 100;
    private readonly ILogger _logger = server.LoggerFactory.CreateLogger<StethoscopeDaemon>();

    /// <summary>Jobs released from lost workers since start.</summary>
    public long ReleasedJobs => Interlocked.Read(ref _released);
    private long _released;

    protected override async Task<TimeSpan> RunOnceAsync(CancellationToken cancellationToken)
    {
        var now = Server.Time.GetUtcNow();
        var result = await Server.Store.WorkerMarkLostAsync(new WorkerMarkLostParams(now - Server.Options.LeaseTimeout, now, BatchLimit), cancellationToken);
        foreach (var w in result.Lost)
        {
            Log.WorkerLost(_logger, w.Id, w.Name, w.Owner, w.LastHeartbeatAt, w.Released);
            Server.Alerts.WorkerLost(w.Id, w.Name, w.Owner, w.LastHeartbeatAt, now);
            Interlocked.Add(ref _released, w.Released);
        }
        Count(result.Lost.Count);
        // How many jobs of each function were released is not known: every waiter of them looks.
        Server.Signals.JobsReadyAll(result.Functions);
        foreach (var owner in result.OwnersWithResults) Server.Signals.ResultsReady(owner);
        // A released job with no attempt left is dead, as if its lease had expired: alerted the same way.
        AlertDead(result.DeadJobs);
        return result.Lost.Count >= BatchLimit ? TimeSpan.Zero : Server.Options.RescueInterval;
    }
}
