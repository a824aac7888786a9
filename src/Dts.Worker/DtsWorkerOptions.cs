namespace Dts.Worker;

/// <summary>How a <see cref="DtsWorker"/> connects and how much it runs at once.</summary>
public sealed class DtsWorkerOptions
{
    public const int DefaultConcurrency = 4;

    /// <summary>How long a lease request waits on the server for work.</summary>
    public const double DefaultLeaseWaitSeconds = 30;

    /// <summary>The first wait after a failed request; it doubles up to <see cref="MaxBackoff"/>.</summary>
    public static readonly TimeSpan DefaultMinBackoff = TimeSpan.FromMilliseconds(200);

    public static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(10);

    private readonly string? _serverUrl;

    /// <summary>
    /// The server's base URL. With <see cref="ServerUrls"/> also set, this one is tried first; read
    /// back, it is the first URL of the list.
    /// </summary>
    public string ServerUrl
    {
        get => _serverUrl ?? (ServerUrls is { Count: > 0 } urls ? urls[0] : "");
        init => _serverUrl = value;
    }

    /// <summary>
    /// Several servers that share one database; the worker talks to one at a time and moves to the
    /// next when it cannot be reached (see <see cref="Dts.Client.DtsConnectionOptions.ServerUrls"/> and docs/worker.md).
    /// </summary>
    public IReadOnlyList<string>? ServerUrls { get; init; }

    /// <summary><see cref="ServerUrl"/> (when set) followed by <see cref="ServerUrls"/>; the connection checks and de-duplicates them.</summary>
    internal List<string> AllServerUrls()
    {
        var all = new List<string>();
        if (_serverUrl is not null) all.Add(_serverUrl);
        if (ServerUrls is not null) all.AddRange(ServerUrls);
        return all;
    }

    /// <summary>How long one request keeps trying unreachable servers before the worker's own retry loop takes over.</summary>
    public TimeSpan? FailoverBudget { get; init; } = Dts.Client.DtsConnectionOptions.DefaultFailoverBudget;
    public required string UserId { get; init; }
    public required string Secret { get; init; }

    /// <summary>A PEM file of CA certificates to trust for an https:// server; see <see cref="Dts.Client.DtsConnectionOptions.TrustedCaFile"/>.</summary>
    public string? TrustedCaFile { get; init; }

    /// <summary>A name for people; defaults to host/pid.</summary>
    public string Name { get; init; } = $"{Environment.MachineName}/{Environment.ProcessId}";

    /// <summary>Jobs run at once.</summary>
    public int Concurrency { get; init; } = DefaultConcurrency;

    public double LeaseWaitSeconds { get; init; } = DefaultLeaseWaitSeconds;

    public TimeSpan MinBackoff { get; init; } = DefaultMinBackoff;

    /// <summary>After shutdown is asked, how long in-flight jobs may still run; null waits for them all.</summary>
    public TimeSpan? DrainTimeout { get; init; }

    public TimeProvider TimeProvider { get; init; } = TimeProvider.System;

    /// <summary>Called with one line per problem (failed request, lost registration, a move to another server); never throws into the worker.</summary>
    public Action<string>? Log { get; init; }
}
