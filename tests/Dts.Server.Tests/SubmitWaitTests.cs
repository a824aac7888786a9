using System.Reflection;
using System.Runtime.ExceptionServices;
using System.Text.Json;
using Dts.Client;
using Dts.Contracts;
using Dts.Core.Storage;
using Dts.Storage.Sqlite;
using Dts.Testing;

namespace Dts.Server.Tests;

/// <summary><c>POST /v1/jobs?wait_seconds=N</c>: a foreground job in one exchange.</summary>
public sealed class SubmitWaitTests : ClientWorkerServerTest
{
    private async Task<(int Status, SubmitJobResponse Answer, string Text)> SubmitWaitingAsync(string body, string wait)
    {
        using var response = await _client.PostAsync($"{ApiRoutes.Jobs}?wait_seconds={wait}", body);
        var text = await response.Content.ReadAsStringAsync(Ct);
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {text}");
        return ((int)response.StatusCode, JsonSerializer.Deserialize(text, DtsJsonContext.Default.SubmitJobResponse)!, text);
    }

    /// <summary>Leases one job of <paramref name="function"/> (long-polling for it) and completes it with <paramref name="resultJson"/>.</summary>
    private async Task RunOneAsync(string function, string resultJson)
    {
        var workerId = await Flow.RegisterAsync(_worker, function);
        for (var i = 0; i < 20; i++)
        {
            var jobs = await Flow.LeaseAsync(_worker, workerId, max: 1, wait: 5);
            if (jobs.Count == 0) continue;
            using var done = await Flow.CompleteAsync(_worker, jobs[0], resultJson);
            Assert.Equal(200, (int)done.StatusCode);
            return;
        }
        Assert.Fail($"no job of {function} was leased");
    }

    private Task<long> UnfinishedAsync() =>
        _server.Server.Store.JobCountUnfinishedAsync(new JobCountUnfinishedParams("alice"), Ct);

    [Fact]
    public async Task WithAWorker_AnswersTheFinishedJobAndItsResult()
    {
        var worker = RunOneAsync("reverse", "\"olleh\"");

        var (status, answer, _) = await SubmitWaitingAsync("""{"function":"reverse","args":["hello"]}""", "30");
        await worker;

        Assert.Equal(201, status);
        Assert.False(answer.Coalesced);
        var job = Assert.IsType<JobView>(answer.Job);
        Assert.Equal(answer.Id, job.Id);
        Assert.Equal(JobState.Succeeded, job.State);
        Assert.Equal("olleh", job.Result!.Value.GetString());
    }

    [Fact]
    public async Task WithoutAWorker_AnswersQueuedAfterTheWait_AndTheJobRunsLater()
    {
        var (status, answer, _) = await SubmitWaitingAsync("""{"function":"later","args":["x"]}""", "0.5");

        Assert.Equal(201, status);
        Assert.Equal(JobState.Queued, answer.State);
        Assert.Equal(JobState.Queued, answer.Job!.State);
        Assert.Equal(JobState.Queued, (await Flow.GetAsync(_client, answer.Id)).State);

        await RunOneAsync("later", "1");
        var view = await Flow.GetAsync(_client, answer.Id, wait: 10);
        Assert.Equal(JobState.Succeeded, view.State);
    }

    [Fact]
    public async Task Coalesced_IsA200_WithTheExistingJobsView()
    {
        var first = await Flow.SubmitAsync(_client, """{"function":"same","unique_key":"k1"}""");

        var (status, answer, _) = await SubmitWaitingAsync("""{"function":"same","unique_key":"k1"}""", "0.2");

        Assert.Equal(200, status);
        Assert.True(answer.Coalesced);
        Assert.Equal(first.Id, answer.Id);
        Assert.Equal(first.Id, answer.Job!.Id);
        Assert.Equal(JobState.Queued, answer.Job.State);
        Assert.Equal(1, await UnfinishedAsync());
    }

