using Dts.Contracts;

namespace Dts.Core.Tests;

public sealed class SigningTests
{
    [Fact]
    public void CanonicalQuery_SortsPairsAsSent()
    {
        Assert.Equal("a=1&b=2&b=3", RequestSigning.CanonicalQuery("?b=3&a=1&b=2"));
        Assert.Equal("", RequestSigning.CanonicalQuery("?"));
        Assert.Equal("", RequestSigning.CanonicalQuery(null));
        Assert.Equal("x=%20y", RequestSigning.CanonicalQuery("x=%20y"));
    }

    [Fact]
    public void Sign_MatchesAKnownVector()
    {
        // Computed independently with: printf '%s' "$canonical" | openssl dgst -sha3-256 -mac HMAC -macopt key:secret
        var canonical = RequestSigning.CanonicalRequest("post", "/v1/jobs", "", "alice", "1700000000", "0123456789abcdef", RequestSigning.EmptyBodyHash);
        Assert.Equal("DTS1-HMAC-SHA3-256\nPOST\n/v1/jobs\n\nalice\n1700000000\n0123456789abcdef\na7ffc6f8bf1ed76651c14756a061d662f580ff4de43b49fa82d80a4b80f8434a", canonical);
        Assert.Equal(KnownSignature, RequestSigning.Sign("secret", canonical));
    }

    private const string KnownSignature = "9e18684606919669f3f07d3f0adea2276d1231ef8899dc75b1077ead95e4c4eb";

    [Fact]
    public void Verify_RefusesAnyChange()
    {
        var canonical = RequestSigning.CanonicalRequest("GET", "/v1/jobs/x", "?a=1", "u", "1", "n", RequestSigning.EmptyBodyHash);
        var sig = RequestSigning.Sign("s3cret", canonical);
        Assert.True(RequestSigning.Verify("s3cret", canonical, sig));
        Assert.False(RequestSigning.Verify("s3cret!", canonical, sig));
        Assert.False(RequestSigning.Verify("s3cret", canonical + " ", sig));
        Assert.False(RequestSigning.Verify("s3cret", canonical, sig[..^1] + (sig[^1] == '0' ? '1' : '0')));
        Assert.False(RequestSigning.Verify("s3cret", canonical, "zz"));
        Assert.False(RequestSigning.Verify("s3cret", canonical, new string('g', 64)));
    }

    [Theory]
    [InlineData("0123456789abcdef", true)]
    [InlineData("short", false)]
    [InlineData("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0", false)]
    [InlineData("0123456789abcde/", false)]
    public void Nonce_Format(string nonce, bool ok) => Assert.Equal(ok, RequestSigning.IsValidNonce(nonce));
}
