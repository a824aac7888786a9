using System.Collections.Concurrent;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using Dts.Contracts;
using Dts.Testing;

namespace Dts.Server.Tests;

/// <summary>
/// Long-polling workers on a real server (Kestrel, SQLite): a ready job wakes one waiter, not all
/// of them, and no job is left queued while workers sleep, even when woken requests are aborted.
/// With SQLite there is no fallback poll (waits are bounded only by the request's wait), so a
/// lost wake-up cannot be hidden by a periodic re-look within the tests' waits.
/// </summary>
public sealed class LeaseWakeTests : ClientWorkerServerTest
{
    /// <summary>A signed lease call that can be cancelled (the test harness's helper cannot).</summary>
    private static async Task<List<LeasedJob>> LeaseAsync(HttpClient http, SignedHttp who, string workerId, int max, double wait, CancellationToken cancellationToken)
    {
        var path = ApiRoutes.WorkerLease(workerId);
        var body = Encoding.UTF8.GetBytes(SignedHttp.Json(new LeaseRequest { Max = max, WaitSeconds = wait }, DtsJsonContext.Default.LeaseRequest));
        using var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        var uri = new Uri(http.BaseAddress!, path);
        var ts = DateTimeOffset.UtcNow.ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture);
        var nonce = RequestSigning.NewNonce();
        var canonical = RequestSigning.CanonicalRequest("POST", uri.AbsolutePath, uri.Query, who.User, ts, nonce, RequestSigning.BodyHash(body));
        request.Headers.Add(RequestSigning.UserHeader, who.User);
        request.Headers.Add(RequestSigning.TimestampHeader, ts);
        request.Headers.Add(RequestSigning.NonceHeader, nonce);
        request.Headers.Add(RequestSigning.SignatureHeader, RequestSigning.Sign(who.Secret, canonical));
        using var response = await http.SendAsync(request, cancellationToken);
        var text = await response.Content.ReadAsStringAsync(cancellationToken);
        if (!response.IsSuccessStatusCode) throw new HttpRequestException($"{(int)response.StatusCode} from lease: {text}");
        return JsonSerializer.Deserialize(text, DtsJsonContext.Default.LeaseResponse)!.Jobs;
    }

    private static async Task UntilAsync(Func<bool> condition, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) throw new Xunit.Sdk.XunitException(what);
            await Task.Delay(2, Ct);
        }
    }

    [Fact]
    public async Task SingleJobsOneAtATime_AreEachLeasedOnce_WithAboutOneStoreLookPerJob_NotOnePerWorker()
    {
        const int workers = 6;
        const int jobs = 30;
        using var http = new HttpClient { BaseAddress = _server.Url, Timeout = TimeSpan.FromSeconds(100) };
        var ids = new List<string>();
        for (var i = 0; i < workers; i++) ids.Add(await Flow.RegisterAsync(_worker, "single"));
        var leased = new ConcurrentDictionary<string, int>();
        var requests = 0;
        using var stop = new CancellationTokenSource();

        async Task WorkAsync(string workerId)
        {
            while (!stop.IsCancellationRequested)
            {
                Interlocked.Increment(ref requests);
                // max 2: a single job never fills a batch, so each wake-up is used, never passed on.
                var got = await LeaseAsync(http, _worker, workerId, max: 2, wait: 60, stop.Token);
                foreach (var j in got)
                {
                    leased.AddOrUpdate(j.Id, 1, (_, n) => n + 1);
                    (await Flow.CompleteAsync(_worker, j, "null")).Dispose();
                }
            }
        }

        var running = ids.Select(id => Task.Run(() => WorkAsync(id), Ct)).ToArray();
        // All workers asleep in their long polls before the stream starts.
        await UntilAsync(() => _server.Server.Context.Signals.JobWaiterCount == workers, TimeSpan.FromSeconds(30), "the workers never all waited");
        var looksBefore = _server.Server.Context.LeaseLooks;
        var requestsBefore = Volatile.Read(ref requests);

        var submitted = new List<string>();
        for (var i = 0; i < jobs; i++)
        {
            var job = await Flow.SubmitFnAsync(_client, "single", $"[{i}]");
            submitted.Add(job.Id);
            await UntilAsync(() => leased.ContainsKey(job.Id), TimeSpan.FromSeconds(30), $"job {i} was not leased: a lost wake-up");
            // And everyone back asleep, so the next job meets waiters, not a worker's fresh look.
            await UntilAsync(() => _server.Server.Context.Signals.JobWaiterCount == workers, TimeSpan.FromSeconds(30), "a worker did not come back to wait");
        }
        var looks = _server.Server.Context.LeaseLooks - looksBefore;
        var newRequests = Volatile.Read(ref requests) - requestsBefore;

        await stop.CancelAsync();
        await Task.WhenAll(running.Select(t => t.ContinueWith(_ => { }, TaskScheduler.Default)));

        Assert.Equal(submitted.Order(), leased.Keys.Order());
        Assert.All(leased.Values, n => Assert.Equal(1, n));
        // Each new request looks once before it sleeps; besides those, the wake-ups: about one per
        // job. Every waiter waking for every job would make it about one per worker per job (6 here).
        var wokenLooks = looks - newRequests;
        Assert.InRange(wokenLooks, jobs, jobs + jobs / 2);
    }

    [Fact]
    public async Task ManyWaiters_WithWokenRequestsAborted_EveryJobIsStillLeased()
    {
        const int steady = 8;  // long-poll until the end
        const int quitters = 20; // each has its request aborted once, just before a submit, and leaves
        const int rounds = 60;
        using var http = new HttpClient { BaseAddress = _server.Url, Timeout = TimeSpan.FromSeconds(100) };
        var leased = new ConcurrentDictionary<string, int>();
        using var stop = new CancellationTokenSource();
        var quitterRequests = new ConcurrentDictionary<int, (CancellationTokenSource Abort, long StartedAt)>();
        var random = new Random(12345);

        async Task StoreAsync(List<LeasedJob> got)
        {
            foreach (var j in got) leased.AddOrUpdate(j.Id, 1, (_, n) => n + 1);
            foreach (var j in got) (await Flow.CompleteAsync(_worker, j, "null")).Dispose();
        }

        async Task SteadyAsync(string workerId, int max)
        {
            while (!stop.IsCancellationRequested)
            {
                try
                {
                    await StoreAsync(await LeaseAsync(http, _worker, workerId, max, wait: 60, stop.Token));
                }
                catch (OperationCanceledException) when (stop.IsCancellationRequested)
                {
                }
            }
        }

        async Task QuitterAsync(int n, string workerId, int max)
        {
            while (!stop.IsCancellationRequested)
            {
                using var abort = CancellationTokenSource.CreateLinkedTokenSource(stop.Token);
                quitterRequests[n] = (abort, System.Diagnostics.Stopwatch.GetTimestamp());
                try
                {
                    await StoreAsync(await LeaseAsync(http, _worker, workerId, max, wait: 60, abort.Token));
                }
                catch (OperationCanceledException)
                {
                    // Aborted: this worker does not come back, so it cannot find a job its wake-up was for.
                    quitterRequests.TryRemove(n, out _);
                    return;
                }
            }
        }

        var tasks = new List<Task>();
        for (var i = 0; i < steady; i++)
        {
            var id = await Flow.RegisterAsync(_worker, "stress");
            var max = 1 + i % 2;
            tasks.Add(Task.Run(() => SteadyAsync(id, max), Ct));
        }
        for (var i = 0; i < quitters; i++)
        {
            var id = await Flow.RegisterAsync(_worker, "stress", "other");
            var n = i;
            tasks.Add(Task.Run(() => QuitterAsync(n, id, 1), Ct));
        }
        await UntilAsync(() => _server.Server.Context.Signals.JobWaiterCount == steady + quitters, TimeSpan.FromSeconds(30), "the workers never all waited");

        var submitted = new List<string>();
        for (var round = 0; round < rounds; round++)
        {
            var count = random.Next(1, 4);
            var body = string.Join(",", Enumerable.Range(0, count).Select(k => $$"""{"function":"stress","args":[{{round}},{{k}}]}"""));
            if (round % 3 == 1 && !quitterRequests.IsEmpty)
            {
                // Abort the longest-waiting quitter (the oldest waiter is the one a wake-up goes to)
                // just before the submit, so that the server often wakes it and then sees the abort.
                var oldest = quitterRequests.OrderBy(kv => kv.Value.StartedAt).First();
                await oldest.Value.Abort.CancelAsync();
                if (random.Next(2) == 0) await Task.Delay(random.Next(0, 2), Ct);
            }
            var batch = _client.CallAsync(HttpMethod.Post, ApiRoutes.JobsBatch, $$"""{"jobs":[{{body}}]}""", DtsJsonContext.Default.SubmitBatchResponse);
            var ids = (await batch).Jobs.Select(j => j.Id).ToList();
            submitted.AddRange(ids);
            // Leased means out of the queue: a job leased by a request aborted at that moment is
            // running for a worker that never heard of it, but it was leased.
            var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
            foreach (var id in ids)
            {
                while ((await Flow.GetAsync(_client, id)).State == JobState.Queued)
                {
                    if (DateTime.UtcNow > deadline)
                        throw new Xunit.Sdk.XunitException($"round {round}: job {id} left queued while {steady} workers waited: a lost wake-up");
                    await Task.Delay(5, Ct);
                }
            }
        }

        await stop.CancelAsync();
        await Task.WhenAll(tasks.Select(t => t.ContinueWith(_ => { }, TaskScheduler.Default)));
        Assert.All(leased.Values, n => Assert.Equal(1, n));
        Assert.Subset(submitted.ToHashSet(), leased.Keys.ToHashSet());
        Assert.True(leased.Count >= submitted.Count - quitters, $"{submitted.Count - leased.Count} jobs did not reach a worker");
        // Aborted and finished long polls leave no registrations behind.
        await UntilAsync(() => _server.Server.Context.Signals.JobWaiterCount == 0, TimeSpan.FromSeconds(30), "waiter registrations leaked");
        Assert.Equal(0, _server.Server.Context.Signals.WaitedFunctionCount);
    }
    [Fact]
    public async Task LeasePoll_WokenThenAbortedBeforeItLooks_PassesTheWakeUpToTheNextWaiter()
    {
        // The server's own lease loop with stand-in looks, so the abort lands exactly between the
        // wake-up and the look (over HTTP that moment is hard to hit on purpose).
        var context = _server.Server.Context;
        var looksA = 0;
        var looksB = 0;
        var queued = 0;
        Task<IReadOnlyList<int>> Look(ref int looks)
        {
            Interlocked.Increment(ref looks);
            var got = Interlocked.Exchange(ref queued, 0);
            return Task.FromResult<IReadOnlyList<int>>(got > 0 ? [got] : []);
        }
        using var abortA = new CancellationTokenSource();
        var a = context.LeasePollAsync<int>(["abort-test"], 1, true, _ => Look(ref looksA), _ => Task.FromResult(true), TimeSpan.FromSeconds(60), abortA.Token);
        var b = context.LeasePollAsync<int>(["abort-test"], 1, true, _ => Look(ref looksB), _ => Task.FromResult(true), TimeSpan.FromSeconds(60), Ct);
        await UntilAsync(() => context.Signals.JobWaiterCount == 2, TimeSpan.FromSeconds(30), "the polls never waited");

        // A is the older waiter: the job's wake-up goes to it, and it is aborted before it can look.
        abortA.Cancel();
        Interlocked.Exchange(ref queued, 1);
        context.Signals.JobsReady("abort-test", 1);

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => a);
        Assert.Equal(1, looksA);
        var got = await b.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        Assert.Equal([1], got);
        Assert.Equal(2, looksB);
        Assert.Equal(0, context.Signals.JobWaiterCount);
    }

    [Fact]
    public async Task LeasePoll_FullBatch_PassesOn_ButAnEmptyLookDoesNot()
    {
        var context = _server.Server.Context;
        var looks = new int[3];
        var queued = 0;
        Task<IReadOnlyList<int>> Look(int who, int max)
        {
            Interlocked.Increment(ref looks[who]);
            while (true)
            {
                var q = Volatile.Read(ref queued);
                var n = Math.Min(q, max);
                if (Interlocked.CompareExchange(ref queued, q - n, q) == q)
                    return Task.FromResult<IReadOnlyList<int>>([.. Enumerable.Repeat(who, n)]);
            }
        }
        var polls = Enumerable.Range(0, 3).Select(who =>
            context.LeasePollAsync<int>(["full-test"], 2, true, _ => Look(who, 2), _ => Task.FromResult(true), TimeSpan.FromSeconds(60), Ct)).ToArray();
        await UntilAsync(() => context.Signals.JobWaiterCount == 3, TimeSpan.FromSeconds(30), "the polls never waited");

        // Three jobs, announced as one: the oldest leases a full batch of two and passes the wake-up
        // on; the second takes the last job, which leaves nothing for the third.
        Interlocked.Exchange(ref queued, 3);
        context.Signals.JobsReady("full-test", 1);
        Assert.Equal([0, 0], await polls[0].WaitAsync(TimeSpan.FromSeconds(30), Ct));
        Assert.Equal([1], await polls[1].WaitAsync(TimeSpan.FromSeconds(30), Ct));
        await Task.Delay(200, Ct);
        Assert.False(polls[2].IsCompleted);
        Assert.Equal(1, looks[2]); // woken by nobody: the second's look leased less than a full batch
        Assert.Equal(1, context.Signals.JobWaiterCount);
    }
}
