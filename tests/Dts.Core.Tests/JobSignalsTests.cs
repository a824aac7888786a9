using Dts.Core.Storage;

namespace Dts.Core.Tests;

public sealed class JobSignalsTests
{
    private static JobWaiter[] Waiters(JobSignals s, int n, params string[] functions) =>
        Enumerable.Range(0, n).Select(_ => s.WaitForJobs(functions)).ToArray();

    private static int[] WokenIndexes(JobWaiter[] waiters) =>
        [.. waiters.Select((w, i) => (w, i)).Where(x => x.w.IsWoken).Select(x => x.i)];

    [Fact]
    public void OneReadyJob_WakesExactlyTheOldestOfFourWaiters()
    {
        var s = new JobSignals();
        var w = Waiters(s, 4, "f");
        s.JobsReady("f", 1);
        Assert.Equal([0], WokenIndexes(w));
        Assert.Equal(3, s.JobWaiterCount);
    }

    [Fact]
    public void OneArgumentForm_MeansOneJob()
    {
        var s = new JobSignals();
        var w = Waiters(s, 3, "f");
        s.JobsReady("f");
        Assert.Equal([0], WokenIndexes(w));
    }

    [Fact]
    public void ThreeReadyJobs_WakeThreeOldest()
    {
        var s = new JobSignals();
        var w = Waiters(s, 5, "f");
        s.JobsReady("f", 3);
        Assert.Equal([0, 1, 2], WokenIndexes(w));
        Assert.Equal(2, s.JobWaiterCount);
    }

    [Fact]
    public void ReadyJobsOfAnotherFunction_WakeNobody_AndReadinessWithoutWaitersIsDropped()
    {
        var s = new JobSignals();
        s.JobsReady("f", 5); // nobody waits: dropped, not saved for later waiters
        var w = Waiters(s, 2, "f");
        s.JobsReady("g", 3);
        Assert.Empty(WokenIndexes(w));
    }

    [Fact]
    public void WakeAll_WakesEveryWaiterOfTheFunctionOnly()
    {
        var s = new JobSignals();
        var f = Waiters(s, 4, "f");
        var g = Waiters(s, 2, "g");
        s.JobsReady("f", JobSignals.All);
        Assert.Equal([0, 1, 2, 3], WokenIndexes(f));
        Assert.Empty(WokenIndexes(g));
        s.JobsReadyAll(["g", "h"]);
        Assert.Equal([0, 1], WokenIndexes(g));
        Assert.Equal(0, s.JobWaiterCount);
        Assert.Equal(0, s.WaitedFunctionCount);
    }

    [Fact]
    public void WokenWaiterThatAbandons_PassesItsWakeUpToTheNext()
    {
        var s = new JobSignals();
        var w = Waiters(s, 3, "f");
        s.JobsReady("f", 1);
        Assert.Equal([0], WokenIndexes(w));
        w[0].Dispose(); // left without looking (request aborted)
        Assert.Equal([0, 1], WokenIndexes(w));
        Assert.False(w[2].IsWoken);
    }

    [Fact]
    public void WokenWaiterThatConsumes_DoesNotPassOn()
    {
        var s = new JobSignals();
        var w = Waiters(s, 3, "f");
        s.JobsReady("f", 1);
        w[0].Consume(); // looked and took what there was (or found it taken)
        w[0].Dispose();
        Assert.Equal([0], WokenIndexes(w));
        Assert.Equal(2, s.JobWaiterCount);
    }

    [Fact]
    public void UnwokenWaiterThatLeaves_PassesNothing_AndConsumeBeforeAWakeDoesNotSwallowIt()
    {
        var s = new JobSignals();
        var w = Waiters(s, 3, "f");
        w[0].Consume(); // no effect: not woken
        w[0].Dispose(); // a timeout: unregisters
        Assert.Empty(WokenIndexes(w));
        s.JobsReady("f", 1);
        Assert.Equal([1], WokenIndexes(w));
    }

    [Fact]
    public void AfterAFullLease_PassOnWakesTheNextWaiter_OfAnyOfItsFunctions()
    {
        var s = new JobSignals();
        var a = s.WaitForJobs(["f"]);
        var b = s.WaitForJobs(["g"]);
        var c = s.WaitForJobs(["f", "g"]);
        s.JobsReady("f", 1);
        Assert.True(a.IsWoken);
        // a leased a full batch: more may remain, so its wake-up goes on (not consumed).
        a.Dispose();
        Assert.True(c.IsWoken); // the next waiter of f (b waits for g only)
        Assert.False(b.IsWoken);
        // c also leased a full batch: the next waiter of f or g is b.
        c.Dispose();
        Assert.True(b.IsWoken);
        Assert.False(s.PassOn(["f", "g"]));
    }

    [Fact]
    public void PassOn_PicksTheOldestWaiterAcrossFunctions()
    {
        var s = new JobSignals();
        var g = s.WaitForJobs(["g"]);
        var f = s.WaitForJobs(["f"]);
        Assert.True(s.PassOn(["f", "g"]));
        Assert.True(g.IsWoken);
        Assert.False(f.IsWoken);
    }

