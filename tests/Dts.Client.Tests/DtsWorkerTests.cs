using System.Text.Json;
using Dts.Worker;

namespace Dts.Client.Tests;

public sealed class DtsWorkerTests : IDisposable
{
    private readonly FakeWorkerServer _server = new();
    private readonly ObservedTimeProvider _time = new();
    private readonly DtsConnection _connection;
    private readonly CancellationTokenSource _stop = new();

    public DtsWorkerTests()
    {
        _connection = new DtsConnection(new DtsConnectionOptions { ServerUrl = "http://127.0.0.1:1", UserId = "w", Secret = "s", TimeProvider = _time }, _server);
    }

    private DtsWorker NewWorker(int concurrency = 4) => new(_connection, new DtsWorkerOptions
    {
        ServerUrl = "http://127.0.0.1:1",
        UserId = "w",
        Secret = "s",
        Name = "test-worker",
        Concurrency = concurrency,
        TimeProvider = _time,
    });

    public void Dispose()
    {
        _stop.Dispose();
        _connection.Dispose();
    }

    [Fact]
    public async Task Worker_RegistersItsFunctions_AndReportsResultsAndExceptions()
    {
        using var worker = NewWorker(concurrency: 3);
        worker.Handle("echo", (job, _) => Task.FromResult(job.Args[0].GetString()!));
        worker.Handle("boom", (_, _) => Task.FromException<JsonElement>(new InvalidOperationException("kaput")));
        var run = worker.RunAsync(_stop.Token);

        _server.Enqueue("j1", "echo", """["hi"]""");
        _server.Enqueue("j2", "boom");
        await Eventually.TrueAsync(() => _server.Final("j1") is not null && _server.Final("j2") is not null, "both outcomes reported");
        await _stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);

