using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Dts.Cli.Bench;
using Dts.Client;
using Dts.Contracts;
using Dts.Worker;
using HdrHistogram;
using Spectre.Console;

namespace Dts.Cli.Commands;

/// <summary>
/// A load generator over the public API: end-to-end, submit-only and drain-only rates for no-op
/// jobs with the batch endpoints, and the round trip of single foreground jobs. The server runs as
/// a child process by default so that its CPU time and peak memory are measured apart from the
/// load generator's.
/// </summary>
internal static class BenchCommand
{
    private static readonly string[] AllPhases = ["e2e", "submit", "drain", "latency"];

    /// <summary>Flushes timed for the disk floor: as many as latency samples, at most this many.</summary>
    private const int MaxFlushSamples = 1000;

    private sealed record Settings(int Jobs, int Workers, int Clients, int Batch, int Payload, int Samples, double WarmupSeconds,
        HashSet<string> Phases, long Queued, Dts.Storage.Sqlite.SqliteSynchronous Sync);

    public static Command Build()
    {
        var jobs = new Option<int?>("--jobs") { Description = "Jobs per throughput phase (default 50000; 1000 with --smoke)." };
        var workers = new Option<int>("--workers") { Description = "Workers (in this process, each with its own connection).", DefaultValueFactory = _ => 4 };
        var clients = new Option<int>("--clients") { Description = "Clients, each a separate user.", DefaultValueFactory = _ => 2 };
        var batch = new Option<int>("--batch") { Description = "Jobs per submit request.", DefaultValueFactory = _ => 500 };
        var payload = new Option<int>("--payload") { Description = "Bytes of argument text per job.", DefaultValueFactory = _ => 0 };
        var samples = new Option<int?>("--latency-samples") { Description = "Single foreground jobs timed one at a time (default 2000; 50 with --smoke)." };
        var dir = new Option<string?>("--dir") { Description = "Data directory of the benchmark's server (default: a temporary one, deleted)." };
        var sync = new Option<Dts.Storage.Sqlite.SqliteSynchronous>("--sync") { Description = "SQLite flushing of the benchmark's server: Full (default) or Normal.", DefaultValueFactory = _ => Dts.Storage.Sqlite.SqliteSynchronous.Full };
        var json = new Option<string?>("--json") { Description = "Also write every figure to this JSON file." };
        var inProcess = new Option<bool>("--in-process") { Description = "Run the server inside this process (CPU and memory are then the whole process's)." };
        var server = new Option<string?>("--server") { Description = "Target an existing server at this URL instead of starting one (its CPU and memory are then n/a); needs --user and --secret of a user with the client and worker roles." };
        var user = new Option<string?>("--user") { Description = "With --server: the user for clients and workers (default $DTS_USER)." };
        var secret = new Option<string?>("--secret") { Description = "With --server: that user's secret (default $DTS_SECRET)." };
        var servers = new Option<int>("--servers")
        {
            Description = "Start this many `dts server` children on the one --store (PostgreSQL only) and spread clients and workers over them.",
            DefaultValueFactory = _ => 1,
        };
        var store = new Option<string?>("--store") { Description = "Passed verbatim to the child `dts server --store` (e.g. another SQLite file or a PostgreSQL connection string)." };
        var schema = new Option<string?>("--schema")
        {
            Description = "With a PostgreSQL --store: the schema of the benchmark's servers, kept afterwards (also DTS_SCHEMA). Default: a new schema dts_bench_<random>, dropped at the end.",
        };
        var smoke = new Option<bool>("--smoke") { Description = "A tiny run that finishes in seconds (for CI): 1000 jobs, 50 latency samples." };
        var phases = new Option<string>("--phases") { Description = "Comma-separated phases to run: e2e, submit, drain, latency (default all; drain alone with --queued).", DefaultValueFactory = _ => "" };
        var warmup = new Option<double?>("--warmup-seconds")
        {
            Description = "Load the server for at least this long before the first measured phase, so the JIT has finished tiering the hot paths (default 5; 0.5 with --smoke).",
        };
        var queued = new Option<long>("--queued") { Description = "Before the drain phase, queue this many extra jobs (in batches) so claim and complete run against a deep queue; the drain phase still times --jobs completions.", DefaultValueFactory = _ => 0 };
        var command = new Command("bench", "Measure throughput, latency, and the server's CPU and memory (starts its own `dts server` child on the SQLite default).")
        {
            jobs, workers, clients, batch, payload, samples, dir, sync, json, inProcess, server, user, secret, store, schema, servers, smoke, phases, queued, warmup,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var isSmoke = parse.GetValue(smoke);
            var n = parse.GetValue(jobs) ?? (isSmoke ? 1000 : 50_000);
            var w = parse.GetValue(workers);
            var c = parse.GetValue(clients);
            var b = parse.GetValue(batch);
            var q = parse.GetValue(queued);
            if (n < 1) return Cli.Fail("--jobs must be at least 1.");
            if (w is < 1 or > 64) return Cli.Fail("--workers must be from 1 to 64.");
            if (c is < 1 or > 64) return Cli.Fail("--clients must be from 1 to 64.");
            if (b is < 1 or > ApiRoutes.MaxBatch) return Cli.Fail($"--batch must be from 1 to {ApiRoutes.MaxBatch}.");
            if (parse.GetValue(payload) is < 0 or > 512 * 1024) return Cli.Fail("--payload must be from 0 to 524288.");
            var s = parse.GetValue(samples) ?? (isSmoke ? 50 : 2000);
            if (s < 0) return Cli.Fail("--latency-samples must not be negative.");
            if (q < 0) return Cli.Fail("--queued must not be negative.");
            var phaseText = parse.GetValue(phases)!;
            var chosen = phaseText.Length == 0
                ? (q > 0 ? new HashSet<string> { "drain" } : [.. AllPhases])
                : phaseText.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(p => p.ToLowerInvariant()).ToHashSet();
            if (chosen.Count == 0 || chosen.Any(p => !AllPhases.Contains(p)))
                return Cli.Fail($"--phases takes a comma-separated list of {string.Join(", ", AllPhases)}.");
            var targetUrl = parse.GetValue(server);
            if (targetUrl is not null && parse.GetValue(inProcess)) return Cli.Fail("--server and --in-process exclude each other.");
            var storeText = parse.GetValue(store);
            if (storeText is not null && (targetUrl is not null || parse.GetValue(inProcess)))
                return Cli.Fail("--store applies to the child server only (not with --server or --in-process).");
            var onPostgres = storeText is not null && Dts.Storage.Postgres.PostgresConnectionStrings.LooksLikePostgres(storeText);
            var serverCount = parse.GetValue(servers);
            if (serverCount < 1 || serverCount > 16) return Cli.Fail("--servers must be from 1 to 16.");
            if (serverCount > 1 && !onPostgres)
                return Cli.Fail("--servers above 1 needs --store naming a PostgreSQL database (servers share only a PostgreSQL store).");
            if (parse.GetValue(schema) is not null && !onPostgres) return Cli.Fail("--schema applies to a PostgreSQL --store only.");
            // A schema of the bench's own unless one is named: a second run on the same database then
            // starts empty instead of meeting the first run's users under another key file.
            var schemaName = onPostgres ? parse.GetValue(schema) ?? Cli.Variable("DTS_SCHEMA") : null;
            var ownSchema = onPostgres && schemaName is null;
            if (ownSchema) schemaName = "dts_bench_" + Guid.NewGuid().ToString("N")[..12];
            var remoteUser = parse.GetValue(user) ?? Environment.GetEnvironmentVariable("DTS_USER");
            var remoteSecret = parse.GetValue(secret) ?? Environment.GetEnvironmentVariable("DTS_SECRET");
            if (targetUrl is not null && (string.IsNullOrEmpty(remoteUser) || string.IsNullOrEmpty(remoteSecret)))
                return Cli.Fail("--server needs --user and --secret (or DTS_USER and DTS_SECRET).");

            var warm = parse.GetValue(warmup) ?? (isSmoke ? 0.5 : 5);
            if (!double.IsFinite(warm) || warm < 0 || warm > 600) return Cli.Fail("--warmup-seconds must be from 0 to 600.");
            var settings = new Settings(n, w, c, b, parse.GetValue(payload), s, warm, chosen, q, parse.GetValue(sync));
            var given = parse.GetValue(dir);
            var workDir = given ?? Path.Combine(Path.GetTempPath(), $"dts-bench-{Guid.NewGuid():N}");
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            using var signals = Cli.StopOnSignals(stop, "the benchmark");
            try
            {
                BenchReport report;
                if (targetUrl is not null)
                {
                    await using var remote = new RemoteBenchServer(targetUrl, remoteUser!, remoteSecret!);
                    report = await RunAsync(remote, "existing server", settings, null, stop.Token);
                }
                else if (parse.GetValue(inProcess))
                {
                    var inner = await Cli.StartQuietServerAsync(workDir, stop.Token, settings.Sync);
                    await using var local = new InProcessBenchServer(inner, settings.Sync);
                    report = await RunAsync(local, "in-process server", settings, workDir, stop.Token);
                }
                else if (serverCount > 1)
                {
                    await using var cluster = await ClusterBenchServer.StartAsync(serverCount, workDir, storeText!, schemaName, settings.Sync, stop.Token);
                    report = await RunAsync(cluster, $"{serverCount} child server processes", settings, workDir, stop.Token);
                }
                else
                {
                    await using var child = await ChildBenchServer.StartAsync(workDir, storeText, schemaName, settings.Sync, stop.Token);
                    report = await RunAsync(child, "child server process", settings, workDir, stop.Token);
                }
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
            catch (Exception ex) when (ex is InvalidOperationException or TimeoutException or DtsApiException or HttpRequestException)
            {
                Console.Error.WriteLine("dts bench: " + ex.Message);
                return 1;
            }
            finally
            {
                if (given is null) TryDelete(workDir);
                if (ownSchema) await DropSchemaAsync(storeText!, schemaName!);
            }
        });
        return command;
    }

