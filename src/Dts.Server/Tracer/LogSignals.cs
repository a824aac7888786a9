namespace Dts.Server.Tracer;

/// <summary>
/// Wake-ups for log followers. Jobs share a fixed set of signals by a hash of their id, so memory
/// stays bounded however many jobs log; a follower woken by another job's lines just reads nothing
/// new and waits again.
/// </summary>
public sealed class LogSignals
{
    private const int Stripes = 256;
    private readonly TaskCompletionSource[] _stripes = new TaskCompletionSource[Stripes];

    public LogSignals()
    {
        for (var i = 0; i < Stripes; i++) _stripes[i] = New();
    }

    /// <summary>Completes when a line of <paramref name="jobId"/> (or of a job sharing its stripe) is stored after this call.</summary>
    public Task Ticket(string jobId) => Volatile.Read(ref _stripes[Stripe(jobId)]).Task;

    /// <summary>When set (servers sharing a store), also handed every job id whose lines were stored, to publish.</summary>
    public Action<string>? Forward { get; set; }

    public void LinesStored(string jobId)
    {
        Wake(jobId);
        Forward?.Invoke(jobId);
    }

    /// <summary>Lines stored through another server: wakes local followers only.</summary>
    public void Wake(string jobId)
    {
        var old = Interlocked.Exchange(ref _stripes[Stripe(jobId)], New());
        old.TrySetResult();
    }

    /// <summary>Wakes every follower (signals from other servers may have been missed).</summary>
    public void WakeAll()
    {
        for (var i = 0; i < Stripes; i++) Interlocked.Exchange(ref _stripes[i], New()).TrySetResult();
    }

    private static int Stripe(string jobId) => (int)((uint)StringComparer.Ordinal.GetHashCode(jobId) % Stripes);

    private static TaskCompletionSource New() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
