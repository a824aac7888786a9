using Dts.Contracts;
using Dts.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Dts.Server.Tests;

/// <summary>Time-driven behaviour, on a fake clock that the tests move.</summary>
public sealed class ClockTests : IAsyncLifetime
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);
    private TestServer _server = null!;
    private SignedHttp _client = null!;
    private SignedHttp _worker = null!;

    public async ValueTask InitializeAsync()
    {
        _server = await TestServer.StartAsync(_time);
        _client = await _server.UserAsync("alice", Roles.Client);
        _worker = await _server.UserAsync("w1", Roles.Worker);
    }

    public async ValueTask DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task DelayedJob_IsScheduled_ThenQueuedWhenItsTimeComes()
    {
        var s = await Flow.SubmitAsync(_client, """{"function":"d","delay_seconds":60}""");
        Assert.Equal(JobState.Scheduled, s.State);
        var workerId = await Flow.RegisterAsync(_worker, "d");
        Assert.Empty(await Flow.LeaseAsync(_worker, workerId));

        _time.Advance(TimeSpan.FromSeconds(61));
        await Flow.EventuallyAsync(_client, s.Id, JobState.Queued, _time);
        Assert.Equal(s.Id, Assert.Single(await Flow.LeaseAsync(_worker, workerId)).Id);
    }

    [Fact]
    public async Task FailedJob_IsRetriedAfterBackoff_ThenDeadAfterLastAttempt()
    {
        var s = await Flow.SubmitAsync(_client, """{"function":"r","max_attempts":2}""");
        var workerId = await Flow.RegisterAsync(_worker, "r");
        var first = Assert.Single(await Flow.LeaseAsync(_worker, workerId));
        (await Flow.FailAsync(_worker, first, "once")).Dispose();
        Assert.Equal(JobState.AwaitingRetry, (await Flow.GetAsync(_client, s.Id)).State);

        _time.Advance(TimeSpan.FromMinutes(5));
        await Flow.EventuallyAsync(_client, s.Id, JobState.Queued, _time);
        var second = Assert.Single(await Flow.LeaseAsync(_worker, workerId));
        Assert.Equal(2, second.Attempt);
        (await Flow.FailAsync(_worker, second, "twice")).Dispose();
        var dead = await Flow.GetAsync(_client, s.Id);
        Assert.Equal(JobState.Dead, dead.State);
        Assert.Equal("twice", dead.Error!.Message);
    }

    [Fact]
    public async Task ExpiredLease_IsRequeued_AndTheOldTokenIsStale()
    {
        var s = await Flow.SubmitAsync(_client, """{"function":"e","max_attempts":3}""");
        var workerId = await Flow.RegisterAsync(_worker, "e");
        var job = Assert.Single(await Flow.LeaseAsync(_worker, workerId));

        _time.Advance(TimeSpan.FromSeconds(16));
        await Flow.EventuallyAsync(_client, s.Id, JobState.Queued, _time);
        using (var late = await Flow.CompleteAsync(_worker, job, "1"))
            await ResponseAssert.ProblemAsync(late, ErrorCodes.StaleLease);

        var again = Assert.Single(await Flow.LeaseAsync(_worker, workerId));
        Assert.Equal(2, again.Attempt);
        Assert.NotEqual(job.LeaseToken, again.LeaseToken);
    }

    [Fact]
    public async Task Heartbeats_KeepALongJobsLease()
    {
        var s = await Flow.SubmitFnAsync(_client, "h");
        var workerId = await Flow.RegisterAsync(_worker, "h");
        var job = Assert.Single(await Flow.LeaseAsync(_worker, workerId));
        for (var i = 0; i < 10; i++)
        {
            _time.Advance(TimeSpan.FromSeconds(5));
            var beat = await _worker.CallAsync(HttpMethod.Post, ApiRoutes.WorkerHeartbeat(workerId), $$"""{"running":["{{job.Id}}"]}""", DtsJsonContext.Default.HeartbeatResponse);
            Assert.Empty(beat.Cancel);
        }
        Assert.Equal(JobState.Running, (await Flow.GetAsync(_client, s.Id)).State);
        using var done = await Flow.CompleteAsync(_worker, job, "\"ok\"");
        Assert.Equal(200, (int)done.StatusCode);
    }
}
