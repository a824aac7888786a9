using System.Text.Json.Serialization;

namespace Dts.Contracts;

/// <summary>Where a job is in its life. See docs/job-lifecycle.md for the transitions.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<JobState>))]
public enum JobState
{
    /// <summary>Ready to be leased by a worker.</summary>
    [JsonStringEnumMemberName("queued")] Queued,
    /// <summary>Waiting for its run-at time.</summary>
    [JsonStringEnumMemberName("scheduled")] Scheduled,
    /// <summary>Leased to a worker that holds the current lease token.</summary>
    [JsonStringEnumMemberName("running")] Running,
    [JsonStringEnumMemberName("succeeded")] Succeeded,
    /// <summary>An attempt failed and another is due after a backoff.</summary>
    [JsonStringEnumMemberName("awaiting_retry")] AwaitingRetry,
    /// <summary>The last attempt failed; the job stays visible and can be retried by an administrator.</summary>
    [JsonStringEnumMemberName("dead")] Dead,
    [JsonStringEnumMemberName("cancelled")] Cancelled,
}

public static class JobStates
{
    public static bool IsTerminal(this JobState state) =>
        state is JobState.Succeeded or JobState.Dead or JobState.Cancelled;

    /// <summary>States in which a duplicate submit with the same unique key attaches to the job.</summary>
    public static bool CoalescesUniqueKey(this JobState state) =>
        state is JobState.Queued or JobState.Scheduled or JobState.Running or JobState.AwaitingRetry;

    public static string ToWire(this JobState state) => state switch
    {
        JobState.Queued => "queued",
        JobState.Scheduled => "scheduled",
        JobState.Running => "running",
        JobState.Succeeded => "succeeded",
        JobState.AwaitingRetry => "awaiting_retry",
        JobState.Dead => "dead",
        JobState.Cancelled => "cancelled",
        _ => throw new ArgumentOutOfRangeException(nameof(state), state, null),
    };

    public static bool TryParse(string? text, out JobState state)
    {
        // A switch, not a walk over the enum: the stores parse the state of every row they read.
        JobState? parsed = text switch
        {
            "queued" => JobState.Queued,
            "scheduled" => JobState.Scheduled,
            "running" => JobState.Running,
            "succeeded" => JobState.Succeeded,
            "awaiting_retry" => JobState.AwaitingRetry,
            "dead" => JobState.Dead,
            "cancelled" => JobState.Cancelled,
            _ => null,
        };
        state = parsed ?? default;
        return parsed is not null;
    }

    /// <summary>A state as a store wrote it; anything else means the database holds what Dts never writes.</summary>
    public static JobState ParseStored(string text) =>
        TryParse(text, out var state) ? state : throw new InvalidDataException($"Unknown job state '{text}' in the database.");
}
