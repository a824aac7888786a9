using Dts.Core.Storage;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Dts.Server.Cluster;

/// <summary>
/// Keeps this server's candidacy for leadership of a shared store: every
/// <see cref="DtsServerOptions.LeaderCheckInterval"/> it takes the leader lock if it is free, or
/// confirms it still holds it. The leader-only daemons run only while <see cref="ServerContext.IsLeader"/>.
/// When the leader dies the database frees its lock, and another server takes it within one check
/// interval. Also re-measures the database clock offset now and then.
/// </summary>
public sealed class LeaderElection(ServerContext server, ISharedStore shared, ClusterClock? clock) : BackgroundService
{
    private static readonly TimeSpan ClockRefresh = TimeSpan.FromSeconds(60);
    private readonly ILogger _logger = server.LoggerFactory.CreateLogger<LeaderElection>();

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var leadership = shared.CreateLeadership();
        var lastClock = server.Time.GetUtcNow();
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                bool leader;
                try
                {
                    leader = await leadership.TryAcquireAsync(stoppingToken);
                }
                catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
                {
                    break;
                }
                catch (Exception ex)
                {
                    Log.LeadershipCheckFailed(_logger, ex);
                    leader = false;
                }
                if (server.SetLeader(leader))
                {
                    if (leader) Log.BecameLeader(_logger);
                    else Log.LostLeadership(_logger);
                }
                if (clock is not null && server.Time.GetUtcNow() - lastClock >= ClockRefresh)
                {
                    lastClock = server.Time.GetUtcNow();
                    try
                    {
                        clock.Offset = await shared.MeasureClockOffsetAsync(stoppingToken);
                    }
                    catch (Exception ex) when (ex is not OperationCanceledException)
                    {
                        Log.ClockMeasureFailed(_logger, ex);
                    }
                }
                try
                {
                    await Task.Delay(server.Options.LeaderCheckInterval, server.Time, stoppingToken);
                }
                catch (OperationCanceledException)
                {
                    break;
                }
            }
        }
        finally
        {
            // Closing the candidate's connection frees the lock at once, so a server that stops
            // gracefully hands leadership over without waiting for anyone's timeout.
            server.SetLeader(false);
            await leadership.DisposeAsync();
        }
    }
}
