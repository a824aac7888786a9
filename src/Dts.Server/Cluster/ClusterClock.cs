namespace Dts.Server.Cluster;

/// <summary>
/// This machine's clock moved by the measured offset of the shared database's clock, so that the
/// lease expiries, deadlines and run-at times that several servers write are all on the
/// database's clock, however far the servers' own clocks drift apart.
/// </summary>
public sealed class ClusterClock(TimeProvider inner) : TimeProvider
{
    private long _offsetTicks;

    /// <summary>Database clock minus local clock.</summary>
    public TimeSpan Offset
    {
        get => TimeSpan.FromTicks(Interlocked.Read(ref _offsetTicks));
        set => Interlocked.Exchange(ref _offsetTicks, value.Ticks);
    }

    public override DateTimeOffset GetUtcNow() => inner.GetUtcNow() + Offset;
    public override TimeZoneInfo LocalTimeZone => inner.LocalTimeZone;
    public override long TimestampFrequency => inner.TimestampFrequency;
    public override long GetTimestamp() => inner.GetTimestamp();
    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
        inner.CreateTimer(callback, state, dueTime, period);
}
