using System.Text;

namespace Dts.Cli.Admin;

/// <summary>Where the console's lines (and the login prompts' answers) come from.</summary>
internal interface IAdminInput
{
    /// <summary>The next line, or null at end of input.</summary>
    Task<string?> ReadLineAsync(string prompt, CancellationToken cancellationToken);

    /// <summary>Like <see cref="ReadLineAsync"/> but never echoed.</summary>
    Task<string?> ReadSecretAsync(string prompt, CancellationToken cancellationToken);
}

/// <summary>
/// Lines from a pipe or file: no prompts are written (they would only clutter a script's output) and
/// a secret is just the next line.
/// </summary>
internal sealed class TextAdminInput(TextReader reader) : IAdminInput
{
    public async Task<string?> ReadLineAsync(string prompt, CancellationToken cancellationToken) =>
        await reader.ReadLineAsync(cancellationToken).ConfigureAwait(false);

    public Task<string?> ReadSecretAsync(string prompt, CancellationToken cancellationToken) => ReadLineAsync(prompt, cancellationToken);
}

/// <summary>
/// A terminal, read key by key. While a line is being typed Ctrl-C arrives as a key (TreatControlCAsInput),
/// so it can drop just that line; between lines it is a signal again, which cancels the running command.
/// </summary>
internal sealed class TerminalAdminInput(TextWriter promptOut) : IAdminInput
{
    public Task<string?> ReadLineAsync(string prompt, CancellationToken cancellationToken) =>
        Task.FromResult(Read(prompt, echo: true, cancellationToken));

    public Task<string?> ReadSecretAsync(string prompt, CancellationToken cancellationToken) =>
        Task.FromResult(Read(prompt, echo: false, cancellationToken));

    private string? Read(string prompt, bool echo, CancellationToken cancellationToken)
    {
        promptOut.Write(prompt);
        promptOut.Flush();
        var line = new StringBuilder();
        var previous = Console.TreatControlCAsInput;
        Console.TreatControlCAsInput = true;
        try
        {
            while (!cancellationToken.IsCancellationRequested)
            {
                var key = Console.ReadKey(intercept: true);
                if (key.Key == ConsoleKey.Enter)
                {
                    promptOut.WriteLine();
                    return line.ToString();
                }
                if (key.Modifiers.HasFlag(ConsoleModifiers.Control) && key.Key == ConsoleKey.C)
                {
                    // Drop what was typed and give a fresh prompt: an empty line does nothing.
                    promptOut.WriteLine("^C");
                    return "";
                }
                if (key.Modifiers.HasFlag(ConsoleModifiers.Control) && key.Key == ConsoleKey.D)
                {
                    if (line.Length > 0) continue;
                    promptOut.WriteLine();
                    return null;
                }
                if (key.Modifiers.HasFlag(ConsoleModifiers.Control) && key.Key == ConsoleKey.U)
                {
                    if (echo) promptOut.Write(string.Concat(Enumerable.Repeat("\b \b", line.Length)));
                    line.Clear();
                    continue;
                }
                if (key.Key == ConsoleKey.Backspace)
                {
                    if (line.Length == 0) continue;
                    line.Length--;
                    if (echo) promptOut.Write("\b \b");
                    continue;
                }
                if (key.KeyChar == '\0' || char.IsControl(key.KeyChar)) continue;
                line.Append(key.KeyChar);
                if (echo) promptOut.Write(key.KeyChar);
            }
            throw new OperationCanceledException(cancellationToken);
        }
        finally
        {
            Console.TreatControlCAsInput = previous;
            promptOut.Flush();
        }
    }
}
