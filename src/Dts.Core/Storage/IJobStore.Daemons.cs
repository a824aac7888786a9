namespace Dts.Core.Storage;

// The daemons' operations (DaemonParams.cs): schedules, lost workers, timeouts and the porter.
public partial interface IJobStore
{
    /// <summary>Returns false when a schedule with that id exists already.</summary>
    Task<bool> ScheduleInsertAsync(ScheduleRecord schedule, CancellationToken cancellationToken);
    Task<ScheduleRecord?> ScheduleGetAsync(ScheduleGetParams p, CancellationToken cancellationToken);
    Task<IReadOnlyList<ScheduleRecord>> ScheduleListAsync(ScheduleListParams p, CancellationToken cancellationToken);
    /// <summary>Returns false when there is no such schedule (of that owner).</summary>
    Task<bool> ScheduleDeleteAsync(ScheduleDeleteParams p, CancellationToken cancellationToken);
    /// <summary>The updated schedule, or null when there is no such schedule (of that owner).</summary>
    Task<ScheduleRecord?> ScheduleSetPausedAsync(ScheduleSetPausedParams p, CancellationToken cancellationToken);
    Task<ScheduleDueResult> ScheduleDueAsync(ScheduleDueParams p, CancellationToken cancellationToken);
    Task<ScheduleFireResult> ScheduleFireAsync(ScheduleFireParams p, CancellationToken cancellationToken);

    Task<WorkerMarkLostResult> WorkerMarkLostAsync(WorkerMarkLostParams p, CancellationToken cancellationToken);
    Task<IReadOnlyList<WorkerEventRecord>> WorkerEventListAsync(WorkerEventListParams p, CancellationToken cancellationToken);

    Task<JobRescueExpiredResult> JobTimeoutExpiredAsync(JobTimeoutExpiredParams p, CancellationToken cancellationToken);
    /// <summary>Returns how many jobs were deleted; a full batch means more may be waiting.</summary>
    Task<int> JobPorterPurgeAsync(JobPorterPurgeParams p, CancellationToken cancellationToken);

    /// <summary>The function's job defaults, or null when it has none.</summary>
    Task<FunctionDefaults?> FunctionDefaultsGetAsync(string function, CancellationToken cancellationToken);
    Task FunctionDefaultsSetAsync(FunctionDefaultsSetParams p, CancellationToken cancellationToken);
}
