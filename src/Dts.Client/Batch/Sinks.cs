using System.Globalization;
using System.Text.Json;

namespace Dts.Client.Batch;

/// <summary>An append-only JSON-lines file that can be made durable and cut back to a length.</summary>
internal sealed class JsonLinesFile : IAsyncDisposable
{
    private readonly FileStream _stream;

    private JsonLinesFile(FileStream stream) => _stream = stream;

    public string Path => _stream.Name;

    public long Length => _stream.Position;

    /// <summary>Opens <paramref name="path"/>: emptied when <paramref name="keep"/> is null, else cut to <paramref name="keep"/> bytes.</summary>
    public static JsonLinesFile Open(string path, long? keep)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);
        var stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.Write, FileShare.Read, 64 * 1024, FileOptions.Asynchronous);
        // Whatever lies past the checkpointed length was written after the last checkpoint; those
        // records will be written again, so the tail must go.
        stream.SetLength(Math.Min(keep ?? 0, stream.Length));
        stream.Position = stream.Length;
        return new JsonLinesFile(stream);
    }

    public ValueTask WriteAsync(RecordOutcome outcome, CancellationToken cancellationToken)
    {
        using (var writer = new Utf8JsonWriter(_stream))
        {
            OutcomeJson.Write(writer, outcome);
        }
        _stream.WriteByte((byte)'\n');
        return ValueTask.CompletedTask;
    }

    public async ValueTask FlushAsync(CancellationToken cancellationToken)
    {
        await _stream.FlushAsync(cancellationToken).ConfigureAwait(false);
        _stream.Flush(flushToDisk: true);
    }

    public ValueTask DisposeAsync() => _stream.DisposeAsync();
}

/// <summary>The JSON-lines form of an outcome: record, line, input, job id, then result or error and attempts.</summary>
public static class OutcomeJson
{
    public static void Write(Utf8JsonWriter w, RecordOutcome o)
    {
        w.WriteStartObject();
        w.WriteNumber("record", o.Record);
        if (o.Line is { } line) w.WriteNumber("line", line);
        w.WritePropertyName("input");
        if (o.Input is { } input) input.WriteTo(w);
        else w.WriteNullValue();
        if (o.JobId is not null) w.WriteString("job_id", o.JobId);
        if (o.IsError)
        {
            w.WriteStartObject("error");
            w.WriteString("code", o.ErrorCode);
            w.WriteString("message", o.ErrorMessage);
            w.WriteEndObject();
            w.WriteNumber("attempts", o.Attempts);
        }
        else
        {
            w.WritePropertyName("result");
            if (o.Result is { ValueKind: not JsonValueKind.Undefined } result) result.WriteTo(w);
            else w.WriteNullValue();
        }
        w.WriteEndObject();
    }
}

/// <summary>
/// Results to one JSON-lines file and errors to another (the original's JsonFileIOComponent(outfile, errfile)).
/// Its position is the two files' lengths.
/// </summary>
public sealed class JsonLinesResultSink(string resultsPath, string errorsPath) : IResultSink
{
    private JsonLinesFile? _results, _errors;

    public ValueTask OpenAsync(string? resumeFrom, CancellationToken cancellationToken)
    {
        long? keepResults = null, keepErrors = null;
        if (resumeFrom is not null)
        {
            var parts = resumeFrom.Split('|');
            keepResults = long.Parse(parts[0], CultureInfo.InvariantCulture);
            keepErrors = long.Parse(parts[1], CultureInfo.InvariantCulture);
        }
        _results = JsonLinesFile.Open(resultsPath, keepResults);
        _errors = JsonLinesFile.Open(errorsPath, keepErrors);
        return ValueTask.CompletedTask;
    }

    public ValueTask WriteAsync(RecordOutcome outcome, CancellationToken cancellationToken) =>
        (outcome.IsError ? _errors : _results)!.WriteAsync(outcome, cancellationToken);

    public async ValueTask<string?> FlushAsync(CancellationToken cancellationToken)
    {
        await _results!.FlushAsync(cancellationToken).ConfigureAwait(false);
        await _errors!.FlushAsync(cancellationToken).ConfigureAwait(false);
        return string.Create(CultureInfo.InvariantCulture, $"{_results.Length}|{_errors.Length}");
    }

