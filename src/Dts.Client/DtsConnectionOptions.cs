namespace Dts.Client;

/// <summary>How a <see cref="DtsConnection"/> reaches one Dts server.</summary>
public sealed class DtsConnectionOptions
{
    /// <summary>The connection pool holds twice this many connections, so long polls never starve other calls.</summary>
    public const int DefaultMaxConcurrency = 64;

    public static readonly TimeSpan DefaultConnectTimeout = TimeSpan.FromSeconds(30);

    /// <summary>The limit on one request; a long poll gets its wait added on top.</summary>
    public static readonly TimeSpan DefaultRequestTimeout = TimeSpan.FromSeconds(60);

    /// <summary>How long to wait after a 429 or 503 that carries no Retry-After.</summary>
    public static readonly TimeSpan DefaultSnoozeInterval = TimeSpan.FromSeconds(1);

    public required string ServerUrl { get; init; }
    public required string UserId { get; init; }
    public required string Secret { get; init; }
    public int MaxConcurrency { get; init; } = DefaultMaxConcurrency;
    public TimeSpan SnoozeInterval { get; init; } = DefaultSnoozeInterval;
    public TimeSpan ConnectTimeout { get; init; } = DefaultConnectTimeout;
    public TimeSpan RequestTimeout { get; init; } = DefaultRequestTimeout;

    /// <summary>How many times a 429 or 503 answer is waited out before it is thrown; null retries until cancelled.</summary>
    public int? MaxThrottleRetries { get; init; }

    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>
    /// A PEM file of CA certificates to trust for an https:// server, in place of the system's roots
    /// (for a private CA or a self-signed server). The server's certificate is still fully checked:
    /// chain, validity and host name. Null trusts the system's roots only.
    /// </summary>
    public string? TrustedCaFile { get; init; }

    internal void Validate()
    {
        if (!Uri.TryCreate(ServerUrl, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps))
            throw new ArgumentException($"The server URL '{ServerUrl}' is not an absolute http or https URL.", nameof(ServerUrl));
        ArgumentException.ThrowIfNullOrEmpty(UserId);
        ArgumentException.ThrowIfNullOrEmpty(Secret);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxConcurrency, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(SnoozeInterval, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(RequestTimeout, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ConnectTimeout, TimeSpan.Zero);
        if (TrustedCaFile is not null && !File.Exists(TrustedCaFile))
            throw new ArgumentException($"The CA file '{TrustedCaFile}' does not exist.", nameof(TrustedCaFile));
    }
}
