using System.Collections.Concurrent;
using Dts.Core.Storage;

namespace Dts.Core;

/// <summary>
/// In-process wake-ups for long polls: a waiter takes a ticket before it looks in the store, and
/// waits on it only if the store had nothing. A signal between the look and the wait completes the
/// ticket, so no wake-up is lost and nobody polls the database in a loop.
/// </summary>
public sealed class JobSignals
{
    private readonly ConcurrentDictionary<string, Signal> _ready = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, Signal> _results = new(StringComparer.Ordinal);
    private readonly Signal _scheduled = new();

    /// <summary>
    /// When set (servers sharing a store), every signal raised here is also handed to it, to be
    /// published to the other servers. Signals that arrive from them go through <see cref="Receive"/>,
    /// which wakes local waiters only.
    /// </summary>
    public Action<ClusterSignal>? Forward { get; set; }

    /// <summary>A ticket that completes when any of the functions gets a ready job.</summary>
    public Task JobsReadyTicket(IReadOnlyList<string> functions)
    {
        if (functions.Count == 1) return Get(_ready, functions[0]).Ticket;
        var tickets = new Task[functions.Count];
        for (var i = 0; i < functions.Count; i++) tickets[i] = Get(_ready, functions[i]).Ticket;
        return Task.WhenAny(tickets);
    }

    public void JobsReady(string function)
    {
        FireReady(function);
        Forward?.Invoke(new ClusterSignal(ClusterSignalKind.JobsReady, function));
    }

    public void JobsReady(IEnumerable<string> functions)
    {
        foreach (var f in functions) JobsReady(f);
    }

    public Task ResultsTicket(string owner) => Get(_results, owner).Ticket;

    public void ResultsReady(string owner)
    {
        FireResults(owner);
        Forward?.Invoke(new ClusterSignal(ClusterSignalKind.ResultsReady, owner));
    }

    /// <summary>Completes when a job with a future run-at was stored, so the scheduler can re-plan its sleep.</summary>
    public Task ScheduledTicket => _scheduled.Ticket;

    public void Scheduled()
    {
        _scheduled.Fire();
        Forward?.Invoke(new ClusterSignal(ClusterSignalKind.Scheduled, ""));
    }

    /// <summary>
    /// A signal from another server (or this one's echo): wakes local waiters, never forwarded again.
    /// <see cref="ClusterSignalKind.Resync"/> wakes every waiter, since signals may have been missed.
    /// Returns false for kinds this class does not handle (log lines).
    /// </summary>
    public bool Receive(ClusterSignal signal)
    {
        switch (signal.Kind)
        {
            case ClusterSignalKind.JobsReady: FireReady(signal.Key); return true;
            case ClusterSignalKind.ResultsReady: FireResults(signal.Key); return true;
            case ClusterSignalKind.Scheduled: _scheduled.Fire(); return true;
            case ClusterSignalKind.Resync:
                foreach (var s in _ready.Values) s.Fire();
                foreach (var s in _results.Values) s.Fire();
                _scheduled.Fire();
                return true;
            default: return false;
        }
    }

    private void FireReady(string function)
    {
        if (_ready.TryGetValue(function, out var s)) s.Fire();
    }

    private void FireResults(string owner)
    {
        if (_results.TryGetValue(owner, out var s)) s.Fire();
    }

    private static Signal Get(ConcurrentDictionary<string, Signal> map, string key) => map.GetOrAdd(key, static _ => new Signal());

    private sealed class Signal
    {
        private TaskCompletionSource _tcs = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task Ticket => Volatile.Read(ref _tcs).Task;

        public void Fire()
        {
            var old = Interlocked.Exchange(ref _tcs, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            old.TrySetResult();
        }
    }
}
