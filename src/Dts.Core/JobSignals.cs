using System.Collections.Concurrent;

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
        if (_ready.TryGetValue(function, out var s)) s.Fire();
    }

    public void JobsReady(IEnumerable<string> functions)
    {
        foreach (var f in functions) JobsReady(f);
    }

    public Task ResultsTicket(string owner) => Get(_results, owner).Ticket;

    public void ResultsReady(string owner)
    {
        if (_results.TryGetValue(owner, out var s)) s.Fire();
    }

    /// <summary>Completes when a job with a future run-at was stored, so the scheduler can re-plan its sleep.</summary>
    public Task ScheduledTicket => _scheduled.Ticket;

    public void Scheduled() => _scheduled.Fire();

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