    [Fact]
    public void MultiFunctionWaiter_IsWokenOnce_AndLeavesEveryList()
    {
        var s = new JobSignals();
        var multi = s.WaitForJobs(["f", "g", "h", "f"]);
        var onG = s.WaitForJobs(["g"]);
        var onH = s.WaitForJobs(["h"]);
        s.JobsReady("f", 1);
        Assert.True(multi.IsWoken);
        // It is no longer in g's or h's list: their next jobs go to the others.
        s.JobsReady("g", 1);
        Assert.True(onG.IsWoken);
        s.JobsReady("h", 1);
        Assert.True(onH.IsWoken);
        Assert.Equal(0, s.JobWaiterCount);
        Assert.Equal(0, s.WaitedFunctionCount);
        multi.Consume();
        multi.Dispose();
        onG.Dispose(); // not consumed: passes on to nobody
        onH.Dispose();
        Assert.Equal(0, s.JobWaiterCount);
    }

    [Fact]
    public void MultiFunctionWaiter_CountsAsOneWakeUp()
    {
        var s = new JobSignals();
        var multi = s.WaitForJobs(["f", "g"]);
        var onF = s.WaitForJobs(["f"]);
        var onG = s.WaitForJobs(["g"]);
        s.JobsReady("f", 1);
        s.JobsReady("g", 1);
        Assert.True(multi.IsWoken);
        Assert.False(onF.IsWoken);
        Assert.True(onG.IsWoken);
    }

    [Fact]
    public async Task TimeoutsAndAborts_LeaveNoRegistrations()
    {
        var s = new JobSignals();
        var tasks = Enumerable.Range(0, 50).Select(i => Task.Run(async () =>
        {
            using var w = s.WaitForJobs(i % 3 == 0 ? ["f", "g"] : i % 3 == 1 ? ["f"] : ["h"]);
            await Task.WhenAny(w.Woken, Task.Delay(20 + i % 7));
        })).ToArray();
        await Task.WhenAll(tasks).WaitAsync(TimeSpan.FromSeconds(30), TestContext.Current.CancellationToken);
        Assert.Equal(0, s.JobWaiterCount);
        Assert.Equal(0, s.WaitedFunctionCount);
        // And a woken-then-disposed waiter leaves nothing either.
        var w2 = s.WaitForJobs(["f"]);
        s.JobsReady("f", 1);
        w2.Dispose();
        Assert.Equal(0, s.WaitedFunctionCount);
    }

    [Fact]
    public async Task ConcurrentWaitersFollowingTheProtocol_LeaveNoJobBehind_EvenWhenSomeAbandon()
    {
        // A model of the lease long poll on a counter of queued jobs: register, look (take up to
        // max), settle a wake-up the look began after (consume unless a full batch), sleep on the
        // registration only. Waiters sleep with no timeout, and a few abandon after a wake and quit
        // for good (an aborted request whose worker does not come back to look), so a lost wake-up
        // leaves jobs queued while every remaining waiter sleeps.
        var s = new JobSignals();
        var queued = 0;
        var taken = 0;
        var quitters = 0;
        const int jobs = 1000;
        using var stop = new CancellationTokenSource();

        int Take(int max)
        {
            while (true)
            {
                var q = Volatile.Read(ref queued);
                if (q == 0) return 0;
                var n = Math.Min(q, max);
                if (Interlocked.CompareExchange(ref queued, q - n, q) == q) return n;
            }
        }

        async Task RequestAsync(Random r, string[] functions)
        {
            var max = r.Next(1, 3);
            var waiter = s.WaitForJobs(functions);
            JobWaiter? held = null;
            try
            {
                while (true)
                {
                    if (waiter.IsWoken)
                    {
                        held = waiter;
                        waiter = s.WaitForJobs(functions);
                    }
                    var got = Take(max);
                    Interlocked.Add(ref taken, got);
                    if (held is not null)
                    {
                        if (got < max) held.Consume();
                        held.Dispose();
                        held = null;
                    }
                    if (got > 0) return;
                    await waiter.Woken.WaitAsync(stop.Token);
                    if (r.Next(20) == 0 && Interlocked.Increment(ref quitters) <= 8)
                        throw new OperationCanceledException(); // aborted right after the wake, without looking
                }
            }
            finally
            {
                held?.Dispose();
                waiter.Dispose();
            }
        }

        var workers = Enumerable.Range(0, 16).Select(seed => Task.Run(async () =>
        {
            var r = new Random(seed);
            string[] functions = seed % 2 == 0 ? ["f"] : ["f", "g"];
            try
            {
                while (true) await RequestAsync(r, functions);
            }
            catch (OperationCanceledException)
            {
            }
        })).ToArray();
        var random = new Random(99);
        var submitted = 0;
        while (submitted < jobs)
        {
            // One or a few at a time, each handful taken before the next: a lost wake-up stalls here.
            var n = Math.Min(random.Next(1, 4), jobs - submitted);
            submitted += n;
            Interlocked.Add(ref queued, n); // stored, then signalled
            s.JobsReady("f", n);
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
            while (Volatile.Read(ref taken) < submitted && DateTime.UtcNow < deadline) await Task.Yield();
            if (Volatile.Read(ref taken) < submitted) break;
        }
        await stop.CancelAsync();
        await Task.WhenAll(workers);
        Assert.Equal(jobs, taken);
        Assert.Equal(0, queued);
        Assert.Equal(0, s.JobWaiterCount);
    }