    [Fact]
    public async Task ResentWithTheSameAutomaticKey_AfterTheJobFinished_AnswersThatJobAndItsResult_AndMakesNoOther()
    {
        // As the SDK sends it: the answer to the first send (the job's end) was lost, and the copy comes after the job ended.
        var body = """{"function":"reverse","args":["hello"],"unique_key":"dts-auto:0000000000000123456789abcdef0123"}""";
        var worker = RunOneAsync("reverse", "\"olleh\"");
        var (firstStatus, first, _) = await SubmitWaitingAsync(body, "30");
        await worker;
        Assert.Equal(201, firstStatus);
        Assert.Equal(JobState.Succeeded, first.Job!.State);

        var (status, resent, _) = await SubmitWaitingAsync(body, "30");

        Assert.Equal(200, status);
        Assert.True(resent.Coalesced);
        Assert.Equal(first.Id, resent.Id);
        Assert.Equal(JobState.Succeeded, resent.State);
        var job = Assert.IsType<JobView>(resent.Job);
        Assert.Equal(first.Id, job.Id);
        Assert.Equal(JobState.Succeeded, job.State);
        Assert.Equal("olleh", job.Result!.Value.GetString());
        Assert.Equal(1, job.Attempts);
        var all = await _server.Server.Store.JobSearchAsync(new JobSearchParams { Owner = "alice", Limit = 10 }, Ct);
        Assert.Equal([first.Id], all.Jobs.Select(j => j.Id));
    }

    [Fact]
    public async Task ResentWithTheSameCallersKey_AfterTheJobFinished_MakesANewJob()
    {
        var body = """{"function":"reverse","args":["hello"],"unique_key":"greeting"}""";
        var worker = RunOneAsync("reverse", "\"olleh\"");
        var (_, first, _) = await SubmitWaitingAsync(body, "30");
        await worker;
        Assert.Equal(JobState.Succeeded, first.Job!.State);

        var (status, again, _) = await SubmitWaitingAsync(body, "0");

        Assert.Equal(201, status);
        Assert.False(again.Coalesced);
        Assert.NotEqual(first.Id, again.Id);
        Assert.Equal(JobState.Queued, again.State);
        Assert.Equal(1, await UnfinishedAsync());
    }

    [Fact]
    public async Task ScheduledJob_ComesBackNotFinished()
    {
        var (status, answer, _) = await SubmitWaitingAsync("""{"function":"someday","delay_seconds":3600}""", "0.3");

        Assert.Equal(201, status);
        Assert.Equal(JobState.Scheduled, answer.State);
        Assert.Equal(JobState.Scheduled, answer.Job!.State);
    }

