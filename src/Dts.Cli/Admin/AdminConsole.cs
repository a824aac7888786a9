using Dts.Cli.Commands;
using Dts.Client;

namespace Dts.Cli.Admin;

/// <summary>
/// Runs console lines against the admin API: the endless prompt and one-shot commands. Every failure is
/// one line on <c>error</c>; in the prompt the next line is read as if nothing happened.
/// </summary>
internal sealed class AdminConsole(DtsAdminClient client, AdminRenderer renderer, TextWriter error, TimeProvider? time = null)
{
    public const string Prompt = "dts> ";

    private readonly TimeProvider _time = time ?? TimeProvider.System;
    private readonly Lock _gate = new();
    private CancellationTokenSource? _running;

    /// <summary>Cancels the command running now (Ctrl-C); false when none runs.</summary>
    public bool Interrupt()
    {
        lock (_gate)
        {
            if (_running is null) return false;
            _running.Cancel();
            return true;
        }
    }

    /// <summary>Reads and runs lines until exit, quit or end of input. Returns 0: failed commands do not end the console.</summary>
    public async Task<int> RunPromptAsync(IAdminInput input, CancellationToken cancellationToken)
    {
        while (true)
        {
            var text = await input.ReadLineAsync(Prompt, cancellationToken).ConfigureAwait(false);
            if (text is null) return ExitCodes.Ok;
            AdminLine? line;
            try
            {
                line = AdminLine.Parse(text);
            }
            catch (AdminUsageException ex)
            {
                await error.WriteLineAsync("error: " + ex.Message).ConfigureAwait(false);
                continue;
            }
            if (line is null) continue;
            if (line.Action is null && line.Positionals.Count == 0 && line.Options.Count == 0 && line.Module is "exit" or "quit")
                return ExitCodes.Ok;
            await RunAsync(line, "error: ", cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Runs one command; prints its output or one line prefixed with <paramref name="errorPrefix"/>. Returns the exit status.</summary>
    public async Task<int> RunAsync(AdminLine line, string errorPrefix, CancellationToken cancellationToken)
    {
        using var command = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        lock (_gate) _running = command;
        try
        {
            var output = await AdminCommands.RunAsync(line, client, _time, command.Token).ConfigureAwait(false);
            await renderer.WriteAsync(output, command.Token).ConfigureAwait(false);
            return ExitCodes.Ok;
        }
        catch (Exception ex) when (Describe(ex, command.Token) is { } described)
        {
            await error.WriteLineAsync(errorPrefix + described.Message).ConfigureAwait(false);
            await error.FlushAsync(CancellationToken.None).ConfigureAwait(false);
            return described.ExitCode;
        }
        finally
        {
            lock (_gate) _running = null;
        }
    }

    /// <summary>The one line and exit status for an expected failure; null lets a bug surface with its stack trace.</summary>
    internal static (string Message, int ExitCode)? Describe(Exception ex, CancellationToken commandToken) => ex switch
    {
        AdminUsageException => (ex.Message, ExitCodes.Usage),
        OperationCanceledException when commandToken.IsCancellationRequested => ("cancelled", ExitCodes.Interrupted),
        DtsApiException api => (api.Message, ExitCodes.Failed),
        HttpRequestException or TimeoutException => ("cannot reach the server: " + ex.Message, ExitCodes.Failed),
        _ => null,
    };
}
