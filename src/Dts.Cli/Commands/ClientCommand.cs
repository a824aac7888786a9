using System.CommandLine;
using System.Text.Json;
using Dts.Client;
using Dts.Contracts;

namespace Dts.Cli.Commands;

/// <summary><c>dts client</c>: submit a job, wait for it, show it.</summary>
public static class ClientCommand
{
    private static readonly DtsJsonContext Indented = new(new JsonSerializerOptions(DtsJsonContext.Default.Options)
    {
        TypeInfoResolver = null,
        WriteIndented = true,
    });

    private static readonly JsonElement JsonNull = JsonValues.Parse("null");

    public static Command Build()
    {
        var command = new Command("client", "Submit jobs and read their results.");
        command.Subcommands.Add(BuildSubmit());
        command.Subcommands.Add(BuildWait());
        command.Subcommands.Add(BuildStatus());
        command.Subcommands.Add(ClientRunCommand.Build());
        return command;
    }

    private static Command BuildSubmit()
    {
        var connection = new ConnectionArguments();
        var function = new Option<string>("--function", "-f") { Description = "The function to run.", Required = true, HelpName = "F" };
        var args = new Option<string[]>("--arg", "-a")
        {
            Description = "A positional argument (a string); repeat for several.",
            HelpName = "A",
            Arity = ArgumentArity.ZeroOrMore,
            AllowMultipleArgumentsPerToken = false,
        };
        var kwargs = new Option<string>("--kwargs") { Description = "Keyword arguments as a JSON object.", HelpName = "JSON" };
        var priority = new Option<string>("--priority") { Description = "The priority class." };
        priority.AcceptOnlyFromAmong("high", "normal", "low");
        var uniqueKey = new Option<string>("--unique-key") { Description = "Attach to a queued or running job of the same function with this key instead of adding one.", HelpName = "K" };
        var delay = new Option<double?>("--delay") { Description = "Run no earlier than this many seconds from now.", HelpName = "SECONDS" };
        var maxAttempts = new Option<int?>("--max-attempts") { Description = "Attempts before the job is dead.", HelpName = "N" };
        var timeout = new Option<double?>("--timeout") { Description = "Hard limit on one attempt's run time.", HelpName = "SECONDS" };
        var wait = new Option<bool>("--wait") { Description = "Wait for the job and print its result as JSON." };

        var command = new Command("submit", "Submit one job and print its id.");
        connection.AddTo(command);
        foreach (var option in new Option[] { function, args, kwargs, priority, uniqueKey, delay, maxAttempts, timeout, wait })
            command.Options.Add(option);

        command.SetAction(async (parse, cancellationToken) =>
        {
            try
            {
                var request = new SubmitJobRequest
                {
                    Function = parse.GetValue(function),
                    Args = JsonValues.StringArray(parse.GetValue(args) ?? []),
                    Kwargs = ParseKwargs(parse.GetValue(kwargs)),
                    Priority = parse.GetValue(priority) switch
                    {
                        "high" => PriorityClass.High,
                        "low" => PriorityClass.Low,
                        "normal" => PriorityClass.Normal,
                        _ => null,
                    },
                    UniqueKey = parse.GetValue(uniqueKey),
                    DelaySeconds = parse.GetValue(delay),
                    MaxAttempts = parse.GetValue(maxAttempts),
                    TimeoutSeconds = parse.GetValue(timeout),
                };
                using var client = await ConnectAsync(connection, parse, cancellationToken).ConfigureAwait(false);
                // The id is printed as soon as the job is stored, also with --wait: a person watching
                // a long job can look at it or cancel it from elsewhere. (A program that wants the
                // result in one request uses DtsClient.RunAsync.)
                var answer = await client.SubmitAsync(request, cancellationToken).ConfigureAwait(false);
                Console.Out.WriteLine(answer.Id);
                if (!parse.GetValue(wait)) return ExitCodes.Ok;
                var view = await client.WaitAsync(answer.Id, cancellationToken: cancellationToken).ConfigureAwait(false);
                return PrintOutcome(view, null);
            }
            catch (Exception ex)
            {
                return ExitCodes.Report("client submit", ex, cancellationToken);
            }
        });
        return command;
    }

