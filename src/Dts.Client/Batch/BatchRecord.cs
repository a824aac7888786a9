using System.Text.Json;

namespace Dts.Client.Batch;

/// <summary>
/// One record of a batch input: a job's arguments, or why the record could not become a job.
/// Records are numbered from 1 in input order; <see cref="Line"/> is where it was found.
/// </summary>
public sealed record BatchRecord
{
    public required long Number { get; init; }
    public required long Line { get; init; }
    /// <summary>Positional arguments, a JSON array; null for none.</summary>
    public JsonElement? Args { get; init; }
    /// <summary>Keyword arguments, a JSON object; null for none.</summary>
    public JsonElement? Kwargs { get; init; }
    /// <summary>Set when the record is bad (blank, invalid JSON, too long): it goes to the errors output, not to a job.</summary>
    public string? ErrorCode { get; init; }
    public string? ErrorMessage { get; init; }
    /// <summary>The record's text (cut short when it was too long), for the errors output.</summary>
    public string? Raw { get; init; }

    public bool IsError => ErrorCode is not null;

    public static BatchRecord Job(long number, long line, JsonElement? args, JsonElement? kwargs) =>
        new() { Number = number, Line = line, Args = args, Kwargs = kwargs };

    public static BatchRecord Error(long number, long line, string code, string message, string? raw) =>
        new() { Number = number, Line = line, ErrorCode = code, ErrorMessage = message, Raw = raw };
}

/// <summary>Where a batch run's records come from (the original's FileIOComponent as a data source).</summary>
public interface IJobSource
{
    /// <summary>Streams every record in order, numbered 1, 2, 3...; bad records come as errors, not exceptions.</summary>
    IAsyncEnumerable<BatchRecord> ReadAsync(CancellationToken cancellationToken);
}

/// <summary>What became of one record: a job's result, or an error (a bad record, a dead or cancelled job).</summary>
public sealed record RecordOutcome
{
    public required long Record { get; init; }
    /// <summary>The input line, when known (results read back after a restart know only the record).</summary>
    public long? Line { get; init; }
    /// <summary>The record as the job saw it: a text line, a JSON object, or <c>{"args":..,"kwargs":..}</c>.</summary>
    public JsonElement? Input { get; init; }
    public string? JobId { get; init; }
    public JsonElement? Result { get; init; }
    public string? ErrorCode { get; init; }
    public string? ErrorMessage { get; init; }
    public int Attempts { get; init; }

    public bool IsError => ErrorCode is not null;
}

/// <summary>
/// Where a batch run's outcomes go (the original's result processor). The runner calls it from one
/// task at a time. For resume without duplicates a sink reports a position at each durable flush,
/// and on resume cuts its outputs back to the last checkpointed position.
/// </summary>
public interface IResultSink : IAsyncDisposable
{
    /// <summary>Opens the outputs: fresh when <paramref name="resumeFrom"/> is null, else cut back to that position.</summary>
    ValueTask OpenAsync(string? resumeFrom, CancellationToken cancellationToken);

    ValueTask WriteAsync(RecordOutcome outcome, CancellationToken cancellationToken);

    /// <summary>Makes everything written so far durable and returns a position to resume from (null if the sink cannot cut back).</summary>
    ValueTask<string?> FlushAsync(CancellationToken cancellationToken);
}
