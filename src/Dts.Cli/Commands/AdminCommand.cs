using System.CommandLine;
using System.Runtime.InteropServices;
using Dts.Cli.Admin;
using Dts.Client;
using Spectre.Console;

namespace Dts.Cli.Commands;

/// <summary>
/// <c>dts admin</c>: the administration console. Logs in (the user must hold the administrator role),
/// then reads <c>&lt;module&gt; &lt;action&gt; [id] [key=value ...]</c> lines, or runs the one command given after the options.
/// </summary>
public static class AdminCommand
{
    public static Command Build()
    {
        var connection = new ConnectionArguments();
        var json = new Option<bool>("--json") { Description = "Print each command's answer as one JSON document instead of tables." };
        var words = new Argument<string[]>("command")
        {
            Description = "A console command to run once and exit, for scripts (for example: user list). Without it, a prompt reads commands.",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var follow = new Option<bool>("--follow", "-f") { Description = "With 'job logs ID': keep printing new lines until the job ends (the same as 'job logs ID follow')." };
        var command = new Command("admin", "The administration console: users, workers, functions, jobs and queues (administrators only).");
        connection.AddTo(command);
        command.Options.Add(json);
        command.Options.Add(follow);
        command.Arguments.Add(words);
        command.SetAction((parse, cancellationToken) => RunAsync(parse, connection, parse.GetValue(json), WithFollow(parse.GetValue(words) ?? [], parse.GetValue(follow)), cancellationToken));
        return command;
    }

    private static string[] WithFollow(string[] words, bool follow) => follow ? [.. words, "follow"] : words;

    private static async Task<int> RunAsync(ParseResult parse, ConnectionArguments connection, bool json, string[] words, CancellationToken cancellationToken)
    {
        var interactive = !Console.IsInputRedirected;
        IAdminInput input = interactive ? new TerminalAdminInput(Console.Error) : new TextAdminInput(Console.In);
        var stdout = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) });
        var renderer = new AdminRenderer(stdout, Console.Out, json);

        AdminLine? oneShot;
        try
        {
            oneShot = AdminLine.FromArguments(words);
            // Help needs no server, so it works before there is a login to give.
            if (oneShot is { Module: "help" })
            {
                await renderer.WriteAsync(AdminCommands.Help(oneShot), cancellationToken).ConfigureAwait(false);
                return ExitCodes.Ok;
            }
            if (oneShot is not null) AdminCommands.Find(oneShot);
        }
        catch (AdminUsageException ex)
        {
            await Console.Error.WriteLineAsync("dts admin: " + ex.Message).ConfigureAwait(false);
            return ExitCodes.Usage;
        }

        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        AdminConsole? console = null;
        // Ctrl-C cancels the running request (or, before the console runs, the login); the process stays.
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, context =>
        {
            context.Cancel = true;
            if (console is null || oneShot is not null) stop.Cancel();
            else console.Interrupt();
        });

        DtsAdminClient client;
        try
        {
            await PromptForMissingAsync(parse, connection, input, interactive, stop.Token).ConfigureAwait(false);
            var target = await connection.ResolveAsync(parse, stop.Token).ConfigureAwait(false);
            // A person is waiting: a few throttled retries, then the 429 is shown rather than waited out for ever.
            client = new DtsAdminClient(target.Options(maxThrottleRetries: 3));
        }
        catch (Exception ex) when (ex is UsageException or OperationCanceledException)
        {
            return ExitCodes.Report("admin", ex, stop.Token);
        }

        using (client)
        {
            try
            {
                var self = await client.LoginAsync(stop.Token).ConfigureAwait(false);
                if (oneShot is null && interactive)
                    await Console.Error.WriteLineAsync($"logged in as {self.Name} at {client.Connection.BaseUri}; type help for commands, exit to leave").ConfigureAwait(false);
            }
            catch (DtsAdminLoginException ex)
            {
                await Console.Error.WriteLineAsync("dts admin: " + ex.Message).ConfigureAwait(false);
                return ExitCodes.Failed;
            }
            catch (Exception ex) when (ex is DtsApiException or HttpRequestException or TimeoutException or OperationCanceledException)
            {
                return ExitCodes.Report("admin", ex, stop.Token);
            }

            console = new AdminConsole(client, renderer, Console.Error);
            if (oneShot is not null) return await console.RunAsync(oneShot, "dts admin: ", stop.Token).ConfigureAwait(false);
            return await console.RunPromptAsync(input, stop.Token).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// Asks for the server, user and secret when neither an option nor the environment gives them. The answers
    /// are put in this process's environment (which .NET keeps private to the process) so that the one resolution
    /// path, <see cref="ConnectionArguments.ResolveAsync"/>, validates them like typed options.
    /// </summary>
    private static async Task PromptForMissingAsync(ParseResult parse, ConnectionArguments connection, IAdminInput input, bool interactive, CancellationToken cancellationToken)
    {
        async Task AskAsync(string variable, string prompt, bool secret)
        {
            var answer = secret
                ? await input.ReadSecretAsync(prompt, cancellationToken).ConfigureAwait(false)
                : await input.ReadLineAsync(prompt, cancellationToken).ConfigureAwait(false);
            if (!string.IsNullOrWhiteSpace(answer)) Environment.SetEnvironmentVariable(variable, answer.Trim());
        }

        static bool Missing(string? option, string variable) =>
            string.IsNullOrWhiteSpace(option) && string.IsNullOrWhiteSpace(Environment.GetEnvironmentVariable(variable));

        if (connection.ServerValues(parse).Count == 0 && Missing(null, ConnectionArguments.UrlVariable))
            await AskAsync(ConnectionArguments.UrlVariable, "server URL: ", secret: false).ConfigureAwait(false);
        if (Missing(parse.GetValue(connection.User), ConnectionArguments.UserVariable))
            await AskAsync(ConnectionArguments.UserVariable, "user: ", secret: false).ConfigureAwait(false);
        if (parse.GetValue(connection.SecretFile) is null && Missing(parse.GetValue(connection.Secret), ConnectionArguments.SecretVariable))
            await AskAsync(ConnectionArguments.SecretVariable, interactive ? "secret (not shown): " : "secret: ", secret: true).ConfigureAwait(false);
    }
}
