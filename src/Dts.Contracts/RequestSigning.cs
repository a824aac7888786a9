using System.Security.Cryptography;
using System.Text;

namespace Dts.Contracts;

/// <summary>
/// The request signing scheme (docs/protocol.md, "Signing"). The client and the server build the
/// same canonical text from a request and compare HMAC-SHA3-256 signatures over it.
/// </summary>
public static class RequestSigning
{
    public const string Scheme = "DTS1-HMAC-SHA3-256";
    public const string UserHeader = "X-Dts-User";
    public const string TimestampHeader = "X-Dts-Timestamp";
    public const string NonceHeader = "X-Dts-Nonce";
    public const string SignatureHeader = "X-Dts-Signature";

    public const int MinNonceLength = 16;
    public const int MaxNonceLength = 64;

    /// <summary>The hex SHA3-256 of the empty body, used for requests without one.</summary>
    public static readonly string EmptyBodyHash = BodyHash(ReadOnlySpan<byte>.Empty);

    public static string BodyHash(ReadOnlySpan<byte> body) => Convert.ToHexStringLower(SHA3_256.HashData(body));

    /// <summary>
    /// Sorts the query's <c>name=value</c> pairs, kept exactly as sent on the wire (percent-encoded),
    /// by ordinal order of the whole pair, and joins them with '&amp;'. A leading '?' is ignored.
    /// </summary>
    public static string CanonicalQuery(string? rawQuery)
    {
        if (string.IsNullOrEmpty(rawQuery)) return "";
        var q = rawQuery[0] == '?' ? rawQuery[1..] : rawQuery;
        if (q.Length == 0) return "";
        var pairs = q.Split('&', StringSplitOptions.RemoveEmptyEntries);
        Array.Sort(pairs, StringComparer.Ordinal);
        return string.Join('&', pairs);
    }

    public static string CanonicalRequest(string method, string rawPath, string? rawQuery, string user, string timestamp, string nonce, string bodyHash) =>
        string.Join('\n', Scheme, method.ToUpperInvariant(), rawPath, CanonicalQuery(rawQuery), user, timestamp, nonce, bodyHash);

    public static string Sign(string secret, string canonicalRequest) =>
        Convert.ToHexStringLower(HMACSHA3_256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes(canonicalRequest)));

    /// <summary>Checks a hex signature against the expected one in constant time.</summary>
    public static bool Verify(string secret, string canonicalRequest, string signatureHex)
    {
        Span<byte> given = stackalloc byte[32];
        if (signatureHex.Length != 64 || Convert.FromHexString(signatureHex, given, out _, out var written) != System.Buffers.OperationStatus.Done || written != 32)
            return false;
        var expected = HMACSHA3_256.HashData(Encoding.UTF8.GetBytes(secret), Encoding.UTF8.GetBytes(canonicalRequest));
        return CryptographicOperations.FixedTimeEquals(expected, given);
    }

    public static bool IsValidNonce(string nonce)
    {
        if (nonce.Length is < MinNonceLength or > MaxNonceLength) return false;
        foreach (var c in nonce)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '-' or '_')) return false;
        }
        return true;
    }

    public static string NewNonce() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));

    /// <summary>A new 256-bit secret as 64 lowercase hex characters; the HMAC key is its UTF-8 text.</summary>
    public static string NewSecret() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(32));
}
