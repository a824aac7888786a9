using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;

namespace Dts.Client;

/// <summary>
/// Reads answers with the wire names of the strict source-generated context (<c>DtsJsonContext</c> or
/// <c>AdminJsonContext</c>) but skips unknown members: the server may add fields to an answer (or a
/// framework may add <c>traceId</c> to a problem) and an older client must keep working. Requests are
/// still written with the strict context.
/// </summary>
internal static class LenientJson
{
    // Keyed by the strict type info: the same CLR type (JobView) lives in both contexts.
    private static readonly ConcurrentDictionary<JsonTypeInfo, JsonTypeInfo> Cache = new();

    public static JsonTypeInfo<T> For<T>(JsonTypeInfo<T> strict) =>
        (JsonTypeInfo<T>)Cache.GetOrAdd(strict, static s =>
        {
            // A copy of the context's options keeps its resolver and naming policy; only unmapped members change.
            var options = new JsonSerializerOptions(s.Options) { UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip };
            options.MakeReadOnly();
            return options.GetTypeInfo(s.Type);
        });
}
