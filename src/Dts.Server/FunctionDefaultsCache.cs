using System.Collections.Concurrent;
using Dts.Contracts;
using Dts.Core;
using Dts.Core.Storage;

namespace Dts.Server;

/// <summary>
/// Per-function job defaults (max attempts, timeout, retention), read from the store and cached
/// for <see cref="DtsServerOptions.UserCacheTime"/> so a busy submit path does not read them per job.
/// A change made on this server is seen at once; on another server within the cache time.
/// </summary>
public sealed class FunctionDefaultsCache(IJobStore store, TimeProvider time, TimeSpan cacheTime)
{
    private readonly ConcurrentDictionary<string, (FunctionDefaults? Defaults, DateTimeOffset At)> _cache = new(StringComparer.Ordinal);

    public async Task<FunctionDefaults?> GetAsync(string function, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (_cache.TryGetValue(function, out var hit) && now - hit.At < cacheTime) return hit.Defaults;
        var defaults = await store.FunctionDefaultsGetAsync(function, cancellationToken).ConfigureAwait(false);
        // Bounded: an attacker submitting to endless function names must not grow this without end.
        if (_cache.Count > 10_000) _cache.Clear();
        _cache[function] = (defaults, now);
        return defaults;
    }

    public void Forget(string function) => _cache.TryRemove(function, out _);

    /// <summary>Fills the fields <paramref name="request"/> leaves out from its function's defaults.</summary>
    public async Task ApplyAsync(SubmitJobRequest? request, CancellationToken cancellationToken)
    {
        if (request is null || !JobRules.IsValidFunctionName(request.Function)) return;
        if (request.MaxAttempts is not null && request.TimeoutSeconds is not null && request.RetentionSeconds is not null) return;
        if (await GetAsync(request.Function!, cancellationToken).ConfigureAwait(false) is not { } d) return;
        request.MaxAttempts ??= d.MaxAttempts;
        request.TimeoutSeconds ??= d.Timeout?.TotalSeconds;
        request.RetentionSeconds ??= d.Retention?.TotalSeconds;
    }
}
