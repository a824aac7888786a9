using System.Security.Cryptography;

namespace Dts.Core;

/// <summary>
/// Job and worker ids: 48 bits of milliseconds then 80 random bits, as 32 hex characters.
/// Time first keeps inserts near the end of indexes; the random part makes ids unguessable.
/// </summary>
public static class JobIds
{
    public static string New(DateTimeOffset now)
    {
        Span<byte> bytes = stackalloc byte[16];
        var ms = now.ToUnixTimeMilliseconds();
        for (var i = 5; i >= 0; i--)
        {
            bytes[i] = (byte)(ms & 0xff);
            ms >>= 8;
        }
        RandomNumberGenerator.Fill(bytes[6..]);
        return Convert.ToHexStringLower(bytes);
    }

    public static bool IsWellFormed(string? id)
    {
        if (id is null || id.Length != 32) return false;
        foreach (var c in id)
        {
            if (!char.IsAsciiHexDigitLower(c) && !char.IsAsciiDigit(c)) return false;
        }
        return true;
    }

    /// <summary>An opaque lease (fencing) token: 128 random bits.</summary>
    public static string NewLeaseToken() => Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(16));
}
