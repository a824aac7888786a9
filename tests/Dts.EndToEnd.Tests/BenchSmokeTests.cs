using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Dts.Testing;

namespace Dts.EndToEnd.Tests;

/// <summary>
/// `dts bench --smoke` and `bench/compare --smoke` run to their end and print sane figures, so the
/// measuring tools cannot rot. No timing is asserted: only that each figure exists and is positive.
/// </summary>
[Trait("Category", "EndToEnd")]
public sealed class BenchSmokeTests : IDisposable
{
    private readonly TempDirectory _dir = new("dts-bench-smoke");

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task DtsBench_Smoke_ReportsEveryPhaseWithTheServersOwnCpuAndMemory()
    {
        var json = _dir.File("bench.json");
        await using var bench = await DtsProcess.RunAsync(["bench", "--smoke", "--json", json], TimeSpan.FromSeconds(240));
        Assert.True(bench.ExitCode == 0, $"dts bench failed:\n{bench.Stdout}\n{bench.Stderr}");
        Assert.Contains("end to end", bench.Stdout, StringComparison.Ordinal);
        Assert.Contains("server peak memory", bench.Stdout, StringComparison.Ordinal);

        using var report = JsonDocument.Parse(await File.ReadAllTextAsync(json, TestContext.Current.CancellationToken));
        var r = report.RootElement;
        Assert.Equal("child server process", r.GetProperty("mode").GetString());
        foreach (var name in new[]
        {
            "end_to_end_jobs_per_second", "submit_jobs_per_second", "drain_jobs_per_second",
            "latency_p50_us", "latency_p90_us", "latency_p99_us", "latency_max_us", "peak_memory_mb",
            "disk_flush_p50_us", "disk_flush_p99_us", "disk_flush_max_us",
        })
        {
            Assert.True(r.GetProperty(name).GetDouble() > 0, $"{name} is not positive in {r}");
        }
        Assert.True(r.GetProperty("latency_p50_us").GetDouble() <= r.GetProperty("latency_max_us").GetDouble());
        // The disk floor is timed once per latency sample (50 in smoke mode), in the server's data directory.
        Assert.Equal(50, r.GetProperty("disk_flush_samples").GetInt32());
        Assert.True(r.GetProperty("disk_flush_p50_us").GetDouble() <= r.GetProperty("disk_flush_max_us").GetDouble());
        Assert.Contains("disk flush floor", bench.Stdout, StringComparison.Ordinal);
        // The server is its own process: its CPU is known (it may round to 0 on a tiny run, never negative).
        Assert.True(r.GetProperty("server_cpu_seconds_total").GetDouble() > 0, r.ToString());
        Assert.True(r.GetProperty("end_to_end_server_cpu_seconds_per1000_jobs").GetDouble() >= 0);
    }

