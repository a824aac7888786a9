using Dts.Contracts;

namespace Dts.Core.Storage;

/// <summary>A job as stored. JSON fields (args, kwargs, result, tags) are kept as their JSON text.</summary>
public sealed record JobRecord
{
    public required string Id { get; init; }
    public required string Function { get; init; }
    public required string Owner { get; init; }
    public required JobState State { get; init; }
    /// <summary>JSON array text.</summary>
    public required string ArgsJson { get; init; }
    /// <summary>JSON object text.</summary>
    public required string KwargsJson { get; init; }
    public required Priority Priority { get; init; }
    public string? UniqueKey { get; init; }
    /// <summary>JSON array of strings, or null.</summary>
    public string? TagsJson { get; init; }
    public required DateTimeOffset RunAt { get; init; }
    public required int Attempts { get; init; }
    public required int MaxAttempts { get; init; }
    public TimeSpan? Timeout { get; init; }
    public required TimeSpan Retention { get; init; }
    public long? ProgressNumerator { get; init; }
    public long? ProgressDenominator { get; init; }
    /// <summary>JSON text of the result, for a succeeded job.</summary>
    public string? ResultJson { get; init; }
    public string? ErrorCode { get; init; }
    public string? ErrorMessage { get; init; }
    public string? LeaseToken { get; init; }
    public DateTimeOffset? LeaseExpiresAt { get; init; }
    public string? WorkerId { get; init; }
    public bool CancelRequested { get; init; }
    /// <summary>True from the moment the job finishes until its owner acknowledges the result.</summary>
    public bool ResultPending { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    public required DateTimeOffset UpdatedAt { get; init; }
    public DateTimeOffset? StartedAt { get; init; }
    public DateTimeOffset? FinishedAt { get; init; }
}

/// <summary>A new job, validated and normalised by <see cref="Dts.Core.JobRules"/>.</summary>
public sealed record NewJob
{
    public required string Id { get; init; }
    public required string Function { get; init; }
    public required string Owner { get; init; }
    public required string ArgsJson { get; init; }
    public required string KwargsJson { get; init; }
    public required Priority Priority { get; init; }
    public string? UniqueKey { get; init; }
    public string? TagsJson { get; init; }
    /// <summary>When the job may first run; a time after <c>now</c> makes it scheduled.</summary>
    public required DateTimeOffset RunAt { get; init; }
    public required int MaxAttempts { get; init; }
    public TimeSpan? Timeout { get; init; }
    public required TimeSpan Retention { get; init; }
}

public sealed record UserRecord
{
    public required string Name { get; init; }
    public required string Secret { get; init; }
    public required IReadOnlyList<string> Roles { get; init; }
    public bool Disabled { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }
    /// <summary>Most unfinished jobs the user may have; null is unlimited.</summary>
    public long? MaxQueued { get; init; }
    /// <summary>Submitted jobs per second (token bucket refill); null is unlimited.</summary>
    public double? SubmitRate { get; init; }
    /// <summary>Token bucket size; null is the rate rounded up (at least 1).</summary>
    public double? SubmitBurst { get; init; }
    /// <summary>For a worker user: the only functions it may register; null allows any.</summary>
    public IReadOnlyList<string>? Functions { get; init; }

    public bool HasRole(string role) =>
        Roles.Contains(role, StringComparer.Ordinal) || Roles.Contains(Contracts.Roles.Administrator, StringComparer.Ordinal);
}

public sealed record WorkerRecord
{
    public required string Id { get; init; }
    public required string Owner { get; init; }
    public required string Name { get; init; }
    public required IReadOnlyList<string> Functions { get; init; }
    public required int Concurrency { get; init; }
    public required DateTimeOffset RegisteredAt { get; init; }
    public required DateTimeOffset LastHeartbeatAt { get; init; }
    /// <summary>A draining worker finishes its running jobs and is leased no new ones.</summary>
    public bool Draining { get; init; }
}
