namespace Dts.Core;

/// <summary>
/// Exponential backoff with jitter between attempts: attempt n waits between half and all of
/// <c>BaseDelay * 2^(n-1)</c>, capped at <see cref="MaxDelay"/>. The jitter spreads retries of
/// jobs that failed together so they do not come back together.
/// </summary>
public sealed class RetryPolicy
{
    /// <summary>The first retry's delay before jitter: 1 second.</summary>
    public static readonly TimeSpan DefaultBaseDelay = TimeSpan.FromSeconds(1);
    /// <summary>No retry waits longer than 1 hour.</summary>
    public static readonly TimeSpan DefaultMaxDelay = TimeSpan.FromHours(1);

    private readonly Func<double> _unitRandom;

    public RetryPolicy(TimeSpan? baseDelay = null, TimeSpan? maxDelay = null, Func<double>? unitRandom = null)
    {
        BaseDelay = baseDelay ?? DefaultBaseDelay;
        MaxDelay = maxDelay ?? DefaultMaxDelay;
        _unitRandom = unitRandom ?? Random.Shared.NextDouble;
    }

    public static RetryPolicy Default { get; } = new();

    public TimeSpan BaseDelay { get; }
    public TimeSpan MaxDelay { get; }

    /// <summary>The wait after failed attempt number <paramref name="attempt"/> (1 for the first).</summary>
    public TimeSpan DelayAfter(int attempt)
    {
        var exponent = Math.Clamp(attempt - 1, 0, 40);
        var full = Math.Min(BaseDelay.TotalMilliseconds * Math.Pow(2, exponent), MaxDelay.TotalMilliseconds);
        var jittered = full / 2 + _unitRandom() * full / 2;
        return TimeSpan.FromMilliseconds(jittered);
    }
}
