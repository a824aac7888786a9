using System.Diagnostics;
using System.Globalization;
using Dts.Client;
using Dts.Contracts;
using Dts.Testing;

namespace Dts.EndToEnd.Tests;

/// <summary>
/// Crashes with real processes: a server with a 1 s heartbeat and a 5 s lease timeout (the
/// detection time), shell-command workers, and SIGKILL / SIGSTOP sent to them mid-job. Measured
/// times are written to the test output; assertions on them are only generous bounds.
/// </summary>
[Trait("Category", "EndToEnd")]
public sealed class CrashTests : IDisposable
{
    // Five missed heartbeats: short enough for quick tests, long enough that a loaded 2-core CI
    // machine does not declare a healthy worker lost (3 s did, once, under the full suite).
    private const double LeaseTimeoutSeconds = 5;
    // Detection plus the rescuer's 1 s interval, a heartbeat, and plenty for a loaded 2-core machine.
    private static readonly TimeSpan RequeueBound = TimeSpan.FromSeconds(LeaseTimeoutSeconds + 12);
    private readonly TempDirectory _dir = new("dts-crash");

    public void Dispose() => _dir.Dispose();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private sealed record Setup(DtsProcess Server, string Url, string WorkerSecret, DtsClient Client);

    private async Task<Setup> StartAsync()
    {
        var urlFile = _dir.File($"url-{Guid.NewGuid():N}.txt");
        var server = DtsProcess.Start(["server", "--url", "http://127.0.0.1:0", "--data-dir", _dir.Path, "--url-file", urlFile,
            "--heartbeat-interval", "1", "--lease-timeout", LeaseTimeoutSeconds.ToString(CultureInfo.InvariantCulture)]);
        var url = await server.WaitForFileAsync(urlFile, TimeSpan.FromSeconds(60));
        var cluster = new Cluster(_dir);
        var clientSecret = await cluster.AddUserAsync("alice", "client");
        var workerSecret = await cluster.AddUserAsync("w", "worker");
        return new Setup(server, url, workerSecret, new DtsClient("alice", clientSecret, url));
    }

    private static DtsProcess Worker(Setup s, string name, params string[] functions) =>
        DtsProcess.Start(["worker", "--server", s.Url, "--user", "w", "--secret", s.WorkerSecret, "--concurrency", "2", "--name", name,
            .. functions.SelectMany(f => new[] { "--function", f })]);

    private static string Q(string path) => "'" + path.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    private static async Task<int> LinesAsync(string file) =>
        File.Exists(file) ? (await File.ReadAllLinesAsync(file, Ct)).Count(l => l.Length > 0) : 0;

    private static async Task UntilAsync(Func<Task<bool>> condition, TimeSpan limit, string what)
    {
        var deadline = Stopwatch.StartNew();
        while (deadline.Elapsed < limit)
        {
            if (await condition()) return;
            await Task.Delay(50, Ct);
        }
        throw new Xunit.Sdk.XunitException($"within {limit.TotalSeconds} s, never: {what}");
    }

    [Fact]
    public async Task WorkerKilledMidJob_TheJobRunsExactlyOnceMoreOnAnotherWorker_WithinTheDetectionTime()
    {
        var s = await StartAsync();
        await using var server = s.Server;
        using var client = s.Client;
        var runs = _dir.File("runs.txt");
        var command = $"slow=echo $$ >> {Q(runs)}; sleep 2; echo finished";
        var a = Worker(s, "A", command);
        var job = await client.SubmitAsync(new SubmitJobRequest { Function = "slow", MaxAttempts = 3 }, Ct);
        await UntilAsync(async () => await LinesAsync(runs) == 1, TimeSpan.FromSeconds(30), "worker A starts the job");

        await using var b = Worker(s, "B", command);
        await Task.Delay(1500, Ct); // B registered and long-polling; the job is still A's.
        var killedAt = Stopwatch.StartNew();
        a.Kill();
        await a.DisposeAsync();

        TimeSpan? requeued = null;
        await UntilAsync(async () =>
        {
            var view = await client.GetJobAsync(job.Id, Ct);
            if (requeued is null && (view.State != JobState.Running || view.Attempts >= 2)) requeued = killedAt.Elapsed;
            return view.State == JobState.Succeeded;
        }, TimeSpan.FromSeconds(40), "the job succeeds on worker B");
        var rerunAt = killedAt.Elapsed;

        var done = await client.GetJobAsync(job.Id, Ct);
        Assert.Equal(2, done.Attempts);
        Assert.Equal("finished", done.Result!.Value.GetString());
        Assert.Equal(2, await LinesAsync(runs)); // once on A, exactly once more on B
        Report($"SIGKILL: re-queued {requeued?.TotalSeconds:F2} s after the kill, succeeded on B after {rerunAt.TotalSeconds:F2} s (lease timeout {LeaseTimeoutSeconds} s, heartbeat 1 s)");
        Assert.NotNull(requeued);
        Assert.True(requeued < RequeueBound, $"re-queued after {requeued?.TotalSeconds:F2} s");
    }

