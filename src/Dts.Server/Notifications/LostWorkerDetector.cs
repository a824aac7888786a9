using Dts.Core.Storage;

namespace Dts.Server.Notifications;

/// <summary>A worker that has stopped sending heartbeats.</summary>
public sealed record LostWorker(string Id, string Name, string Owner, DateTimeOffset LastHeartbeatAt);

/// <summary>
/// Finds workers newly lost since the last call. One method, so the heartbeat-age reading below
/// can give way to the liveness daemon's recorded events without touching the alerting.
/// </summary>
public interface ILostWorkerDetector
{
    Task<IReadOnlyList<LostWorker>> FindNewlyLostAsync(DateTimeOffset now, CancellationToken cancellationToken);
}

/// <summary>
/// Reads the workers table: a worker whose last heartbeat is older than the lease timeout is lost.
/// Each is reported once; a worker heard from again is forgotten, so a second loss alerts again.
/// Workers silent for longer than <see cref="Horizon"/> are not reported, so a restarted server does
/// not mail about workers that went away long ago.
/// </summary>
public sealed class HeartbeatAgeLostWorkerDetector(IJobStore store, TimeSpan leaseTimeout) : ILostWorkerDetector
{
    public static readonly TimeSpan Horizon = TimeSpan.FromHours(1);
    private const int PageSize = 1000;
    private readonly HashSet<string> _reported = new(StringComparer.Ordinal);

    public async Task<IReadOnlyList<LostWorker>> FindNewlyLostAsync(DateTimeOffset now, CancellationToken cancellationToken)
    {
        var lost = new List<LostWorker>();
        var silentSince = now - leaseTimeout;
        string? after = null;
        while (true)
        {
            var page = await store.WorkerListAsync(new WorkerListParams(after, PageSize), cancellationToken);
            foreach (var item in page)
            {
                var w = item.Worker;
                if (w.LastHeartbeatAt >= silentSince)
                {
                    _reported.Remove(w.Id);
                    continue;
                }
                if (w.LastHeartbeatAt < silentSince - Horizon || !_reported.Add(w.Id)) continue;
                lost.Add(new LostWorker(w.Id, w.Name, w.Owner, w.LastHeartbeatAt));
            }
            if (page.Count < PageSize) break;
            after = page[^1].Worker.Id;
        }
        return lost;
    }
}
