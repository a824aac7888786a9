using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Dts.Server.Daemons;

/// <summary>
/// The base of the server's background services: runs <see cref="RunOnceAsync"/> in a loop, sleeps
/// for the interval it returns (or until woken), and survives failures with a capped backoff. It
/// starts and stops with the host, and keeps counters (passes, failures, items handled, last pass)
/// that tests and operators read.
/// </summary>
/// <remarks>
/// <see cref="LeaderOnly"/> marks work that must not run on two servers at once (firing cron ticks,
/// rescuing leases, declaring workers lost, purging). Its contract: a leader-only daemon may rely
/// on being the only one doing its work at any moment, but every operation it does must still be a
/// single store transaction that is safe to repeat, because leadership can move between two passes.
/// With the SQLite store there is exactly one server, so it is always the leader; with a shared
/// (PostgreSQL) store the server that holds the leader lock runs them (<see cref="Cluster.LeaderElection"/>)
/// and the daemons of the other servers wait until theirs takes over.
/// </remarks>
public abstract class Daemon(ServerContext server, string name) : BackgroundService
{
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(30);
    private readonly ILogger _logger = server.LoggerFactory.CreateLogger("Dts.Server.Daemons." + name);

    public string Name { get; } = name;
    public virtual bool LeaderOnly => true;
    protected ServerContext Server { get; } = server;

    /// <summary>Raises a "job dead" alert for each job a pass made dead.</summary>
    protected void AlertDead(IReadOnlyList<Core.Storage.DeadJob> jobs)
    {
        var now = Server.Time.GetUtcNow();
        foreach (var d in jobs) Server.Alerts.JobDead(d.Id, d.Function, d.Owner, d.ErrorCode, d.ErrorMessage, now);
    }

    /// <summary>How many passes have completed; for tests and metrics.</summary>
    public long Passes => Interlocked.Read(ref _passes);
    private long _passes;

    /// <summary>How many passes threw (and were retried after a backoff).</summary>
    public long Failures => Interlocked.Read(ref _failures);
    private long _failures;

    /// <summary>How many items (jobs, workers, ticks) the daemon has acted on; each daemon says what it counts.</summary>
    public long Items => Interlocked.Read(ref _items);
    private long _items;

    /// <summary>When the last pass completed, on the server's clock; null before the first.</summary>
    public DateTimeOffset? LastPassAt { get; private set; }

    /// <summary>Adds to <see cref="Items"/>.</summary>
    protected void Count(long items)
    {
        if (items > 0) Interlocked.Add(ref _items, items);
    }

    /// <summary>Does one pass of work and says how long to sleep before the next.</summary>
    protected abstract Task<TimeSpan> RunOnceAsync(CancellationToken cancellationToken);

    /// <summary>A task that completes when the daemon should wake early.</summary>
    protected virtual Task WakeTicket => Task.Delay(Timeout.Infinite);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var backoff = TimeSpan.FromMilliseconds(100);
        while (!stoppingToken.IsCancellationRequested)
        {
            if (LeaderOnly && !Server.IsLeader)
            {
                // A follower: wait to become the leader (or for the server to stop).
                try
                {
                    await Task.WhenAny(Server.LeadershipChangedTicket, Task.Delay(Timeout.Infinite, stoppingToken));
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                continue;
            }
            TimeSpan sleep;
            var wake = WakeTicket;
            try
            {
                sleep = await RunOnceAsync(stoppingToken);
                Interlocked.Increment(ref _passes);
                LastPassAt = Server.Time.GetUtcNow();
                backoff = TimeSpan.FromMilliseconds(100);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                Interlocked.Increment(ref _failures);
                Log.DaemonFailed(_logger, ex, Name, backoff);
                sleep = backoff;
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
            }
            if (sleep <= TimeSpan.Zero) continue;
            // A wake-up lost between servers must not leave work waiting for long; losing
            // leadership ends the sleep so the loop stops doing leader-only passes.
            sleep = Server.CapWait(sleep);
            try
            {
                await Task.WhenAny(wake, Server.LeadershipChangedTicket, Task.Delay(sleep, Server.Time, stoppingToken));
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }
}
