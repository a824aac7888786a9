using System.Collections.Concurrent;
using Dts.Core.Storage;

namespace Dts.Core;

/// <summary>
/// In-process wake-ups for long polls.
/// <para>
/// Job-ready waiters are woken one per ready job, oldest first: a waiter registers
/// (<see cref="WaitForJobs"/>) before it looks in the store and sleeps on its registration only if
/// the store had nothing. A signal between the look and the sleep wakes the registration, so no
/// wake-up is lost. A woken waiter owes its wake-up to the others until a look that began after
/// the wake took everything it could see: it calls <see cref="JobWaiter.Consume"/> then, and
/// otherwise (a full batch leased, so more may remain; or it left without looking) disposing the
/// registration passes the wake-up on to the next waiter of its functions.
/// </para>
/// <para>
/// Waiters for one job's end register for that job (<see cref="WaitForJobEnd"/>) and are woken by
/// its end, or by any end of the owner's jobs when the ending code does not say which. Readers of
/// an owner's result pages and the scheduler keep broadcast tickets: a ticket taken before the
/// look completes on the next signal, waking every holder.
/// </para>
/// </summary>
public sealed class JobSignals
{
    /// <summary>A count for <see cref="JobsReady(string, int)"/> that wakes every waiter of the function.</summary>
    public const int All = int.MaxValue;

    private readonly Lock _gate = new();
    private readonly Dictionary<string, LinkedList<JobWaiter>> _waiting = new(StringComparer.Ordinal);
    private long _nextSeq;

    private readonly ConcurrentDictionary<string, Signal> _results = new(StringComparer.Ordinal);
    private readonly Lock _endGate = new();
    private readonly Dictionary<string, Dictionary<string, JobEndWaiter.Entry>> _jobEnds = new(StringComparer.Ordinal);
    private readonly Signal _scheduled = new();

    /// <summary>
    /// When set (servers sharing a store), every signal raised here is also handed to it, to be
    /// published to the other servers. Signals that arrive from them go through <see cref="Receive"/>,
    /// which wakes local waiters only. Passed-on wake-ups stay local.
    /// </summary>
    public Action<ClusterSignal>? Forward { get; set; }

    /// <summary>
    /// Registers a waiter for jobs of any of <paramref name="functions"/>, behind those already
    /// waiting. Register before looking in the store; dispose when done (also on failure).
    /// </summary>
    public JobWaiter WaitForJobs(IReadOnlyList<string> functions)
    {
        var distinct = functions.Distinct(StringComparer.Ordinal).ToArray();
        var waiter = new JobWaiter(this, distinct);
        lock (_gate)
        {
            waiter.Seq = ++_nextSeq;
            for (var i = 0; i < distinct.Length; i++)
            {
                if (!_waiting.TryGetValue(distinct[i], out var list)) _waiting[distinct[i]] = list = new LinkedList<JobWaiter>();
                waiter.Nodes[i] = list.AddLast(waiter);
            }
        }
        return waiter;
    }

    /// <summary>
    /// <paramref name="count"/> jobs of <paramref name="function"/> became ready (one by default):
    /// wakes up to that many of its waiters, oldest first (<see cref="All"/> wakes all). Readiness
    /// with no waiter is dropped: a new lease request looks in the store before it waits.
    /// </summary>
    public void JobsReady(string function, int count = 1)
    {
        if (count <= 0) return;
        Wake(function, count);
        Forward?.Invoke(new ClusterSignal(ClusterSignalKind.JobsReady, function, count));
    }

    /// <summary>Jobs of these functions became ready, how many is not known: wakes every waiter of each.</summary>
    public void JobsReadyAll(IEnumerable<string> functions)
    {
        foreach (var f in functions) JobsReady(f, All);
    }

    /// <summary>
    /// Hands one wake-up to the oldest waiter of any of <paramref name="functions"/> (local only).
    /// Returns false when none was waiting.
    /// </summary>
    public bool PassOn(IReadOnlyList<string> functions)
    {
        JobWaiter? oldest;
        lock (_gate)
        {
            oldest = null;
            foreach (var f in functions)
            {
                if (_waiting.TryGetValue(f, out var list) && list.First is { } head && (oldest is null || head.Value.Seq < oldest.Seq))
                    oldest = head.Value;
            }
            if (oldest is null) return false;
            MarkWoken(oldest);
        }
        oldest.Complete();
        return true;
    }

    /// <summary>Waiters registered now (for tests and diagnostics).</summary>
    public int JobWaiterCount
    {
        get
        {
            lock (_gate)
            {
                var waiters = new HashSet<JobWaiter>();
                foreach (var list in _waiting.Values)
                {
                    foreach (var w in list) waiters.Add(w);
                }
                return waiters.Count;
            }
        }
    }

