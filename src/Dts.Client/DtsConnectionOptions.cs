namespace Dts.Client;

/// <summary>How a <see cref="DtsConnection"/> reaches one or several Dts servers.</summary>
public sealed class DtsConnectionOptions
{
    /// <summary>The connection pool holds twice this many connections, so long polls never starve other calls.</summary>
    public const int DefaultMaxConcurrency = 64;

    public static readonly TimeSpan DefaultConnectTimeout = TimeSpan.FromSeconds(30);

    /// <summary>The limit on one request; a long poll gets its wait added on top.</summary>
    public static readonly TimeSpan DefaultRequestTimeout = TimeSpan.FromSeconds(60);

    /// <summary>How long to wait after a 429 or 503 that carries no Retry-After.</summary>
    public static readonly TimeSpan DefaultSnoozeInterval = TimeSpan.FromSeconds(1);

    /// <summary>How long a server that failed to answer is passed over when the connection picks the next one.</summary>
    public static readonly TimeSpan DefaultFailoverCooldown = TimeSpan.FromSeconds(10);

    /// <summary>How long one request keeps trying servers that cannot be reached before it gives up.</summary>
    public static readonly TimeSpan DefaultFailoverBudget = TimeSpan.FromSeconds(60);

    /// <summary>The first wait after every server in the list failed once; it doubles up to <see cref="MaxFailoverBackoff"/>.</summary>
    public static readonly TimeSpan DefaultFailoverBackoff = TimeSpan.FromMilliseconds(200);

    public static readonly TimeSpan MaxFailoverBackoff = TimeSpan.FromSeconds(5);

    private readonly string? _serverUrl;

    /// <summary>
    /// The server's base URL, for example <c>http://127.0.0.1:7070</c>. With <see cref="ServerUrls"/>
    /// also set, this one is tried first; read back, it is the first URL of the list.
    /// </summary>
    public string ServerUrl
    {
        get => _serverUrl ?? (ServerUrls is { Count: > 0 } urls ? urls[0] : "");
        init => _serverUrl = value;
    }

    /// <summary>
    /// Several servers that share one database, in order of preference. Requests go to one of them
    /// at a time; when it cannot be reached the connection moves to the next (see docs/client.md).
    /// </summary>
    public IReadOnlyList<string>? ServerUrls { get; init; }

    public required string UserId { get; init; }
    public required string Secret { get; init; }
    public int MaxConcurrency { get; init; } = DefaultMaxConcurrency;
    public TimeSpan SnoozeInterval { get; init; } = DefaultSnoozeInterval;
    public TimeSpan ConnectTimeout { get; init; } = DefaultConnectTimeout;
    public TimeSpan RequestTimeout { get; init; } = DefaultRequestTimeout;

    /// <summary>How many times a 429 or 503 answer is waited out before it is thrown; null retries until cancelled.</summary>
    public int? MaxThrottleRetries { get; init; }

    /// <summary>How long a server that could not be reached is passed over when choosing the next one.</summary>
    public TimeSpan FailoverCooldown { get; init; } = DefaultFailoverCooldown;

    /// <summary>
    /// How long one request may keep retrying after connection failures (across all servers) before
    /// the last failure is thrown; zero sends each request once, null retries until cancelled.
    /// </summary>
    public TimeSpan? FailoverBudget { get; init; } = DefaultFailoverBudget;

    /// <summary>The wait after a whole round of the server list failed; it doubles up to <see cref="MaxFailoverBackoff"/>.</summary>
    public TimeSpan FailoverBackoff { get; init; } = DefaultFailoverBackoff;

    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>
    /// A PEM file of CA certificates to trust for an https:// server, in place of the system's roots
    /// (for a private CA or a self-signed server). The server's certificate is still fully checked:
    /// chain, validity and host name. Null trusts the system's roots only.
    /// </summary>
    public string? TrustedCaFile { get; init; }

    /// <summary>Called with one line when the connection moves to another server; never throws into the caller.</summary>
    public Action<string>? Log { get; init; }

    /// <summary>
    /// The servers to use, in order: <see cref="ServerUrl"/> (when set) first, then the rest of
    /// <see cref="ServerUrls"/>, without repeats. Throws <see cref="ArgumentException"/> on an empty
    /// list or a URL that is not an absolute http(s) URL.
    /// </summary>
    public IReadOnlyList<Uri> ResolveServers()
    {
        var texts = new List<string>();
        if (_serverUrl is not null) texts.Add(_serverUrl);
        if (ServerUrls is not null) texts.AddRange(ServerUrls);
        if (texts.Count == 0)
            throw new ArgumentException("No server URL: set ServerUrl or give at least one URL in ServerUrls.", nameof(ServerUrls));
        var servers = new List<Uri>(texts.Count);
        foreach (var text in texts)
        {
            var uri = ParseServerUrl(text);
            if (!servers.Contains(uri)) servers.Add(uri);
        }
        return servers;
    }

    /// <summary>Parses one server base URL (ending in '/', so paths resolve under it); throws <see cref="ArgumentException"/>.</summary>
    public static Uri ParseServerUrl(string? text)
    {
        if (string.IsNullOrWhiteSpace(text))
            throw new ArgumentException("A server URL is empty.", nameof(ServerUrls));
        var trimmed = text.Trim();
        if (!Uri.TryCreate(trimmed.EndsWith('/') ? trimmed : trimmed + "/", UriKind.Absolute, out var uri)
            || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps) || uri.Host.Length == 0)
            throw new ArgumentException($"The server URL '{text}' is not an absolute http or https URL.", nameof(ServerUrls));
        return uri;
    }

    internal IReadOnlyList<Uri> Validate()
    {
        var servers = ResolveServers();
        ArgumentException.ThrowIfNullOrEmpty(UserId);
        ArgumentException.ThrowIfNullOrEmpty(Secret);
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxConcurrency, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(SnoozeInterval, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(RequestTimeout, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThanOrEqual(ConnectTimeout, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(FailoverCooldown, TimeSpan.Zero);
        ArgumentOutOfRangeException.ThrowIfLessThan(FailoverBackoff, TimeSpan.Zero);
        if (FailoverBudget is { } budget) ArgumentOutOfRangeException.ThrowIfLessThan(budget, TimeSpan.Zero, nameof(FailoverBudget));
        if (TrustedCaFile is not null && !File.Exists(TrustedCaFile))
            throw new ArgumentException($"The CA file '{TrustedCaFile}' does not exist.", nameof(TrustedCaFile));
        return servers;
    }
}
