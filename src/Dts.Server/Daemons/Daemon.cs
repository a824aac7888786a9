using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Dts.Server.Daemons;

/// <summary>
/// The base of the server's background services: runs <see cref="RunOnceAsync"/> in a loop, sleeps
/// for the interval it returns (or until woken), and survives failures with a capped backoff.
/// A daemon marked <see cref="LeaderOnly"/> must run on one server at a time; with the SQLite store
/// there is only one server, so it is always the leader.
/// </summary>
public abstract class Daemon(ServerContext server, string name) : BackgroundService
{
    private static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(30);
    private readonly ILogger _logger = server.LoggerFactory.CreateLogger("Dts.Server.Daemons." + name);

    public string Name { get; } = name;
    public virtual bool LeaderOnly => true;
    protected ServerContext Server { get; } = server;

    /// <summary>How many passes have completed; for tests and metrics.</summary>
    public long Passes => Interlocked.Read(ref _passes);
    private long _passes;

    /// <summary>Does one pass of work and says how long to sleep before the next.</summary>
    protected abstract Task<TimeSpan> RunOnceAsync(CancellationToken cancellationToken);

    /// <summary>A task that completes when the daemon should wake early.</summary>
    protected virtual Task WakeTicket => Task.Delay(Timeout.Infinite);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var backoff = TimeSpan.FromMilliseconds(100);
        while (!stoppingToken.IsCancellationRequested)
        {
            TimeSpan sleep;
            var wake = WakeTicket;
            try
            {
                sleep = await RunOnceAsync(stoppingToken);
                Interlocked.Increment(ref _passes);
                backoff = TimeSpan.FromMilliseconds(100);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                Log.DaemonFailed(_logger, ex, Name, backoff);
                sleep = backoff;
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, MaxBackoff.Ticks));
            }
            if (sleep <= TimeSpan.Zero) continue;
            try
            {
                await Task.WhenAny(wake, Task.Delay(sleep, Server.Time, stoppingToken));
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }
}
