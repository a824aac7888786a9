using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using Dts.Client;
using Dts.Client.Batch;
using Spectre.Console;

namespace Dts.Cli.Commands;

/// <summary>
/// <c>dts client run</c>: one job per input record, every outcome to result files, resumable
/// after any crash (docs/client.md).
/// </summary>
internal static class ClientRunCommand
{
    /// <summary>The run finished, but some records are in the errors file.</summary>
    public const int CompletedWithErrors = 4;

    public static Command Build()
    {
        var connection = new ConnectionArguments();
        var function = new Option<string>("--function", "-f") { Description = "The function to run for each record.", Required = true, HelpName = "F" };
        var input = new Option<string>("--input", "-i") { Description = "The input file, or - for standard input.", Required = true, HelpName = "FILE" };
        var format = new Option<string>("--format") { Description = "text: a line is args [line]; json: a line is kwargs or {\"args\":..,\"kwargs\":..}; words: each word is args [word].", DefaultValueFactory = _ => "text" };
        format.AcceptOnlyFromAmong("text", "json", "words");
        var outDir = new Option<string>("--out") { Description = "Write results to a dated tree DIR/yyyy/MM/dd/results.jsonl, switching at midnight.", HelpName = "DIR" };
        var results = new Option<string>("--results") { Description = "Write results to this JSON-lines file.", HelpName = "FILE" };
        var errors = new Option<string>("--errors") { Description = "Write bad records and failed jobs here (default: DIR/errors.jsonl, or FILE.errors.jsonl).", HelpName = "FILE" };
        var concurrency = new Option<int>("--concurrency", "-c") { Description = "Jobs in flight at most.", DefaultValueFactory = _ => 64, HelpName = "N" };
        var snooze = new Option<string>("--snooze") { Description = "The wait after a 429 or 503 without Retry-After, e.g. 500ms, 2s.", HelpName = "DURATION" };
        var start = new Option<long>("--start") { Description = "Skip the first N records.", HelpName = "N" };
        var ordered = new Option<bool>("--ordered") { Description = "Write outcomes in record order (bounded buffering)." };
        var timeZone = new Option<string>("--time-zone") { Description = "The time zone whose midnight switches --out's daily files (default: local).", HelpName = "TZ" };
        var resume = new Option<bool>("--resume") { Description = "Finish the run recorded in the checkpoint beside the outputs." };

        var command = new Command("run", "Run a function once per record of a file; write every result and error to files, resumably.");
        connection.AddTo(command);
        foreach (var option in new Option[] { function, input, format, outDir, results, errors, concurrency, snooze, start, ordered, timeZone, resume })
            command.Options.Add(option);

        command.SetAction(async (parse, cancellationToken) =>
        {
            try
            {
                var dir = parse.GetValue(outDir);
                var resultsFile = parse.GetValue(results);
                if ((dir is null) == (resultsFile is null)) throw new UsageException("give one of --out DIR or --results FILE");
                var slots = parse.GetValue(concurrency);
                if (slots is < 1 or > 10_000) throw new UsageException("--concurrency must be 1 to 10000");
                var skip = parse.GetValue(start);
                if (skip < 0) throw new UsageException("--start must not be negative");
                var snoozeText = parse.GetValue(snooze);
                var snoozeInterval = snoozeText is null ? DtsConnectionOptions.DefaultSnoozeInterval : ParseDuration(snoozeText, "--snooze");
                var zone = ParseTimeZone(parse.GetValue(timeZone));
                var inputPath = parse.GetValue(input)!;
                if (inputPath != "-" && !File.Exists(inputPath)) throw new UsageException($"the input file {inputPath} does not exist");
                var inputFormat = parse.GetValue(format) switch { "json" => InputFormat.Json, "words" => InputFormat.Words, _ => InputFormat.Text };

                var errorsFile = parse.GetValue(errors) ?? (dir is not null ? Path.Combine(dir, "errors.jsonl") : resultsFile + ".errors.jsonl");
                var checkpoint = dir is not null ? Path.Combine(dir, "checkpoint.json") : resultsFile + ".checkpoint.json";
                var isResume = parse.GetValue(resume);
                if (!isResume && File.Exists(checkpoint))
                    throw new UsageException($"{checkpoint} holds an earlier run: add --resume to finish it, or delete it to start again");
                if (isResume && !File.Exists(checkpoint))
                    throw new UsageException($"nothing to resume: {checkpoint} does not exist");

                var target = await connection.ResolveAsync(parse, cancellationToken).ConfigureAwait(false);
                // The original's client: a pool of twice the jobs in flight, 30 s to connect, 60 s per request.
                using var client = new DtsClient(new DtsConnectionOptions
                {
                    ServerUrls = target.ServerUrls,
                    UserId = target.UserId,
                    Secret = target.Secret,
                    TrustedCaFile = target.CaFile,
                    MaxConcurrency = slots,
                    SnoozeInterval = snoozeInterval,
                });

                await using var inputStream = inputPath == "-"
                    ? Console.OpenStandardInput()
                    : new FileStream(inputPath, FileMode.Open, FileAccess.Read, FileShare.Read, 64 * 1024, FileOptions.Asynchronous | FileOptions.SequentialScan);
                var source = LineSource.Create(inputFormat, inputStream, leaveOpen: true);
                await using IResultSink sink = dir is not null
                    ? new DailyRotatingResultSink(dir, errorsFile, zone, TimeProvider.System)
                    : new JsonLinesResultSink(resultsFile!, errorsFile);

                using var stop = new CancellationTokenSource();
                using var signals = Cli.StopOnSignals(stop, "submitting; waiting for the jobs in flight");
                var progress = new ProgressState();
                var options = new BatchRunOptions
                {
                    Concurrency = slots,
                    Start = skip,
                    Ordered = parse.GetValue(ordered),
                    CheckpointPath = checkpoint,
                    Resume = isResume,
                    StopSubmitting = stop.Token,
                    Progress = p => progress.Last = p,
                };
                var total = inputPath == "-" ? Task.FromResult<long?>(null) : CountRecordsAsync(inputPath, inputFormat, cancellationToken);
                var run = client.RunAsync(source, parse.GetValue(function)!, sink, options, cancellationToken);
                await ShowProgressAsync(run, progress, total, skip, cancellationToken).ConfigureAwait(false);
                var summary = await run.ConfigureAwait(false);

                var where = dir ?? resultsFile;
                if (!summary.Complete)
                {
                    Console.Error.WriteLine($"dts client run: stopped; {summary.Written} records written this time to {where} and {errorsFile}.");
                    Console.Error.WriteLine("dts client run: to finish, run the same command again with --resume");
                    return ExitCodes.Interrupted;
                }
                Console.Error.WriteLine($"dts client run: run {summary.RunId} complete: {summary.Written} records written ({summary.Failed} to {errorsFile}), results in {where}");
                return summary.Failed > 0 ? CompletedWithErrors : ExitCodes.Ok;
            }
            catch (BatchRunStateException ex)
            {
                return ExitCodes.Report("client run", new UsageException(ex.Message), cancellationToken);
            }
            catch (Exception ex)
            {
                var code = ExitCodes.Report("client run", ex, cancellationToken);
                Console.Error.WriteLine("dts client run: what was written is kept; run the same command again with --resume to finish");
                return code;
            }
        });
        return command;
    }

