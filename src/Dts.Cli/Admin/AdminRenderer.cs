using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Spectre.Console;

namespace Dts.Cli.Admin;

/// <summary>
/// Writes an <see cref="AdminOutput"/> as Spectre.Console tables for people, or as one compact JSON document per
/// command. <paramref name="console"/> must write to <paramref name="output"/>, so tables and lines keep their order.
/// </summary>
internal sealed class AdminRenderer(IAnsiConsole console, TextWriter output, bool json)
{
    // Relaxed escaping keeps names and messages readable ('+' and non-ASCII letters stay as typed); the output is not embedded in HTML.
    private static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    public bool Json => json;

    public async Task WriteAsync(AdminOutput result, CancellationToken cancellationToken)
    {
        if (result.Stream is { } stream)
        {
            // Streamed output: text lines as they come, or in --json mode one compact JSON document per item.
            async Task Line(string text)
            {
                if (json) return;
                await output.WriteLineAsync(text.AsMemory(), cancellationToken).ConfigureAwait(false);
                await output.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
            async Task Item(JsonNode node)
            {
                if (!json) return;
                await output.WriteLineAsync(ToJson(node).AsMemory(), cancellationToken).ConfigureAwait(false);
                await output.FlushAsync(cancellationToken).ConfigureAwait(false);
            }
            await stream(Line, Item, cancellationToken).ConfigureAwait(false);
            return;
        }
        if (json)
        {
            await output.WriteLineAsync(ToJson(result.Json).AsMemory(), cancellationToken).ConfigureAwait(false);
            await output.FlushAsync(cancellationToken).ConfigureAwait(false);
            return;
        }
        if (result.Rows is { } rows) console.Write(ListTable(rows, result.Columns));
        if (result.Record is { } record) console.Write(RecordTable(record));
        // Straight to the writer: Spectre would wrap a long line (a paging hint, a secret) at the console width.
        foreach (var line in result.Lines) await output.WriteLineAsync(line.AsMemory(), cancellationToken).ConfigureAwait(false);
        await output.FlushAsync(cancellationToken).ConfigureAwait(false);
    }

    public static string ToJson(JsonNode node)
    {
        using var buffer = new MemoryStream();
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions)) node.WriteTo(writer);
        return Encoding.UTF8.GetString(buffer.ToArray());
    }

    private static Table ListTable(IReadOnlyList<JsonObject> rows, IReadOnlyList<string> columns)
    {
        var table = new Table().Border(TableBorder.Rounded);
        foreach (var c in columns) table.AddColumn(new TableColumn(new Text(c)));
        foreach (var row in rows)
            table.AddRow(columns.Select(c => (Spectre.Console.Rendering.IRenderable)new Text(Cell(row.TryGetPropertyValue(c, out var v) ? v : null))).ToArray());
        if (rows.Count == 0) table.Caption("(none)");
        return table;
    }

    private static Table RecordTable(JsonObject record)
    {
        var table = new Table().Border(TableBorder.Rounded);
        table.AddColumn("field");
        table.AddColumn("value");
        foreach (var (name, value) in record) table.AddRow(new Text(name), new Text(Cell(value)));
        return table;
    }

    /// <summary>A value as one cell: strings bare, lists joined with commas, null empty, objects as compact JSON.</summary>
    internal static string Cell(JsonNode? value) => value switch
    {
        null => "",
        JsonArray array when array.All(e => e is JsonValue v && v.GetValueKind() == JsonValueKind.String) =>
            string.Join(",", array.Select(e => e!.GetValue<string>())),
        JsonValue v when v.GetValueKind() == JsonValueKind.String => v.GetValue<string>(),
        JsonValue v when v.GetValueKind() is JsonValueKind.True or JsonValueKind.False => v.GetValueKind() == JsonValueKind.True ? "true" : "false",
        _ => ToJson(value),
    };
}
