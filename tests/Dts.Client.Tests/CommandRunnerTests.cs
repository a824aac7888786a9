using System.Text.Json;
using Dts.Worker;

namespace Dts.Client.Tests;

public sealed class CommandRunnerTests
{
    private static WorkerJob Job(string args = """["hello"]""", string kwargs = """{"k":1}""", int attempt = 2) =>
        new("job-7", "shout", JsonValues.Parse(args), JsonValues.Parse(kwargs), attempt);

    private static Task<JsonElement> Run(string command, WorkerJob? job = null, StdinMode stdin = StdinMode.Json, OutputMode output = OutputMode.Text,
        long maxStdout = CommandRunnerOptions.DefaultMaxStdoutBytes, CancellationToken? token = null) =>
        new CommandRunner(new CommandRunnerOptions { Command = command, Stdin = stdin, Output = output, MaxStdoutBytes = maxStdout })
            .RunAsync(job ?? Job(), token ?? TestContext.Current.CancellationToken);

    [Fact]
    public async Task ExitZero_ResultIsStdout_WithOneTrailingNewlineRemoved()
    {
        var result = await Run("printf 'hi there\\n\\n'");

        Assert.Equal(JsonValueKind.String, result.ValueKind);
        Assert.Equal("hi there\n", result.GetString());
    }

    [Fact]
    public async Task JsonStdin_CarriesTheJob_AndJsonOutputIsParsed()
    {
        var result = await Run("cat", output: OutputMode.Json);

        Assert.Equal("job-7", result.GetProperty("id").GetString());
        Assert.Equal("shout", result.GetProperty("function").GetString());
        Assert.Equal("hello", result.GetProperty("args")[0].GetString());
        Assert.Equal(1, result.GetProperty("kwargs").GetProperty("k").GetInt32());
        Assert.Equal(2, result.GetProperty("attempt").GetInt32());
    }

    [Fact]
    public async Task TextStdin_GivesEachPositionalArgAsALine()
    {
        var result = await Run("rev", Job("""["abc", "xyz", 42]"""), stdin: StdinMode.Text);

        Assert.Equal("cba\nzyx\n24", result.GetString());
    }

    [Fact]
    public async Task Environment_NamesTheJob()
    {
        var result = await Run("printf '%s %s %s' \"$DTS_JOB_ID\" \"$DTS_FUNCTION\" \"$DTS_ATTEMPT\"");

        Assert.Equal("job-7 shout 2", result.GetString());
    }

    [Fact]
    public async Task NonZeroExit_FailsWithExitCode_AndStderrAsMessage()
    {
        var ex = await Assert.ThrowsAsync<JobFailedException>(() => Run("echo partial; echo '  disk full  ' >&2; exit 3"));

        Assert.Equal("exit_code_3", ex.Code);
        Assert.Equal("disk full", ex.Message);
    }

    [Fact]
    public async Task JsonOutput_ThatIsNotJson_FailsWithBadOutput()
    {
        var ex = await Assert.ThrowsAsync<JobFailedException>(() => Run("echo not json", output: OutputMode.Json));

        Assert.Equal("bad_output", ex.Code);
        Assert.False(ex.Retry);
    }

    [Fact]
    public async Task Stdout_BeyondTheCap_FailsWithOutputTooLarge()
    {
        var ex = await Assert.ThrowsAsync<JobFailedException>(() => Run("yes 0123456789", maxStdout: 4096));

        Assert.Equal("output_too_large", ex.Code);
    }

    [Fact]
    public async Task Cancellation_KillsTheWholeProcessTree()
    {
        var pidFile = Path.Combine(Path.GetTempPath(), $"dts-runner-{Guid.NewGuid():N}.pid");
        try
        {
            using var cts = new CancellationTokenSource();
            var run = Run($"sleep 30 & echo $$ $! > {pidFile}.tmp && mv {pidFile}.tmp {pidFile}; wait", token: cts.Token);
            await Eventually.TrueAsync(() => File.Exists(pidFile), "the command to write its pids");
            var pids = (await File.ReadAllTextAsync(pidFile, TestContext.Current.CancellationToken)).Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(int.Parse).ToArray();
            Assert.Equal(2, pids.Length);
            Assert.All(pids, pid => Assert.True(IsAlive(pid), $"process {pid} should run before the cancel"));

            await cts.CancelAsync();

            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run);
            // The shell is reaped by the runner; the orphaned sleep by init, which may take a moment.
            await Eventually.TrueAsync(() => !pids.Any(IsAlive), "the shell and its sleep child to be gone");
        }
        finally
        {
            File.Delete(pidFile);
        }
    }

    [Fact]
    public async Task Cancellation_ReturnsEvenWhenAnOrphanHoldsStdoutOpen()
    {
        var pidFile = Path.Combine(Path.GetTempPath(), $"dts-orphan-{Guid.NewGuid():N}.pid");
        try
        {
            using var cts = new CancellationTokenSource();
            // The shell exits at once; its background sleep keeps stdout open and leaves the process tree.
            var run = Run($"sleep 30 & echo $! > {pidFile}.tmp && mv {pidFile}.tmp {pidFile}", token: cts.Token);
            await Eventually.TrueAsync(() => File.Exists(pidFile), "the command to write the orphan's pid");
            Assert.False(run.IsCompleted, "the job must wait for stdout to close");

            await cts.CancelAsync();

            await Assert.ThrowsAnyAsync<OperationCanceledException>(() => run.WaitAsync(TimeSpan.FromSeconds(20), TestContext.Current.CancellationToken));
        }
        finally
        {
            if (File.Exists(pidFile) && int.TryParse(File.ReadAllText(pidFile).Trim(), out var orphan))
            {
                try
                {
                    System.Diagnostics.Process.GetProcessById(orphan).Kill();
                }
                catch (ArgumentException)
                {
                    // Already gone.
                }
            }
            File.Delete(pidFile);
        }
    }

    /// <summary>Alive means present and not a zombie (a killed orphan may wait a moment for init to reap it).</summary>
    private static bool IsAlive(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            var state = stat[(stat.LastIndexOf(')') + 2)..][0];
            return state is not 'Z' and not 'X';
        }
        catch (IOException)
        {
            return false;
        }
    }
}
