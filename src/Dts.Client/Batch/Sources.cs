using System.Runtime.CompilerServices;
using System.Text.Json;

namespace Dts.Client.Batch;

/// <summary>The error codes a source gives bad records.</summary>
public static class RecordErrors
{
    public const string BlankLine = "blank_line";
    public const string InvalidJson = "invalid_json";
    public const string TooLong = "record_too_long";
    /// <summary>The job of the record ended dead or cancelled without its own error code.</summary>
    public const string JobFailed = "job_failed";
}

/// <summary>The input formats of <c>dts client run</c>.</summary>
public enum InputFormat { Text, Json, Words }

/// <summary>Common ground of the line-based sources: a stream read line by line with a bound on line length.</summary>
public abstract class LineSource(Stream input, int maxRecordBytes = LineSource.DefaultMaxRecordBytes, bool leaveOpen = false) : IJobSource, IAsyncDisposable
{
    /// <summary>A record longer than this (1 MiB) is an error, so one bad line cannot exhaust memory.</summary>
    public const int DefaultMaxRecordBytes = 1024 * 1024;

    public static LineSource Create(InputFormat format, Stream input, int maxRecordBytes = DefaultMaxRecordBytes, bool leaveOpen = false) => format switch
    {
        InputFormat.Json => new JsonLineSource(input, maxRecordBytes, leaveOpen),
        InputFormat.Words => new WordSource(input, maxRecordBytes, leaveOpen),
        _ => new TextLineSource(input, maxRecordBytes, leaveOpen),
    };

    protected int MaxRecordBytes => maxRecordBytes;

    public async IAsyncEnumerable<BatchRecord> ReadAsync([EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var reader = new BoundedLineReader(input, maxRecordBytes);
        long lineNumber = 0, recordNumber = 0;
        while (await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false) is { } line)
        {
            lineNumber++;
            foreach (var record in Parse(line.Text, line.TooLong, lineNumber, () => ++recordNumber))
                yield return record;
        }
    }

    /// <summary>Turns one line into its records; <paramref name="next"/> hands out the record numbers.</summary>
    protected abstract IEnumerable<BatchRecord> Parse(string line, bool tooLong, long lineNumber, Func<long> next);

    protected BatchRecord TooLongRecord(long number, long lineNumber, string start) =>
        BatchRecord.Error(number, lineNumber, RecordErrors.TooLong, $"Line {lineNumber} is longer than {maxRecordBytes} bytes.", start);

    public ValueTask DisposeAsync() => leaveOpen ? ValueTask.CompletedTask : input.DisposeAsync();
}

/// <summary>Each line is one job with positional args <c>[line]</c> (the original's TextFileIOComponent).</summary>
public sealed class TextLineSource(Stream input, int maxRecordBytes = LineSource.DefaultMaxRecordBytes, bool leaveOpen = false)
    : LineSource(input, maxRecordBytes, leaveOpen)
{
    protected override IEnumerable<BatchRecord> Parse(string line, bool tooLong, long lineNumber, Func<long> next)
    {
        var number = next();
        if (tooLong) yield return TooLongRecord(number, lineNumber, line);
        else if (string.IsNullOrWhiteSpace(line))
            yield return BatchRecord.Error(number, lineNumber, RecordErrors.BlankLine, $"Line {lineNumber} is blank.", line);
        else yield return BatchRecord.Job(number, lineNumber, JsonValues.StringArray([line]), null);
    }
}

/// <summary>
/// Each line is a JSON object: its fields are the keyword args, or it is <c>{"args":[...],"kwargs":{...}}</c>
/// (the original's JsonFileIOComponent input side).
/// </summary>
public sealed class JsonLineSource(Stream input, int maxRecordBytes = LineSource.DefaultMaxRecordBytes, bool leaveOpen = false)
    : LineSource(input, maxRecordBytes, leaveOpen)
{
    protected override IEnumerable<BatchRecord> Parse(string line, bool tooLong, long lineNumber, Func<long> next)
    {
        var number = next();
        if (tooLong)
        {
            yield return TooLongRecord(number, lineNumber, line);
            yield break;
        }
        if (string.IsNullOrWhiteSpace(line))
        {
            yield return BatchRecord.Error(number, lineNumber, RecordErrors.BlankLine, $"Line {lineNumber} is blank.", line);
            yield break;
        }
        yield return ParseObject(number, lineNumber, line);
    }

    private static BatchRecord ParseObject(long number, long lineNumber, string line)
    {
        JsonElement value;
        try
        {
            value = JsonValues.Parse(line);
        }
        catch (JsonException ex)
        {
            return BatchRecord.Error(number, lineNumber, RecordErrors.InvalidJson, $"Line {lineNumber} is not valid JSON: {ex.Message}", line);
        }
        if (value.ValueKind != JsonValueKind.Object)
            return BatchRecord.Error(number, lineNumber, RecordErrors.InvalidJson, $"Line {lineNumber} is JSON but not an object.", line);

        // {"args": [...], "kwargs": {...}} with nothing else is the explicit form; any other object is kwargs.
        var explicitForm = value.EnumerateObject().Any() && value.EnumerateObject().All(p => p.Name is "args" or "kwargs");
        if (!explicitForm) return BatchRecord.Job(number, lineNumber, null, value);
        JsonElement? args = value.TryGetProperty("args", out var a) ? a : null;
        JsonElement? kwargs = value.TryGetProperty("kwargs", out var k) ? k : null;
        if (args is { ValueKind: not JsonValueKind.Array })
            return BatchRecord.Error(number, lineNumber, RecordErrors.InvalidJson, $"Line {lineNumber}: 'args' must be an array.", line);
        if (kwargs is { ValueKind: not JsonValueKind.Object })
            return BatchRecord.Error(number, lineNumber, RecordErrors.InvalidJson, $"Line {lineNumber}: 'kwargs' must be an object.", line);
        return BatchRecord.Job(number, lineNumber, args, kwargs);
    }
}

/// <summary>Each whitespace-separated word is one job with positional args <c>[word]</c> (the original's WordFileIOComponent).</summary>
public sealed class WordSource(Stream input, int maxRecordBytes = LineSource.DefaultMaxRecordBytes, bool leaveOpen = false)
    : LineSource(input, maxRecordBytes, leaveOpen)
{
    protected override IEnumerable<BatchRecord> Parse(string line, bool tooLong, long lineNumber, Func<long> next)
    {
        // A line too long to hold cannot be split safely: the whole line is one bad record.
        if (tooLong)
        {
            yield return TooLongRecord(next(), lineNumber, line);
            yield break;
        }
        foreach (var word in line.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries))
            yield return BatchRecord.Job(next(), lineNumber, JsonValues.StringArray([word]), null);
    }
}