    [Fact]
    public async Task WorkerStoppedPastTheDetectionTime_HasItsLateCompletionRefused()
    {
        var s = await StartAsync();
        await using var server = s.Server;
        using var client = s.Client;
        var started = _dir.File("started.txt");
        // A's command finishes while A is stopped; A can only report it after SIGCONT, too late.
        await using var a = Worker(s, "A", $"job=echo a >> {Q(started)}; sleep 1; echo from-A");
        var job = await client.SubmitAsync(new SubmitJobRequest { Function = "job", MaxAttempts = 3 }, Ct);
        await UntilAsync(async () => await LinesAsync(started) == 1, TimeSpan.FromSeconds(30), "worker A starts the job");

        Signal("STOP", a.Id);
        DtsProcess? b = null;
        try
        {
            await UntilAsync(async () => (await client.GetJobAsync(job.Id, Ct)).State == JobState.Queued, RequeueBound, "the stopped worker's job is re-queued");
            // B takes it and holds it long enough for A's late report to meet B's lease.
            b = Worker(s, "B", $"job=echo b >> {Q(started)}; sleep 4; echo from-B");
            await UntilAsync(async () => await LinesAsync(started) == 2, TimeSpan.FromSeconds(30), "worker B starts the job");
        }
        finally
        {
            Signal("CONT", a.Id);
        }
        await using var _ = b;
        var done = await client.WaitAsync(job.Id, TimeSpan.FromSeconds(30), Ct);
        Assert.Equal(JobState.Succeeded, done.State);
        Assert.Equal("from-B", done.Result!.Value.GetString());
        // A's attempt and B's; what this test is about is that A's late report never landed.
        Assert.True(done.Attempts >= 2, $"attempts {done.Attempts}");
    }

    [Fact]
    public async Task PoisonJobCrashingItsWorker_EndsDead_WhileOtherFunctionsKeepFlowing()
    {
        var s = await StartAsync();
        await using var server = s.Server;
        using var client = s.Client;
        // kill -9 $PPID from the job's shell kills the worker process that started it.
        string[] functions = ["poison=kill -9 $PPID"];
        await using var steady = Worker(s, "steady", "echo=cat");
        var poison = await client.SubmitAsync(new SubmitJobRequest { Function = "poison", MaxAttempts = 2 }, Ct);

        var crashes = 0;
        var crashing = Worker(s, "crashing-0", functions);
        var others = new List<string>();
        try
        {
            var watch = Stopwatch.StartNew();
            while (watch.Elapsed < TimeSpan.FromSeconds(45))
            {
                others.Add((await client.SubmitAsync(new SubmitJobRequest { Function = "echo", Args = JsonValues.StringArray(["x"]) }, Ct)).Id);
                if (crashing.HasExited)
                {
                    // A supervisor (systemd, Kubernetes) restarts a crashed worker; so does the test.
                    crashes++;
                    await crashing.DisposeAsync();
                    crashing = Worker(s, $"crashing-{crashes}", functions);
                }
                if ((await client.GetJobAsync(poison.Id, Ct)).State == JobState.Dead) break;
                await Task.Delay(250, Ct);
            }
        }
        finally
        {
            await crashing.DisposeAsync();
        }

        var dead = await client.GetJobAsync(poison.Id, Ct);
        Assert.Equal(JobState.Dead, dead.State);
        Assert.Equal(2, dead.Attempts);
        Assert.True(crashes >= 2, $"the poison job crashed its worker {crashes} times");
        foreach (var id in others)
            Assert.Equal(JobState.Succeeded, (await client.WaitAsync(id, TimeSpan.FromSeconds(30), Ct)).State);
    }

    [Fact]
    public async Task CancelledLongRunningCommandJob_IsKilled_AndReportedCancelled()
    {
        var s = await StartAsync();
        await using var server = s.Server;
        using var client = s.Client;
        var pids = _dir.File("pids.txt");
        await using var worker = Worker(s, "W", $"long=sleep 300 & echo $! >> {Q(pids)}; echo $$ >> {Q(pids)}; wait");
        var job = await client.SubmitAsync(new SubmitJobRequest { Function = "long" }, Ct);
        await UntilAsync(async () => await LinesAsync(pids) == 2, TimeSpan.FromSeconds(30), "the command starts");
        var processIds = (await File.ReadAllLinesAsync(pids, Ct)).Where(l => l.Length > 0).Select(int.Parse).ToList();
        Assert.All(processIds, pid => Assert.True(IsAlive(pid), $"process {pid} should be running"));

        var cancelledAt = Stopwatch.StartNew();
        var answer = await client.CancelAsync(job.Id, Ct);
        Assert.True(answer.CancelRequested);
        var done = await client.WaitAsync(job.Id, TimeSpan.FromSeconds(30), Ct);
        Assert.Equal(JobState.Cancelled, done.State);
        await UntilAsync(() => Task.FromResult(processIds.All(pid => !IsAlive(pid))), TimeSpan.FromSeconds(10), "the command's processes are gone");
        Report($"cancel: job cancelled and its processes gone {cancelledAt.Elapsed.TotalSeconds:F2} s after the cancel request");
    }

    /// <summary>Measured times: to the test output, and appended to dts-crash-measurements.txt in the temp directory for reports.</summary>
    private static void Report(string line)
    {
        TestContext.Current.TestOutputHelper?.WriteLine(line);
        File.AppendAllText(Path.Combine(Path.GetTempPath(), "dts-crash-measurements.txt"), $"{DateTimeOffset.UtcNow:O} {line}\n");
    }

    private static void Signal(string signal, int pid)
    {
        using var kill = Process.Start("kill", [$"-{signal}", pid.ToString(CultureInfo.InvariantCulture)]);
        kill.WaitForExit();
    }

    /// <summary>True while the process exists and is not a zombie waiting to be reaped.</summary>
    private static bool IsAlive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            // The state follows the parenthesised command name.
            var state = stat[(stat.LastIndexOf(')') + 2)..].Split(' ')[0];
            return state != "Z" && state != "X";
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException or IOException)
        {
            return false;
        }
    }
}