    private sealed class ProgressState
    {
        private BatchProgress? _last;

        public BatchProgress? Last
        {
            get => Volatile.Read(ref _last);
            set => Volatile.Write(ref _last, value);
        }
    }

    /// <summary>A progress bar on a terminal; otherwise a plain line every few seconds, for logs.</summary>
    private static async Task ShowProgressAsync(Task run, ProgressState state, Task<long?> totalTask, long skip, CancellationToken cancellationToken)
    {
        var clock = Stopwatch.StartNew();
        long? Total() => totalTask.IsCompletedSuccessfully && totalTask.Result is { } t ? Math.Max(t - skip, 0) : null;
        string Describe()
        {
            var p = state.Last;
            var done = p?.Written ?? 0;
            var rate = done / Math.Max(clock.Elapsed.TotalSeconds, 0.001);
            var total = Total();
            var eta = total is { } t && rate > 0 && t > done ? TimeSpan.FromSeconds((t - done) / rate).ToString(@"h\:mm\:ss", CultureInfo.InvariantCulture) : "-";
            return string.Create(CultureInfo.InvariantCulture,
                $"{done}/{(total is { } tt ? tt.ToString(CultureInfo.InvariantCulture) : "?")} records, {rate:0}/s, {p?.Failed ?? 0} failed, ETA {eta}");
        }

        // Spectre draws on standard output, which this command leaves free of data for exactly this.
        if (!Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive)
        {
            await AnsiConsole.Progress()
                .AutoClear(false)
                .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
                .StartAsync(async ctx =>
                {
                    var task = ctx.AddTask(Describe(), maxValue: 1);
                    while (true)
                    {
                        var finished = run.IsCompleted;
                        var done = state.Last?.Written ?? 0;
                        var total = Total();
                        task.MaxValue = Math.Max(total ?? done + 1, 1);
                        task.Value = Math.Min(done, task.MaxValue);
                        task.Description = Markup.Escape(Describe());
                        if (finished) break;
                        await Task.WhenAny(run, Task.Delay(250, cancellationToken)).ConfigureAwait(false);
                    }
                }).ConfigureAwait(false);
            return;
        }

        var lastPrint = TimeSpan.Zero;
        while (!run.IsCompleted)
        {
            await Task.WhenAny(run, Task.Delay(500, cancellationToken)).ConfigureAwait(false);
            if (clock.Elapsed - lastPrint >= TimeSpan.FromSeconds(5) || run.IsCompleted)
            {
                lastPrint = clock.Elapsed;
                Console.Error.WriteLine("dts client run: " + Describe());
            }
        }
    }