        var registration = Assert.Single(_server.Registrations);
        Assert.Equal(["boom", "echo"], registration.Functions!.Order(StringComparer.Ordinal));
        Assert.Equal(3, registration.Concurrency);
        Assert.Equal("hi", _server.Final("j1")!.Result!.Value.GetString());
        Assert.Equal("token-j1", _server.Final("j1")!.LeaseToken);
        Assert.Equal("exception", _server.Final("j2")!.Error!.Code);
        Assert.Equal("kaput", _server.Final("j2")!.Error!.Message);
    }

    [Fact]
    public async Task Worker_JobTimeout_CancelsTheHandler_AndReportsTimeout()
    {
        using var worker = NewWorker();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        worker.Handle("slow", async (_, ct) =>
        {
            started.SetResult();
            await Task.Delay(Timeout.Infinite, ct);
            return "never";
        });
        var run = worker.RunAsync(_stop.Token);

        _server.Enqueue("j1", "slow", timeoutSeconds: 5);
        await started.Task.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        _time.Advance(TimeSpan.FromSeconds(4));
        Assert.Null(_server.Final("j1"));
        _time.Advance(TimeSpan.FromSeconds(1));
        await Eventually.TrueAsync(() => _server.Final("j1") is not null, "the timeout to be reported");
        await _stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);

        Assert.Equal("timeout", _server.Final("j1")!.Error!.Code);
    }

    [Fact]
    public async Task Worker_HeartbeatCancel_StopsTheHandler_AndDropsItsOutcome()
    {
        using var worker = NewWorker();
        var cancelled = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        worker.Handle("slow", async (_, ct) =>
        {
            using var registration = ct.Register(() => cancelled.TrySetResult());
            started.SetResult();
            await Task.Delay(Timeout.Infinite, ct);
            return "never";
        });
        var run = worker.RunAsync(_stop.Token);

        _server.Enqueue("j1", "slow");
        await started.Task.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        _server.CancelOnNextHeartbeat.Enqueue("j1");
        await Eventually.TrueAsync(() => cancelled.Task.IsCompleted, "the heartbeat's cancel to reach the handler", () => _time.Advance(TimeSpan.FromSeconds(1)));
        await Eventually.TrueAsync(() => worker.RunningJobs.Count == 0, "the job to leave the running set");
        await _stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);

        Assert.Contains(_server.Heartbeats, h => h.Running!.Contains("j1"));
        Assert.DoesNotContain(_server.Reports, r => r.JobId == "j1");
    }

    [Fact]
    public async Task Worker_Stopping_LetsInFlightJobsFinish_AndFlushesTheirReports()
    {
        using var worker = NewWorker();
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        worker.Handle("gated", async (job, ct) =>
        {
            await job.ReportProgressAsync(1, 2, ct);
            started.SetResult();
            await gate.Task.WaitAsync(ct);
            return "finished";
        });
        var run = worker.RunAsync(_stop.Token);

        _server.Enqueue("j1", "gated");
        await started.Task.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        await _stop.CancelAsync();
        await Task.Delay(50, TestContext.Current.CancellationToken);
        Assert.False(run.IsCompleted, "the worker must wait for its running job");

        gate.SetResult();
        await run.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);

        Assert.Equal("finished", _server.Final("j1")!.Result!.Value.GetString());
        Assert.Contains(_server.Reports, r => r.JobId == "j1" && r.Progress is { Numerator: 1, Denominator: 2 });
    }

    [Fact]
    public async Task Worker_AbortToken_CancelsRunningJobs_AndReportsThemForRetry()
    {
        using var worker = NewWorker();
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        worker.Handle("slow", async (_, ct) =>
        {
            started.SetResult();
            await Task.Delay(Timeout.Infinite, ct);
            return "never";
        });
        using var abort = new CancellationTokenSource();
        var run = worker.RunAsync(_stop.Token, abort.Token);

        _server.Enqueue("j1", "slow");
        await started.Task.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);
        await _stop.CancelAsync();
        Assert.False(run.IsCompleted);
        await abort.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);

        Assert.Empty(worker.RunningJobs);
        Assert.Equal("worker_stopped", _server.Final("j1")!.Error!.Code);
        Assert.True(_server.Final("j1")!.Retry);
    }

    [Fact]
    public async Task Worker_WorkerNotFoundOnHeartbeat_RegistersAgain()
    {
        using var worker = NewWorker();
        worker.Handle("echo", (_, _) => Task.FromResult("x"));
        var run = worker.RunAsync(_stop.Token);

        await Eventually.TrueAsync(() => worker.WorkerId == "w1", "the first registration");
        _server.ForgetWorkerOnNextHeartbeat = true;
        await Eventually.TrueAsync(() => worker.WorkerId == "w2", "a second registration", () => _time.Advance(TimeSpan.FromSeconds(1)));
        _server.Enqueue("j1", "echo");
        await Eventually.TrueAsync(() => _server.Final("j1") is not null, "a job done under the new registration");
        await _stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);

        Assert.Equal(2, _server.RegistrationCount);
    }

    [Fact]
    public async Task Worker_NeverRunsMoreJobsThanItsConcurrency_AndLeasesOnlyFreeSlots()
    {
        using var worker = NewWorker(concurrency: 2);
        var running = 0;
        var peak = 0;
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        worker.Handle("gated", async (_, ct) =>
        {
            var now = Interlocked.Increment(ref running);
            InterlockedMax(ref peak, now);
            await gate.Task.WaitAsync(ct);
            Interlocked.Decrement(ref running);
            return "ok";
        });
        var run = worker.RunAsync(_stop.Token);

        for (var i = 0; i < 5; i++) _server.Enqueue($"j{i}", "gated");
        await Eventually.TrueAsync(() => Volatile.Read(ref running) == 2, "two jobs running");
        await Task.Delay(50, TestContext.Current.CancellationToken);
        Assert.Equal(2, Volatile.Read(ref running));
        gate.SetResult();
        await Eventually.TrueAsync(() => Enumerable.Range(0, 5).All(i => _server.Final($"j{i}") is not null), "all five jobs reported");
        await _stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);

        Assert.Equal(2, peak);
        Assert.All(_server.LeaseMaxes, max => Assert.InRange(max, 1, 2));
    }

    [Fact]
    public async Task Worker_TransientLeaseErrors_AreBackedOffAndRetried()
    {
        using var worker = NewWorker();
        worker.Handle("echo", (_, _) => Task.FromResult("x"));
        _server.FailingLeases = 2;
        var run = worker.RunAsync(_stop.Token);

        _server.Enqueue("j1", "echo");
        await Eventually.TrueAsync(() => _server.Final("j1") is not null, "the job to be done after the errors", () => _time.Advance(TimeSpan.FromSeconds(1)));
        await _stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);

        Assert.True(_server.LeaseMaxes.Count >= 3);
        Assert.False(run.IsFaulted);
    }

    [Fact]
    public async Task Worker_WithCommandRunner_ReportsTheCommandsExitCodeAndStderr()
    {
        using var worker = NewWorker();
        worker.Handle("fails", new CommandRunner(new CommandRunnerOptions { Command = "echo 'no such file' >&2; exit 4" }).Handler);
        worker.Handle("rev", new CommandRunner(new CommandRunnerOptions { Command = "rev", Stdin = StdinMode.Text }).Handler);
        var run = worker.RunAsync(_stop.Token);

        _server.Enqueue("j1", "fails");
        _server.Enqueue("j2", "rev", """["stressed"]""");
        await Eventually.TrueAsync(() => _server.Final("j1") is not null && _server.Final("j2") is not null, "both commands reported");
        await _stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);

        Assert.Equal("exit_code_4", _server.Final("j1")!.Error!.Code);
        Assert.Equal("no such file", _server.Final("j1")!.Error!.Message);
        Assert.Equal("desserts", _server.Final("j2")!.Result!.Value.GetString());
    }

    [Fact]
    public async Task Worker_ShipsHandlerLogLines_AndACommandsStderr_AsJobLogs()
    {
        using var worker = NewWorker();
        worker.Handle("talk", (job, _) =>
        {
            job.Log("starting");
            job.Log("two\nlines");
            return Task.FromResult("done");
        });
        worker.Handle("cmd", new CommandRunner(new CommandRunnerOptions { Command = "echo warming up >&2; echo result; printf 'no newline' >&2" }).Handler);
        var run = worker.RunAsync(_stop.Token);

        _server.Enqueue("j1", "talk");
        _server.Enqueue("j2", "cmd");
        await Eventually.TrueAsync(() => _server.Final("j1") is not null && _server.Final("j2") is not null, "both jobs reported");
        await _stop.CancelAsync();
        await run.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);

        var talk = _server.LogLines.Where(l => l.JobId == "j1").ToList();
        Assert.Equal(["starting", "two", "lines"], talk.Select(l => l.Text));
        Assert.All(talk, l => Assert.Equal("log", l.Stream));
        Assert.All(talk, l => Assert.Equal("token-j1", l.LeaseToken));
        var cmd = _server.LogLines.Where(l => l.JobId == "j2").ToList();
        // stdout is the result, so only stderr is logged; a last line without a newline still arrives.
        Assert.Equal(["warming up", "no newline"], cmd.Select(l => l.Text));
        Assert.All(cmd, l => Assert.Equal("stderr", l.Stream));
        Assert.Equal("result", _server.Final("j2")!.Result!.Value.GetString());
    }

    private static void InterlockedMax(ref int target, int value)
    {
        var current = Volatile.Read(ref target);
        while (value > current)
        {
            var seen = Interlocked.CompareExchange(ref target, value, current);
            if (seen == current) return;
            current = seen;
        }
    }
}
