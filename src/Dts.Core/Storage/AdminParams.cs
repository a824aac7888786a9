using Dts.Contracts;

namespace Dts.Core.Storage;

// Parameters and results of the administration operations of IJobStore, one record per operation
// as in Params.cs.

/// <summary>A user without its secret: what listings need, so that a listing never loads secrets.</summary>
public sealed record UserSummary
{
    public required string Name { get; init; }
    public required IReadOnlyList<string> Roles { get; init; }
    public bool Disabled { get; init; }
    public long? MaxQueued { get; init; }
    public double? SubmitRate { get; init; }
    public double? SubmitBurst { get; init; }
    public IReadOnlyList<string>? Functions { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
}

/// <summary>Users by name, after <paramref name="AfterName"/> (exclusive), at most <paramref name="Limit"/>.</summary>
public sealed record UserListParams(string? AfterName, int Limit);

/// <summary>
/// Changes the given fields of a user; a null field is left as it is. A limit of 0 (or an empty
/// function list) clears that limit.
/// </summary>
public sealed record UserUpdateParams
{
    public required string Name { get; init; }
    public IReadOnlyList<string>? Roles { get; init; }
    public bool? Disabled { get; init; }
    public long? MaxQueued { get; init; }
    public double? SubmitRate { get; init; }
    public double? SubmitBurst { get; init; }
    public IReadOnlyList<string>? Functions { get; init; }
}

/// <summary>Replaces a user's secret (rotation).</summary>
public sealed record UserSetSecretParams(string Name, string Secret, DateTimeOffset Now);

/// <summary>Deletes a user and its workers; its unfinished jobs are cancelled (running ones get a cancel request).</summary>
public sealed record UserDeleteParams(string Name, DateTimeOffset Now);

/// <summary><paramref name="CancelledJobs"/> counts jobs cancelled at once plus running jobs asked to stop.</summary>
public sealed record UserDeleteResult(bool Found, long CancelledJobs, IReadOnlyList<string> Functions);

/// <summary>The owner's jobs that are queued, scheduled, running or awaiting a retry.</summary>
public sealed record JobCountUnfinishedParams(string Owner);

/// <summary>Workers by id after <paramref name="AfterId"/> (exclusive), at most <paramref name="Limit"/>; only the worker <paramref name="Id"/> when given.</summary>
public sealed record WorkerListParams(string? AfterId, int Limit, string? Id = null);

/// <summary>A worker and the number of jobs leased to it now.</summary>
public sealed record WorkerListItem(WorkerRecord Worker, int Running);

public sealed record WorkerSetDrainingParams(string Id, bool Draining);

/// <summary>Counts per function; workers whose last heartbeat is at or after <paramref name="AliveSince"/> count as live.</summary>
public sealed record FunctionStatsParams(DateTimeOffset AliveSince);

public sealed record FunctionStats
{
    public required string Function { get; init; }
    /// <summary>Jobs per state; a state with no jobs may be absent.</summary>
    public required IReadOnlyDictionary<JobState, long> Counts { get; init; }
    public bool Paused { get; init; }
    public required IReadOnlyList<string> Workers { get; init; }
}

/// <summary>
/// Jobs matching every given filter, newest first (by insertion order). <paramref name="BeforeSeq"/>
/// is the cursor from the previous page.
/// </summary>
public sealed record JobSearchParams
{
    public JobState? State { get; init; }
    public string? Function { get; init; }
    public string? Owner { get; init; }
    public string? Tag { get; init; }
    /// <summary>Inclusive.</summary>
    public DateTimeOffset? CreatedAfter { get; init; }
    /// <summary>Exclusive.</summary>
    public DateTimeOffset? CreatedBefore { get; init; }
    public long? BeforeSeq { get; init; }
    public required int Limit { get; init; }
}

/// <summary>A page of jobs; <paramref name="NextBeforeSeq"/> is null on the last page.</summary>
public sealed record JobSearchResult(IReadOnlyList<JobRecord> Jobs, long? NextBeforeSeq);

/// <summary>Queues a dead, awaiting-retry or cancelled job again with no attempts used.</summary>
public sealed record JobRetryParams(string Id, DateTimeOffset Now);

public enum JobRetryStatus { NotFound, NotRetryable, UniqueKeyTaken, Retried }

public sealed record JobRetryResult(JobRetryStatus Status, JobRecord? Job);

/// <summary>
/// Deletes finished jobs matching every given filter. <paramref name="States"/> must hold only
/// finished states. The store deletes at most <paramref name="BatchSize"/> rows per transaction.
/// </summary>
public sealed record JobPurgeParams(
    IReadOnlyList<JobState> States, string? Function, string? Owner, DateTimeOffset? FinishedBefore, int BatchSize = 1000);

public sealed record QueueSetPausedParams(string Function, bool Paused, DateTimeOffset Now);

public sealed record QueueListParams;

/// <summary>A function's queue: paused or not, and its queued jobs.</summary>
public sealed record QueueRecord(string Function, bool Paused, long Queued);