    [Fact]
    public void Receive_RemoteJobsReady_WakesItsCount_AtLeastOne_AndResyncWakesAll()
    {
        var s = new JobSignals();
        var forwarded = new List<ClusterSignal>();
        s.Forward = forwarded.Add;
        var w = Waiters(s, 5, "f");
        Assert.True(s.Receive(new ClusterSignal(ClusterSignalKind.JobsReady, "f", 2)));
        Assert.Equal([0, 1], WokenIndexes(w));
        s.Receive(new ClusterSignal(ClusterSignalKind.JobsReady, "f", 0));
        Assert.Equal([0, 1, 2], WokenIndexes(w));
        var g = s.WaitForJobs(["g"]);
        s.Receive(new ClusterSignal(ClusterSignalKind.Resync, ""));
        Assert.Equal([0, 1, 2, 3, 4], WokenIndexes(w));
        Assert.True(g.IsWoken);
        Assert.Empty(forwarded); // received signals are not published again
        s.JobsReady("f", 3);
        Assert.Equal(new ClusterSignal(ClusterSignalKind.JobsReady, "f", 3), Assert.Single(forwarded));
    }

    [Fact]
    public void Ticket_TakenAfterASignal_WaitsForTheNextOne()
    {
        var s = new JobSignals();
        _ = s.ResultsTicket("alice");
        s.ResultsReady("alice");
        var next = s.ResultsTicket("alice");
        Assert.False(next.IsCompleted);
        s.ResultsReady("bob");
        Assert.False(next.IsCompleted);
        s.ResultsReady("alice");
        Assert.True(next.IsCompleted);
    }

    [Fact]
    public void AJobsEnd_WakesOnlyTheWaitersForThatJob()
    {
        var s = new JobSignals();
        using var a1 = s.WaitForJobEnd("alice", "j1");
        using var a1Again = s.WaitForJobEnd("alice", "j1");
        using var a2 = s.WaitForJobEnd("alice", "j2");
        using var b1 = s.WaitForJobEnd("bob", "j1");
        var results = s.ResultsTicket("alice");

        s.ResultsReady("alice", ["j1"]);

        Assert.True(a1.Ended.IsCompleted);
        Assert.True(a1Again.Ended.IsCompleted);
        Assert.False(a2.Ended.IsCompleted);
        Assert.False(b1.Ended.IsCompleted);
        // Readers of the owner's result pages still hear every end.
        Assert.True(results.IsCompleted);
        Assert.Equal(2, s.JobEndWaiterCount);
    }

    [Fact]
    public void AnEndWithoutIds_OrFromAnotherServer_OrAResync_WakesEveryWaiterOfTheOwner()
    {
        var s = new JobSignals();
        using var a1 = s.WaitForJobEnd("alice", "j1");
        using var a2 = s.WaitForJobEnd("alice", "j2");
        using var b1 = s.WaitForJobEnd("bob", "j1");

        s.ResultsReady("alice");
        Assert.True(a1.Ended.IsCompleted);
        Assert.True(a2.Ended.IsCompleted);
        Assert.False(b1.Ended.IsCompleted);

        using var a3 = s.WaitForJobEnd("alice", "j3");
        s.Receive(new ClusterSignal(ClusterSignalKind.ResultsReady, "alice"));
        Assert.True(a3.Ended.IsCompleted);
        Assert.False(b1.Ended.IsCompleted);

        s.Receive(new ClusterSignal(ClusterSignalKind.Resync, ""));
        Assert.True(b1.Ended.IsCompleted);
        Assert.Equal(0, s.JobEndWaiterCount);
    }

    [Fact]
    public void EndWaiters_LeaveNoEntryBehind_AndANewRegistrationWaitsForTheNextEnd()
    {
        var s = new JobSignals();
        var first = s.WaitForJobEnd("alice", "j1");
        var second = s.WaitForJobEnd("alice", "j1");
        first.Dispose();
        Assert.Equal(1, s.JobEndWaiterCount);
        second.Dispose();
        second.Dispose();
        Assert.Equal(0, s.JobEndWaiterCount);

        using var ended = s.WaitForJobEnd("alice", "j1");
        s.ResultsReady("alice", ["j1"]);
        using var later = s.WaitForJobEnd("alice", "j1");
        Assert.True(ended.Ended.IsCompleted);
        Assert.False(later.Ended.IsCompleted);
        ended.Dispose();
        // The fired entry is gone; the newer registration's entry stays until it leaves.
        Assert.Equal(1, s.JobEndWaiterCount);
    }
}
