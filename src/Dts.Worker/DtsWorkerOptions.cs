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

    public required string ServerUrl { get; init; }
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

    /// <summary>Called with one line per problem (failed request, lost registration); never throws into the worker.</summary>
    public Action<string>? Log { get; init; }
}