    [Theory]
    [InlineData("--warmup-seconds", "-1", "--warmup-seconds must be from 0 to 600")]
    [InlineData("--warmup-seconds", "NaN", "--warmup-seconds must be from 0 to 600")]
    [InlineData("--latency-samples", "-1", "--latency-samples must not be negative")]
    [InlineData("--servers", "0", "--servers must be from 1 to 16")]
    [InlineData("--servers", "2", "--servers above 1 needs --store naming a PostgreSQL database")]
    [InlineData("--schema", "mine", "--schema applies to a PostgreSQL --store only")]
    public async Task DtsBench_BadOptions_AreRefusedInOneLineBeforeAnythingStarts(string option, string value, string message)
    {
        await using var bench = await DtsProcess.RunAsync(["bench", option, value], TimeSpan.FromSeconds(60));
        Assert.Equal(2, bench.ExitCode);
        Assert.Contains(message, bench.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("end to end", bench.Stdout, StringComparison.Ordinal);
    }

    [Fact]
    public async Task DtsBench_OnPostgres_TwiceOnOneDatabase_EachRunInASchemaOfItsOwn_DroppedAfterwards()
    {
        await using var db = Dts.Testing.Postgres.PostgresTestDatabase.Create();
        var schemas = new List<string>();
        for (var run = 0; run < 2; run++)
        {
            var json = Path.Combine(Path.GetTempPath(), $"dts-bench-pg-{Guid.NewGuid():N}.json");
            await using (var bench = await DtsProcess.RunAsync(
                ["bench", "--smoke", "--phases", "latency", "--latency-samples", "20", "--warmup-seconds", "0", "--store", db.ConnectionString, "--json", json],
                TimeSpan.FromSeconds(240), new Dictionary<string, string> { ["DTS_SCHEMA"] = "" }))
                Assert.True(bench.ExitCode == 0, $"run {run}: exit {bench.ExitCode}: {bench.Stderr}");
            using var report = JsonDocument.Parse(await File.ReadAllTextAsync(json, TestContext.Current.CancellationToken));
            File.Delete(json);
            var store = report.RootElement.GetProperty("store").GetString()!;
            var at = store.IndexOf("schema dts_bench_", StringComparison.Ordinal);
            Assert.True(at >= 0, store);
            schemas.Add(store[(at + "schema ".Length)..].Trim());
            Assert.True(report.RootElement.GetProperty("latency_p50_us").GetDouble() > 0);
        }

        Assert.NotEqual(schemas[0], schemas[1]);
        await using var connection = await db.OpenAsync(TestContext.Current.CancellationToken);
        await using var count = new Npgsql.NpgsqlCommand("SELECT count(*) FROM information_schema.schemata WHERE schema_name = ANY(@names)", connection);
        count.Parameters.AddWithValue("names", schemas.ToArray());
        Assert.Equal(0L, (long)(await count.ExecuteScalarAsync(TestContext.Current.CancellationToken))!);
    }

    [Fact]
    public async Task DtsBench_DrainPhaseAlone_RunsWithOneWorker()
    {
        var json = _dir.File("drain.json");
        await using var bench = await DtsProcess.RunAsync(["bench", "--smoke", "--phases", "drain", "--workers", "1", "--json", json], TimeSpan.FromSeconds(240));
        Assert.True(bench.ExitCode == 0, $"dts bench failed:\n{bench.Stdout}\n{bench.Stderr}");
        using var report = JsonDocument.Parse(await File.ReadAllTextAsync(json, TestContext.Current.CancellationToken));
        var r = report.RootElement;
        Assert.True(r.GetProperty("drain_jobs_per_second").GetDouble() > 0);
        Assert.Equal(JsonValueKind.Null, r.GetProperty("end_to_end_jobs_per_second").ValueKind);
        Assert.Equal(JsonValueKind.Null, r.GetProperty("latency_p50_us").ValueKind);
    }

    [Fact]
    public async Task Compare_Smoke_PrintsGearmandAndDtsFiguresWithRatios()
    {
        var root = RepositoryRoot();
        var script = Path.Combine(root, "bench", "compare");
        var ci = !string.IsNullOrEmpty(Environment.GetEnvironmentVariable("CI"));
        var install = await RunAsync(script, ["--install-only"], TimeSpan.FromMinutes(5));
        if (install.ExitCode != 0)
        {
            Assert.False(ci, $"gearman could not be installed on CI:\n{install.Output}");
            Assert.Skip("gearmand and libgearman-dev are not installed and cannot be installed here (set CI to make this a failure).");
        }

        var json = _dir.File("compare.json");
        var run = await RunAsync(script, ["--smoke", "--json", json], TimeSpan.FromMinutes(4));
        Assert.True(run.ExitCode == 0, $"bench/compare failed:\n{run.Output}");
        Assert.Contains("Dts/gm-mem", run.Output, StringComparison.Ordinal);
        Assert.Contains("drain, 4 workers", run.Output, StringComparison.Ordinal);

        using var report = JsonDocument.Parse(await File.ReadAllTextAsync(json, TestContext.Current.CancellationToken));
        var figures = report.RootElement.GetProperty("figures");
        Assert.True(figures.TryGetProperty("d.flush_p50", out var flush) && flush.GetDouble() > 0, $"d.flush_p50 missing in {figures}");
        Assert.Contains("Disk flush floor", run.Output, StringComparison.Ordinal);
        foreach (var peer in new[] { "gm", "gs", "d" })
        {
            foreach (var figure in new[] { "submit", "drain1", "drain2", "drain4", "e2e", "p50", "p99", "mem" })
            {
                Assert.True(figures.TryGetProperty($"{peer}.{figure}", out var v) && v.ValueKind == JsonValueKind.Number && v.GetDouble() > 0,
                    $"{peer}.{figure} missing or not positive in {figures}");
            }
        }
    }

    private static string RepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Dts.slnx"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("cannot find the repository root");
    }

    private static async Task<(int ExitCode, string Output)> RunAsync(string script, string[] args, TimeSpan limit)
    {
        var info = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        info.ArgumentList.Add(script);
        foreach (var a in args) info.ArgumentList.Add(a);
        // The script runs this test build's dts instead of building its own.
        info.Environment["DTS_CLI"] = DtsProcess.CliPath;
        using var process = new Process { StartInfo = info };
        var output = new StringBuilder();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var timeout = new CancellationTokenSource(limit);
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            // SIGTERM lets the script's trap end gearmand and the dts processes it started.
            using (var term = Process.Start("kill", ["-TERM", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])) term?.WaitForExit();
            if (!process.WaitForExit(TimeSpan.FromSeconds(20))) process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{script} did not finish within {limit}:\n{output}");
        }
        await process.WaitForExitAsync(CancellationToken.None);
        lock (output) return (process.ExitCode, output.ToString());
    }
}
