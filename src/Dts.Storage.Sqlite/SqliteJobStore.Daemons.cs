using Dts.Core.Storage;

namespace Dts.Storage.Sqlite;

// The daemons' operations; reads go to the reader pool, writes through the group-commit loop.
public sealed partial class SqliteJobStore
{
    public Task<bool> ScheduleInsertAsync(ScheduleRecord schedule, CancellationToken cancellationToken) =>
        WriteAsync(static (s, a) => s.ScheduleInsert(a), schedule, cancellationToken);

    public Task<ScheduleRecord?> ScheduleGetAsync(ScheduleGetParams p, CancellationToken cancellationToken) =>
        ReadAsync(static (r, a, ct) => r.ScheduleGetAsync(a, ct), p, cancellationToken);

    public Task<IReadOnlyList<ScheduleRecord>> ScheduleListAsync(ScheduleListParams p, CancellationToken cancellationToken) =>
        ReadAsync(static (r, a, ct) => r.ScheduleListAsync(a, ct), p, cancellationToken);

    public Task<bool> ScheduleDeleteAsync(ScheduleDeleteParams p, CancellationToken cancellationToken) =>
        WriteAsync(static (s, a) => s.ScheduleDelete(a), p, cancellationToken);

    public Task<ScheduleRecord?> ScheduleSetPausedAsync(ScheduleSetPausedParams p, CancellationToken cancellationToken) =>
        WriteAsync(static (s, a) => s.ScheduleSetPaused(a), p, cancellationToken);

    public Task<ScheduleDueResult> ScheduleDueAsync(ScheduleDueParams p, CancellationToken cancellationToken) =>
        ReadAsync(static (r, a, ct) => r.ScheduleDueAsync(a, ct), p, cancellationToken);

    public Task<ScheduleFireResult> ScheduleFireAsync(ScheduleFireParams p, CancellationToken cancellationToken) =>
        WriteAsync(static (s, a) => s.ScheduleFire(a), p, cancellationToken);

    public Task<WorkerMarkLostResult> WorkerMarkLostAsync(WorkerMarkLostParams p, CancellationToken cancellationToken) =>
        WriteAsync(static (s, a) => s.WorkerMarkLost(a), p, cancellationToken);

    public Task<IReadOnlyList<WorkerEventRecord>> WorkerEventListAsync(WorkerEventListParams p, CancellationToken cancellationToken) =>
        ReadAsync(static (r, a, ct) => r.WorkerEventListAsync(a, ct), p, cancellationToken);

    public Task<JobRescueExpiredResult> JobTimeoutExpiredAsync(JobTimeoutExpiredParams p, CancellationToken cancellationToken) =>
        WriteAsync(static (s, a) => s.JobTimeoutExpired(a), p, cancellationToken);

    public Task<int> JobPorterPurgeAsync(JobPorterPurgeParams p, CancellationToken cancellationToken) =>
        WriteAsync(static (s, a) => s.JobPorterPurge(a), p, cancellationToken);

    public Task<FunctionDefaults?> FunctionDefaultsGetAsync(string function, CancellationToken cancellationToken) =>
        ReadAsync(static (r, a, ct) => r.FunctionDefaultsGetAsync(a, ct), function, cancellationToken);

    public Task FunctionDefaultsSetAsync(FunctionDefaultsSetParams p, CancellationToken cancellationToken) =>
        WriteAsync(static (s, a) => s.FunctionDefaultsSet(a), p, cancellationToken);
}
