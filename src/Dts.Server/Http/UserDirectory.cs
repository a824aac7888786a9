using System.Collections.Concurrent;
using Dts.Core.Storage;

namespace Dts.Server.Http;

/// <summary>Users by name, cached for a short time so that signature checks do not read the store on every request.</summary>
public sealed class UserDirectory(IJobStore store, TimeProvider time, TimeSpan cacheTime)
{
    private readonly ConcurrentDictionary<string, (UserRecord? User, DateTimeOffset Expires)> _cache = new(StringComparer.Ordinal);

    public async ValueTask<UserRecord?> GetAsync(string name, CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (_cache.TryGetValue(name, out var hit) && hit.Expires > now) return hit.User;
        var user = await store.UserGetAsync(name, cancellationToken);
        // Bound the cache: names that do not exist are cached too, so a flood of made-up names could grow it.
        if (_cache.Count > 10_000) _cache.Clear();
        _cache[name] = (user, now + cacheTime);
        return user;
    }

    public void Forget(string name) => _cache.TryRemove(name, out _);
}