    /// <summary>Functions with a list of waiters held (empty lists are dropped; for tests and diagnostics).</summary>
    public int WaitedFunctionCount
    {
        get
        {
            lock (_gate) return _waiting.Count;
        }
    }

    public Task ResultsTicket(string owner) => Get(_results, owner).Ticket;

    /// <summary>
    /// Jobs of <paramref name="owner"/> ended: wakes the owner's results waiters and the waiters for
    /// the ends of <paramref name="ids"/> only, so a user with many foreground jobs waiting at once
    /// does not wake all of them at every end. Without <paramref name="ids"/> (which jobs is not
    /// known here) every waiter for one of the owner's jobs' end wakes. Other servers hear only the owner.
    /// </summary>
    public void ResultsReady(string owner, IReadOnlyCollection<string>? ids = null)
    {
        OwnerJobsEnded(owner, ids);
        Forward?.Invoke(new ClusterSignal(ClusterSignalKind.ResultsReady, owner));
    }

    private void OwnerJobsEnded(string owner, IReadOnlyCollection<string>? ids)
    {
        FireResults(owner);
        FireJobEnds(owner, ids);
    }

    /// <summary>
    /// Registers a waiter for the end of job <paramref name="id"/> of <paramref name="owner"/>.
    /// Register before looking at the job; dispose when done (also on failure): the registration's
    /// <see cref="JobEndWaiter.Ended"/> completes when the job, or any job of the owner when the ending
    /// code does not know which, ended after it was taken.
    /// </summary>
    public JobEndWaiter WaitForJobEnd(string owner, string id)
    {
        lock (_endGate)
        {
            if (!_jobEnds.TryGetValue(owner, out var jobs)) _jobEnds[owner] = jobs = new Dictionary<string, JobEndWaiter.Entry>(StringComparer.Ordinal);
            if (!jobs.TryGetValue(id, out var entry)) jobs[id] = entry = new JobEndWaiter.Entry();
            entry.Holders++;
            return new JobEndWaiter(this, owner, id, entry);
        }
    }

    /// <summary>Jobs with an end waiter registered now (for tests and diagnostics).</summary>
    public int JobEndWaiterCount
    {
        get
        {
            lock (_endGate)
            {
                var n = 0;
                foreach (var jobs in _jobEnds.Values) n += jobs.Count;
                return n;
            }
        }
    }

    private void FireJobEnds(string owner, IReadOnlyCollection<string>? ids)
    {
        List<JobEndWaiter.Entry>? ended = null;
        lock (_endGate)
        {
            if (!_jobEnds.TryGetValue(owner, out var jobs)) return;
            if (ids is null)
            {
                ended = [.. jobs.Values];
                _jobEnds.Remove(owner);
            }
            else
            {
                foreach (var id in ids)
                {
                    if (jobs.Remove(id, out var entry)) (ended ??= []).Add(entry);
                }
                if (jobs.Count == 0) _jobEnds.Remove(owner);
            }
        }
        if (ended is null) return;
        foreach (var entry in ended) entry.Ended.TrySetResult();
    }

    internal void Leave(JobEndWaiter waiter)
    {
        lock (_endGate)
        {
            if (--waiter.Slot.Holders > 0) return;
            // The last holder left before the job ended: forget the entry (unless a newer one replaced it).
            if (_jobEnds.TryGetValue(waiter.Owner, out var jobs) && jobs.TryGetValue(waiter.Id, out var current) && current == waiter.Slot)
            {
                jobs.Remove(waiter.Id);
                if (jobs.Count == 0) _jobEnds.Remove(waiter.Owner);
            }
        }
    }

    /// <summary>Completes when a job with a future run-at was stored, so the scheduler can re-plan its sleep.</summary>
    public Task ScheduledTicket => _scheduled.Ticket;

    public void Scheduled()
    {
        _scheduled.Fire();
        Forward?.Invoke(new ClusterSignal(ClusterSignalKind.Scheduled, ""));
    }

    /// <summary>
    /// A signal from another server: wakes local waiters, never forwarded again. A JobsReady wakes
    /// as many local waiters as it counts (at least one). <see cref="ClusterSignalKind.Resync"/>
    /// wakes every waiter, since signals may have been missed. Returns false for kinds this class
    /// does not handle (log lines).
    /// </summary>
    public bool Receive(ClusterSignal signal)
    {
        switch (signal.Kind)
        {
            case ClusterSignalKind.JobsReady: Wake(signal.Key, Math.Max(1, signal.Count)); return true;
            case ClusterSignalKind.ResultsReady: OwnerJobsEnded(signal.Key, null); return true;
            case ClusterSignalKind.Scheduled: _scheduled.Fire(); return true;
            case ClusterSignalKind.Resync:
                WakeEveryone();
                foreach (var s in _results.Values) s.Fire();
                foreach (var owner in JobEndOwners()) FireJobEnds(owner, null);
                _scheduled.Fire();
                return true;
            default: return false;
        }
    }

