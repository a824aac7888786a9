using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;

namespace Dts.Server.Http;

/// <summary>
/// Remembers the nonces of signed requests for as long as their timestamps are acceptable, so that
/// a captured request cannot be replayed. Nonces are kept as 128-bit hashes in buckets of ten
/// seconds by timestamp; a whole bucket is dropped once it falls out of the window, which keeps
/// memory proportional to the request rate times the window.
/// </summary>
public sealed class NonceCache(TimeSpan window)
{
    private const long BucketSeconds = 10;
    private readonly Dictionary<long, HashSet<UInt128>> _buckets = [];
    private readonly Lock _lock = new();
    private readonly long _windowSeconds = (long)Math.Ceiling(window.TotalSeconds);

    /// <summary>Returns false if the same user already used the nonce within the window.</summary>
    public bool TryUse(string user, string nonce, long timestamp, long nowSeconds)
    {
        var key = BinaryPrimitives.ReadUInt128LittleEndian(SHA256.HashData(Encoding.UTF8.GetBytes(user + "\n" + nonce)));
        var bucket = timestamp / BucketSeconds;
        lock (_lock)
        {
            Evict(nowSeconds);
            // The same nonce may come with a different timestamp; look in every live bucket.
            foreach (var set in _buckets.Values)
            {
                if (set.Contains(key)) return false;
            }
            if (!_buckets.TryGetValue(bucket, out var target))
            {
                target = [];
                _buckets[bucket] = target;
            }
            target.Add(key);
            return true;
        }
    }

    public int Count
    {
        get
        {
            lock (_lock) return _buckets.Values.Sum(b => b.Count);
        }
    }

    private void Evict(long nowSeconds)
    {
        var oldest = (nowSeconds - _windowSeconds) / BucketSeconds - 1;
        List<long>? dead = null;
        foreach (var b in _buckets.Keys)
        {
            if (b < oldest) (dead ??= []).Add(b);
        }
        if (dead is null) return;
        foreach (var b in dead) _buckets.Remove(b);
    }
}
