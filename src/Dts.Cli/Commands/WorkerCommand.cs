using System.CommandLine;
using System.Runtime.InteropServices;
using Dts.Worker;

namespace Dts.Cli.Commands;

/// <summary>
/// <c>dts worker</c>: serves functions by running shell commands (docs/worker.md). The first Ctrl-C or
/// SIGTERM drains (no new jobs, running ones finish, reports are flushed); a second one stops the
/// running jobs' process trees at once. For the drain to outlive System.CommandLine's default 2 s
/// termination timeout, the root invocation must set <c>InvocationConfiguration.ProcessTerminationTimeout = null</c>.
/// </summary>
public static class WorkerCommand
{
    public static Command Build()
    {
        var connection = new ConnectionArguments();
        var functions = new Option<string[]>("--function", "-f")
        {
            Description = "A function and the shell command that runs it, as NAME=COMMAND; repeat for several.",
            HelpName = "NAME=COMMAND",
            Arity = ArgumentArity.OneOrMore,
            AllowMultipleArgumentsPerToken = false,
            Required = true,
        };
        var concurrency = new Option<int>("--concurrency", "-c")
        {
            Description = "Jobs run at once (default: the number of processors).",
            DefaultValueFactory = _ => Environment.ProcessorCount,
        };
        var stdin = new Option<string>("--stdin")
        {
            Description = "What the command reads: the job as JSON, or its positional args one per line.",
            DefaultValueFactory = _ => "json",
        };
        stdin.AcceptOnlyFromAmong("json", "text");
        var output = new Option<string>("--output")
        {
            Description = "How stdout becomes the result: a JSON string, or parsed as JSON.",
            DefaultValueFactory = _ => "text",
        };
        output.AcceptOnlyFromAmong("text", "json");
        var name = new Option<string>("--name")
        {
            Description = "A name for this worker in the admin console (default: host/pid).",
        };

        var command = new Command("worker", "Serve functions by running a shell command per job.");
        connection.AddTo(command);
        command.Options.Add(functions);
        command.Options.Add(concurrency);
        command.Options.Add(stdin);
        command.Options.Add(output);
        command.Options.Add(name);

        command.SetAction(async (parse, cancellationToken) =>
        {
            try
            {
                var target = await connection.ResolveAsync(parse, cancellationToken).ConfigureAwait(false);
                var slots = parse.GetValue(concurrency);
                if (slots < 1) throw new UsageException("--concurrency must be at least 1");
                var stdinMode = parse.GetValue(stdin) == "text" ? StdinMode.Text : StdinMode.Json;
                var outputMode = parse.GetValue(output) == "json" ? OutputMode.Json : OutputMode.Text;
                var handlers = ParseFunctions(parse.GetValue(functions) ?? []);

                using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                using var abort = new CancellationTokenSource();
                var signals = 0;
                void OnSignal(PosixSignalContext context)
                {
                    // Keep the process alive: the worker decides when it is done.
                    context.Cancel = true;
                    if (Interlocked.Increment(ref signals) == 1)
                    {
                        Console.Error.WriteLine("dts worker: draining: no new jobs, waiting for running ones (press Ctrl-C again to stop them now)");
                        stop.Cancel();
                    }
                    else
                    {
                        Console.Error.WriteLine("dts worker: stopping running jobs now");
                        abort.Cancel();
                    }
                }
                using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal);
                using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal);

                var options = new DtsWorkerOptions
                {
                    ServerUrls = target.ServerUrls,
                    UserId = target.UserId,
                    Secret = target.Secret,
                    TrustedCaFile = target.CaFile,
                    Concurrency = slots,
                    Name = parse.GetValue(name) ?? $"{Environment.MachineName}/{Environment.ProcessId}",
                    Log = line => Console.Error.WriteLine($"dts worker: {line}"),
                };
                await using var worker = new DtsWorker(options);
                foreach (var (function, shellCommand) in handlers)
                {
                    var runner = new CommandRunner(new CommandRunnerOptions { Command = shellCommand, Stdin = stdinMode, Output = outputMode });
                    worker.Handle(function, runner.Handler);
                }
                Console.Error.WriteLine($"dts worker: serving {string.Join(", ", handlers.Keys)} from {target.Describe()} with concurrency {slots}");
                await worker.RunAsync(stop.Token, abort.Token).ConfigureAwait(false);
                return ExitCodes.Ok;
            }
            catch (Exception ex)
            {
                return ExitCodes.Report("worker", ex, CancellationToken.None);
            }
        });
        return command;
    }

    /// <summary>Splits NAME=COMMAND at the first '=' (the command may contain more).</summary>
    internal static Dictionary<string, string> ParseFunctions(IEnumerable<string> specs)
    {
        var handlers = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var spec in specs)
        {
            var eq = spec.IndexOf('=', StringComparison.Ordinal);
            if (eq <= 0 || eq == spec.Length - 1)
                throw new UsageException($"--function '{spec}' must be NAME=COMMAND, for example --function 'reverse=rev'");
            var function = spec[..eq].Trim();
            if (!handlers.TryAdd(function, spec[(eq + 1)..]))
                throw new UsageException($"--function {function} is given twice");
        }
        if (handlers.Count == 0) throw new UsageException("give at least one --function NAME=COMMAND");
        return handlers;
    }
}
