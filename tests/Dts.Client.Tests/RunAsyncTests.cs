using System.Net;
using System.Text.Json;
using Dts.Contracts;
using Dts.Core.Storage;
using Dts.Server;
using Dts.Storage.Sqlite;
using Dts.Testing;
using Dts.Worker;
using Microsoft.Extensions.Logging;

namespace Dts.Client.Tests;

/// <summary><see cref="DtsClient.RunAsync"/>: submit and wait in one request, then long polls.</summary>
public sealed class RunAsyncTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static DtsClient FakeClient(FakeHandler fake) => new(new DtsConnection(new DtsConnectionOptions
    {
        ServerUrl = "http://127.0.0.1:7070",
        UserId = "alice",
        Secret = "0123456789abcdef0123456789abcdef",
    }, fake));

    private static string Submitted(string state, bool withJob = true) => withJob
        ? $$$"""{"id":"j1","state":"queued","coalesced":false,"job":{"id":"j1","function":"f","owner":"alice","state":"{{{state}}}","attempts":0,"max_attempts":3}}"""
        : """{"id":"j1","state":"queued","coalesced":false}""";

    private const string SucceededView = """{"id":"j1","function":"f","owner":"alice","state":"succeeded","result":"ok","attempts":1,"max_attempts":3}""";

    [Fact]
    public async Task UnfinishedAfterTheSubmitsWait_GoesOnWithWaitAsync()
    {
        var fake = new FakeHandler((r, _) => Task.FromResult(FakeHandler.Json(
            r.Method == HttpMethod.Post ? HttpStatusCode.Created : HttpStatusCode.OK,
            r.Method == HttpMethod.Post ? Submitted("running") : SucceededView)));
        using var client = FakeClient(fake);

        var view = await client.RunAsync(new SubmitJobRequest { Function = "f" }, TimeSpan.FromMinutes(5), Ct);

        Assert.Equal(JobState.Succeeded, view.State);
        Assert.Equal("ok", view.Result!.Value.GetString());
        var requests = fake.Requests.ToArray();
        Assert.Equal(2, requests.Length);
        Assert.Equal(HttpMethod.Post, requests[0].Method);
        Assert.Equal(ApiRoutes.Jobs, requests[0].Uri.AbsolutePath);
        Assert.Equal("?wait_seconds=60", requests[0].Uri.Query);
        var sent = JsonSerializer.Deserialize(requests[0].BodyText, DtsJsonContext.Default.SubmitJobRequest)!;
        Assert.StartsWith(DtsClient.AutoUniqueKeyPrefix, sent.UniqueKey, StringComparison.Ordinal);
        Assert.Equal(HttpMethod.Get, requests[1].Method);
        Assert.Equal(ApiRoutes.Job("j1"), requests[1].Uri.AbsolutePath);
        Assert.StartsWith("?wait_seconds=", requests[1].Uri.Query, StringComparison.Ordinal);
    }

    [Fact]
    public async Task FinishedInTheSubmitsAnswer_IsOneRequest_WaitingNoLongerThanTheTimeout()
    {
        var fake = new FakeHandler((_, _) => Task.FromResult(FakeHandler.Json(HttpStatusCode.Created, Submitted("dead"))));
        using var client = FakeClient(fake);

        var view = await client.RunAsync(new SubmitJobRequest { Function = "f", UniqueKey = "mine" }, TimeSpan.FromSeconds(2.5), Ct);

        Assert.Equal(JobState.Dead, view.State);
        var request = Assert.Single(fake.Requests);
        Assert.Equal("?wait_seconds=2.5", request.Uri.Query);
        Assert.Equal("mine", JsonSerializer.Deserialize(request.BodyText, DtsJsonContext.Default.SubmitJobRequest)!.UniqueKey);
    }

    [Fact]
    public async Task AnswerWithoutTheJob_AsFromAnOlderServer_IsWaitedForWithWaitAsync()
    {
        var fake = new FakeHandler((r, _) => Task.FromResult(FakeHandler.Json(
            r.Method == HttpMethod.Post ? HttpStatusCode.Created : HttpStatusCode.OK,
            r.Method == HttpMethod.Post ? Submitted("queued", withJob: false) : SucceededView)));
        using var client = FakeClient(fake);

        var view = await client.RunAsync(new SubmitJobRequest { Function = "f" }, cancellationToken: Ct);

        Assert.Equal(JobState.Succeeded, view.State);
        Assert.Equal(2, fake.Calls);
    }

    [Fact]
    public async Task NegativeTimeout_IsRefused()
    {
        var fake = new FakeHandler((_, _) => Task.FromResult(FakeHandler.Json(HttpStatusCode.Created, Submitted("queued"))));
        using var client = FakeClient(fake);

        await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => client.RunAsync(new SubmitJobRequest { Function = "f" }, TimeSpan.FromSeconds(-1), Ct));
        Assert.Equal(0, fake.Calls);
    }

    [Fact]
    public async Task RealServerAndWorker_RunsTheJobToItsResult()
    {
        await using var server = await TestServer.StartAsync();
        var clientSecret = await server.Server.CreateUserAsync("alice", [Roles.Client], Ct);
        var workerSecret = await server.Server.CreateUserAsync("w", [Roles.Worker], Ct);
        var url = server.Url.ToString().TrimEnd('/');
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var worker = new DtsWorker(new DtsWorkerOptions { ServerUrl = url, UserId = "w", Secret = workerSecret, Concurrency = 2, LeaseWaitSeconds = 1 })
            .Handle("upper", (job, _) => Task.FromResult(job.Args[0].GetString()!.ToUpperInvariant()));
        var running = worker.RunAsync(stop.Token);
        try
        {
            using var client = new DtsClient("alice", clientSecret, url);
            var view = await client.RunAsync(new SubmitJobRequest { Function = "upper", Args = JsonValues.StringArray(["abc"]) }, TimeSpan.FromSeconds(60), Ct);

            Assert.Equal(JobState.Succeeded, view.State);
            Assert.Equal("ABC", view.Result!.Value.GetString());
        }
        finally
        {
            await stop.CancelAsync();
            await running;
        }
    }

    [Fact]
    public async Task AnswerLost_IsResentToTheOtherServer_AndWaitsForTheSameJob()
    {
        await using var servers = await TwoServers.StartAsync();
        var (store, a) = (servers.Store, servers.A);
        var secret = await a.CreateUserAsync("alice", [Roles.Client], Ct);
        var lossy = LoseAnswerHandler.OfSubmits();
        using var client = servers.Client("alice", secret, lossy);

        // No worker: each send waits its short while and the job comes back queued.
        var view = await client.RunAsync(new SubmitJobRequest { Function = "nobody" }, TimeSpan.FromSeconds(0.3), Ct);

        Assert.Equal(1, lossy.Lost);
        Assert.Equal(JobState.Queued, view.State);
        Assert.StartsWith(DtsClient.AutoUniqueKeyPrefix, view.UniqueKey, StringComparison.Ordinal);
        Assert.Equal(1, await store.JobCountUnfinishedAsync(new JobCountUnfinishedParams("alice"), Ct));
    }

    [Fact]
    public async Task AnswerLostAfterTheJobFinished_TheResendGetsThatJobsResult_AndTheJobRanOnce()
    {
        await using var servers = await TwoServers.StartAsync();
        var (store, a) = (servers.Store, servers.A);
        var secret = await a.CreateUserAsync("alice", [Roles.Client], Ct);
        var workerSecret = await a.CreateUserAsync("w", [Roles.Worker], Ct);
        var runs = 0;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var worker = new DtsWorker(new DtsWorkerOptions { ServerUrl = a.Url.ToString().TrimEnd('/'), UserId = "w", Secret = workerSecret, LeaseWaitSeconds = 1 })
            .Handle("upper", (job, _) =>
            {
                Interlocked.Increment(ref runs);
                return Task.FromResult(job.Args[0].GetString()!.ToUpperInvariant());
            });
        var running = worker.RunAsync(stop.Token);
        try
        {
            // The waiting submit's answer comes after the job has ended; it is lost, and the copy goes to b.
            var lossy = LoseAnswerHandler.OfSubmits();
            using var client = servers.Client("alice", secret, lossy);

            var view = await client.RunAsync(new SubmitJobRequest { Function = "upper", Args = JsonValues.StringArray(["abc"]) }, TimeSpan.FromSeconds(60), Ct);

            Assert.Equal(1, lossy.Lost);
            Assert.Equal(JobState.Succeeded, view.State);
            Assert.Equal("ABC", view.Result!.Value.GetString());
            Assert.Equal(1, Volatile.Read(ref runs));
            var all = await store.JobSearchAsync(new JobSearchParams { Owner = "alice", Limit = 10 }, Ct);
            Assert.Equal([view.Id], all.Jobs.Select(j => j.Id));
        }
        finally
        {
            await stop.CancelAsync();
            await running;
        }
    }

    /// <summary>Two servers a and b on one SQLite store, as a client listing both sees them.</summary>
    private sealed class TwoServers : IAsyncDisposable
    {
        private readonly TempDirectory _dir;

        private TwoServers(TempDirectory dir, SqliteJobStore store, DtsServer a, DtsServer b) => (_dir, Store, A, B) = (dir, store, a, b);

        public SqliteJobStore Store { get; }
        public DtsServer A { get; }
        public DtsServer B { get; }

        public static async Task<TwoServers> StartAsync()
        {
            var dir = new TempDirectory("dts-runwait");
            DtsServerOptions Options() => new() { Url = "http://127.0.0.1:0", DataDirectory = dir.Path };
            var store = DtsServer.OpenSqliteStore(Options());
            Task<DtsServer> Start() => DtsServer.StartAsync(Options(), TimeProvider.System, store,
                logging: l => l.AddSimpleConsole().SetMinimumLevel(LogLevel.Error), ownsStore: false, cancellationToken: Ct);
            return new TwoServers(dir, store, await Start(), await Start());
        }

        /// <summary>A client of <paramref name="user"/> listing a then b, whose requests go through <paramref name="handler"/>.</summary>
        public DtsClient Client(string user, string secret, HttpMessageHandler handler) => new(new DtsConnection(new DtsConnectionOptions
        {
            ServerUrls = [A.Url.ToString().TrimEnd('/'), B.Url.ToString().TrimEnd('/')],
            UserId = user,
            Secret = secret,
            FailoverBackoff = TimeSpan.FromMilliseconds(20),
        }, handler));

        public async ValueTask DisposeAsync()
        {
            await B.DisposeAsync();
            await A.DisposeAsync();
            await Store.DisposeAsync();
            _dir.Dispose();
        }
    }
}
