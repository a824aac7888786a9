using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Globalization;
using Dts.Contracts;
using Dts.Core.Storage;
using Dts.Server;
using Dts.Storage.Sqlite;
using Dts.Testing;
using Dts.Worker;
using Microsoft.Extensions.Logging;

namespace Dts.Client.Tests;

/// <summary>
/// Several servers in the connection: real Kestrel servers on loopback that share one store, as
/// servers of a cluster share one database.
/// </summary>
public sealed class FailoverTests : IAsyncLifetime
{
    private readonly TempDirectory _dir = new("dts-failover");
    private SqliteJobStore _store = null!;
    private readonly List<DtsServer> _servers = [];
    private string _clientSecret = "";
    private string _workerSecret = "";

    public async ValueTask InitializeAsync()
    {
        _store = DtsServer.OpenSqliteStore(Options());
        var first = await StartServerAsync();
        _clientSecret = await first.CreateUserAsync("alice", [Roles.Client]);
        _workerSecret = await first.CreateUserAsync("bob", [Roles.Worker]);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var server in _servers) await server.DisposeAsync();
        await _store.DisposeAsync();
        _dir.Dispose();
    }

    private DtsServerOptions Options() => new() { Url = "http://127.0.0.1:0", DataDirectory = _dir.Path };

    private async Task<DtsServer> StartServerAsync()
    {
        var server = await DtsServer.StartAsync(Options(), TimeProvider.System, _store,
            logging: b => b.AddSimpleConsole().SetMinimumLevel(LogLevel.Error), ownsStore: false,
            cancellationToken: TestContext.Current.CancellationToken);
        _servers.Add(server);
        return server;
    }

    /// <summary>A loopback URL where nothing listens: connecting is refused.</summary>
    private static string DeadUrl()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return $"http://127.0.0.1:{port}";
    }

    private DtsConnectionOptions ClientOptions(params string[] urls) => new()
    {
        ServerUrls = urls,
        UserId = "alice",
        Secret = _clientSecret,
        MaxConcurrency = 4,
        FailoverBackoff = TimeSpan.FromMilliseconds(20),
    };

    private DtsConnectionOptions WorkerConnectionOptions(params string[] urls) => new()
    {
        ServerUrls = urls,
        UserId = "bob",
        Secret = _workerSecret,
        MaxConcurrency = 4,
        FailoverBackoff = TimeSpan.FromMilliseconds(20),
    };

    private static DtsWorkerOptions WorkerOptions(string secret, ConcurrentQueue<string> log) => new()
    {
        ServerUrl = "http://unused.invalid",
        UserId = "bob",
        Secret = secret,
        Concurrency = 4,
        LeaseWaitSeconds = 1,
        MinBackoff = TimeSpan.FromMilliseconds(20),
        Log = log.Enqueue,
    };

    private static string Url(DtsServer server) => server.Url.ToString().TrimEnd('/');

    private async Task<int> UnfinishedJobsAsync() => (int)await _store.JobCountUnfinishedAsync(new JobCountUnfinishedParams("alice"), CancellationToken.None);

    [Fact]
    public async Task FirstServerRefusesConnections_RequestsGoToTheSecond()
    {
        var ct = TestContext.Current.CancellationToken;
        var live = _servers[0];
        var moves = new ConcurrentQueue<string>();
        using var client = new DtsClient(new DtsConnectionOptions
        {
            ServerUrls = [DeadUrl(), Url(live)],
            UserId = "alice",
            Secret = _clientSecret,
            Log = moves.Enqueue,
        });

        var submitted = await client.SubmitAsync("echo", ["x"], ct);
        var view = await client.GetJobAsync(submitted.Id, ct);

        Assert.Equal(submitted.Id, view.Id);
        Assert.False(submitted.Coalesced);
        Assert.Equal(live.Url, client.Connection.CurrentServer);
        Assert.Single(moves);
        Assert.Contains(live.Url.ToString(), moves.Single(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task OneServerThatIsDown_FailsAfterTheBudget_WithTheServersNamed()
    {
        var dead = DeadUrl();
        using var client = new DtsClient(new DtsConnectionOptions
        {
            ServerUrl = dead,
            UserId = "alice",
            Secret = _clientSecret,
            FailoverBudget = TimeSpan.Zero,
        });

        var ex = await Assert.ThrowsAsync<HttpRequestException>(() => client.SubmitAsync("echo", ["x"], TestContext.Current.CancellationToken));

        Assert.Contains(dead, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task SubmitWhoseAnswerIsLost_IsResentToTheOtherServer_AndMakesOneJob()
    {
        var ct = TestContext.Current.CancellationToken;
        var b = await StartServerAsync();
        var lossy = new LoseAnswerHandler(r => r.Method == HttpMethod.Post && r.RequestUri!.AbsolutePath == ApiRoutes.Jobs);
        using var client = new DtsClient(new DtsConnection(ClientOptions(Url(_servers[0]), Url(b)), lossy));

        var answer = await client.SubmitAsync(new SubmitJobRequest { Function = "echo", Args = JsonValues.StringArray(["once"]) }, ct);

        Assert.Equal(1, lossy.Lost);
        Assert.False(answer.Coalesced);
        Assert.Equal(b.Url, client.Connection.CurrentServer);
        Assert.Equal(1, await UnfinishedJobsAsync());
        var view = await client.GetJobAsync(answer.Id, ct);
        Assert.StartsWith(DtsClient.AutoUniqueKeyPrefix, view.UniqueKey, StringComparison.Ordinal);
    }

    [Fact]
    public async Task BatchWhoseAnswerIsLost_MakesEachJobOnce()
    {
        var ct = TestContext.Current.CancellationToken;
        var lossy = new LoseAnswerHandler(r => r.RequestUri!.AbsolutePath == ApiRoutes.JobsBatch);
        using var client = new DtsClient(new DtsConnection(ClientOptions(Url(_servers[0])), lossy));
        SubmitJobRequest[] jobs = [.. Enumerable.Range(0, 5).Select(i => new SubmitJobRequest { Function = "echo", Args = JsonValues.StringArray([$"{i}"]) })];

        var answers = await client.SubmitBatchAsync(jobs, ct);

        Assert.Equal(1, lossy.Lost);
        Assert.Equal(5, answers.Select(a => a.Id).Distinct().Count());
        Assert.All(answers, a => Assert.False(a.Coalesced));
        Assert.All(jobs, j => Assert.Null(j.UniqueKey));
        Assert.Equal(5, await UnfinishedJobsAsync());
    }

    [Fact]
    public async Task CallersOwnUniqueKey_IsKept_AndStillCoalesces()
    {
        var ct = TestContext.Current.CancellationToken;
        using var client = new DtsClient(ClientOptions(Url(_servers[0])));

        var first = await client.SubmitAsync(new SubmitJobRequest { Function = "echo", UniqueKey = "mine" }, ct);
        var second = await client.SubmitAsync(new SubmitJobRequest { Function = "echo", UniqueKey = "mine" }, ct);
        var third = await client.SubmitAsync(new SubmitJobRequest { Function = "echo" }, ct);

        Assert.Equal(first.Id, second.Id);
        Assert.True(second.Coalesced);
        Assert.NotEqual(first.Id, third.Id);
        Assert.Equal("mine", (await client.GetJobAsync(first.Id, ct)).UniqueKey);
    }

    [Fact]
    public async Task ReportWhoseAnswerIsLost_FinishesTheJobOnce_AndTheWorkerGoesOn()
    {
        var ct = TestContext.Current.CancellationToken;
        var lossy = new LoseAnswerHandler(r => r.RequestUri!.AbsolutePath.EndsWith("/reports", StringComparison.Ordinal));
        using var workerConnection = new DtsConnection(WorkerConnectionOptions(Url(_servers[0])), lossy);
        var log = new ConcurrentQueue<string>();
        var runs = new ConcurrentDictionary<string, int>();
        using var stop = new CancellationTokenSource();
        await using var worker = new DtsWorker(workerConnection, WorkerOptions(_workerSecret, log));
        worker.Handle("echo", (job, _) =>
        {
            runs.AddOrUpdate(job.Id, 1, (_, n) => n + 1);
            return Task.FromResult(job.Args[0].GetString()!);
        });
        var run = worker.RunAsync(stop.Token);
        using var client = new DtsClient(ClientOptions(Url(_servers[0])));

        var first = await client.SubmitAsync("echo", ["one"], ct);
        var firstView = await client.WaitAsync(first.Id, TimeSpan.FromSeconds(30), ct);
        var second = await client.SubmitAsync("echo", ["two"], ct);
        var secondView = await client.WaitAsync(second.Id, TimeSpan.FromSeconds(30), ct);
        await stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(30), ct);

        Assert.Equal(1, lossy.Lost);
        Assert.Equal(JobState.Succeeded, firstView.State);
        Assert.Equal("one", firstView.Result!.Value.GetString());
        Assert.Equal(1, firstView.Attempts);
        Assert.Equal(JobState.Succeeded, secondView.State);
        Assert.Equal(1, runs[first.Id]);
        Assert.Equal(1, runs[second.Id]);
        Assert.DoesNotContain(log, line => line.Contains("not applied", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ServerStopsMidStream_ClientAndWorkerCarryOnWithTheOther_EveryJobOnce()
    {
        var ct = TestContext.Current.CancellationToken;
        var a = _servers[0];
        var b = await StartServerAsync();
        var urls = new[] { Url(a), Url(b) };
        using var workerConnection = new DtsConnection(WorkerConnectionOptions(urls));
        var log = new ConcurrentQueue<string>();
        var runs = new ConcurrentDictionary<string, int>();
        using var stop = new CancellationTokenSource();
        await using var worker = new DtsWorker(workerConnection, WorkerOptions(_workerSecret, log));
        worker.Handle("square", (job, _) =>
        {
            runs.AddOrUpdate(job.Id, 1, (_, n) => n + 1);
            var n = job.Args[0].GetInt32();
            return Task.FromResult(JsonValues.Parse((n * n).ToString(CultureInfo.InvariantCulture)));
        });
        var run = worker.RunAsync(stop.Token);
        using var client = new DtsClient(ClientOptions(urls));

        const int half = 30;
        var ids = new List<string>();
        var results = new ConcurrentDictionary<string, int>();
        using var readerStop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var reader = Task.Run(async () =>
        {
            try
            {
                await foreach (var job in client.ReadResultsAsync(max: 7, cancellationToken: readerStop.Token))
                    results.AddOrUpdate(job.Id, 1, (_, n) => n + 1);
            }
            catch (OperationCanceledException) when (readerStop.IsCancellationRequested)
            {
            }
        }, CancellationToken.None);

        async Task SubmitAsync(int from)
        {
            for (var i = from; i < from + half; i++)
            {
                var args = JsonValues.Parse($"[{i.ToString(CultureInfo.InvariantCulture)}]");
                ids.Add((await client.SubmitAsync("square", args, cancellationToken: ct)).Id);
            }
        }

        await SubmitAsync(0);
        await Eventually.TrueAsync(() => runs.Count >= half / 3, "some jobs of the first half ran on server A");
        await a.StopAsync(ct);
        await SubmitAsync(half);
        await Eventually.TrueAsync(() => ids.All(results.ContainsKey), "every job's result was read");
        await readerStop.CancelAsync();
        await reader;
        await stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(30), ct);

        Assert.Equal(2 * half, ids.Distinct().Count());
        Assert.Equal(b.Url, client.Connection.CurrentServer);
        Assert.Equal(b.Url, workerConnection.CurrentServer);
        foreach (var id in ids)
        {
            Assert.Equal(1, runs[id]);
            var record = await _store.JobGetAsync(new JobGetParams(id), ct);
            Assert.NotNull(record);
            Assert.Equal(JobState.Succeeded, record.State);
            Assert.Equal(1, record.Attempts);
        }
        Assert.Equal(0, await UnfinishedJobsAsync());
        // Results are delivered at least once; none is lost, and every result read is one of ours.
        Assert.All(results.Keys, id => Assert.Contains(id, ids));
    }

    [Fact]
    public void EmptyOrMalformedServerLists_AreArgumentExceptions()
    {
        Assert.Throws<ArgumentException>(() => new DtsConnection(new DtsConnectionOptions { UserId = "u", Secret = "s" }));
        Assert.Throws<ArgumentException>(() => new DtsConnection(new DtsConnectionOptions { ServerUrls = [], UserId = "u", Secret = "s" }));
        Assert.Throws<ArgumentException>(() => new DtsConnection(new DtsConnectionOptions { ServerUrls = ["http://127.0.0.1:1", ""], UserId = "u", Secret = "s" }));
        var ex = Assert.Throws<ArgumentException>(() => new DtsConnection(new DtsConnectionOptions { ServerUrls = ["http://127.0.0.1:1", "not a url"], UserId = "u", Secret = "s" }));
        Assert.Contains("not a url", ex.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => new DtsConnection(new DtsConnectionOptions { ServerUrl = "ftp://example.org", UserId = "u", Secret = "s" }));
        Assert.Throws<ArgumentException>(() => new DtsWorker(new DtsWorkerOptions { ServerUrls = [], UserId = "u", Secret = "s" }));
    }

    [Fact]
    public void ServerUrlAndServerUrls_MakeOneOrderedListWithoutRepeats()
    {
        var options = new DtsConnectionOptions { ServerUrl = "http://a:1", ServerUrls = ["http://b:2/", "http://a:1/", "http://c:3/api"], UserId = "u", Secret = "s" };
        using var connection = new DtsConnection(options);

        Assert.Equal(["http://a:1/", "http://b:2/", "http://c:3/api/"], connection.Servers.Select(u => u.ToString()));
        Assert.Equal(new Uri("http://a:1/"), connection.CurrentServer);
        Assert.Equal("http://b:2/", new DtsConnectionOptions { ServerUrls = ["http://b:2/"], UserId = "u", Secret = "s" }.ServerUrl);
    }

    [Theory]
    [InlineData("not a url")]
    [InlineData("")]
    public async Task Cli_MalformedServer_IsOneLineAndExitCode2(string url)
    {
        await using var process = await DtsProcess.RunAsync(
            ["client", "status", "--server", Url(_servers[0]), "--server", url, "--user", "alice", "--secret", _clientSecret, "some-job"],
            TimeSpan.FromSeconds(60));

        Assert.Equal(2, process.ExitCode);
        var lines = process.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.Contains("dts client", lines[0], StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cli_SeveralServers_FromOptionsOrTheEnvironment_SkipsTheDeadOne()
    {
        var live = Url(_servers[0]);
        await using var byOptions = await DtsProcess.RunAsync(
            ["client", "submit", "--server", DeadUrl(), "--server", live, "--user", "alice", "--secret", _clientSecret, "-f", "echo", "-a", "x"],
            TimeSpan.FromSeconds(60));
        Assert.True(byOptions.ExitCode == 0, byOptions.Stderr);

        await using var byEnvironment = await DtsProcess.RunAsync(
            ["client", "submit", "--user", "alice", "--secret", _clientSecret, "-f", "echo", "-a", "y"],
            TimeSpan.FromSeconds(60), new Dictionary<string, string> { ["DTS_URL"] = $"{DeadUrl()}, {live}" });
        Assert.True(byEnvironment.ExitCode == 0, byEnvironment.Stderr);
        Assert.Equal(2, await UnfinishedJobsAsync());
    }
}
