using Dts.Contracts;
using Dts.Core.Storage;
using Dts.Server.Daemons;

namespace Dts.Server.Notifications;

/// <summary>
/// Looks every <see cref="DtsServerOptions.AlertCheckInterval"/> for functions whose queue passed
/// <see cref="DtsServerOptions.BacklogAlertThreshold"/>, and raises alerts. (Lost workers are
/// alerted by the stethoscope, which declares them lost.)
/// A backlog alert fires when the queue passes the threshold and again only after it has fallen to
/// half of it, so a queue hovering at the line does not alert on every pass.
/// </summary>
public sealed class AlertWatchDaemon(ServerContext server) : Daemon(server, "alert-watch")
{
    private readonly HashSet<string> _backlogged = new(StringComparer.Ordinal);

    protected override async Task<TimeSpan> RunOnceAsync(CancellationToken cancellationToken)
    {
        var now = Server.Time.GetUtcNow();
        if (Server.Options.BacklogAlertThreshold is { } threshold)
        {
            var stats = await Server.Store.FunctionStatsAsync(new FunctionStatsParams(now - Server.Options.LeaseTimeout), cancellationToken);
            foreach (var f in stats)
            {
                var queued = f.Counts.GetValueOrDefault(JobState.Queued);
                if (queued > threshold)
                {
                    if (_backlogged.Add(f.Function)) Server.Alerts.Backlog(f.Function, queued, threshold, now);
                }
                else if (queued <= threshold / 2)
                {
                    _backlogged.Remove(f.Function);
                }
            }
        }
        return Server.Options.AlertCheckInterval;
    }
}
