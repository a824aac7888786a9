using System.Text.Json;

namespace Dts.Client.Batch;

/// <summary>
/// The small file that lets a batch run resume: which run it was, the highest record number up to
/// which everything is written, the few records past it already written (at most the run's window),
/// and the sinks' position at that moment. Its size does not grow with the input.
/// </summary>
public sealed record RunCheckpoint
{
    public required string RunId { get; init; }
    public required string Function { get; init; }
    /// <summary>Every record numbered up to this is in the outputs (or was skipped by the start position).</summary>
    public required long Contiguous { get; init; }
    /// <summary>Records past <see cref="Contiguous"/> already in the outputs.</summary>
    public required IReadOnlyList<long> Written { get; init; }
    /// <summary>The sink's position, opaque to the runner.</summary>
    public string? SinkPosition { get; init; }
    /// <summary>True once every record of the input is in the outputs.</summary>
    public bool Complete { get; init; }

    public static async Task<RunCheckpoint?> LoadAsync(string path, CancellationToken cancellationToken)
    {
        if (!File.Exists(path)) return null;
        var bytes = await File.ReadAllBytesAsync(path, cancellationToken).ConfigureAwait(false);
        using var doc = JsonDocument.Parse(bytes);
        var root = doc.RootElement;
        return new RunCheckpoint
        {
            RunId = root.GetProperty("run_id").GetString()!,
            Function = root.GetProperty("function").GetString()!,
            Contiguous = root.GetProperty("contiguous").GetInt64(),
            Written = [.. root.GetProperty("written").EnumerateArray().Select(e => e.GetInt64())],
            SinkPosition = root.TryGetProperty("sink_position", out var p) && p.ValueKind == JsonValueKind.String ? p.GetString() : null,
            Complete = root.TryGetProperty("complete", out var c) && c.GetBoolean(),
        };
    }

    /// <summary>Writes a temporary file, makes it durable, and renames it over the old one, so a crash leaves the old or the new checkpoint whole.</summary>
    public async Task SaveAsync(string path, CancellationToken cancellationToken)
    {
        var temp = path + ".tmp";
        await using (var stream = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None, 4096, FileOptions.Asynchronous))
        {
            await using (var w = new Utf8JsonWriter(stream))
            {
                w.WriteStartObject();
                w.WriteString("run_id", RunId);
                w.WriteString("function", Function);
                w.WriteNumber("contiguous", Contiguous);
                w.WriteStartArray("written");
                foreach (var n in Written) w.WriteNumberValue(n);
                w.WriteEndArray();
                if (SinkPosition is null) w.WriteNull("sink_position");
                else w.WriteString("sink_position", SinkPosition);
                w.WriteBoolean("complete", Complete);
                w.WriteEndObject();
            }
            stream.Flush(flushToDisk: true);
        }
        File.Move(temp, path, overwrite: true);
    }
}