    /// <summary>Drops the schema the bench made for its servers (after they have stopped); a failure is reported, not thrown.</summary>
    private static async Task DropSchemaAsync(string store, string schema)
    {
        try
        {
            await using var connection = new Npgsql.NpgsqlConnection(Dts.Storage.Postgres.PostgresConnectionStrings.Normalize(store));
            await connection.OpenAsync(CancellationToken.None);
            await using var drop = new Npgsql.NpgsqlCommand($"DROP SCHEMA IF EXISTS \"{schema}\" CASCADE", connection);
            await drop.ExecuteNonQueryAsync(CancellationToken.None);
        }
        catch (Exception e) when (e is Npgsql.NpgsqlException or ArgumentException or InvalidOperationException)
        {
            Console.Error.WriteLine($"dts bench: could not drop the benchmark's schema {schema}: {e.Message}");
        }
    }

    /// <param name="dataDir">The local server's data directory, where the disk flush floor is measured; null for a server elsewhere.</param>
    private static async Task<BenchReport> RunAsync(BenchServer server, string mode, Settings s, string? dataDir, CancellationToken cancellationToken)
    {
        var url = server.Url;
        var urls = server.Urls;
        var (workerUser, workerSecret) = await server.UserAsync("bench-worker", [Roles.Worker], cancellationToken);
        var clients = new List<DtsClient>();
        for (var i = 0; i < s.Clients; i++)
        {
            var (name, secret) = await server.UserAsync($"bench-client-{i + 1}", [Roles.Client], cancellationToken);
            clients.Add(new DtsClient(name, secret, urls[i % urls.Count], maxConcurrency: 16));
        }
        if (server is RemoteBenchServer { SharesOneUser: true } && s.Clients > 1)
            throw new InvalidOperationException("--user is not an administrator, so every client would share it and take each other's results: use --clients 1 or an administrator");
        var arg = JsonSerializer.SerializeToElement(new[] { new string('x', s.Payload) }, CliJson.Default.StringArray);
        var report = new BenchReport
        {
            Date = DateTimeOffset.UtcNow,
            Machine = $"{Environment.ProcessorCount} cores, {Environment.OSVersion}",
            Mode = mode, Store = server.Description, ServerMeasuredBy = server.MeasuredBy,
            Phases = string.Join(",", AllPhases.Where(s.Phases.Contains)),
            Jobs = s.Jobs, Workers = s.Workers, Clients = s.Clients, Batch = s.Batch, PayloadBytes = s.Payload, Queued = s.Queued, WarmupSeconds = s.WarmupSeconds,
            Note = $"CPU and memory: {server.MeasuredBy}",
        };
        var cpuStart = server.CpuSeconds();
        double? CpuPer1000(double? before, int jobs) =>
            before is { } b && server.CpuSeconds() is { } a ? (a - b) / jobs * 1000 : null;

        var needNoop = s.Phases.Contains("e2e") || s.Phases.Contains("latency");
        await using var noop = needNoop ? StartWorkers(urls, workerUser, workerSecret, s.Workers, "bench.noop") : null;
        if (needNoop)
        {
            // Warm up the JIT and connections so the first phase is not measured cold. .NET compiles a
            // method several times (quick code, then instrumented, then optimised with what it measured);
            // a few thousand jobs left a fifth of the server's CPU in the measured phase going to the JIT.
            var warmTime = Stopwatch.StartNew();
            var chunk = Math.Max(2000, s.Batch * s.Clients * 2);
            do await PumpAsync(clients, "bench.noop", chunk, s.Batch, arg, cancellationToken);
            while (warmTime.Elapsed.TotalSeconds < s.WarmupSeconds);
        }

        if (s.Phases.Contains("e2e"))
        {
            var cpu0 = server.CpuSeconds();
            var t = Stopwatch.StartNew();
            await PumpAsync(clients, "bench.noop", s.Jobs, s.Batch, arg, cancellationToken);
            report.EndToEndSeconds = t.Elapsed.TotalSeconds;
            report.EndToEndJobsPerSecond = s.Jobs / t.Elapsed.TotalSeconds;
            report.EndToEndServerCpuSecondsPer1000Jobs = CpuPer1000(cpu0, s.Jobs);
            report.CpuSecondsPer1000Jobs = report.EndToEndServerCpuSecondsPer1000Jobs;
            AnsiConsole.MarkupLine($"end to end: [bold]{report.EndToEndJobsPerSecond:N0}[/] jobs/s");
        }

        var perClient = Split(s.Jobs, s.Clients);
        var drain = s.Phases.Contains("drain");
        if (drain && s.Queued > 0)
        {
            // The deep queue: jobs of the drained function that nobody serves yet.
            var t = Stopwatch.StartNew();
            var fill = Split(checked((int)Math.Min(s.Queued, int.MaxValue)), s.Clients);
            long done = 0;
            var step = Math.Max(s.Queued / 20, 1);
            await Task.WhenAll(clients.Select((c, i) => SubmitOnlyAsync(c, "bench.drain", fill[i], Math.Min(ApiRoutes.MaxBatch, Math.Max(s.Batch, 1000)), arg, added =>
            {
                var now = Interlocked.Add(ref done, added);
                if (now / step != (now - added) / step) Console.Error.WriteLine($"dts bench: queued {now:N0} of {s.Queued:N0} ({now / t.Elapsed.TotalSeconds:N0} jobs/s, server {server.MemoryMb()?.ToString("N0") ?? "n/a"} MB)");
            }, cancellationToken)));
            report.QueuedFillSeconds = t.Elapsed.TotalSeconds;
            report.QueuedFillJobsPerSecond = s.Queued / t.Elapsed.TotalSeconds;
            report.MemoryAfterFillMb = server.MemoryMb();
            AnsiConsole.MarkupLine($"queued {s.Queued:N0} jobs: [bold]{report.QueuedFillJobsPerSecond:N0}[/] jobs/s");
        }

        if (s.Phases.Contains("submit") || drain)
        {
            // Submit-only: nobody serves bench.drain yet, so the jobs pile up in the queue.
            var cpu0 = server.CpuSeconds();
            var t = Stopwatch.StartNew();
            await Task.WhenAll(clients.Select((c, i) => SubmitOnlyAsync(c, "bench.drain", perClient[i], s.Batch, arg, null, cancellationToken)));
            report.SubmitSeconds = t.Elapsed.TotalSeconds;
            report.SubmitJobsPerSecond = s.Jobs / t.Elapsed.TotalSeconds;
            report.SubmitServerCpuSecondsPer1000Jobs = CpuPer1000(cpu0, s.Jobs);
            AnsiConsole.MarkupLine($"submit only: [bold]{report.SubmitJobsPerSecond:N0}[/] jobs/s");
        }

        if (drain)
        {
            // Drain: workers start on a full queue; done when --jobs results have reached their clients.
            var cpu0 = server.CpuSeconds();
            var t = Stopwatch.StartNew();
            var readers = clients.Select((c, i) => CountResultsAsync(c, perClient[i], cancellationToken)).ToList();
            await using (StartWorkers(urls, workerUser, workerSecret, s.Workers, "bench.drain"))
            {
                await Task.WhenAll(readers);
                report.DrainSeconds = t.Elapsed.TotalSeconds;
                report.DrainJobsPerSecond = s.Jobs / t.Elapsed.TotalSeconds;
                report.DrainServerCpuSecondsPer1000Jobs = CpuPer1000(cpu0, s.Jobs);
            }
            AnsiConsole.MarkupLine($"drain ({s.Workers} workers): [bold]{report.DrainJobsPerSecond:N0}[/] jobs/s");
        }

        if (s.Phases.Contains("latency") && s.Samples > 0)
        {
            var histogram = new LongHistogram(TimeStamp.Seconds(60), 3);
            var one = clients[0];
            async Task ForegroundJobAsync()
            {
                var done = await one.RunAsync(new SubmitJobRequest { Function = "bench.noop", Args = arg }, TimeSpan.FromSeconds(30), cancellationToken);
                if (done.State != JobState.Succeeded) throw new InvalidOperationException($"latency job ended {done.State.ToWire()}");
            }
            // Single jobs take paths of their own (one submit with a wait, one lease at a time): warm
            // them up too, for at least 200 jobs and a fifth of the warm-up time, before anything counts.
            var warmTime = Stopwatch.StartNew();
            for (var i = 0; i < 200 || warmTime.Elapsed.TotalSeconds < s.WarmupSeconds / 5; i++) await ForegroundJobAsync();
            var cpu0 = server.CpuSeconds();
            for (var i = 0; i < s.Samples; i++)
            {
                var start = Stopwatch.GetTimestamp();
                await ForegroundJobAsync();
                histogram.RecordValue(Stopwatch.GetTimestamp() - start);
            }
            report.LatencyServerCpuSecondsPer1000Jobs = CpuPer1000(cpu0, s.Samples);
            report.LatencySamples = s.Samples;
            var latency = Percentiles.Of(histogram);
            (report.LatencyP50Us, report.LatencyP90Us, report.LatencyP99Us, report.LatencyMaxUs) = (latency.P50, latency.P90, latency.P99, latency.Max);
            AnsiConsole.MarkupLine($"single job round trip p50: [bold]{report.LatencyP50Us:N0}[/] us");
            if (dataDir is not null)
            {
                // Right after the latency phase, on the same disk: each durable answer waits for at least one such flush.
                var flushSamples = Math.Min(s.Samples, MaxFlushSamples);
                var flushes = Percentiles.Of(DiskFlushProbe.Measure(dataDir, flushSamples, cancellationToken));
                report.DiskFlushSamples = flushSamples;
                (report.DiskFlushP50Us, report.DiskFlushP99Us, report.DiskFlushMaxUs) = (flushes.P50, flushes.P99, flushes.Max);
                AnsiConsole.MarkupLine($"disk flush (4 KB write + fsync) p50: [bold]{report.DiskFlushP50Us:N0}[/] us, p99: [bold]{report.DiskFlushP99Us:N0}[/] us");
            }
            // The latency jobs' results are still pending for the first client. On an existing server,
            // acknowledge them (this waits for one idle long poll); a server of our own is thrown away.
            if (server is RemoteBenchServer)
            {
                await foreach (var _ in one.ReadResultsAsync(ApiRoutes.MaxBatch, stopWhenIdle: true, cancellationToken)) { }
            }
        }
        report.ServerCpuSecondsTotal = cpuStart is { } c0 && server.CpuSeconds() is { } c1 ? c1 - c0 : null;
        report.PeakMemoryMb = server.PeakMemoryMb();
        report.MemoryAtEndMb = server.MemoryMb();
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

    private static WorkerGroup StartWorkers(IReadOnlyList<string> urls, string user, string secret, int count, string function)
    {
        var stop = new CancellationTokenSource();
        var workers = new List<DtsWorker>();
        var runs = new List<Task>();
        var nothing = JsonSerializer.SerializeToElement(0, CliJson.Default.Int32);
        for (var i = 0; i < count; i++)
        {
            var w = new DtsWorker(new DtsWorkerOptions
            {
                ServerUrl = urls[i % urls.Count], UserId = user, Secret = secret, Concurrency = 1000, Name = $"bench-{function}-{i + 1}",
                Log = line => Console.Error.WriteLine($"worker: {line}"),
            });
            w.Handle(function, (_, _) => Task.FromResult(nothing));
            workers.Add(w);
            runs.Add(w.RunAsync(stop.Token));
        }
        return new WorkerGroup(workers, runs, stop);
    }

    private static async Task PumpAsync(List<DtsClient> clients, string function, int n, int batch, JsonElement arg, CancellationToken cancellationToken)
    {
        var split = Split(n, clients.Count);
        await Task.WhenAll(clients.Select((c, i) =>
            new JobPump(c, batch, maxInFlight: Math.Max(batch * 8, 4000)).RunAsync(
                Enumerable.Range(0, split[i]).Select(_ => new SubmitJobRequest { Function = function, Args = arg, MaxAttempts = 1 }),
                split[i], (_, _) => { }, _ => { }, cancellationToken)));
    }

    private static async Task SubmitOnlyAsync(DtsClient client, string function, int n, int batch, JsonElement arg, Action<int>? progress, CancellationToken cancellationToken)
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
                    progress?.Invoke(size);
                }
                finally
                {
                    slots.Release();
                }
            }, cancellationToken));
            // Keep the list of finished sends short on very long runs.
            if (sends.Count > 64)
            {
                await Task.WhenAll(sends.Where(x => x.IsCompleted));
                sends.RemoveAll(x => x.IsCompleted);
            }
        }
        await Task.WhenAll(sends);
    }

    private static async Task CountResultsAsync(DtsClient client, int expected, CancellationToken cancellationToken)
    {
        if (expected == 0) return;
        var seen = 0;
        await foreach (var _ in client.ReadResultsAsync(ApiRoutes.MaxBatch, cancellationToken: cancellationToken))
        {
            if (++seen >= expected) break;
        }
    }

    private static int[] Split(int n, int parts) => Enumerable.Range(0, parts).Select(i => n / parts + (i < n % parts ? 1 : 0)).ToArray();

    private static string Rate(double? v) => v is { } x ? $"{x:N0} jobs/s" : "-";
    private static string Cpu(double? v) => v is { } x ? $"{x:F3} s" : "n/a";

    private static void Print(BenchReport r)
    {
        var table = new Table().AddColumns("figure", "value");
        table.AddRow("mode / store", Markup.Escape($"{r.Mode} / {r.Store}"));
        table.AddRow("jobs per phase / workers / clients / batch / payload / warm-up", $"{r.Jobs:N0} / {r.Workers} / {r.Clients} / {r.Batch} / {r.PayloadBytes} B / {r.WarmupSeconds:0.#} s");
        if (r.Queued > 0)
        {
            table.AddRow("extra jobs queued before the drain", $"{r.Queued:N0} at {Rate(r.QueuedFillJobsPerSecond)}");
            table.AddRow("server memory after queueing them", r.MemoryAfterFillMb is { } m ? $"{m:N0} MB" : "n/a");
        }
        table.AddRow("end to end (submit, run, result received)", Rate(r.EndToEndJobsPerSecond));
        table.AddRow("submit only (durable)", Rate(r.SubmitJobsPerSecond));
        table.AddRow($"drain only ({r.Workers} workers)", Rate(r.DrainJobsPerSecond));
        table.AddRow("single job round trip p50 / p90 / p99 / max",
            r.LatencyP50Us is null ? "-" : $"{r.LatencyP50Us:N0} / {r.LatencyP90Us:N0} / {r.LatencyP99Us:N0} / {r.LatencyMaxUs:N0} us");
        table.AddRow("disk flush floor p50 / p99 / max (4 KB write + fsync in the data directory)",
            r.DiskFlushP50Us is null ? "-" : $"{r.DiskFlushP50Us:N0} / {r.DiskFlushP99Us:N0} / {r.DiskFlushMaxUs:N0} us");
        table.AddRow("server CPU per 1000 jobs: end to end / submit / drain / latency",
            $"{Cpu(r.EndToEndServerCpuSecondsPer1000Jobs)} / {Cpu(r.SubmitServerCpuSecondsPer1000Jobs)} / {Cpu(r.DrainServerCpuSecondsPer1000Jobs)} / {Cpu(r.LatencyServerCpuSecondsPer1000Jobs)}");
        table.AddRow("server peak memory (VmHWM) / at end", $"{(r.PeakMemoryMb is { } p ? $"{p:N0} MB" : "n/a")} / {(r.MemoryAtEndMb is { } e ? $"{e:N0} MB" : "n/a")}");
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
