using System.Diagnostics;
using Dts.Contracts;
using Dts.Core;
using Dts.Core.Storage;
using Dts.Server;
using Dts.Server.Daemons;
using Dts.Testing;
using Dts.Testing.Postgres;

namespace Dts.Server.Tests;

/// <summary>
/// Two in-process servers on one PostgreSQL schema (real Kestrel, real PostgreSQL): wake-ups cross
/// servers by LISTEN/NOTIFY, the fallback poll finds work whose notification was lost, exactly one
/// server is leader and a follower takes over, and a nonce used on one server is refused on another.
/// </summary>
public sealed class SharedStoreServerTests : IAsyncLifetime
{
    private readonly TempDirectory _dir = new("dts-shared");
    private PostgresTestDatabase? _db;
    private PostgresTestDatabase Db => _db!;
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public ValueTask InitializeAsync()
    {
        _db = PostgresTestDatabase.Create();
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        if (_db is not null) await _db.DisposeAsync();
        _dir.Dispose();
    }

    private Task<TestServer> StartAsync(Action<DtsServerOptions>? configure = null) => TestServer.StartAsync(configure: o =>
    {
        o.StorePath = Db.ConnectionString;
        o.PostgresSchema = Db.Schema;
        // Servers sharing a database share the key of its secrets.
        o.KeyFile = _dir.File("secrets.key");
        configure?.Invoke(o);
    });

    /// <summary>A user on the shared store, with a signing helper per server.</summary>
    private static async Task<(SignedHttp OnA, SignedHttp OnB)> UserAsync(TestServer a, TestServer b, string name, string role)
    {
        var secret = await a.Server.CreateUserAsync(name, [role], Ct);
        return (new SignedHttp(a.Url, name, secret, a.Time), new SignedHttp(b.Url, name, secret, b.Time));
    }

    [Fact]
    public async Task JobSubmittedOnOneServer_WakesAWorkerLongPollingOnAnother_AndItsResultWakesTheClientBack()
    {
        // No fallback poll within the test's waits: only a notification can answer these long polls early.
        await using var a = await StartAsync(o => o.ClusterPollInterval = TimeSpan.FromMinutes(10));
        await using var b = await StartAsync(o => o.ClusterPollInterval = TimeSpan.FromMinutes(10));
        var (client, _) = await UserAsync(a, b, "alice", Roles.Client);
        var (_, worker) = await UserAsync(a, b, "w", Roles.Worker);
        using var _c = client;
        using var _w = worker;
        var workerId = await Flow.RegisterAsync(worker, "f");

        var lease = Flow.LeaseAsync(worker, workerId, max: 1, wait: 30);
        await Task.Delay(300, Ct); // let the long poll find nothing and go to sleep
        var clock = Stopwatch.StartNew();
        var submitted = await Flow.SubmitFnAsync(client, "f", "[1]");
        var acknowledged = clock.Elapsed;
        var jobs = await lease;
        var wake = clock.Elapsed - acknowledged;
        var job = Assert.Single(jobs);
        Assert.Equal(submitted.Id, job.Id);

        var results = Flow.ResultsAsync(client, wait: 30);
        await Task.Delay(300, Ct);
        clock.Restart();
        using (var done = await Flow.CompleteAsync(worker, job, "\"ok\""))
            Assert.True(done.IsSuccessStatusCode);
        acknowledged = clock.Elapsed;
        var page = await results;
        var back = clock.Elapsed - acknowledged;
        Assert.Equal(submitted.Id, Assert.Single(page.Results).Id);
        TestContext.Current.TestOutputHelper?.WriteLine($"cross-server wake-up after the acknowledgement: lease {wake.TotalMilliseconds:F1} ms, result {back.TotalMilliseconds:F1} ms");
    }

    [Fact]
    public async Task JobStoredWithoutANotification_IsFoundByTheFallbackPoll()
    {
        await using var a = await StartAsync(o => o.ClusterPollInterval = TimeSpan.FromMilliseconds(300));
        var worker = await a.UserAsync("w", Roles.Worker);
        using var _w = worker;
        var workerId = await Flow.RegisterAsync(worker, "f");

        var lease = Flow.LeaseAsync(worker, workerId, max: 1, wait: 30);
        await Task.Delay(300, Ct);
        // Straight into the database by another store: no server hears of it.
        await using var other = Db.NewStore();
        var job = JobRules.Normalize(new SubmitJobRequest { Function = "f", Args = System.Text.Json.JsonDocument.Parse("[1]").RootElement.Clone() }, "w", DateTimeOffset.UtcNow);
        var inserted = await other.JobInsertManyAsync(new JobInsertManyParams([job], DateTimeOffset.UtcNow), Ct);
        var jobs = await lease;
        Assert.Equal(inserted[0].Id, Assert.Single(jobs).Id);
    }

    [Fact]
    public async Task ExactlyOneServerLeads_OnlyItsLeaderDaemonsRun_AndTheOtherTakesOverWhenItStops()
    {
        var a = await StartAsync();
        await using var b = await StartAsync();
        try
        {
            await EventuallyAsync(() => a.Server.Context.IsLeader ^ b.Server.Context.IsLeader, "exactly one leader");
            var (leader, follower) = a.Server.Context.IsLeader ? (a, b) : (b, a);
            await EventuallyAsync(() => Rescuer(leader).Passes >= 2, "the leader's lease rescuer runs");
            Assert.Equal(0, Rescuer(follower).Passes);
            Assert.False(follower.Server.Context.IsLeader);

            await leader.DisposeAsync();
            await EventuallyAsync(() => follower.Server.Context.IsLeader, "the follower takes over");
            await EventuallyAsync(() => Rescuer(follower).Passes >= 1, "the new leader's lease rescuer runs");
        }
        finally
        {
            await a.DisposeAsync();
        }
    }

    [Fact]
    public async Task RequestReplayedToAnotherServer_IsRefused()
    {
        await using var a = await StartAsync();
        await using var b = await StartAsync();
        var (onA, onB) = await UserAsync(a, b, "alice", Roles.Client);
        using var _a = onA;
        using var _b = onB;
        var captured = new SignedHttp.Tweak { Nonce = RequestSigning.NewNonce(), Timestamp = a.Time.GetUtcNow().ToUnixTimeSeconds() };
        const string submit = """{"function":"f","args":[1]}""";

        using (var first = await onA.PostAsync(ApiRoutes.Jobs, submit, captured))
            Assert.Equal(System.Net.HttpStatusCode.Created, first.StatusCode);
        using var replay = await onB.PostAsync(ApiRoutes.Jobs, submit, captured);
        await ResponseAssert.ProblemAsync(replay, ErrorCodes.ReplayedNonce);
        Assert.Equal(1, (await a.Server.Store.JobCountUnfinishedAsync(new JobCountUnfinishedParams("alice"), Ct)));
    }

    private static LeaseRescueDaemon Rescuer(TestServer s) => s.Server.Daemons.OfType<LeaseRescueDaemon>().Single();

    private static async Task EventuallyAsync(Func<bool> condition, string what)
    {
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < until, $"timed out waiting for: {what}");
            await Task.Delay(50, Ct);
        }
    }
}
