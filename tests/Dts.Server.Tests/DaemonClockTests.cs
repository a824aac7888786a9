using Dts.Contracts;
using Dts.Core;
using Dts.Core.Storage;
using Dts.Server.Daemons;
using Dts.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Dts.Server.Tests;

/// <summary>The daemons (stethoscope, timeouts, porter, cron) on a fake clock that the tests move.</summary>
public sealed class DaemonClockTests : IAsyncLifetime
{
    // On a whole minute, so that cron ticks fall at predictable instants.
    private static readonly DateTimeOffset Start = new(2026, 1, 5, 12, 0, 0, TimeSpan.Zero);
    private readonly FakeTimeProvider _time = new(Start);
    private readonly TempDirectory _dir = new("dts-daemons");
    private TestServer _server = null!;
    private SignedHttp _client = null!;
    private SignedHttp _worker = null!;
    private SignedHttp _admin = null!;

    public async ValueTask InitializeAsync()
    {
        _server = await TestServer.StartAsync(_time, dataDirectory: _dir.Path);
        _client = await _server.UserAsync("alice", Roles.Client);
        _worker = await _server.UserAsync("w1", Roles.Worker);
        _admin = await _server.UserAsync("root", Roles.Administrator);
    }

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        _dir.Dispose();
    }

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>
    /// Polls <paramref name="condition"/>, moving the fake clock by <paramref name="step"/> between
    /// looks so that daemons asleep on it wake; fails after <paramref name="looks"/> looks.
    /// </summary>
    private async Task UntilAsync(Func<Task<bool>> condition, TimeSpan step, string what, int looks = 200)
    {
        for (var i = 0; i < looks; i++)
        {
            if (await condition()) return;
            _time.Advance(step);
            await Task.Delay(20, Ct);
        }
        throw new Xunit.Sdk.XunitException($"never happened: {what}");
    }

    private async Task<IReadOnlyList<JobRecord>> JobsOfAsync(string function) =>
        (await _server.Server.Store.JobSearchAsync(new JobSearchParams { Function = function, Limit = 100 }, Ct)).Jobs;

    [Fact]
    public async Task SilentWorker_IsDeclaredLost_ItsJobRequeuedWithTheAttemptCounted_AndItsReturnIsRefused()
    {
        var s = await Flow.SubmitAsync(_client, """{"function":"hb","max_attempts":3}""");
        var workerId = await Flow.RegisterAsync(_worker, "hb");
        var job = Assert.Single(await Flow.LeaseAsync(_worker, workerId));

        // One beat short of the lease timeout (15 s): still alive, still running.
        _time.Advance(TimeSpan.FromSeconds(14));
        await Task.Delay(100, Ct);
        Assert.Equal(JobState.Running, (await Flow.GetAsync(_client, s.Id)).State);

        _time.Advance(TimeSpan.FromSeconds(2));
        var requeued = await Flow.EventuallyAsync(_client, s.Id, JobState.Queued, _time);
        Assert.Equal(1, requeued.Attempts);

        var workers = await _admin.CallAsync(HttpMethod.Get, AdminRoutes.Workers, null, AdminJsonContext.Default.WorkerListResponse);
        Assert.Equal("lost", Assert.Single(workers.Workers, w => w.Id == workerId).Status);
        await UntilAsync(async () => (await _server.Server.Store.WorkerEventListAsync(new WorkerEventListParams(workerId, 10), Ct))
            .Any(e => e.Kind == "lost"), TimeSpan.FromMilliseconds(100), "a lost event is recorded");

        // The worker comes back: told to drop the job, and its old token is refused.
        var beat = await _worker.CallAsync(HttpMethod.Post, ApiRoutes.WorkerHeartbeat(workerId), $$"""{"running":["{{job.Id}}"]}""", DtsJsonContext.Default.HeartbeatResponse);
        Assert.Contains(job.Id, beat.Cancel);
        using (var late = await Flow.CompleteAsync(_worker, job, "1"))
            await ResponseAssert.ProblemAsync(late, ErrorCodes.StaleLease);

        var again = Assert.Single(await Flow.LeaseAsync(_worker, workerId));
        Assert.Equal(2, again.Attempt);
    }

    [Fact]
    public void Backoff_DoublesPerAttempt_WithJitterInTheUpperHalf_AndIsCapped()
    {
        var low = new RetryPolicy(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30), () => 0.0);
        var high = new RetryPolicy(TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(30), () => 1.0);
        double[] full = [1, 2, 4, 8, 16, 30, 30];
        for (var attempt = 1; attempt <= full.Length; attempt++)
        {
            Assert.Equal(full[attempt - 1] / 2, low.DelayAfter(attempt).TotalSeconds, 3);
            Assert.Equal(full[attempt - 1], high.DelayAfter(attempt).TotalSeconds, 3);
        }
    }

    [Fact]
    public async Task FailedAttempts_WaitTheBackoffSchedule_BeforeTheyRunAgain()
    {
        var s = await Flow.SubmitAsync(_client, """{"function":"bo","max_attempts":4}""");
        var workerId = await Flow.RegisterAsync(_worker, "bo");
        for (var attempt = 1; attempt <= 3; attempt++)
        {
            var job = Assert.Single(await Flow.LeaseAsync(_worker, workerId));
            Assert.Equal(attempt, job.Attempt);
            var failedAt = _time.GetUtcNow();
            (await Flow.FailAsync(_worker, job, "again")).Dispose();
            var waiting = await Flow.GetAsync(_client, s.Id);
            Assert.Equal(JobState.AwaitingRetry, waiting.State);
            // Default policy: base 1 s doubling, jitter between half and all of it.
            var full = Math.Pow(2, attempt - 1);
            var delay = (waiting.RunAt - failedAt).TotalSeconds;
            Assert.InRange(delay, full / 2 - 0.001, full + 0.001);
            // Not leased before its time.
            Assert.Empty(await Flow.LeaseAsync(_worker, workerId));
            await Flow.EventuallyAsync(_client, s.Id, JobState.Queued, _time);
        }
        var last = Assert.Single(await Flow.LeaseAsync(_worker, workerId));
        (await Flow.FailAsync(_worker, last, "final")).Dispose();
        Assert.Equal(JobState.Dead, (await Flow.GetAsync(_client, s.Id)).State);
    }

    [Fact]
    public async Task RunningJobPastTimeoutAndGrace_IsFailedAndRetried_AndTheWorkerToldToStop()
    {
        var s = await Flow.SubmitAsync(_client, """{"function":"slow","timeout_seconds":10,"max_attempts":2}""");
        var workerId = await Flow.RegisterAsync(_worker, "slow");
        var job = Assert.Single(await Flow.LeaseAsync(_worker, workerId));

        // The worker keeps heartbeating (it is alive, the job is stuck): 14 s is within timeout + 5 s grace.
        for (var i = 0; i < 7; i++)
        {
            _time.Advance(TimeSpan.FromSeconds(2));
            var beat = await _worker.CallAsync(HttpMethod.Post, ApiRoutes.WorkerHeartbeat(workerId), $$"""{"running":["{{job.Id}}"]}""", DtsJsonContext.Default.HeartbeatResponse);
            Assert.Empty(beat.Cancel);
        }
        Assert.Equal(JobState.Running, (await Flow.GetAsync(_client, s.Id)).State);

        _time.Advance(TimeSpan.FromSeconds(2));
        JobView failed = null!;
        // Small steps: the retry's backoff (0.5 to 1 s) must not pass unseen.
        await UntilAsync(async () => (failed = await Flow.GetAsync(_client, s.Id)).Error?.Code == TimeoutCode,
            TimeSpan.FromMilliseconds(50), "the server fails the job with timeout");
        Assert.Contains(failed.State, new[] { JobState.AwaitingRetry, JobState.Queued });
        var told = await _worker.CallAsync(HttpMethod.Post, ApiRoutes.WorkerHeartbeat(workerId), $$"""{"running":["{{job.Id}}"]}""", DtsJsonContext.Default.HeartbeatResponse);
        Assert.Contains(job.Id, told.Cancel);
        using (var late = await Flow.CompleteAsync(_worker, job, "1"))
            await ResponseAssert.ProblemAsync(late, ErrorCodes.StaleLease);

        await Flow.EventuallyAsync(_client, s.Id, JobState.Queued, _time);
        var second = Assert.Single(await Flow.LeaseAsync(_worker, workerId));
        Assert.Equal(2, second.Attempt);
    }

    private const string TimeoutCode = "timeout";

    [Fact]
    public async Task DelayedJob_BecomesAvailableOnTime_NotBefore()
    {
        var s = await Flow.SubmitAsync(_client, """{"function":"later","delay_seconds":30}""");
        var workerId = await Flow.RegisterAsync(_worker, "later");
        _time.Advance(TimeSpan.FromSeconds(29));
        await Task.Delay(100, Ct);
        Assert.Empty(await Flow.LeaseAsync(_worker, workerId));
        Assert.Equal(JobState.Scheduled, (await Flow.GetAsync(_client, s.Id)).State);
        var queued = await Flow.EventuallyAsync(_client, s.Id, JobState.Queued, _time);
        Assert.Equal(Start + TimeSpan.FromSeconds(30), queued.RunAt);
    }

    [Fact]
    public async Task CronTicks_FireOncePerTick_AndAcrossARestartOnlyTheLatestMissedTickFires()
    {
        var body = """{"id":"every10","cron":"*/10 * * * * *","time_zone":"Europe/Berlin","job":{"function":"tick","args":[1]}}""";
        var created = await _client.CallAsync(HttpMethod.Post, ScheduleRoutes.Schedules, body, ScheduleJsonContext.Default.ScheduleView);
        Assert.Equal(Start + TimeSpan.FromSeconds(10), created.NextFireAt);

        // Small steps: the first tick fires, the second (10 s later) not yet.
        await UntilAsync(async () => (await JobsOfAsync("tick")).Count == 1, TimeSpan.FromMilliseconds(100), "the first tick fires", looks: 150);
        var first = Assert.Single(await JobsOfAsync("tick"));
        Assert.Equal(CronDaemon.TickKey("every10", Start + TimeSpan.FromSeconds(10)), first.UniqueKey);

        // Down for 35 s: the ticks at :20, :30 and :40 are missed.
        var secret = _client.Secret;
        var downAt = _time.GetUtcNow();
        await _server.DisposeAsync();
        _time.SetUtcNow(downAt + TimeSpan.FromSeconds(35));
        _server = await TestServer.StartAsync(_time, dataDirectory: _dir.Path);
        using var client = new SignedHttp(_server.Url, "alice", secret, _time);

        await UntilAsync(async () => (await JobsOfAsync("tick")).Count == 2, TimeSpan.FromMilliseconds(50), "the latest missed tick fires", looks: 40);
        var jobs = await JobsOfAsync("tick");
        Assert.Equal(2, jobs.Count);
        Assert.Contains(jobs, j => j.UniqueKey == CronDaemon.TickKey("every10", Start + TimeSpan.FromSeconds(40)));
        var view = await client.CallAsync(HttpMethod.Get, ScheduleRoutes.Schedule("every10"), null, ScheduleJsonContext.Default.ScheduleView);
        Assert.Equal(Start + TimeSpan.FromSeconds(50), view.NextFireAt);

        // A second restart at the same instant fires nothing again.
        await _server.DisposeAsync();
        _server = await TestServer.StartAsync(_time, dataDirectory: _dir.Path);
        await Task.Delay(200, Ct);
        Assert.Equal(2, (await JobsOfAsync("tick")).Count);

        await UntilAsync(async () => (await JobsOfAsync("tick")).Count == 3, TimeSpan.FromMilliseconds(250), "the next tick after the restart fires", looks: 60);
        Assert.Contains(await JobsOfAsync("tick"), j => j.UniqueKey == CronDaemon.TickKey("every10", Start + TimeSpan.FromSeconds(50)));
    }

    [Fact]
    public async Task PausedSchedule_DoesNotFire_AndResumingSkipsThePausedTicks()
    {
        var body = """{"id":"m","cron":"* * * * *","job":{"function":"pz"}}""";
        await _client.CallAsync(HttpMethod.Post, ScheduleRoutes.Schedules, body, ScheduleJsonContext.Default.ScheduleView);
        var paused = await _admin.CallAsync(HttpMethod.Post, ScheduleRoutes.AdminSchedulePause("m"), null, ScheduleJsonContext.Default.ScheduleView);
        Assert.True(paused.Paused);
        _time.Advance(TimeSpan.FromMinutes(3));
        await Task.Delay(200, Ct);
        Assert.Empty(await JobsOfAsync("pz"));

        var resumed = await _client.CallAsync(HttpMethod.Post, ScheduleRoutes.ScheduleResume("m"), null, ScheduleJsonContext.Default.ScheduleView);
        Assert.Equal(Start + TimeSpan.FromMinutes(4), resumed.NextFireAt);
        await UntilAsync(async () => (await JobsOfAsync("pz")).Count == 1, TimeSpan.FromSeconds(1), "the first tick after resuming fires", looks: 120);

        var all = await _admin.CallAsync(HttpMethod.Get, ScheduleRoutes.AdminSchedules, null, ScheduleJsonContext.Default.ScheduleListResponse);
        Assert.Equal("alice", Assert.Single(all.Schedules).Owner);
        using (var deleted = await _client.SendAsync(HttpMethod.Delete, ScheduleRoutes.Schedule("m")))
            Assert.Equal(200, (int)deleted.StatusCode);
        using var gone = await _admin.GetAsync(ScheduleRoutes.AdminSchedule("m"));
        await ResponseAssert.ProblemAsync(gone, ErrorCodes.ScheduleNotFound);
    }

    [Fact]
    public async Task Porter_DeletesExpiredAndAcknowledgedResults_AndKeepsWaitingOnes()
    {
        var workerId = await Flow.RegisterAsync(_worker, "ret");
        var expiring = await Flow.SubmitAsync(_client, """{"function":"ret","retention_seconds":60}""");
        var acked = await Flow.SubmitAsync(_client, """{"function":"ret","retention_seconds":86400}""");
        var waiting = await Flow.SubmitAsync(_client, """{"function":"ret","retention_seconds":86400}""");
        foreach (var job in await Flow.LeaseAsync(_worker, workerId))
            (await Flow.CompleteAsync(_worker, job, "\"done\"")).Dispose();
        using (var ack = await _client.PostAsync(ApiRoutes.ResultsAck, $$"""{"ids":["{{acked.Id}}"]}"""))
            Assert.Equal(200, (int)ack.StatusCode);

        async Task<bool> Gone(string id) => await _server.Server.Store.JobGetAsync(new JobGetParams(id), Ct) is null;

        // Retention 60 s: gone within a porter interval (30 s) after it runs out.
        await UntilAsync(() => Gone(expiring.Id), TimeSpan.FromSeconds(5), "the expired result is deleted", looks: 40);
        Assert.False(await Gone(acked.Id));
        // Acknowledged: gone an hour (the grace) after it finished.
        await UntilAsync(() => Gone(acked.Id), TimeSpan.FromMinutes(1), "the acknowledged result is deleted", looks: 80);
        Assert.False(await Gone(waiting.Id));
        var results = await Flow.ResultsAsync(_client);
        Assert.Equal(waiting.Id, Assert.Single(results.Results).Id);
    }

    [Fact]
    public async Task FunctionDefaults_FillWhatASubmitLeavesOut_AndAnExplicitValueWins()
    {
        var stored = await _admin.CallAsync(HttpMethod.Put, FunctionDefaultsRoutes.Defaults("fd"), """{"max_attempts":7,"retention_seconds":120}""",
            FunctionDefaultsJsonContext.Default.FunctionDefaultsView);
        Assert.Equal(7, stored.MaxAttempts);

        var byDefault = await Flow.GetAsync(_client, (await Flow.SubmitFnAsync(_client, "fd")).Id);
        var explicitly = await Flow.GetAsync(_client, (await Flow.SubmitAsync(_client, """{"function":"fd","max_attempts":2}""")).Id);
        var other = await Flow.GetAsync(_client, (await Flow.SubmitFnAsync(_client, "not-fd")).Id);

        Assert.Equal((7, 120.0), (byDefault.MaxAttempts, byDefault.RetentionSeconds));
        Assert.Equal(2, explicitly.MaxAttempts);
        Assert.Equal(JobRules.DefaultMaxAttempts, other.MaxAttempts);

        using var bad = await _admin.SendAsync(HttpMethod.Put, FunctionDefaultsRoutes.Defaults("fd"), """{"max_attempts":0}""");
        await ResponseAssert.ProblemAsync(bad, ErrorCodes.InvalidField);
    }
}
