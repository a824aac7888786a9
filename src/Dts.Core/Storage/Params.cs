namespace Dts.Core.Storage;

// One parameter record per store operation, so that new fields never break callers.
// Every operation that depends on time takes `Now` from the caller's TimeProvider.

public sealed record JobInsertManyParams(IReadOnlyList<NewJob> Jobs, DateTimeOffset Now)
{
    /// <summary>
    /// True (the default): the insert is flushed to disk before the call returns. False: it is
    /// committed (visible to every reader at once) but may be lost with a power failure or a database
    /// crash until a later durable write or <see cref="IJobStore.FlushAsync"/> flushes it. Only for a
    /// caller that tells nobody about the jobs before it has called <see cref="IJobStore.FlushAsync"/>.
    /// </summary>
    public bool Durable { get; init; } = true;
}

/// <summary>The outcome of one insert: the new job, or the existing job it coalesced with.</summary>
public sealed record JobInsertResult(string Id, Contracts.JobState State, bool Coalesced, string Function);

public sealed record JobGetParams(string Id);

/// <summary>Leases up to <paramref name="Max"/> queued jobs of the given functions, best priority first, then oldest.</summary>
public sealed record JobLeaseParams(string WorkerId, IReadOnlyList<string> Functions, int Max, DateTimeOffset Now, TimeSpan LeaseDuration)
{
    /// <summary>
    /// When the worker's lease request arrived (default: <see cref="Now"/>). A worker that has sent
    /// neither a heartbeat nor this request within <see cref="LeaseDuration"/> is leased nothing:
    /// it is frozen, and its jobs are being taken back from it.
    /// </summary>
    public DateTimeOffset? RequestedAt { get; init; }
}

public enum JobReportKind { Progress, Succeed, Fail }

public sealed record JobReportItem
{
    public required string JobId { get; init; }
    public required string LeaseToken { get; init; }
    public required JobReportKind Kind { get; init; }
    public string? ResultJson { get; init; }
    public string? ErrorCode { get; init; }
    public string? ErrorMessage { get; init; }
    /// <summary>For a failure: false makes the job dead whatever attempts remain.</summary>
    public bool Retry { get; init; } = true;
    public long? ProgressNumerator { get; init; }
    public long? ProgressDenominator { get; init; }
}

public sealed record JobReportManyParams(IReadOnlyList<JobReportItem> Items, DateTimeOffset Now, RetryPolicy RetryPolicy);

public enum JobReportStatus { Ok, StaleLease, NotFound }

/// <summary>The outcome of one report. When a job finished, <see cref="Owner"/> names whom to tell.</summary>
public sealed record JobReportResult(string JobId, JobReportStatus Status, Contracts.JobState? State, string? Owner, string? Function);

/// <summary>Pending results of <paramref name="Owner"/>; with <paramref name="Tag"/>, only jobs carrying that tag (one batch run's jobs).</summary>
public sealed record JobResultsGetParams(string Owner, int Max, string? Tag = null);

public sealed record JobResultsAckParams(string Owner, IReadOnlyList<string> Ids);

/// <summary>Cancels a job. <paramref name="Owner"/> null means any owner (an administrator).</summary>
public sealed record JobCancelParams(string Id, string? Owner, DateTimeOffset Now);

public enum JobCancelStatus { NotFound, AlreadyFinished, Cancelled, CancelRequested }

public sealed record JobCancelResult(JobCancelStatus Status, JobRecord? Job);

/// <summary>Makes scheduled and awaiting-retry jobs whose run-at has come queued.</summary>
public sealed record JobPromoteDueParams(DateTimeOffset Now, int Limit);

/// <summary>What a promotion did: which functions got ready jobs, and when the next one is due.</summary>
public sealed record JobPromoteDueResult(int Promoted, IReadOnlyList<string> Functions, DateTimeOffset? NextDueAt);

/// <summary>Takes back running jobs whose lease has expired: queued again, or dead when no attempt is left.</summary>
public sealed record JobRescueExpiredParams(DateTimeOffset Now, int Limit);

public sealed record JobRescueExpiredResult(int Requeued, int Dead, IReadOnlyList<string> Functions, IReadOnlyList<string> OwnersWithResults)
{
    /// <summary>The jobs this pass made dead (no attempt left after an expired lease or a timeout), for alerts.</summary>
    public IReadOnlyList<DeadJob> DeadJobs { get; init; } = [];
}

/// <summary>A job that has just become dead, with the error it ended with.</summary>
public sealed record DeadJob(string Id, string Function, string Owner, string ErrorCode, string ErrorMessage);

public sealed record UserInsertParams(string Name, string Secret, IReadOnlyList<string> Roles, DateTimeOffset Now);

public sealed record WorkerUpsertParams(string Id, string Owner, string Name, IReadOnlyList<string> Functions, int Concurrency, DateTimeOffset Now);

/// <summary>
/// Records a heartbeat and extends the leases of the worker's running jobs to <paramref name="LeaseExpiresAt"/>.
/// </summary>
public sealed record WorkerHeartbeatParams(string WorkerId, IReadOnlyList<string> RunningJobIds, DateTimeOffset Now, DateTimeOffset LeaseExpiresAt);

/// <summary>Jobs the worker must stop: cancel requested, or not leased to it any more. Null when the worker is unknown.</summary>
public sealed record WorkerHeartbeatResult(bool Found, IReadOnlyList<string> Cancel)
{
    /// <summary>Owners of jobs this heartbeat ended as cancelled (the worker had dropped them); their result waiters are woken.</summary>
    public IReadOnlyList<string> FinishedOwners { get; init; } = [];
}
