using System.Text.Json.Serialization;

namespace Dts.Contracts;

/// <summary>The per-function job defaults routes (role administrator).</summary>
public static class FunctionDefaultsRoutes
{
    /// <summary>GET: <see cref="FunctionDefaultsView"/>. PUT a <see cref="FunctionDefaultsView"/> (function may be left out): the stored defaults.</summary>
    public static string Defaults(string function) => $"/v1/admin/functions/{function}/defaults";
}

/// <summary>
/// Defaults for a function's jobs, used when a submit or a schedule's job leaves the field out.
/// A field left out (null) falls back to the server-wide default; all three null removes them.
/// </summary>
public sealed class FunctionDefaultsView
{
    public string? Function { get; set; }
    public int? MaxAttempts { get; set; }
    public double? TimeoutSeconds { get; set; }
    public double? RetentionSeconds { get; set; }
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow)]
[JsonSerializable(typeof(FunctionDefaultsView))]
public sealed partial class FunctionDefaultsJsonContext : JsonSerializerContext;
