using System.Threading.Channels;

namespace Dts.Server.Notifications;

/// <summary>
/// Where the server raises alerts. Raising never blocks or throws: alerts go into a bounded queue
/// that <see cref="AlertMailer"/> empties in the background; when the queue is full (the mailer is
/// far behind, as in a mass failure) the alert is only counted, and the count reaches the next mail.
/// </summary>
public sealed class AlertQueue
{
    /// <summary>Alerts waiting for the mailer; beyond this they are counted, not kept.</summary>
    public const int Capacity = 1000;

    private readonly Channel<Alert> _channel = Channel.CreateBounded<Alert>(new BoundedChannelOptions(Capacity)
    {
        FullMode = BoundedChannelFullMode.Wait,
        SingleReader = false,
        SingleWriter = false,
    });
    private long _overflow;

    internal ChannelReader<Alert> Reader => _channel.Reader;

    /// <summary>Alerts dropped because the queue was full, since the last call; resets the count.</summary>
    internal long TakeOverflow() => Interlocked.Exchange(ref _overflow, 0);

    public void Raise(Alert alert)
    {
        if (!_channel.Writer.TryWrite(alert)) Interlocked.Increment(ref _overflow);
    }

    public void WorkerLost(string workerId, string name, string owner, DateTimeOffset lastHeartbeat, DateTimeOffset now) => Raise(new Alert(
        AlertKind.WorkerLost,
        $"worker {name} lost",
        $"Worker '{name}' (id {workerId}, user {owner}) has sent no heartbeat since {lastHeartbeat:u}. " +
        "Its running jobs are queued again (or dead when no attempt is left).",
        now));

    public void JobDead(string jobId, string function, string owner, string? errorCode, string? errorMessage, DateTimeOffset now) => Raise(new Alert(
        AlertKind.JobDead,
        $"job {jobId} of {function} dead",
        $"Job {jobId} (function {function}, owner {owner}) is dead: {errorCode ?? "error"}{(errorMessage is null ? "" : ": " + errorMessage)}. " +
        $"Retry it with: dts admin job retry {jobId}",
        now));

    public void Backlog(string function, long queued, long threshold, DateTimeOffset now) => Raise(new Alert(
        AlertKind.Backlog,
        $"backlog of {function}: {queued} queued",
        $"Function {function} has {queued} queued jobs, more than the alert threshold of {threshold}. " +
        "Start more workers for it, or look for a stuck one.",
        now));
}
