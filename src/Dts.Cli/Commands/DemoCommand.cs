using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using Dts.Client;
using Dts.Contracts;
using Dts.Server;
using Dts.Worker;
using Spectre.Console;

namespace Dts.Cli.Commands;

/// <summary>One line of the demo's results file.</summary>
internal sealed class DemoResultLine
{
    public int Line { get; set; }
    public string Input { get; set; } = "";
    public string Id { get; set; } = "";
    public string State { get; set; } = "";
    public JsonElement? Result { get; set; }
    public string? Error { get; set; }
}

internal static class DemoCommand
{
    public static Command Build()
    {
        var dir = new Option<string?>("--dir") { Description = "Directory for the SQLite file and the results (default: a new temporary directory, kept)." };
        var function = new Option<string>("--function") { Description = "Built-in function to run on each line: reverse, wordcount or sha256.", DefaultValueFactory = _ => "reverse" };
        var input = new Option<string?>("--input") { Description = "A text file, one job per line (default: the bundled sample of 12,000 lines)." };
        var workers = new Option<int>("--workers") { Description = "In-process workers.", DefaultValueFactory = _ => 2 };
        var concurrency = new Option<int>("--concurrency") { Description = "Jobs each worker runs at once.", DefaultValueFactory = _ => 128 };
        var command = new Command("demo", "Run the main job end to end on the embedded SQLite default: a server, workers and a client in one process.")
        {
            dir, function, input, workers, concurrency,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var fn = parse.GetValue(function)!;
            if (!BuiltinFunctions.Names.Contains(fn)) return Cli.Fail($"unknown function '{fn}'; choose {string.Join(", ", BuiltinFunctions.Names)}.");
            if (parse.GetValue(workers) is < 1 or > 64) return Cli.Fail("--workers must be from 1 to 64.");
            if (parse.GetValue(concurrency) is < 1 or > 10_000) return Cli.Fail("--concurrency must be from 1 to 10000.");
            var inputPath = parse.GetValue(input);
            if (inputPath is not null && !File.Exists(inputPath)) return Cli.Fail($"input file '{inputPath}' does not exist.");
            var workDir = parse.GetValue(dir) ?? Path.Combine(Path.GetTempPath(), $"dts-demo-{DateTime.Now:yyyyMMdd-HHmmss}-{Environment.ProcessId}");
            Directory.CreateDirectory(workDir);
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            using var signals = Cli.StopOnSignals(stop, "the demo");
            try
            {
                return await RunAsync(workDir, fn, inputPath, parse.GetValue(workers), parse.GetValue(concurrency), stop.Token);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                Console.Error.WriteLine("dts demo: interrupted");
                return 130;
            }
        });
        return command;
    }

    private static async Task<int> RunAsync(string workDir, string function, string? inputPath, int workerCount, int concurrency, CancellationToken cancellationToken)
    {
        var lines = await ReadLinesAsync(inputPath, cancellationToken);
        Console.WriteLine($"dts demo: {lines.Count} lines through '{function}', data in {workDir}");

        await using var server = await Cli.StartQuietServerAsync(workDir, cancellationToken);
        var secret = await server.CreateUserAsync("demo", [Roles.Client, Roles.Worker], cancellationToken);
        var url = server.Url.ToString();
        Console.WriteLine($"server on {url} (store {server.Store.Description}); user 'demo' created");

        using var stopWorkers = new CancellationTokenSource();
        var workerTasks = new List<Task>();
        var workerObjects = new List<DtsWorker>();
        for (var i = 0; i < workerCount; i++)
        {
            var number = i + 1;
            var w = BuiltinFunctions.AddTo(new DtsWorker(new DtsWorkerOptions
            {
                ServerUrl = url, UserId = "demo", Secret = secret, Concurrency = concurrency, Name = $"demo-worker-{number}",
                Log = line => Console.Error.WriteLine($"worker {number}: {line}"),
            }));
            workerObjects.Add(w);
            workerTasks.Add(w.RunAsync(stopWorkers.Token));
        }

        await using var client = new DtsClient("demo", secret, url, maxConcurrency: 16);
        var results = new DemoResultLine?[lines.Count];
        var idToLine = new System.Collections.Concurrent.ConcurrentDictionary<string, int>(StringComparer.Ordinal);
        var early = new System.Collections.Concurrent.ConcurrentDictionary<string, JobView>(StringComparer.Ordinal);
        var pump = new JobPump(client, batchSize: 500, maxInFlight: 5000);
        var jobs = lines.Select(l => new SubmitJobRequest { Function = function, Args = JsonSerializer.SerializeToElement(new[] { l }, CliJson.Default.StringArray) });

        void Record(int line, JobView job) => results[line] = new DemoResultLine
        {
            Line = line + 1, Input = lines[line], Id = job.Id, State = job.State.ToWire(), Result = job.Result,
            Error = job.Error is null ? null : $"{job.Error.Code}: {job.Error.Message}",
        };

        var clock = Stopwatch.StartNew();
        var run = pump.RunAsync(jobs, lines.Count,
            onSubmitted: (index, id) =>
            {
                idToLine[id] = index;
                // A result can arrive before its submit answer has been recorded.
                if (early.TryRemove(id, out var job)) Record(index, job);
            },
            onResult: job =>
            {
                if (idToLine.TryGetValue(job.Id, out var line)) Record(line, job);
                else
                {
                    early[job.Id] = job;
                    if (idToLine.TryGetValue(job.Id, out line) && early.TryRemove(job.Id, out var again)) Record(line, again);
                }
            },
            cancellationToken);
        await ShowProgressAsync(run, pump, lines.Count, clock);
        await run;
        var elapsed = clock.Elapsed;

        await stopWorkers.CancelAsync();
        await Task.WhenAll(workerTasks);
        foreach (var w in workerObjects) await w.DisposeAsync();

        var resultsFile = Path.Combine(workDir, "results.jsonl");
        var missing = 0;
        await using (var writer = new StreamWriter(resultsFile))
        {
            foreach (var r in results)
            {
                if (r is null)
                {
                    missing++;
                    continue;
                }
                await writer.WriteLineAsync(JsonSerializer.Serialize(r, CliJson.Default.DemoResultLine));
            }
        }
        await server.StopAsync(CancellationToken.None);

        var table = new Table().AddColumns("jobs", "succeeded", "failed", "seconds", "jobs/s", "results");
        table.AddRow(lines.Count.ToString("N0"), (pump.Finished - pump.Failed).ToString("N0"), pump.Failed.ToString("N0"),
            elapsed.TotalSeconds.ToString("F2"), (lines.Count / elapsed.TotalSeconds).ToString("N0"), resultsFile);
        AnsiConsole.Write(table);
        if (missing > 0)
        {
            Console.Error.WriteLine($"dts demo: {missing} lines have no result");
            return 1;
        }
        return 0;
    }

    private static async Task<List<string>> ReadLinesAsync(string? path, CancellationToken cancellationToken)
    {
        var lines = new List<string>();
        using var reader = path is null
            ? new StreamReader(typeof(DemoCommand).Assembly.GetManifestResourceStream("Dts.Cli.Samples.sample.txt")!)
            : new StreamReader(path);
        while (await reader.ReadLineAsync(cancellationToken) is { } line) lines.Add(line);
        return lines;
    }

    /// <summary>A live progress bar on a terminal; a line a second otherwise.</summary>
    private static async Task ShowProgressAsync(Task run, JobPump pump, int total, Stopwatch clock)
    {
        if (!Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive)
        {
            await AnsiConsole.Progress()
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn(), new SpinnerColumn())
                .StartAsync(async ctx =>
                {
                    var task = ctx.AddTask("jobs", maxValue: total);
                    while (!run.IsCompleted)
                    {
                        task.Value = pump.Finished;
                        task.Description = $"jobs {pump.Finished:N0}/{total:N0}, {pump.Failed} failed, {pump.Finished / Math.Max(clock.Elapsed.TotalSeconds, 0.001):N0}/s";
                        await Task.WhenAny(run, Task.Delay(200));
                    }
                    task.Value = pump.Finished;
                });
            return;
        }
        while (!run.IsCompleted)
        {
            await Task.WhenAny(run, Task.Delay(1000));
            Console.WriteLine($"  submitted {pump.Submitted:N0}, done {pump.Finished:N0}/{total:N0}, failed {pump.Failed}, {pump.Finished / Math.Max(clock.Elapsed.TotalSeconds, 0.001):N0} jobs/s");
        }
    }
}
