using Dts.Core;
using Dts.Core.Storage;
using Dts.Server.Http;
using Microsoft.Extensions.Logging;

namespace Dts.Server;

/// <summary>What the endpoints and daemons of one server share.</summary>
public sealed class ServerContext(
    DtsServerOptions options,
    IJobStore store,
    JobSignals signals,
    TimeProvider time,
    RequestAuthenticator authenticator,
    UserDirectory users,
    RetryPolicy retryPolicy,
    ILoggerFactory loggerFactory)
{
    public DtsServerOptions Options { get; } = options;
    public IJobStore Store { get; } = store;
    public JobSignals Signals { get; } = signals;
    public TimeProvider Time { get; } = time;
    public RequestAuthenticator Authenticator { get; } = authenticator;
    public UserDirectory Users { get; } = users;
    public RetryPolicy RetryPolicy { get; } = retryPolicy;
    public ILoggerFactory LoggerFactory { get; } = loggerFactory;
    public Limits.SubmitLimiter Limiter { get; } = new(store, time);
    public Tracer.LogSignals LogSignals { get; } = new();

    /// <summary>Where alerts are raised; never blocks, the mailer sends them in the background.</summary>
    public Notifications.AlertQueue Alerts { get; } = new();
    public FunctionDefaultsCache FunctionDefaults { get; } = new(store, time, options.UserCacheTime);

    /// <summary>The store as shared by several servers (PostgreSQL), or null when this server is its only user.</summary>
    public ISharedStore? Shared { get; } = store as ISharedStore;

    private volatile bool _isLeader = store is not ISharedStore;
    private TaskCompletionSource _leadershipChanged = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>
    /// True while this server runs the leader-only daemons: always with a store of its own, and with
    /// a shared store while it holds the leader lock (see <see cref="Cluster.LeaderElection"/>).
    /// </summary>
    public bool IsLeader => _isLeader;

    /// <summary>Completes when <see cref="IsLeader"/> next changes.</summary>
    public Task LeadershipChangedTicket => Volatile.Read(ref _leadershipChanged).Task;

    /// <summary>Sets <see cref="IsLeader"/>; returns true when it changed.</summary>
    internal bool SetLeader(bool leader)
    {
        if (_isLeader == leader) return false;
        _isLeader = leader;
        Interlocked.Exchange(ref _leadershipChanged, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        return true;
    }

    /// <summary>
    /// The longest a waiter may sleep on signals alone: unbounded with a store of its own (every
    /// write goes through this process), <see cref="DtsServerOptions.ClusterPollInterval"/> with a
    /// shared store, where a lost notification must not strand a waiter.
    /// </summary>
    public TimeSpan CapWait(TimeSpan wait) =>
        Shared is not null && wait > Options.ClusterPollInterval ? Options.ClusterPollInterval : wait;

    /// <summary>Cancelled when the server begins to stop, so long polls answer at once instead of holding shutdown.</summary>
    public CancellationToken Stopping { get; set; }

    /// <summary>
    /// Less wait than this left counts as none. Timers fire on a coarse monotonic clock, up to a few
    /// milliseconds before a deadline read from the wall clock, and a timeout under a millisecond
    /// does not sleep at all; without this a long poll would end in a burst of looks in the store,
    /// each finding a sliver of time left that no timer can sleep.
    /// </summary>
    public static readonly TimeSpan WaitGranularity = TimeSpan.FromMilliseconds(15);

    /// <summary>
    /// The long-poll loop: takes a ticket, fetches, and answers when the fetch found something, the
    /// wait is over or the server is stopping; otherwise sleeps on the ticket and fetches again.
    /// </summary>
    public async Task<IReadOnlyList<T>> LongPollAsync<T>(Func<Task> ticket, Func<DateTimeOffset, Task<IReadOnlyList<T>>> fetch, TimeSpan wait, CancellationToken requestAborted)
    {
        var deadline = Time.GetUtcNow() + wait;
        while (true)
        {
            var woken = ticket();
            var now = Time.GetUtcNow();
            var items = await fetch(now);
            var remaining = deadline - now;
            if (items.Count > 0 || remaining < WaitGranularity || Stopping.IsCancellationRequested) return items;
            await WaitAsync(woken, remaining, requestAborted);
        }
    }

    private static readonly Task Never = new TaskCompletionSource().Task;

    /// <summary>Lease looks in the store made by lease requests (each a write on the store), since start.</summary>
    public long LeaseLooks => Interlocked.Read(ref _leaseLooks);
    private long _leaseLooks;

    /// <summary>Counts one lease look (see <see cref="LeaseLooks"/>).</summary>
    internal void CountLeaseLook() => Interlocked.Increment(ref _leaseLooks);

    /// <summary>
    /// The long poll of a lease request, woken one waiter per ready job (see <see cref="JobSignals"/>).
    /// It registers before each look, so a signal during the look is not lost, and settles each
    /// wake-up it received: a look begun after the wake that leased fewer than <paramref name="max"/>
    /// used it up; a full batch, or leaving without such a look (abort, failure, a wake during the
    /// last look), passes it on to the next waiter. A worker the store will lease nothing to (see
    /// <paramref name="mayLease"/>) passes its wake-up on and stops taking new ones, sleeping to its
    /// deadline instead.
    /// </summary>
    /// <param name="functions">The functions leased.</param>
    /// <param name="max">The most jobs one look leases.</param>
    /// <param name="eligible">False when the worker is known at the start to be leased nothing (draining).</param>
    /// <param name="fetch">One look: leases up to <paramref name="max"/> jobs at the given time.</param>
    /// <param name="mayLease">
    /// Asked only after a woken look leased nothing: whether the store would lease to this worker at
    /// all at that time. When not, the empty look says nothing about the queue.
    /// </param>
    public async Task<IReadOnlyList<T>> LeasePollAsync<T>(
        IReadOnlyList<string> functions, int max, bool eligible,
        Func<DateTimeOffset, Task<IReadOnlyList<T>>> fetch, Func<DateTimeOffset, Task<bool>> mayLease,
        TimeSpan wait, CancellationToken requestAborted)
    {
        var deadline = Time.GetUtcNow() + wait;
        // A request that will not wait needs no registration; one that may, registers before its first look.
        var waiter = wait > TimeSpan.Zero && eligible ? Signals.WaitForJobs(functions) : null;
        JobWaiter? held = null;
        try
        {
            while (true)
            {
                if (waiter is { IsWoken: true })
                {
                    // The look below begins after this wake-up, so it sees the jobs behind it.
                    held = waiter;
                    waiter = Signals.WaitForJobs(functions);
                }
                var now = Time.GetUtcNow();
                var items = await fetch(now);
                if (held is not null)
                {
                    if (items.Count == 0 && !await mayLease(now))
                    {
                        // Leased nothing because of this worker, not the queue: leave the wake-ups to
                        // others (the own registration goes first, so the pass-on cannot land on it).
                        waiter?.Dispose();
                        waiter = null;
                    }
                    else if (items.Count < max)
                    {
                        held.Consume();
                    }
                    var settled = held;
                    held = null;
                    settled.Dispose();
                }
                var remaining = deadline - now;
                // Returning disposes the registration, which passes on a wake-up that came during this look.
                if (items.Count > 0 || remaining < WaitGranularity || Stopping.IsCancellationRequested) return items;
                await WaitAsync(waiter?.Woken ?? Never, remaining, requestAborted);
            }
        }
        finally
        {
            held?.Dispose();
            waiter?.Dispose();
        }
    }

    /// <summary>Waits until <paramref name="ticket"/> completes, the time is up, or the request or server ends.</summary>
    public async Task WaitAsync(Task ticket, TimeSpan timeout, CancellationToken requestAborted)
    {
        timeout = CapWait(timeout);
        if (timeout <= TimeSpan.Zero) return;
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(requestAborted, Stopping);
        var delay = Task.Delay(timeout, Time, linked.Token);
        await Task.WhenAny(ticket, delay);
        await linked.CancelAsync();
        requestAborted.ThrowIfCancellationRequested();
    }
}
