namespace Dts.Contracts;

/// <summary>One log line a worker sends: which job (and its lease token), when, which stream, and the text.</summary>
public sealed class LogLineRequest
{
    public string? JobId { get; set; }
    public string? LeaseToken { get; set; }
    /// <summary>When the line was written; the server's time of arrival when missing.</summary>
    public DateTimeOffset? At { get; set; }
    /// <summary><c>log</c> (the SDK's logger, the default), <c>stdout</c> or <c>stderr</c> (a command's output).</summary>
    public string? Stream { get; set; }
    public string? Text { get; set; }
}

/// <summary>POST body of <see cref="ApiRoutes.WorkerLogs"/>.</summary>
public sealed class LogBatchRequest
{
    public List<LogLineRequest>? Lines { get; set; }
}

/// <summary>
/// What became of a batch: lines stored, lines dropped past a job's cap, and jobs whose lines were
/// refused (not leased to this worker any more): send no more lines for those.
/// </summary>
public sealed class LogBatchResponse
{
    public int Stored { get; set; }
    public int Dropped { get; set; }
    public List<string> Refused { get; set; } = [];
}

/// <summary>One stored line of a job's log.</summary>
public sealed class LogLineView
{
    /// <summary>1, 2, 3... within the job; pass the last one seen as <c>after</c> to read on.</summary>
    public long Seq { get; set; }
    public DateTimeOffset At { get; set; }
    /// <summary><c>log</c>, <c>stdout</c>, <c>stderr</c>, or <c>dts</c> for the server's own note when the log was cut.</summary>
    public required string Stream { get; set; }
    public required string Text { get; set; }
}

/// <summary>The answer of <see cref="ApiRoutes.JobLogs"/>.</summary>
public sealed class JobLogsResponse
{
    public required string JobId { get; set; }
    public required List<LogLineView> Lines { get; set; }
    /// <summary>The <c>after</c> to ask with next: the last line's seq, or the asked <c>after</c> when there were none.</summary>
    public long Next { get; set; }
    /// <summary>The job's state when the answer was made.</summary>
    public JobState State { get; set; }
    /// <summary>True when the job has finished and every line up to now has been returned: a follower may stop.</summary>
    public bool Finished { get; set; }
}
