using System.Text.Json;

namespace Dts.Contracts;

// The JSON bodies of the HTTP API. Property names go over the wire in snake_case (see DtsJson).
// Every request type rejects unknown fields, so a caller cannot set what it must not (owner, state...).

/// <summary>One job to submit.</summary>
public sealed class SubmitJobRequest
{
    public string? Function { get; set; }
    /// <summary>Positional arguments: a JSON array (a text input line becomes <c>[line]</c>).</summary>
    public JsonElement? Args { get; set; }
    /// <summary>Keyword arguments: a JSON object (a JSON input line becomes its kwargs).</summary>
    public JsonElement? Kwargs { get; set; }
    public PriorityClass? Priority { get; set; }
    /// <summary>0 to 999 within the priority class; larger runs first. Default 0.</summary>
    public int? PriorityValue { get; set; }
    /// <summary>A duplicate submit of a queued or running job with the same function and key returns that job.</summary>
    public string? UniqueKey { get; set; }
    public DateTimeOffset? RunAt { get; set; }
    public double? DelaySeconds { get; set; }
    public int? MaxAttempts { get; set; }
    public double? TimeoutSeconds { get; set; }
    public List<string>? Tags { get; set; }
    /// <summary>How long the result is kept for the client after the job finishes.</summary>
    public double? RetentionSeconds { get; set; }
}

public sealed class SubmitBatchRequest
{
    public List<SubmitJobRequest>? Jobs { get; set; }
}

/// <summary>The answer to one submitted job.</summary>
public sealed class SubmitJobResponse
{
    public required string Id { get; set; }
    public required JobState State { get; set; }
    /// <summary>True when the submit attached to an existing job with the same unique key.</summary>
    public bool Coalesced { get; set; }
    /// <summary>
    /// Only for a single submit sent with <c>?wait_seconds=N</c>: the job as it stood when the wait ended,
    /// finished or not (check <see cref="JobStates.IsTerminal"/>). Absent otherwise, and in batch answers.
    /// </summary>
    public JobView? Job { get; set; }
}

public sealed class SubmitBatchResponse
{
    public required List<SubmitJobResponse> Jobs { get; set; }
}

public sealed class JobProgress
{
    public long Numerator { get; set; }
    public long Denominator { get; set; }
}

public sealed class JobError
{
    /// <summary>A short code chosen by the worker (for example <c>exit_code_2</c>, <c>timeout</c>, <c>exception</c>).</summary>
    public string? Code { get; set; }
    public string? Message { get; set; }
}

/// <summary>A job as the API shows it.</summary>
public sealed class JobView
{
    public required string Id { get; set; }
    public required string Function { get; set; }
    public required JobState State { get; set; }
    public required string Owner { get; set; }
    public JsonElement Args { get; set; }
    public JsonElement Kwargs { get; set; }
    public PriorityClass Priority { get; set; }
    public int PriorityValue { get; set; }
    public string? UniqueKey { get; set; }
    public List<string>? Tags { get; set; }
    public DateTimeOffset RunAt { get; set; }
    public int Attempts { get; set; }
    public int MaxAttempts { get; set; }
    public double? TimeoutSeconds { get; set; }
    public double RetentionSeconds { get; set; }
    public JobProgress? Progress { get; set; }
    public JsonElement? Result { get; set; }
    public JobError? Error { get; set; }
    public bool CancelRequested { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
    public DateTimeOffset? StartedAt { get; set; }
    public DateTimeOffset? FinishedAt { get; set; }
    public DateTimeOffset? LeaseExpiresAt { get; set; }
    public string? WorkerId { get; set; }
}

/// <summary>Finished jobs of the caller not yet acknowledged.</summary>
public sealed class ResultsResponse
{
    public required List<JobView> Results { get; set; }
}

public sealed class AckRequest
{
    public List<string>? Ids { get; set; }
}

public sealed class AckResponse
{
    public int Acknowledged { get; set; }
}

public sealed class RegisterWorkerRequest
{
    /// <summary>A name for people (host and process); not needed to be unique.</summary>
    public string? Name { get; set; }
    public List<string>? Functions { get; set; }
    public int? Concurrency { get; set; }
}

public sealed class RegisterWorkerResponse
{
    public required string WorkerId { get; set; }
    public double HeartbeatIntervalSeconds { get; set; }
    /// <summary>Leases of a worker that has not sent a heartbeat for this long are taken back.</summary>
    public double LeaseTimeoutSeconds { get; set; }
}

public sealed class HeartbeatRequest
{
    /// <summary>Ids of the jobs the worker is running now.</summary>
    public List<string>? Running { get; set; }
}

public sealed class HeartbeatResponse
{
    /// <summary>Jobs the worker holds that it must stop: cancelled, or no longer leased to it.</summary>
    public required List<string> Cancel { get; set; }
    public DateTimeOffset LeaseExpiresAt { get; set; }
}

public sealed class LeaseRequest
{
    /// <summary>How many jobs at most (1 to 1000).</summary>
    public int? Max { get; set; }
    /// <summary>How long to wait for a job when none is ready (0 to 60 seconds).</summary>
    public double? WaitSeconds { get; set; }
    /// <summary>Only these of the worker's registered functions; all of them when absent.</summary>
    public List<string>? Functions { get; set; }
}

public sealed class LeasedJob
{
    public required string Id { get; set; }
    public required string Function { get; set; }
    public JsonElement Args { get; set; }
    public JsonElement Kwargs { get; set; }
    public required string LeaseToken { get; set; }
    public DateTimeOffset LeaseExpiresAt { get; set; }
    public int Attempt { get; set; }
    public int MaxAttempts { get; set; }
    public double? TimeoutSeconds { get; set; }
    public List<string>? Tags { get; set; }
}

public sealed class LeaseResponse
{
    public required List<LeasedJob> Jobs { get; set; }
}

/// <summary>Progress, completion or failure of one leased job.</summary>
public sealed class JobReport
{
    public string? JobId { get; set; }
    public string? LeaseToken { get; set; }
    /// <summary>For a completion: the result, any JSON value.</summary>
    public JsonElement? Result { get; set; }
    /// <summary>For a failure: what went wrong. A report with an error fails the attempt.</summary>
    public JobError? Error { get; set; }
    /// <summary>For a failure: false makes the job dead at once, whatever attempts remain.</summary>
    public bool? Retry { get; set; }
    public JobProgress? Progress { get; set; }
}

public sealed class ReportBatchRequest
{
    public List<JobReport>? Reports { get; set; }
}

public sealed class ReportOutcome
{
    public required string JobId { get; set; }
    /// <summary><c>ok</c>, or an error code such as <c>stale_lease</c> or <c>job_not_found</c>.</summary>
    public required string Status { get; set; }
    /// <summary>The job's state after the report, when it was applied.</summary>
    public JobState? State { get; set; }
}

public sealed class ReportBatchResponse
{
    public required List<ReportOutcome> Outcomes { get; set; }
}

public sealed class HealthResponse
{
    public required string Status { get; set; }
    public required string Version { get; set; }
    public required string Store { get; set; }
}

/// <summary>An RFC 9457 problem document with Dts's stable <c>code</c>.</summary>
public sealed class Problem
{
    public string Type { get; set; } = "about:blank";
    public string? Title { get; set; }
    public int Status { get; set; }
    public string? Detail { get; set; }
    public string? Instance { get; set; }
    public string? Code { get; set; }
    /// <summary>For a validation error: the JSON path of the offending field.</summary>
    public string? Field { get; set; }
}
