using System.Text.Json;

namespace Dts.Client;

/// <summary>Builds small JSON values without reflection (the SDK is trimming-safe).</summary>
public static class JsonValues
{
    public static JsonElement String(string value) => Build(w => w.WriteStringValue(value));

    public static JsonElement StringArray(IEnumerable<string> values) => Build(w =>
    {
        w.WriteStartArray();
        foreach (var v in values) w.WriteStringValue(v);
        w.WriteEndArray();
    });

    /// <summary>An empty JSON object.</summary>
    public static JsonElement EmptyObject() => Build(w =>
    {
        w.WriteStartObject();
        w.WriteEndObject();
    });

    public static JsonElement Parse(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.Clone();
    }

    public static JsonElement Build(Action<Utf8JsonWriter> write)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer))
        {
            write(writer);
        }
        using var doc = JsonDocument.Parse(buffer.WrittenMemory);
        return doc.RootElement.Clone();
    }
}
