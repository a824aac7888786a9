using System.Text.Json.Nodes;

namespace Dts.Cli.Admin;

/// <summary>
/// What a console command produced, in both forms: <see cref="Json"/> for <c>--json</c> (one document),
/// and for people a table of <see cref="Rows"/>, a field/value table of <see cref="Record"/>, then <see cref="Lines"/>.
/// Field selection is applied already.
/// </summary>
internal sealed class AdminOutput
{
    public required JsonNode Json { get; init; }

    /// <summary>A list: one row per item, shown in <see cref="Columns"/>.</summary>
    public IReadOnlyList<JsonObject>? Rows { get; init; }

    public IReadOnlyList<string> Columns { get; init; } = [];

    /// <summary>One object, shown as field/value pairs.</summary>
    public JsonObject? Record { get; init; }

    /// <summary>Plain text after the table (a count, a paging hint, a new secret).</summary>
    public IReadOnlyList<string> Lines { get; init; } = [];

    /// <summary>
    /// Output that keeps coming after the rest is shown (a followed log): called with a writer of one
    /// text line and a writer of one JSON item, and returns when there is no more.
    /// </summary>
    public Func<Func<string, Task>, Func<JsonNode, Task>, CancellationToken, Task>? Stream { get; init; }

    public static AdminOutput Message(string text, JsonNode json) => new() { Json = json, Lines = [text] };
}
