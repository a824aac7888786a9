using Dts.Server.Http;

namespace Dts.Server.Tests;

public sealed class NonceCacheTests
{
    [Fact]
    public void Nonce_IsRefusedWithinTheWindow_AndForgottenAfterIt()
    {
        var cache = new NonceCache(TimeSpan.FromSeconds(60));
        Assert.True(cache.TryUse("u", "n1", 1000, 1000));
        Assert.False(cache.TryUse("u", "n1", 1000, 1001));
        Assert.False(cache.TryUse("u", "n1", 1030, 1030));
        Assert.True(cache.TryUse("v", "n1", 1000, 1001));
        Assert.True(cache.TryUse("u", "n2", 1000, 1001));

        // Far past the window the old buckets are dropped, and memory with them.
        Assert.True(cache.TryUse("u", "n3", 2000, 2000));
        Assert.Equal(1, cache.Count);
    }
}
