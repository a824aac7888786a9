using System.Collections.Concurrent;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using Dts.Client.Batch;
using Dts.Contracts;
using Dts.Testing;
using Dts.Worker;

namespace Dts.Client.Tests;

/// <summary><see cref="BatchRunExtensions.RunAsync"/> against a real server and an in-process worker.</summary>
public sealed class BatchRunTests : IAsyncLifetime
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private readonly TempDirectory _dir = new("dts-batch");
    private readonly CancellationTokenSource _stopWorker = new();
    private TestServer _server = null!;
    private DtsWorker _worker = null!;
    private Task _workerRun = Task.CompletedTask;
    private string _secret = "";
    // How many times the worker ran each "up" input.
    private readonly ConcurrentDictionary<string, int> _runs = new();

    public async ValueTask InitializeAsync()
    {
        _server = await TestServer.StartAsync();
        _secret = await _server.Server.CreateUserAsync("alice", [Roles.Client]);
        var workerSecret = await _server.Server.CreateUserAsync("w", [Roles.Worker]);
        _worker = new DtsWorker(new DtsWorkerOptions { ServerUrl = _server.Url.ToString(), UserId = "w", Secret = workerSecret, Concurrency = 16, LeaseWaitSeconds = 1 });
        _worker.Handle("up", async (job, ct) =>
        {
            var text = job.Args[0].GetString()!;
            _runs.AddOrUpdate(text, 1, (_, n) => n + 1);
            // Uneven run times, so that jobs finish out of record order.
            await Task.Delay(text.Length % 3 * 7, ct);
            return text.ToUpperInvariant();
        });
        _worker.Handle("count", (job, _) => Task.FromResult(JsonValues.Parse(job.Kwargs.EnumerateObject().Count().ToString(System.Globalization.CultureInfo.InvariantCulture))));
        _worker.Handle("fail", (WorkerJob _, CancellationToken _) => Task.FromException<string>(new JobFailedException("no_good", "this record cannot be done", retry: false)));
        _workerRun = _worker.RunAsync(_stopWorker.Token);
    }

    public async ValueTask DisposeAsync()
    {
        await _stopWorker.CancelAsync();
        await _workerRun;
        await _worker.DisposeAsync();
        await _server.DisposeAsync();
        _stopWorker.Dispose();
        _dir.Dispose();
    }

    private DtsClient Client(int concurrency = 16, string user = "alice", string? secret = null, TimeSpan? snooze = null) =>
        new(user, secret ?? _secret, _server.Url.ToString(), concurrency, snooze);

    /// <summary>Alice's client whose requests go through <paramref name="handler"/>; a connection failure is resent after 20 ms.</summary>
    private DtsClient Client(HttpMessageHandler handler, int concurrency) => new(new DtsConnection(new DtsConnectionOptions
    {
        ServerUrl = _server.Url.ToString(), UserId = "alice", Secret = _secret, MaxConcurrency = concurrency,
        FailoverBackoff = TimeSpan.FromMilliseconds(20),
    }, handler));

    private static MemoryStream Input(string text) => new(Encoding.UTF8.GetBytes(text));

    private static string Lines(int count) => string.Concat(Enumerable.Range(1, count).Select(i => $"line {i}\n"));

    private static List<JsonElement> Read(string path) =>
        File.Exists(path) ? [.. File.ReadAllLines(path).Select(l => JsonValues.Parse(l))] : [];

    private static List<long> Records(string path) => [.. Read(path).Select(e => e.GetProperty("record").GetInt64())];

    private async Task<BatchRunSummary> RunAsync(string text, string function, BatchRunOptions options, InputFormat format = InputFormat.Text,
        DtsClient? client = null, CancellationToken? cancellationToken = null)
    {
        using var own = client is null ? Client(options.Concurrency) : null;
        await using var source = LineSource.Create(format, Input(text));
        await using var sink = new JsonLinesResultSink(_dir.File("results.jsonl"), _dir.File("errors.jsonl"));
        return await (client ?? own!).RunAsync(source, function, sink, options, cancellationToken ?? Ct);
    }

    [Fact]
    public async Task Text_EveryLineIsOneResult_BlankLinesAreErrors_OtherJobsOfTheUserAreLeftAlone()
    {
        using var client = Client();
        // A job of the same user outside the run: the run must neither write nor acknowledge its result.
        var other = await client.SubmitAsync("up", ["outside"], Ct);
        var view = await client.WaitAsync(other.Id, cancellationToken: Ct);
        Assert.Equal(JobState.Succeeded, view.State);

        var summary = await RunAsync("alpha\n\nbeta\ngamma\n   \ndelta\n", "up", new BatchRunOptions { Concurrency = 4, CheckpointPath = _dir.File("cp.json") }, client: client);

        Assert.True(summary.Complete);
        var results = Read(_dir.File("results.jsonl"));
        Assert.Equal(["ALPHA", "BETA", "GAMMA", "DELTA"], results.OrderBy(r => r.GetProperty("record").GetInt64()).Select(r => r.GetProperty("result").GetString()));
        Assert.Equal("beta", results.Single(r => r.GetProperty("record").GetInt64() == 3).GetProperty("input").GetString());
        var errors = Read(_dir.File("errors.jsonl"));
        Assert.Equal([2L, 5L], errors.Select(e => e.GetProperty("line").GetInt64()).Order());
        Assert.All(errors, e => Assert.Equal(RecordErrors.BlankLine, e.GetProperty("error").GetProperty("code").GetString()));
        Assert.Equal((6, 2), (summary.Written, summary.Failed));

        var pending = await client.ReadResultPageAsync(10, TimeSpan.Zero, cancellationToken: Ct);
        Assert.Equal([other.Id], pending.Select(j => j.Id));
        Assert.True((await RunCheckpoint.LoadAsync(_dir.File("cp.json"), Ct))!.Complete);
    }

    [Fact]
    public async Task Json_KwargsAndExplicitForms_RunAndInvalidLinesGoToErrors()
    {
        var summary = await RunAsync("{\"a\":1,\"b\":2}\n{not json\n{\"kwargs\":{\"x\":1}}\n", "count", new BatchRunOptions { Concurrency = 2 }, InputFormat.Json);
        Assert.True(summary.Complete);
        var results = Read(_dir.File("results.jsonl")).ToDictionary(r => r.GetProperty("record").GetInt64());
        Assert.Equal(2, results[1].GetProperty("result").GetInt32());
        Assert.Equal(1, results[3].GetProperty("result").GetInt32());
        var error = Assert.Single(Read(_dir.File("errors.jsonl")));
        Assert.Equal((2L, RecordErrors.InvalidJson), (error.GetProperty("line").GetInt64(), error.GetProperty("error").GetProperty("code").GetString()));
    }

    [Fact]
    public async Task Words_EachWordIsAJob()
    {
        var summary = await RunAsync("a bb\nccc", "up", new BatchRunOptions { Concurrency = 2 }, InputFormat.Words);
        Assert.True(summary.Complete);
        Assert.Equal(["A", "BB", "CCC"], Read(_dir.File("results.jsonl")).OrderBy(r => r.GetProperty("record").GetInt64()).Select(r => r.GetProperty("result").GetString()));
    }

    [Fact]
    public async Task Start_SkipsTheFirstRecords()
    {
        var summary = await RunAsync(Lines(10), "up", new BatchRunOptions { Concurrency = 4, Start = 7 });
        Assert.True(summary.Complete);
        Assert.Equal([8L, 9L, 10L], Records(_dir.File("results.jsonl")).Order());
    }

    [Fact]
    public async Task FailedJobs_GoToTheErrorsFile_WithTheirCodeAndAttempts()
    {
        var summary = await RunAsync("x\ny\n", "fail", new BatchRunOptions { Concurrency = 2 });
        Assert.Equal(2, summary.Failed);
        Assert.Empty(Read(_dir.File("results.jsonl")));
        Assert.All(Read(_dir.File("errors.jsonl")), e =>
        {
            Assert.Equal("no_good", e.GetProperty("error").GetProperty("code").GetString());
            Assert.Equal(1, e.GetProperty("attempts").GetInt32());
        });
    }

    [Fact]
    public async Task Ordered_WritesOutcomesInRecordOrder_WithAWindowSmallerThanTheInput()
    {
        var text = string.Concat(Enumerable.Range(1, 300).Select(i => i % 50 == 0 ? "\n" : $"{new string('w', i % 7 + 1)} {i}\n"));
        var summary = await RunAsync(text, "up", new BatchRunOptions { Concurrency = 16, Ordered = true, Window = 40 });
        Assert.True(summary.Complete);
        var results = Records(_dir.File("results.jsonl"));
        Assert.Equal(294, results.Count);
        Assert.Equal(results.Order(), results);
        Assert.Equal([50L, 100L, 150L, 200L, 250L, 300L], Records(_dir.File("errors.jsonl")));
    }

    [Fact]
    public async Task KilledMidRun_ThenResumed_WritesEveryRecordExactlyOnce()
    {
        const int total = 2000;
        var text = string.Concat(Enumerable.Range(1, total).Select(i => i % 97 == 0 ? "\n" : $"line {i}\n"));
        var checkpoint = _dir.File("cp.json");
        using (var kill = CancellationTokenSource.CreateLinkedTokenSource(Ct))
        {
            var options = new BatchRunOptions
            {
                Concurrency = 32,
                CheckpointPath = checkpoint,
                // The hard token is the closest in-process stand-in for kill -9: nothing after it runs.
                Progress = p => { if (p.Written >= total / 3) kill.Cancel(); },
            };
            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => RunAsync(text, "up", options, cancellationToken: kill.Token));
        }
        // Lines written after the last checkpoint are what a crash leaves behind: resume must cut them off.
        await File.AppendAllTextAsync(_dir.File("results.jsonl"), "{\"record\":1,\"torn\":", Ct);
        var before = File.ReadAllLines(_dir.File("results.jsonl")).Length;
        Assert.InRange(before, 1, total - 1);

        var summary = await RunAsync(text, "up", new BatchRunOptions { Concurrency = 32, CheckpointPath = checkpoint, Resume = true });

        Assert.True(summary.Complete);
        Assert.True(summary.Resumed);
        var all = Records(_dir.File("results.jsonl")).Concat(Records(_dir.File("errors.jsonl"))).ToList();
        Assert.Equal(total, all.Count);
        Assert.Equal(Enumerable.Range(1, total).Select(i => (long)i), all.Order());
        Assert.All(Read(_dir.File("results.jsonl")), r =>
            Assert.Equal(r.GetProperty("input").GetString()!.ToUpperInvariant(), r.GetProperty("result").GetString()));
    }

    [Fact]
    public async Task StopSubmitting_FinishesTheJobsInFlight_AndAResumeFinishesTheRest()
    {
        const int total = 500;
        var checkpoint = _dir.File("cp.json");
        using var stop = new CancellationTokenSource();
        var first = await RunAsync(Lines(total), "up", new BatchRunOptions
        {
            Concurrency = 8,
            CheckpointPath = checkpoint,
            StopSubmitting = stop.Token,
            Progress = p => { if (p.Written >= 50) stop.Cancel(); },
        });
        Assert.False(first.Complete);
        Assert.False((await RunCheckpoint.LoadAsync(checkpoint, Ct))!.Complete);

        var second = await RunAsync(Lines(total), "up", new BatchRunOptions { Concurrency = 8, CheckpointPath = checkpoint, Resume = true });
        Assert.True(second.Complete);
        Assert.Equal(Enumerable.Range(1, total).Select(i => (long)i), Records(_dir.File("results.jsonl")).Order());
    }

    [Fact]
    public async Task ACheckpointOfAnotherRun_IsNotOverwrittenWithoutResume()
    {
        await RunAsync(Lines(3), "up", new BatchRunOptions { Concurrency = 2, CheckpointPath = _dir.File("cp.json") });
        var ex = await Assert.ThrowsAsync<BatchRunStateException>(() => RunAsync(Lines(3), "up", new BatchRunOptions { Concurrency = 2, CheckpointPath = _dir.File("cp.json") }));
        Assert.Contains("resume", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RateLimited_RunsWaitOutThe429s_WithoutLosingOrDoublingRecords()
    {
        using var admin = await _server.UserAsync("root", Roles.Administrator);
        var created = await admin.CallAsync(HttpMethod.Post, AdminRoutes.Users,
            """{"name":"slow","roles":["client"],"submit_rate":40,"submit_burst":5}""", AdminJsonContext.Default.UserSecretResponse);
        using var client = Client(concurrency: 20, user: "slow", secret: created.Secret, snooze: TimeSpan.FromMilliseconds(50));

        var summary = await RunAsync(Lines(60), "up", new BatchRunOptions { Concurrency = 20 }, client: client);

        Assert.True(summary.Complete);
        var results = Read(_dir.File("results.jsonl"));
        Assert.Equal(Enumerable.Range(1, 60).Select(i => (long)i), results.Select(r => r.GetProperty("record").GetInt64()).Order());
        Assert.Equal(60, results.Select(r => r.GetProperty("job_id").GetString()).Distinct().Count());
        Assert.Empty(Read(_dir.File("errors.jsonl")));
    }

    [Fact]
    public async Task ABatchWhoseAnswerIsLostAfterItsJobsFinished_IsResent_AndEveryRecordRunsOnce()
    {
        using var watcher = Client();
        var lossy = LoseAnswerHandler.OfBatches(async answer =>
        {
            // Hold the lost answer back until every job of the batch has ended: the resend then finds them finished.
            var sent = await answer.Content.ReadFromJsonAsync(DtsJsonContext.Default.SubmitBatchResponse, Ct);
            foreach (var job in sent!.Jobs)
                Assert.True((await watcher.WaitAsync(job.Id, TimeSpan.FromSeconds(30), Ct)).State.IsTerminal());
        });
        using var client = Client(lossy, concurrency: 8);

        var summary = await RunAsync(Lines(20), "up", new BatchRunOptions { Concurrency = 8 }, client: client);

        Assert.Equal(1, lossy.Lost);
        Assert.True(summary.Complete);
        var results = Read(_dir.File("results.jsonl"));
        Assert.Equal(Enumerable.Range(1, 20).Select(i => (long)i), results.Select(r => r.GetProperty("record").GetInt64()).Order());
        Assert.Equal(20, results.Select(r => r.GetProperty("job_id").GetString()).Distinct().Count());
        Assert.All(Enumerable.Range(1, 20), i => Assert.Equal(1, _runs[$"line {i}"]));
    }

    [Fact]
    public async Task ARunIdGivenAgainWithoutACheckpoint_TakesTheOutcomesOfTheJobsItMade_InsteadOfWaitingForThem()
    {
        var options = new BatchRunOptions { Concurrency = 4, RunId = "again" };
        Assert.True((await RunAsync(Lines(6), "up", options)).Complete);
        var firstJobs = Read(_dir.File("results.jsonl")).Select(r => r.GetProperty("job_id").GetString()).Order().ToList();
        File.Delete(_dir.File("results.jsonl"));

        // Every result of the first run is acknowledged, so none comes through the results feed again.
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        limit.CancelAfter(TimeSpan.FromSeconds(60));
        var second = await RunAsync(Lines(6), "up", options, cancellationToken: limit.Token);

        Assert.True(second.Complete);
        var results = Read(_dir.File("results.jsonl"));
        Assert.Equal(Enumerable.Range(1, 6).Select(i => (long)i), results.Select(r => r.GetProperty("record").GetInt64()).Order());
        Assert.Equal(firstJobs, results.Select(r => r.GetProperty("job_id").GetString()).Order());
        Assert.All(Enumerable.Range(1, 6), i => Assert.Equal(1, _runs[$"line {i}"]));
    }

    [Fact]
    public async Task AResumedRunCheckpointedByAnOlderClient_RecognisesTheJobsItMadeWithTheOlderKeys()
    {
        var checkpoint = _dir.File("cp.json");
        await new RunCheckpoint { RunId = "older", Function = "up", Contiguous = 0, Written = [] }.SaveAsync(checkpoint, Ct);
        using var client = Client();
        var made = await client.SubmitAsync(new SubmitJobRequest
        {
            Function = "up", Args = JsonValues.StringArray(["line 2"]), UniqueKey = "older:2", Tags = ["run:older"],
        }, Ct);
        Assert.Equal(JobState.Succeeded, (await client.WaitAsync(made.Id, cancellationToken: Ct)).State);

        var summary = await RunAsync(Lines(3), "up", new BatchRunOptions { Concurrency = 2, CheckpointPath = checkpoint, Resume = true }, client: client);

        Assert.True(summary.Complete);
        var results = Read(_dir.File("results.jsonl")).ToDictionary(r => r.GetProperty("record").GetInt64());
        Assert.Equal([1L, 2L, 3L], results.Keys.Order());
        Assert.Equal(made.Id, results[2].GetProperty("job_id").GetString());
        Assert.Equal(1, _runs["line 2"]);
    }

    [Fact]
    public async Task AJobPurgedBetweenTheAttachingAnswerAndItsFetch_HasItsRecordSubmittedAgain()
    {
        var options = new BatchRunOptions { Concurrency = 4, RunId = "purged" };
        Assert.True((await RunAsync(Lines(4), "up", options)).Complete);
        var firstJobs = Read(_dir.File("results.jsonl")).Select(r => r.GetProperty("job_id").GetString()).ToHashSet();
        File.Delete(_dir.File("results.jsonl"));

        // The second run's batch attaches to the four finished jobs; an administrator purges them before the run fetches them.
        using var admin = await _server.UserAsync("root", Roles.Administrator);
        var purge = new AfterFirstAnswer(r => r.RequestUri!.AbsolutePath == ApiRoutes.JobsBatch, async () =>
        {
            var done = await admin.CallAsync(HttpMethod.Post, AdminRoutes.JobsPurge, """{"function":"up"}""", AdminJsonContext.Default.JobPurgeResponse);
            Assert.Equal(4, done.Purged);
        });
        using var client = Client(purge, concurrency: 4);
        using var limit = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        limit.CancelAfter(TimeSpan.FromSeconds(60));

        var second = await RunAsync(Lines(4), "up", options, client: client, cancellationToken: limit.Token);

        Assert.True(purge.Done);
        Assert.True(second.Complete);
        var results = Read(_dir.File("results.jsonl"));
        Assert.Equal([1L, 2L, 3L, 4L], results.Select(r => r.GetProperty("record").GetInt64()).Order());
        Assert.DoesNotContain(results, r => firstJobs.Contains(r.GetProperty("job_id").GetString()));
        Assert.All(Enumerable.Range(1, 4), i => Assert.Equal(2, _runs[$"line {i}"]));
    }

    /// <summary>Runs <paramref name="action"/> once, after the first matching request's answer has arrived and before the caller sees it.</summary>
    private sealed class AfterFirstAnswer(Func<HttpRequestMessage, bool> match, Func<Task> action) : DelegatingHandler(new SocketsHttpHandler())
    {
        private int _done;

        public bool Done => Volatile.Read(ref _done) == 1;

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await base.SendAsync(request, cancellationToken);
            if (match(request) && Interlocked.CompareExchange(ref _done, 1, 0) == 0) await action();
            return response;
        }
    }
}
