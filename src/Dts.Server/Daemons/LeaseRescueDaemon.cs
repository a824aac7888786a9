using Dts.Core.Storage;
using Microsoft.Extensions.Logging;

namespace Dts.Server.Daemons;

/// <summary>
/// Takes back the jobs of workers that stopped sending heartbeats: once a lease passes its expiry
/// the job is queued again (or dead, when no attempt is left) and waiting workers are woken.
/// </summary>
public sealed class LeaseRescueDaemon(ServerContext server) : Daemon(server, "lease-rescue")
{
    private const int BatchLimit = 1000;
    private readonly ILogger _logger = server.LoggerFactory.CreateLogger<LeaseRescueDaemon>();

    protected override async Task<TimeSpan> RunOnceAsync(CancellationToken cancellationToken)
    {
        var result = await Server.Store.JobRescueExpiredAsync(new JobRescueExpiredParams(Server.Time.GetUtcNow(), BatchLimit), cancellationToken);
        if (result.Requeued + result.Dead > 0)
        {
            Log.Rescued(_logger, result.Requeued, result.Dead);
            // Requeued jobs are not counted per function: every waiter of them looks.
            Server.Signals.JobsReadyAll(result.Functions);
            foreach (var owner in result.OwnersWithResults) Server.Signals.ResultsReady(owner);
            AlertDead(result.DeadJobs);
        }
        return result.Requeued + result.Dead >= BatchLimit ? TimeSpan.Zero : Server.Options.RescueInterval;
    }
}