    [Fact]
    public async Task ZeroWait_AddsTheJobAtOnce_AndNoWaitLeavesItOut()
    {
        var (_, waited, _) = await SubmitWaitingAsync("""{"function":"f"}""", "0");
        Assert.Equal(JobState.Queued, waited.Job!.State);

        using var plain = await _client.PostAsync(ApiRoutes.Jobs, """{"function":"f"}""");
        var text = await plain.Content.ReadAsStringAsync(Ct);
        Assert.Equal(201, (int)plain.StatusCode);
        Assert.DoesNotContain("\"job\"", text, StringComparison.Ordinal);

        using var batch = await _client.PostAsync(ApiRoutes.JobsBatch, """{"jobs":[{"function":"f"}]}""");
        Assert.DoesNotContain("\"job\"", await batch.Content.ReadAsStringAsync(Ct), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("-1")]
    [InlineData("61")]
    [InlineData("abc")]
    [InlineData("NaN")]
    [InlineData("")]
    public async Task InvalidWait_Is400InvalidQuery_AndStoresNothing(string wait)
    {
        using var response = await _client.PostAsync($"{ApiRoutes.Jobs}?wait_seconds={wait}", """{"function":"f"}""");

        var problem = await ResponseAssert.ProblemAsync(response, ErrorCodes.InvalidQuery);
        Assert.Equal(0, await UnfinishedAsync());
        Assert.Contains("wait_seconds", problem.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ClientHangsUpDuringTheWait_TheJobStaysAndRuns()
    {
        await using var sdk = new DtsClient("alice", _client.Secret, _server.Url.ToString());
        using var hangUp = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var run = sdk.RunAsync(new SubmitJobRequest { Function = "orphan" }, TimeSpan.FromSeconds(30), hangUp.Token);

        // Hang up only once the job is committed and the server is waiting on it.
        for (var i = 0; i < 400 && await UnfinishedAsync() == 0; i++) await Task.Delay(25, Ct);
        Assert.Equal(1, await UnfinishedAsync());
        await hangUp.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);

        var jobs = (await _server.Server.Store.JobSearchAsync(new JobSearchParams { Function = "orphan", Limit = 10 }, Ct)).Jobs;
        var stored = Assert.Single(jobs);
        Assert.Equal(JobState.Queued, stored.State);

        await RunOneAsync("orphan", "\"done\"");
        var view = await Flow.GetAsync(_client, stored.Id, wait: 10);
        Assert.Equal(JobState.Succeeded, view.State);
        Assert.Equal("done", view.Result!.Value.GetString());
    }

    private SqliteJobStore SqliteStore =>
        Assert.IsType<SqliteJobStore>(_server.Server.Store);

    [Fact]
    public async Task AFinishedJob_IsAnsweredWithoutAFlushOfItsInsert()
    {
        // A server of its own whose periodic durable writes (rescue, timeouts, promotion, alerts,
        // porter) do not run during the test, so every fsynced commit is one the test caused.
        var quiet = TimeSpan.FromHours(1);
        await using var server = await TestServer.StartAsync(configure: o =>
        {
            o.RescueInterval = quiet;
            o.TimeoutInterval = quiet;
            o.SchedulerMaxSleep = quiet;
            o.AlertCheckInterval = quiet;
            o.PorterInterval = quiet;
        });
        var client = await server.UserAsync("alice", Roles.Client);
        var worker = await server.UserAsync("w1", Roles.Worker);
        var store = Assert.IsType<SqliteJobStore>(server.Server.Store);
        var workerId = await Flow.RegisterAsync(worker, "double");
        var before = store.SyncedCommitCount;
        var submit = SubmitAsync();

        List<LeasedJob> jobs = [];
        for (var i = 0; i < 20 && jobs.Count == 0; i++) jobs = await Flow.LeaseAsync(worker, workerId, max: 1, wait: 5);
        var job = Assert.Single(jobs);
        // Inserted and leased, and neither was flushed.
        Assert.Equal(before, store.SyncedCommitCount);
        using (var done = await Flow.CompleteAsync(worker, job, "42")) Assert.Equal(200, (int)done.StatusCode);
        var (status, answer) = await submit;

        Assert.Equal(201, status);
        Assert.Equal(JobState.Succeeded, answer.Job!.State);
        Assert.Equal(42, answer.Job.Result!.Value.GetInt32());
        // One flush in all, the report's, which covered the insert: the flush before the answer found nothing to do.
        Assert.Equal(before + 1, store.SyncedCommitCount);

        async Task<(int, SubmitJobResponse)> SubmitAsync()
        {
            using var response = await client.PostAsync($"{ApiRoutes.Jobs}?wait_seconds=30", """{"function":"double","args":[21]}""");
            var text = await response.Content.ReadAsStringAsync(Ct);
            Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {text}");
            return ((int)response.StatusCode, JsonSerializer.Deserialize(text, DtsJsonContext.Default.SubmitJobResponse)!);
        }
    }

    [Fact]
    public async Task TheStoreIsAskedForAFlush_OnlyWhenTheWaitedJobDidNotSucceed_AndTheJobIsReadOnceItEnded()
    {
        // What the endpoint asks of the store, counted: on PostgreSQL every call is a round trip.
        await using var counted = await CountedServer.StartAsync(TimeProvider.System);
        var (server, counter, client) = (counted.Server, counted.Counter, counted.Client);
        using var worker = new SignedHttp(server.Url, "w1", await server.CreateUserAsync("w1", [Roles.Worker], Ct), TimeProvider.System);
        var workerId = await Flow.RegisterAsync(worker, "double");

        var succeeded = Post("""{"function":"double","args":[21]}""", 30);
        var job = Assert.Single(await Flow.LeaseAsync(worker, workerId, max: 1, wait: 10));
        using (var done = await Flow.CompleteAsync(worker, job, "42")) Assert.Equal(200, (int)done.StatusCode);
        Assert.Equal(JobState.Succeeded, (await succeeded).Job!.State);
        Assert.Equal(0, counter.Calls(nameof(IJobStore.FlushAsync)));
        // Registered before the insert, the wait looked only once, after the job's end woke it.
        Assert.Equal(1, counter.Calls(nameof(IJobStore.JobGetAsync)));

        var failed = Post("""{"function":"double","args":[0],"max_attempts":1}""", 30);
        job = Assert.Single(await Flow.LeaseAsync(worker, workerId, max: 1, wait: 10));
        using (var done = await Flow.FailAsync(worker, job, "bad", retry: false)) Assert.Equal(200, (int)done.StatusCode);
        Assert.Equal(JobState.Dead, (await failed).Job!.State);
        Assert.Equal(1, counter.Calls(nameof(IJobStore.FlushAsync)));
        Assert.Equal(2, counter.Calls(nameof(IJobStore.JobGetAsync)));

        Assert.Equal(JobState.Queued, (await Post("""{"function":"nobody"}""", 0.2)).Job!.State);
        Assert.Equal(2, counter.Calls(nameof(IJobStore.FlushAsync)));
        Assert.Equal(3, counter.Calls(nameof(IJobStore.JobGetAsync)));

        async Task<SubmitJobResponse> Post(string body, double wait)
        {
            using var response = await client.PostAsync($"{ApiRoutes.Jobs}?wait_seconds={wait.ToString(System.Globalization.CultureInfo.InvariantCulture)}", body);
            var text = await response.Content.ReadAsStringAsync(Ct);
            Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {text}");
            return JsonSerializer.Deserialize(text, DtsJsonContext.Default.SubmitJobResponse)!;
        }
    }

    [Fact]
    public async Task AWaitWhoseTimerFiresAFewMillisecondsEarly_EndsWithOneLook_NotABurstOfThem()
    {
        // Timers fire on a coarse clock, a few milliseconds before the deadline the wait reads from
        // the wall clock. Here every timer fires 8 ms earlier still, on purpose.
        await using var counted = await CountedServer.StartAsync(new EarlyTimers(TimeSpan.FromMilliseconds(8)));
        var (counter, client) = (counted.Counter, counted.Client);

        using var response = await client.PostAsync($"{ApiRoutes.Jobs}?wait_seconds=0.3", """{"function":"nobody"}""");
        Assert.Equal(201, (int)response.StatusCode);

        // One look when the wait ran out, not one per sliver of time left that no timer can sleep.
        Assert.Equal(1, counter.Calls(nameof(IJobStore.JobGetAsync)));
    }

    /// <summary>A server of its own on <paramref name="time"/>, whose store counts the calls made to it, and its client user alice.</summary>
    private sealed class CountedServer : IAsyncDisposable
    {
        private readonly TempDirectory _dir;

        private CountedServer(TempDirectory dir, DtsServer server, CountingStore counter, SignedHttp client) =>
            (_dir, Server, Counter, Client) = (dir, server, counter, client);

        public DtsServer Server { get; }
        public CountingStore Counter { get; }
        public SignedHttp Client { get; }

        public static async Task<CountedServer> StartAsync(TimeProvider time)
        {
            var dir = new TempDirectory("dts-counted");
            var options = new DtsServerOptions { Url = "http://127.0.0.1:0", DataDirectory = dir.Path };
            var (store, counter) = CountingStore.Wrap(DtsServer.OpenSqliteStore(options));
            var server = await DtsServer.StartAsync(options, time, store, cancellationToken: Ct);
            var client = new SignedHttp(server.Url, "alice", await server.CreateUserAsync("alice", [Roles.Client], Ct), TimeProvider.System);
            return new CountedServer(dir, server, counter, client);
        }

        public async ValueTask DisposeAsync()
        {
            Client.Dispose();
            await Server.DisposeAsync();
            _dir.Dispose();
        }
    }

    /// <summary>The system clock, whose timers all fire <paramref name="early"/> before they are due.</summary>
    private sealed class EarlyTimers(TimeSpan early) : TimeProvider
    {
        public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period) =>
            base.CreateTimer(callback, state, dueTime == Timeout.InfiniteTimeSpan ? dueTime : dueTime > early ? dueTime - early : TimeSpan.Zero, period);
    }

    [Fact]
    public async Task AWaitThatTimesOut_IsAnsweredAfterTheInsertWasFlushed()
    {
        var store = SqliteStore;
        var before = store.SyncedCommitCount;

        var (status, answer, _) = await SubmitWaitingAsync("""{"function":"nobody","args":[]}""", "0.3");

        Assert.Equal(201, status);
        Assert.Equal(JobState.Queued, answer.Job!.State);
        Assert.True(store.SyncedCommitCount > before, "the insert was not flushed before the answer");
    }

    [Fact]
    public async Task ManyForegroundJobsOfOneUser_EachAnswerCarriesItsOwnResult_AndNoWaiterIsLeftBehind()
    {
        const int n = 20;
        var answers = Enumerable.Range(0, n)
            .Select(i => SubmitWaitingAsync($$"""{"function":"echo","args":[{{i}}]}""", "30"))
            .ToList();
        // One worker finishes them one at a time, each with its own argument as result: every end
        // wakes only the request waiting for that job, and each must still get its own answer.
        var workerId = await Flow.RegisterAsync(_worker, "echo");
        var done = 0;
        for (var round = 0; round < 200 && done < n; round++)
        {
            foreach (var job in await Flow.LeaseAsync(_worker, workerId, max: 1, wait: 5))
            {
                using var completed = await Flow.CompleteAsync(_worker, job, job.Args[0].GetRawText());
                Assert.Equal(200, (int)completed.StatusCode);
                done++;
            }
        }
        Assert.Equal(n, done);

        var seen = new HashSet<int>();
        foreach (var pending in answers)
        {
            var (status, answer, _) = await pending;
            Assert.Equal(201, status);
            var job = Assert.IsType<JobView>(answer.Job);
            Assert.Equal(JobState.Succeeded, job.State);
            Assert.Equal(job.Args[0].GetInt32(), job.Result!.Value.GetInt32());
            Assert.True(seen.Add(job.Result!.Value.GetInt32()));
        }
        Assert.Equal(0, _server.Server.Context.Signals.JobEndWaiterCount);
    }
}

/// <summary>An <see cref="IJobStore"/> that passes every call to the store it wraps and counts the calls by method name.</summary>
public class CountingStore : DispatchProxy
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, int> _calls = new(StringComparer.Ordinal);
    private IJobStore _inner = null!;

    public int Calls(string method) => _calls.GetValueOrDefault(method);

    public static (IJobStore Store, CountingStore Counter) Wrap(IJobStore inner)
    {
        var store = Create<IJobStore, CountingStore>();
        var counter = (CountingStore)(object)store;
        counter._inner = inner;
        return (store, counter);
    }

    protected override object? Invoke(MethodInfo? targetMethod, object?[]? args)
    {
        ArgumentNullException.ThrowIfNull(targetMethod);
        _calls.AddOrUpdate(targetMethod.Name, 1, (_, n) => n + 1);
        try
        {
            return targetMethod.Invoke(_inner, args);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            ExceptionDispatchInfo.Throw(e.InnerException);
            throw;
        }
    }
}
