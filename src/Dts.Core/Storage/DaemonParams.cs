namespace Dts.Core.Storage;

// Parameters and results of the daemons' store operations (stethoscope, timeouts, porter, cron).

/// <summary>A recurring schedule as stored. <see cref="TemplateJson"/> is a submit request's JSON.</summary>
public sealed record ScheduleRecord
{
    public required string Id { get; init; }
    public required string Owner { get; init; }
    public required string Function { get; init; }
    public required string TemplateJson { get; init; }
    public required string Cron { get; init; }
    public required string TimeZone { get; init; }
    public bool Paused { get; init; }
    /// <summary>The next tick not yet fired; null when the expression has no future occurrence.</summary>
    public DateTimeOffset? NextFireAt { get; init; }
    public DateTimeOffset? LastFiredAt { get; init; }
    public string? LastJobId { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public required DateTimeOffset UpdatedAt { get; init; }
}

/// <summary>Lists schedules by id; <paramref name="Owner"/> null lists every user's (an administrator).</summary>
public sealed record ScheduleListParams(string? Owner, string? AfterId, int Limit);

/// <summary>One schedule; <paramref name="Owner"/> null finds any user's.</summary>
public sealed record ScheduleGetParams(string Id, string? Owner);

public sealed record ScheduleDeleteParams(string Id, string? Owner);

/// <summary>
/// Pauses or resumes. Resuming sets <paramref name="NextFireAt"/> (the next tick after now, worked
/// out by the caller) so that ticks that passed while paused are skipped rather than fired.
/// </summary>
public sealed record ScheduleSetPausedParams(string Id, string? Owner, bool Paused, DateTimeOffset? NextFireAt, DateTimeOffset Now);

/// <summary>Unpaused schedules whose next tick is at or before <paramref name="Now"/>, earliest first.</summary>
public sealed record ScheduleDueParams(DateTimeOffset Now, int Limit);

/// <summary>Due schedules, and when the earliest later tick is (null when none).</summary>
public sealed record ScheduleDueResult(IReadOnlyList<ScheduleRecord> Due, DateTimeOffset? NextFireAt);

/// <summary>
/// Fires one tick: moves the schedule from <paramref name="ExpectedNextFireAt"/> to
/// <paramref name="NewNextFireAt"/> and inserts <paramref name="Job"/> in the same transaction, only
/// if the schedule still has <paramref name="ExpectedNextFireAt"/> and is unpaused (so a tick
/// another pass or server already fired is not fired again).
/// </summary>
public sealed record ScheduleFireParams(string Id, DateTimeOffset ExpectedNextFireAt, DateTimeOffset TickAt, DateTimeOffset? NewNextFireAt, NewJob Job, DateTimeOffset Now);

/// <summary><see cref="Job"/> is null when the tick was not fired (already fired, paused or deleted).</summary>
public sealed record ScheduleFireResult(bool Fired, JobInsertResult? Job);

/// <summary>
/// Declares lost the workers whose last heartbeat is before <paramref name="HeartbeatBefore"/> and
/// releases their running jobs at once (queued again with the attempt counted, or dead).
/// </summary>
public sealed record WorkerMarkLostParams(DateTimeOffset HeartbeatBefore, DateTimeOffset Now, int Limit);

public sealed record LostWorker(string Id, string Name, string Owner, DateTimeOffset LastHeartbeatAt, int Released);

public sealed record WorkerMarkLostResult(IReadOnlyList<LostWorker> Lost, int Requeued, int Dead, IReadOnlyList<string> Functions, IReadOnlyList<string> OwnersWithResults)
{
    /// <summary>The released jobs that became dead (no attempt left), for alerts.</summary>
    public IReadOnlyList<DeadJob> DeadJobs { get; init; } = [];
}

/// <summary>A recorded worker event (<c>lost</c>), newest first.</summary>
public sealed record WorkerEventRecord(long Seq, string WorkerId, string Kind, DateTimeOffset At, string? Detail);

public sealed record WorkerEventListParams(string? WorkerId, int Limit);

/// <summary>
/// Fails running jobs whose attempt deadline (lease time + timeout) is before
/// <c>Now - Grace</c>: retried after a backoff while attempts remain, else dead.
/// </summary>
public sealed record JobTimeoutExpiredParams(DateTimeOffset Now, TimeSpan Grace, int Limit, RetryPolicy RetryPolicy);

/// <summary>
/// Deletes up to <paramref name="BatchSize"/> finished jobs whose result expired (retention), or
/// was acknowledged and the job finished more than <paramref name="AcknowledgedGrace"/> ago.
/// </summary>
public sealed record JobPorterPurgeParams(DateTimeOffset Now, TimeSpan AcknowledgedGrace, int BatchSize);

/// <summary>
/// Defaults of one function's jobs, applied when a submit (or a schedule's template) leaves the
/// field out; null keeps the global default (<see cref="JobRules"/>).
/// </summary>
public sealed record FunctionDefaults(string Function, int? MaxAttempts, TimeSpan? Timeout, TimeSpan? Retention);

/// <summary>Sets a function's defaults; all three null removes them.</summary>
public sealed record FunctionDefaultsSetParams(FunctionDefaults Defaults, DateTimeOffset Now);
