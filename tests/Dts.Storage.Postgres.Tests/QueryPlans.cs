using System.Text.Json;

namespace Dts.Storage.Postgres.Tests;

internal static class QueryPlans
{
    /// <summary>Every scan of the jobs table in an <c>EXPLAIN (FORMAT JSON)</c> plan: its node type and index, if any.</summary>
    public static List<(string Node, string? Index)> JobScans(string planJson)
    {
        var scans = new List<(string Node, string? Index)>();
        void Walk(JsonElement node)
        {
            if (node.TryGetProperty("Relation Name", out var rel) && rel.GetString() == "jobs")
                scans.Add((node.GetProperty("Node Type").GetString()!, node.TryGetProperty("Index Name", out var ix) ? ix.GetString() : null));
            if (node.TryGetProperty("Plans", out var children))
                foreach (var child in children.EnumerateArray()) Walk(child);
        }
        using var doc = JsonDocument.Parse(planJson);
        Walk(doc.RootElement[0].GetProperty("Plan"));
        return scans;
    }
}
