using System.Collections.Concurrent;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.Json.Serialization.Metadata;
using Dts.Contracts;

namespace Dts.Client;

/// <summary>
/// Reads answers with the wire names of <see cref="DtsJsonContext"/> but skips unknown members: the
/// server may add fields to an answer (or a framework may add <c>traceId</c> to a problem) and an
/// older client must keep working. Requests are still written with the strict context.
/// </summary>
internal static class LenientJson
{
    private static readonly DtsJsonContext Context = new(new JsonSerializerOptions(DtsJsonContext.Default.Options)
    {
        TypeInfoResolver = null,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Skip,
    });

    private static readonly ConcurrentDictionary<Type, JsonTypeInfo> Cache = new();

    public static JsonTypeInfo<T> For<T>(JsonTypeInfo<T> strict) =>
        (JsonTypeInfo<T>)Cache.GetOrAdd(strict.Type, static t => Context.GetTypeInfo(t)
            ?? throw new InvalidOperationException($"{t} is not in DtsJsonContext."));
}
