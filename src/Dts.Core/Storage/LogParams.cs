namespace Dts.Core.Storage;

/// <summary>One log line as a worker sent it, not yet stored.</summary>
public sealed record NewLogLine(string JobId, string LeaseToken, DateTimeOffset At, string Stream, string Text);

/// <summary>
/// Appends log lines of jobs leased to <paramref name="WorkerId"/>. A line is taken when its lease
/// token is the job's current one while it runs, or, once that attempt has ended (finished or waiting
/// for a retry), when its last attempt ran on this worker: the tail of a log may arrive just after the report. A job's log holds at most
/// <paramref name="MaxLines"/> lines and <paramref name="MaxBytes"/> bytes of text (UTF-8); the line
/// that would pass either is replaced by one note saying the log was cut, and later lines are dropped.
/// </summary>
public sealed record JobLogAppendParams(string WorkerId, IReadOnlyList<NewLogLine> Lines, long MaxLines, long MaxBytes);

/// <summary>
/// <paramref name="Stored"/> lines were written (a cut note counts), <paramref name="Dropped"/> fell
/// past a cap, and <paramref name="RefusedJobs"/> are jobs whose lines were refused (stale token,
/// unknown job, or not leased to this worker): the worker should stop sending for them.
/// </summary>
public sealed record JobLogAppendResult(int Stored, int Dropped, IReadOnlyList<string> RefusedJobs, IReadOnlyList<string> JobsWithNewLines);

/// <summary>Up to <paramref name="Max"/> lines of a job with a sequence number above <paramref name="AfterSeq"/>, in order.</summary>
public sealed record JobLogReadParams(string JobId, long AfterSeq, int Max);

public sealed record JobLogLine(long Seq, DateTimeOffset At, string Stream, string Text);

/// <summary>The stream of the note the server writes when it cuts a job's log.</summary>
public static class LogStreams
{
    public const string Log = "log";
    public const string Stdout = "stdout";
    public const string Stderr = "stderr";
    public const string Server = "dts";

    public static bool IsWorkerStream(string? s) => s is Log or Stdout or Stderr;
}
