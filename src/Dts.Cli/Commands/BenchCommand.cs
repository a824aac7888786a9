using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Dts.Client;
using Dts.Contracts;
using Dts.Server;
using Dts.Worker;
using HdrHistogram;
using Spectre.Console;

namespace Dts.Cli.Commands;

internal sealed class BenchReport
{
    public DateTimeOffset Date { get; set; }
    public string Machine { get; set; } = "";
    public string Store { get; set; } = "";
    public int Jobs { get; set; }
    public int Workers { get; set; }
    public int Clients { get; set; }
    public int Batch { get; set; }
    public int PayloadBytes { get; set; }
    public double EndToEndJobsPerSecond { get; set; }
    public double SubmitJobsPerSecond { get; set; }
    public double DrainJobsPerSecond { get; set; }
    public double LatencyP50Us { get; set; }
    public double LatencyP90Us { get; set; }
    public double LatencyP99Us { get; set; }
    public double LatencyMaxUs { get; set; }
    public double CpuSecondsPer1000Jobs { get; set; }
    public double PeakMemoryMb { get; set; }
    public string Note { get; set; } = "";
}

/// <summary>
/// A load generator over the public API: end-to-end, submit-only and drain-only rates for no-op
/// jobs with the batch endpoints, and the round trip of single foreground jobs.
/// </summary>
internal static class BenchCommand
{
    public static Command Build()
    {
        var jobs = new Option<int>("--jobs") { Description = "Jobs per throughput phase.", DefaultValueFactory = _ => 50_000 };
        var workers = new Option<int>("--workers") { Description = "Workers (in-process, each with its own connection).", DefaultValueFactory = _ => 4 };
        var clients = new Option<int>("--clients") { Description = "Clients, each a separate user.", DefaultValueFactory = _ => 2 };
        var batch = new Option<int>("--batch") { Description = "Jobs per submit request.", DefaultValueFactory = _ => 500 };
        var payload = new Option<int>("--payload") { Description = "Bytes of argument text per job.", DefaultValueFactory = _ => 0 };
        var samples = new Option<int>("--latency-samples") { Description = "Single foreground jobs timed one at a time.", DefaultValueFactory = _ => 2000 };
        var dir = new Option<string?>("--dir") { Description = "Data directory of the benchmark's server (default: a temporary one, deleted)." };
        var sync = new Option<Dts.Storage.Sqlite.SqliteSynchronous>("--sync") { Description = "SQLite flushing of the benchmark's server: Full (default) or Normal.", DefaultValueFactory = _ => Dts.Storage.Sqlite.SqliteSynchronous.Full };
        var json = new Option<string?>("--json") { Description = "Also write the figures to this JSON file." };
        var command = new Command("bench", "Measure throughput and latency of a Dts server on this machine (starts its own server on the SQLite default).")
        {
            jobs, workers, clients, batch, payload, samples, dir, sync, json,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var n = parse.GetValue(jobs);
            var w = parse.GetValue(workers);
            var c = parse.GetValue(clients);
            var b = parse.GetValue(batch);
            if (n < 1) return Cli.Fail("--jobs must be at least 1.");
            if (w is < 1 or > 64) return Cli.Fail("--workers must be from 1 to 64.");
            if (c is < 1 or > 64) return Cli.Fail("--clients must be from 1 to 64.");
            if (b is < 1 or > ApiRoutes.MaxBatch) return Cli.Fail($"--batch must be from 1 to {ApiRoutes.MaxBatch}.");
            if (parse.GetValue(payload) is < 0 or > 512 * 1024) return Cli.Fail("--payload must be from 0 to 524288.");
            if (parse.GetValue(samples) < 0) return Cli.Fail("--latency-samples must not be negative.");
            var given = parse.GetValue(dir);
            var workDir = given ?? Path.Combine(Path.GetTempPath(), $"dts-bench-{Guid.NewGuid():N}");
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            using var signals = Cli.StopOnSignals(stop, "the benchmark");
            try
            {
                var report = await RunAsync(workDir, n, w, c, b, parse.GetValue(payload), parse.GetValue(samples), parse.GetValue(sync), stop.Token);
                Print(report);
                if (parse.GetValue(json) is { } file)
                    await File.WriteAllTextAsync(file, JsonSerializer.Serialize(report, CliJson.Default.BenchReport) + "\n", CancellationToken.None);
                return 0;
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                Console.Error.WriteLine("dts bench: interrupted");
                return 130;
            }
            finally
            {
                if (given is null) TryDelete(workDir);
            }
        });
        return command;
    }

    private static async Task<BenchReport> RunAsync(string workDir, int n, int workerCount, int clientCount, int batch, int payloadBytes, int samples, Dts.Storage.Sqlite.SqliteSynchronous sync, CancellationToken cancellationToken)
    {
        await using var server = await Cli.StartQuietServerAsync(workDir, cancellationToken, sync);
        var url = server.Url.ToString();
        var workerSecret = await server.CreateUserAsync("bench-worker", [Roles.Worker], cancellationToken);
        var clients = new List<DtsClient>();
        for (var i = 0; i < clientCount; i++)
        {
            var name = $"bench-client-{i + 1}";
            clients.Add(new DtsClient(name, await server.CreateUserAsync(name, [Roles.Client], cancellationToken), url, maxConcurrency: 16));
        }
        var arg = JsonSerializer.SerializeToElement(new[] { new string('x', payloadBytes) }, CliJson.Default.StringArray);
        var process = Process.GetCurrentProcess();
        var report = new BenchReport
        {
            Date = DateTimeOffset.UtcNow, Machine = $"{Environment.ProcessorCount} cores, {Environment.OSVersion}", Store = $"{server.Store.Description} (synchronous={sync})",
            Jobs = n, Workers = workerCount, Clients = clientCount, Batch = batch, PayloadBytes = payloadBytes,
            Note = "server, workers and clients share this process; CPU and memory are the whole process's",
        };

        await using var noop = await StartWorkersAsync(url, workerSecret, workerCount, "bench.noop", cancellationToken);

        // Warm up the JIT and connections so the first phase is not measured cold.
        await PumpAsync(clients, "bench.noop", Math.Min(n, 2000), batch, arg, cancellationToken);

        var cpu0 = process.TotalProcessorTime;
        var t = Stopwatch.StartNew();
        await PumpAsync(clients, "bench.noop", n, batch, arg, cancellationToken);
        report.EndToEndJobsPerSecond = n / t.Elapsed.TotalSeconds;
        process.Refresh();
        report.CpuSecondsPer1000Jobs = (process.TotalProcessorTime - cpu0).TotalSeconds / n * 1000;
        AnsiConsole.MarkupLine($"end to end: [bold]{report.EndToEndJobsPerSecond:N0}[/] jobs/s");

        // Submit-only: nobody serves bench.drain yet, so the jobs pile up in the queue.
        t.Restart();
        var perClient = Split(n, clientCount);
        await Task.WhenAll(clients.Select((c, i) => SubmitOnlyAsync(c, "bench.drain", perClient[i], batch, arg, cancellationToken)));
        report.SubmitJobsPerSecond = n / t.Elapsed.TotalSeconds;
        AnsiConsole.MarkupLine($"submit only: [bold]{report.SubmitJobsPerSecond:N0}[/] jobs/s");

        // Drain: workers start on a full queue; done when every result has reached its client.
        t.Restart();
        var readers = clients.Select((c, i) => CountResultsAsync(c, perClient[i], cancellationToken)).ToList();
        await using (await StartWorkersAsync(url, workerSecret, workerCount, "bench.drain", cancellationToken))
        {
            await Task.WhenAll(readers);
        }
        report.DrainJobsPerSecond = n / t.Elapsed.TotalSeconds;
        AnsiConsole.MarkupLine($"drain: [bold]{report.DrainJobsPerSecond:N0}[/] jobs/s");

        if (samples > 0)
        {
            var histogram = new LongHistogram(TimeStamp.Seconds(60), 3);
            var one = clients[0];
            for (var i = 0; i < samples + Math.Min(200, samples); i++)
            {
                var start = Stopwatch.GetTimestamp();
                var submitted = await one.SubmitAsync(new SubmitJobRequest { Function = "bench.noop", Args = arg }, cancellationToken);
                var done = await one.WaitAsync(submitted.Id, TimeSpan.FromSeconds(30), cancellationToken);
                var elapsed = Stopwatch.GetTimestamp() - start;
                if (done.State != JobState.Succeeded) throw new InvalidOperationException($"latency job ended {done.State.ToWire()}");
                if (i >= Math.Min(200, samples)) histogram.RecordValue(elapsed);
            }
            double Us(double percentile) => histogram.GetValueAtPercentile(percentile) * 1_000_000.0 / Stopwatch.Frequency;
            report.LatencyP50Us = Us(50);
            report.LatencyP90Us = Us(90);
            report.LatencyP99Us = Us(99);
            report.LatencyMaxUs = histogram.GetMaxValue() * 1_000_000.0 / Stopwatch.Frequency;
            // The latency jobs' results are still pending for the first client; acknowledge them.
            await foreach (var _ in one.ReadResultsAsync(ApiRoutes.MaxBatch, stopWhenIdle: true, cancellationToken)) { }
        }
        process.Refresh();
        report.PeakMemoryMb = process.PeakWorkingSet64 / 1024.0 / 1024.0;
        foreach (var c in clients) await c.DisposeAsync();
        return report;
    }

    private sealed class WorkerGroup(List<DtsWorker> workers, List<Task> runs, CancellationTokenSource stop) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await stop.CancelAsync();
            await Task.WhenAll(runs);
            foreach (var w in workers) await w.DisposeAsync();
            stop.Dispose();
        }
    }

    private static Task<WorkerGroup> StartWorkersAsync(string url, string secret, int count, string function, CancellationToken cancellationToken)
    {
        _ = cancellationToken;
        var stop = new CancellationTokenSource();
        var workers = new List<DtsWorker>();
        var runs = new List<Task>();
        var nothing = JsonSerializer.SerializeToElement(0, CliJson.Default.Int32);
        for (var i = 0; i < count; i++)
        {
            var w = new DtsWorker(new DtsWorkerOptions
            {
                ServerUrl = url, UserId = "bench-worker", Secret = secret, Concurrency = 1000, Name = $"bench-{function}-{i + 1}",
                Log = line => Console.Error.WriteLine($"worker: {line}"),
            });
            w.Handle(function, (_, _) => Task.FromResult(nothing));
            workers.Add(w);
            runs.Add(w.RunAsync(stop.Token));
        }
        return Task.FromResult(new WorkerGroup(workers, runs, stop));
    }

    private static async Task PumpAsync(List<DtsClient> clients, string function, int n, int batch, JsonElement arg, CancellationToken cancellationToken)
    {
        var split = Split(n, clients.Count);
        await Task.WhenAll(clients.Select((c, i) =>
            new JobPump(c, batch, maxInFlight: Math.Max(batch * 8, 4000)).RunAsync(
                Enumerable.Range(0, split[i]).Select(_ => new SubmitJobRequest { Function = function, Args = arg, MaxAttempts = 1 }),
                split[i], (_, _) => { }, _ => { }, cancellationToken)));
    }

    private static async Task SubmitOnlyAsync(DtsClient client, string function, int n, int batch, JsonElement arg, CancellationToken cancellationToken)
    {
        var sends = new List<Task>();
        using var slots = new SemaphoreSlim(4);
        for (var sent = 0; sent < n; sent += batch)
        {
            var size = Math.Min(batch, n - sent);
            var jobs = Enumerable.Range(0, size).Select(_ => new SubmitJobRequest { Function = function, Args = arg, MaxAttempts = 1 }).ToList();
            await slots.WaitAsync(cancellationToken);
            sends.Add(Task.Run(async () =>
            {
                try
                {
                    await client.SubmitBatchAsync(jobs, cancellationToken);
                }
                finally
                {
                    slots.Release();
                }
            }, cancellationToken));
        }
        await Task.WhenAll(sends);
    }

    private static async Task CountResultsAsync(DtsClient client, int expected, CancellationToken cancellationToken)
    {
        if (expected == 0) return;
        var seen = 0;
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        await foreach (var _ in client.ReadResultsAsync(ApiRoutes.MaxBatch, cancellationToken: stop.Token))
        {
            if (++seen >= expected) break;
        }
    }

    private static int[] Split(int n, int parts) => Enumerable.Range(0, parts).Select(i => n / parts + (i < n % parts ? 1 : 0)).ToArray();

    private static void Print(BenchReport r)
    {
        var table = new Table().AddColumns("figure", "value");
        table.AddRow("store", r.Store);
        table.AddRow("jobs per phase / workers / clients / batch", $"{r.Jobs:N0} / {r.Workers} / {r.Clients} / {r.Batch}");
        table.AddRow("end to end (submit, run, result received)", $"{r.EndToEndJobsPerSecond:N0} jobs/s");
        table.AddRow("submit only (durable)", $"{r.SubmitJobsPerSecond:N0} jobs/s");
        table.AddRow("drain only", $"{r.DrainJobsPerSecond:N0} jobs/s");
        table.AddRow("single job round trip p50 / p90 / p99 / max", $"{r.LatencyP50Us:N0} / {r.LatencyP90Us:N0} / {r.LatencyP99Us:N0} / {r.LatencyMaxUs:N0} us");
        table.AddRow("CPU per 1000 jobs (end to end)", $"{r.CpuSecondsPer1000Jobs:F3} s");
        table.AddRow("peak memory", $"{r.PeakMemoryMb:N0} MB");
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine($"[grey]{Markup.Escape(r.Note)}[/]");
    }

    private static void TryDelete(string dir)
    {
        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
