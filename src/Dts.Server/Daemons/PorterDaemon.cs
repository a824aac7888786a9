using Dts.Core.Storage;
using Microsoft.Extensions.Logging;

namespace Dts.Server.Daemons;

/// <summary>
/// Result retention. Results are handed to clients by the results long poll; the porter deletes
/// finished jobs whose result was acknowledged more than
/// <see cref="DtsServerOptions.AcknowledgedResultGrace"/> ago, and those whose retention ran out
/// (acknowledged or not). It deletes <see cref="DtsServerOptions.PorterBatchSize"/> jobs per
/// transaction and yields between full batches, so a backlog of millions never stalls submits.
/// Counts deleted jobs in <see cref="Daemon.Items"/>.
/// </summary>
public sealed class PorterDaemon(ServerContext server) : Daemon(server, "porter")
{
    /// <summary>The pause between two full batches: lets other writers into the group commit.</summary>
    private static readonly TimeSpan BetweenBatches = TimeSpan.FromMilliseconds(20);
    private readonly ILogger _logger = server.LoggerFactory.CreateLogger<PorterDaemon>();

    protected override async Task<TimeSpan> RunOnceAsync(CancellationToken cancellationToken)
    {
        var batch = Server.Options.PorterBatchSize;
        var deleted = await Server.Store.JobPorterPurgeAsync(
            new JobPorterPurgeParams(Server.Time.GetUtcNow(), Server.Options.AcknowledgedResultGrace, batch), cancellationToken);
        if (deleted > 0)
        {
            Count(deleted);
            Log.Purged(_logger, deleted);
        }
        return deleted >= batch ? BetweenBatches : Server.Options.PorterInterval;
    }
}