    public async ValueTask DisposeAsync()
    {
        if (_results is not null) await _results.DisposeAsync().ConfigureAwait(false);
        if (_errors is not null) await _errors.DisposeAsync().ConfigureAwait(false);
    }
}

/// <summary>
/// Results to a dated tree, <c>DIR/yyyy/MM/dd/results.jsonl</c>, switching files at midnight in
/// <paramref name="timeZone"/> (the original's DailyRotatingOutputFile); errors to one file.
/// Its position is the current day's file with its length plus the errors file's length.
/// </summary>
public sealed class DailyRotatingResultSink(string directory, string errorsPath, TimeZoneInfo timeZone, TimeProvider timeProvider,
    string fileName = "results.jsonl") : IResultSink
{
    private JsonLinesFile? _current, _errors;
    private string? _currentDay;

    /// <summary>The results file being written, relative to the directory (null before the first result).</summary>
    public string? CurrentFile => _currentDay is null ? null : System.IO.Path.Combine(_currentDay, fileName);

    public ValueTask OpenAsync(string? resumeFrom, CancellationToken cancellationToken)
    {
        Directory.CreateDirectory(directory);
        string? day = null;
        long keep = 0;
        long? keepErrors = null;
        if (resumeFrom is not null)
        {
            var parts = resumeFrom.Split('|');
            day = parts[0].Length == 0 ? null : parts[0];
            keep = long.Parse(parts[1], CultureInfo.InvariantCulture);
            keepErrors = long.Parse(parts[2], CultureInfo.InvariantCulture);
        }
        // Days after the checkpointed one were begun after the checkpoint: their lines will come again.
        // On a fresh start every day's file of this tree is stale output of an earlier run.
        foreach (var file in Directory.EnumerateFiles(directory, fileName, SearchOption.AllDirectories))
        {
            var relative = DayOf(file);
            if (relative is null) continue;
            if (day is null || string.CompareOrdinal(relative, day) > 0) File.Delete(file);
        }
        if (day is not null)
        {
            _currentDay = day;
            _current = JsonLinesFile.Open(System.IO.Path.Combine(directory, day, fileName), keep);
        }
        _errors = JsonLinesFile.Open(errorsPath, keepErrors);
        return ValueTask.CompletedTask;
    }

    private string? DayOf(string file)
    {
        var relative = System.IO.Path.GetRelativePath(directory, System.IO.Path.GetDirectoryName(file)!).Replace('\\', '/');
        return relative.Split('/') is [{ Length: 4 }, { Length: 2 }, { Length: 2 }] ? relative : null;
    }

    public async ValueTask WriteAsync(RecordOutcome outcome, CancellationToken cancellationToken)
    {
        if (outcome.IsError)
        {
            await _errors!.WriteAsync(outcome, cancellationToken).ConfigureAwait(false);
            return;
        }
        var local = TimeZoneInfo.ConvertTime(timeProvider.GetUtcNow(), timeZone);
        var day = local.ToString("yyyy/MM/dd", CultureInfo.InvariantCulture);
        if (day != _currentDay)
        {
            if (_current is not null)
            {
                // The finished day is made durable now; the checkpoint only records the newest day's length.
                await _current.FlushAsync(cancellationToken).ConfigureAwait(false);
                await _current.DisposeAsync().ConfigureAwait(false);
            }
            _currentDay = day;
            var path = System.IO.Path.Combine(directory, day, fileName);
            _current = JsonLinesFile.Open(path, File.Exists(path) ? new FileInfo(path).Length : 0);
        }
        await _current!.WriteAsync(outcome, cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask<string?> FlushAsync(CancellationToken cancellationToken)
    {
        if (_current is not null) await _current.FlushAsync(cancellationToken).ConfigureAwait(false);
        await _errors!.FlushAsync(cancellationToken).ConfigureAwait(false);
        return string.Create(CultureInfo.InvariantCulture, $"{_currentDay}|{_current?.Length ?? 0}|{_errors.Length}");
    }

    public async ValueTask DisposeAsync()
    {
        if (_current is not null) await _current.DisposeAsync().ConfigureAwait(false);
        if (_errors is not null) await _errors.DisposeAsync().ConfigureAwait(false);
    }
}