    /// <summary>Counts the input's records in the background, for the total and the ETA; it streams, so memory stays small.</summary>
    private static Task<long?> CountRecordsAsync(string path, InputFormat format, CancellationToken cancellationToken) => Task.Run(async () =>
    {
        try
        {
            await using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 64 * 1024, FileOptions.Asynchronous | FileOptions.SequentialScan);
            var buffer = new byte[64 * 1024];
            long count = 0;
            var inWord = false;
            byte last = (byte)'\n';
            int read;
            while ((read = await stream.ReadAsync(buffer, cancellationToken).ConfigureAwait(false)) > 0)
            {
                var span = buffer.AsSpan(0, read);
                if (format == InputFormat.Words)
                {
                    foreach (var b in span)
                    {
                        var space = b is (byte)' ' or (byte)'\t' or (byte)'\n' or (byte)'\r' or (byte)'\f' or (byte)'\v';
                        if (!space && !inWord) count++;
                        inWord = !space;
                    }
                }
                else
                {
                    count += span.Count((byte)'\n');
                }
                last = span[^1];
            }
            if (format != InputFormat.Words && last != (byte)'\n') count++;
            return (long?)count;
        }
        catch (IOException)
        {
            return null;
        }
    }, cancellationToken);

    /// <summary>Reads 250ms, 2s, 1.5m, or a plain number of seconds.</summary>
    internal static TimeSpan ParseDuration(string text, string option)
    {
        var t = text.Trim();
        double Number(string s) => double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && double.IsFinite(v) && v >= 0
            ? v : throw new UsageException($"{option} '{text}' is not a duration such as 500ms, 2s or 1m");
        if (t.EndsWith("ms", StringComparison.OrdinalIgnoreCase)) return TimeSpan.FromMilliseconds(Number(t[..^2]));
        if (t.EndsWith('s')) return TimeSpan.FromSeconds(Number(t[..^1]));
        if (t.EndsWith('m')) return TimeSpan.FromMinutes(Number(t[..^1]));
        return TimeSpan.FromSeconds(Number(t));
    }

    private static TimeZoneInfo ParseTimeZone(string? id)
    {
        if (id is null) return TimeZoneInfo.Local;
        try
        {
            return TimeZoneInfo.FindSystemTimeZoneById(id);
        }
        catch (TimeZoneNotFoundException)
        {
            throw new UsageException($"unknown time zone '{id}' (use an IANA name such as Europe/Berlin or UTC)");
        }
        catch (InvalidTimeZoneException)
        {
            throw new UsageException($"the time zone '{id}' cannot be read on this machine");
        }
    }
}
