namespace Dts.Core.Storage;

/// <summary>What a wake-up that crosses servers is about.</summary>
public enum ClusterSignalKind
{
    /// <summary>Jobs of the function <see cref="ClusterSignal.Key"/> became ready to lease.</summary>
    JobsReady,
    /// <summary>Results of the owner <see cref="ClusterSignal.Key"/> became readable.</summary>
    ResultsReady,
    /// <summary>A job with a future run-at (or a schedule) was stored; the scheduler re-plans its sleep. Key is empty.</summary>
    Scheduled,
    /// <summary>Log lines of the job <see cref="ClusterSignal.Key"/> were stored.</summary>
    LogsAppended,
    /// <summary>
    /// Received only, never published: the listening connection was (re)established and signals may
    /// have been missed, so every waiter should look in the store again. Key is empty.
    /// </summary>
    Resync,
}

/// <summary>
/// One wake-up. <see cref="Key"/> is a function, an owner or a job id, by <see cref="Kind"/>.
/// <see cref="Count"/> is how many jobs became ready (JobsReady only; <c>int.MaxValue</c> for
/// "not known, wake all"). <see cref="Origin"/> names the server that published it, so that it can
/// ignore its own signal when LISTEN brings it back; null when not known.
/// </summary>
public readonly record struct ClusterSignal(ClusterSignalKind Kind, string Key, int Count = 1, string? Origin = null);

/// <summary>
/// A store that several servers share (PostgreSQL). Besides <see cref="IJobStore"/> it carries
/// wake-ups between the servers and elects the one server that runs the leader-only daemons.
/// A store that is not shared (SQLite) does not implement it: its one server is always the leader
/// and its in-process signals reach every waiter.
/// </summary>
public interface ISharedStore
{
    /// <summary>
    /// Sends signals to every server listening on this store, this one included. Best effort: a
    /// signal may be lost (the servers' fallback poll covers that), but it is never delivered before
    /// the write it announces is committed, because callers publish only after the store call returned.
    /// </summary>
    Task PublishAsync(IReadOnlyList<ClusterSignal> signals, CancellationToken cancellationToken);

    /// <summary>
    /// Listens until <paramref name="cancellationToken"/> is cancelled, calling <paramref name="onSignal"/>
    /// for each signal received (from any server, this one included). Each time the listening
    /// connection is established or re-established it first calls <paramref name="onSignal"/> with a
    /// <see cref="ClusterSignalKind.Resync"/> signal. Connection failures are retried with a capped
    /// backoff; the method returns only when cancelled.
    /// </summary>
    Task ListenAsync(Action<ClusterSignal> onSignal, CancellationToken cancellationToken);

    /// <summary>
    /// Records a used nonce and says whether it was new, in one atomic step, so that a request
    /// replayed to another server at the same moment is refused by one of them. False when the
    /// user's nonce is recorded already and has not expired (at <paramref name="now"/>); an
    /// expired record is replaced.
    /// </summary>
    Task<bool> NonceClaimAsync(NonceRecordParams p, DateTimeOffset now, CancellationToken cancellationToken);

    /// <summary>
    /// A leadership candidate for this process. Several servers each create one; at most one of
    /// them is leader at any moment.
    /// </summary>
    ILeadership CreateLeadership();

    /// <summary>
    /// The difference between the database's clock and this machine's (database minus local), as
    /// measured now. Servers add it to their clock so that leases and deadlines written by
    /// different servers are measured on one clock.
    /// </summary>
    Task<TimeSpan> MeasureClockOffsetAsync(CancellationToken cancellationToken);
}

/// <summary>
/// A candidate for leadership, held as a session-level lock on a dedicated database connection:
/// when the leader's process dies, the database ends its session and frees the lock, and the next
/// <see cref="TryAcquireAsync"/> of another candidate takes it.
/// </summary>
public interface ILeadership : IAsyncDisposable
{
    /// <summary>
    /// Takes the lock if it is free, or confirms this candidate still holds it (its connection is
    /// alive). Returns true when this candidate is the leader now. A failure of the connection is
    /// not thrown: it returns false (leadership lost) and the next call reconnects.
    /// </summary>
    Task<bool> TryAcquireAsync(CancellationToken cancellationToken);

    /// <summary>The answer of the last <see cref="TryAcquireAsync"/>; false before the first.</summary>
    bool IsLeader { get; }
}