    private void Wake(string function, int count)
    {
        List<JobWaiter>? woken = null;
        lock (_gate)
        {
            if (!_waiting.TryGetValue(function, out var list)) return;
            while (count > 0 && list.First is { } head)
            {
                var w = head.Value;
                MarkWoken(w); // removes it from this list (and its others), which may drop the list
                (woken ??= []).Add(w);
                count--;
            }
        }
        if (woken is null) return;
        foreach (var w in woken) w.Complete();
    }

    private void WakeEveryone()
    {
        var woken = new List<JobWaiter>();
        lock (_gate)
        {
            foreach (var list in _waiting.Values.ToList())
            {
                while (list.First is { } head)
                {
                    MarkWoken(head.Value);
                    woken.Add(head.Value);
                }
            }
        }
        foreach (var w in woken) w.Complete();
    }

    /// <summary>Under the lock: a waiting registration becomes woken and leaves every list.</summary>
    private void MarkWoken(JobWaiter w)
    {
        w.State = JobWaiter.WokenState;
        Unlink(w);
    }

    private void Unlink(JobWaiter w)
    {
        for (var i = 0; i < w.Functions.Length; i++)
        {
            if (w.Nodes[i] is not { } node) continue;
            var list = node.List!;
            list.Remove(node);
            w.Nodes[i] = null;
            if (list.Count == 0) _waiting.Remove(w.Functions[i]);
        }
    }

    /// <summary>Ends a registration (see <see cref="JobWaiter.Dispose"/>); true when its wake-up must be passed on.</summary>
    internal bool Leave(JobWaiter w)
    {
        lock (_gate)
        {
            switch (w.State)
            {
                case JobWaiter.Waiting:
                    Unlink(w);
                    w.State = JobWaiter.Gone;
                    return false;
                case JobWaiter.WokenState:
                    w.State = JobWaiter.Gone;
                    return true;
                default:
                    w.State = JobWaiter.Gone;
                    return false;
            }
        }
    }

    internal void Consume(JobWaiter w)
    {
        lock (_gate)
        {
            if (w.State == JobWaiter.WokenState) w.State = JobWaiter.Consumed;
        }
    }

    private List<string> JobEndOwners()
    {
        lock (_endGate) return [.. _jobEnds.Keys];
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

/// <summary>
/// One long poll's registration for ready jobs (see <see cref="JobSignals.WaitForJobs"/>). It is
/// woken at most once; after that it is in no list and a new registration is needed to wait again.
/// </summary>
public sealed class JobWaiter : IDisposable
{
    internal const int Waiting = 0, WokenState = 1, Consumed = 2, Gone = 3;

    private readonly JobSignals _signals;
    private readonly TaskCompletionSource _woken = new(TaskCreationOptions.RunContinuationsAsynchronously);
    internal readonly string[] Functions;
    internal readonly LinkedListNode<JobWaiter>?[] Nodes;
    internal long Seq;
    internal int State; // guarded by the signals' lock

    internal JobWaiter(JobSignals signals, string[] functions)
    {
        _signals = signals;
        Functions = functions;
        Nodes = new LinkedListNode<JobWaiter>?[functions.Length];
    }

    /// <summary>Completes when this registration is woken.</summary>
    public Task Woken => _woken.Task;

    public bool IsWoken => _woken.Task.IsCompleted;

    /// <summary>
    /// Says the wake-up was used up: a look in the store that began after it took all it could
    /// see, so there is nothing to pass on. No effect when not woken.
    /// </summary>
    public void Consume() => _signals.Consume(this);

    /// <summary>
    /// Ends the registration: unregisters it when it was not woken, and passes the wake-up on to
    /// the next waiter of its functions when it was woken and not consumed.
    /// </summary>
    public void Dispose()
    {
        if (_signals.Leave(this)) _signals.PassOn(Functions);
    }

    internal void Complete() => _woken.TrySetResult();
}

/// <summary>One wait for a job's end (see <see cref="JobSignals.WaitForJobEnd"/>).</summary>
public sealed class JobEndWaiter : IDisposable
{
    private readonly JobSignals _signals;
    private int _disposed;

    internal JobEndWaiter(JobSignals signals, string owner, string id, Entry slot)
    {
        _signals = signals;
        Owner = owner;
        Id = id;
        Slot = slot;
    }

    internal string Owner { get; }
    internal string Id { get; }
    internal Entry Slot { get; }

    /// <summary>Completes when the job ended after this registration was taken (see <see cref="JobSignals.WaitForJobEnd"/>).</summary>
    public Task Ended => Slot.Ended.Task;

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 0) _signals.Leave(this);
    }

    /// <summary>The shared completion of every registration for one job, and how many hold it.</summary>
    internal sealed class Entry
    {
        public readonly TaskCompletionSource Ended = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public int Holders;
    }
}
