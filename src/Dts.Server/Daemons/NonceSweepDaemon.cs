using Dts.Core.Storage;

namespace Dts.Server.Daemons;

/// <summary>
/// Deletes remembered nonces whose requests have left the signature window (they would be refused
/// as stale anyway), in small batches so one pass never holds the store's writer for long; keeps
/// going at once while full batches come back, then rests.
/// </summary>
public sealed class NonceSweepDaemon(ServerContext server) : Daemon(server, "nonce-sweep")
{
    private const int BatchLimit = 500;
    private static readonly TimeSpan Interval = TimeSpan.FromSeconds(10);

    protected override async Task<TimeSpan> RunOnceAsync(CancellationToken cancellationToken)
    {
        var deleted = await Server.Store.NonceDeleteExpiredAsync(new NonceDeleteExpiredParams(Server.Time.GetUtcNow(), BatchLimit), cancellationToken);
        return deleted >= BatchLimit ? TimeSpan.Zero : Interval;
    }
}