    private static Command BuildWait()
    {
        var connection = new ConnectionArguments();
        var id = new Argument<string>("id") { Description = "The job's id." };
        var timeout = new Option<double?>("--timeout") { Description = "Give up after this many seconds (default: wait for ever).", HelpName = "SECONDS" };
        var command = new Command("wait", "Wait for a job; print its result as JSON, or its error on stderr.");
        connection.AddTo(command);
        command.Arguments.Add(id);
        command.Options.Add(timeout);
        command.SetAction(async (parse, cancellationToken) =>
        {
            try
            {
                var seconds = parse.GetValue(timeout);
                if (seconds is < 0) throw new UsageException("--timeout must not be negative");
                using var client = await ConnectAsync(connection, parse, cancellationToken).ConfigureAwait(false);
                var limit = seconds is { } s ? TimeSpan.FromSeconds(s) : (TimeSpan?)null;
                var view = await client.WaitAsync(parse.GetValue(id)!, limit, cancellationToken).ConfigureAwait(false);
                return PrintOutcome(view, limit);
            }
            catch (Exception ex)
            {
                return ExitCodes.Report("client wait", ex, cancellationToken);
            }
        });
        return command;
    }

    private static Command BuildStatus()
    {
        var connection = new ConnectionArguments();
        var id = new Argument<string>("id") { Description = "The job's id." };
        var command = new Command("status", "Print a job as JSON.");
        connection.AddTo(command);
        command.Arguments.Add(id);
        command.SetAction(async (parse, cancellationToken) =>
        {
            try
            {
                using var client = await ConnectAsync(connection, parse, cancellationToken).ConfigureAwait(false);
                var view = await client.GetJobAsync(parse.GetValue(id)!, cancellationToken).ConfigureAwait(false);
                // An absent args or kwargs reads as an undefined element, which cannot be written back.
                if (view.Args.ValueKind == JsonValueKind.Undefined) view.Args = JsonNull;
                if (view.Kwargs.ValueKind == JsonValueKind.Undefined) view.Kwargs = JsonNull;
                Console.Out.WriteLine(JsonSerializer.Serialize(view, Indented.JobView));
                return ExitCodes.Ok;
            }
            catch (Exception ex)
            {
                return ExitCodes.Report("client status", ex, cancellationToken);
            }
        });
        return command;
    }

    private static async Task<DtsClient> ConnectAsync(ConnectionArguments connection, ParseResult parse, CancellationToken cancellationToken)
    {
        var target = await connection.ResolveAsync(parse, cancellationToken).ConfigureAwait(false);
        return new DtsClient(target.Options());
    }

    private static JsonElement? ParseKwargs(string? text)
    {
        if (text is null) return null;
        JsonElement value;
        try
        {
            value = JsonValues.Parse(text);
        }
        catch (JsonException ex)
        {
            throw new UsageException($"--kwargs is not valid JSON: {ex.Message}");
        }
        if (value.ValueKind != JsonValueKind.Object) throw new UsageException("--kwargs must be a JSON object, for example '{\"size\": 3}'");
        return value;
    }

    /// <summary>Succeeded: the result on stdout. Dead or cancelled: the error on stderr. Otherwise the wait timed out.</summary>
    private static int PrintOutcome(JobView view, TimeSpan? limit)
    {
        switch (view.State)
        {
            case JobState.Succeeded:
                Console.Out.WriteLine(view.Result is { } result ? result.GetRawText() : "null");
                return ExitCodes.Ok;
            case JobState.Dead or JobState.Cancelled:
                var error = view.Error is { } e ? $"{e.Code}: {e.Message}" : "no error recorded";
                Console.Error.WriteLine($"dts client: job {view.Id} is {view.State.ToWire()} after {view.Attempts} attempt(s): {error}");
                return ExitCodes.Failed;
            default:
                Console.Error.WriteLine($"dts client: job {view.Id} is still {view.State.ToWire()} after {limit?.TotalSeconds ?? 0:0.#} s");
                return ExitCodes.TimedOut;
        }
    }
}
