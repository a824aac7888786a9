using System.Text;

namespace Dts.Cli.Admin;

/// <summary>A mistake in a console line (or a one-shot command): one line on stderr; exit 2 in one-shot mode.</summary>
internal sealed class AdminUsageException : Exception
{
    public AdminUsageException(string message)
        : base(message)
    {
    }

    public AdminUsageException()
    {
    }

    public AdminUsageException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>One word of a line. <see cref="EqualsAt"/> is the first '=' outside quotes, or -1.</summary>
internal readonly record struct AdminToken(string Text, int EqualsAt);

/// <summary>
/// A parsed console line: <c>&lt;module&gt; &lt;action&gt; [id] [key=value ...] [field ...]</c>. Words with an
/// unquoted '=' are options; the others are positional (the id, then field names), in order.
/// </summary>
internal sealed class AdminLine
{
    private AdminLine(string module, string? action, List<string> positionals, Dictionary<string, string> options)
    {
        Module = module;
        Action = action;
        Positionals = positionals;
        Options = options;
    }

    public string Module { get; }
    public string? Action { get; }
    public IReadOnlyList<string> Positionals { get; }
    public IReadOnlyDictionary<string, string> Options { get; }

    /// <summary>Null for a blank line (or only a comment).</summary>
    public static AdminLine? Parse(string line) => FromTokens(Tokenize(line));

    /// <summary>A one-shot command's words, already split by the shell: each is a token as is, no quote processing.</summary>
    public static AdminLine? FromArguments(IEnumerable<string> words) =>
        FromTokens(words.Select(w => new AdminToken(w, w.IndexOf('=', StringComparison.Ordinal))).ToList());

    private static AdminLine? FromTokens(List<AdminToken> tokens)
    {
        if (tokens.Count == 0) return null;
        if (tokens[0].EqualsAt >= 0) throw new AdminUsageException($"expected a module name first, not '{tokens[0].Text}'");
        var module = tokens[0].Text.ToLowerInvariant();
        string? action = null;
        var next = 1;
        if (tokens.Count > 1 && tokens[1].EqualsAt < 0)
        {
            action = tokens[1].Text.ToLowerInvariant();
            next = 2;
        }

        var positionals = new List<string>();
        var options = new Dictionary<string, string>(StringComparer.Ordinal);
        for (var i = next; i < tokens.Count; i++)
        {
            var token = tokens[i];
            if (token.EqualsAt < 0)
            {
                positionals.Add(token.Text);
                continue;
            }
            var key = token.Text[..token.EqualsAt].ToLowerInvariant();
            if (key.Length == 0) throw new AdminUsageException($"'{token.Text}' has no key before '='");
            if (!key.All(c => char.IsAsciiLetterOrDigit(c) || c == '_'))
                throw new AdminUsageException($"'{key}' is not a key: use letters, digits and '_'");
            if (!options.TryAdd(key, token.Text[(token.EqualsAt + 1)..]))
                throw new AdminUsageException($"{key}= is given twice");
        }
        return new AdminLine(module, action, positionals, options);
    }

    /// <summary>
    /// Splits a line into words on whitespace. Single or double quotes group text (and may start mid-word:
    /// <c>roles="client,worker"</c>); inside double quotes a backslash escapes <c>"</c> and <c>\</c>. A word
    /// starting with <c>#</c> begins a comment. An unclosed quote is an error.
    /// </summary>
    public static List<AdminToken> Tokenize(string line)
    {
        var tokens = new List<AdminToken>();
        var word = new StringBuilder();
        var inWord = false;
        var equalsAt = -1;
        var i = 0;
        while (i < line.Length)
        {
            var c = line[i];
            if (char.IsWhiteSpace(c))
            {
                if (inWord) tokens.Add(new AdminToken(word.ToString(), equalsAt));
                word.Clear();
                inWord = false;
                equalsAt = -1;
                i++;
                continue;
            }
            if (!inWord && c == '#') break;
            inWord = true;
            if (c is '"' or '\'')
            {
                var quote = c;
                var start = i;
                i++;
                while (true)
                {
                    if (i >= line.Length) throw new AdminUsageException($"unclosed {(quote == '"' ? "double" : "single")} quote at column {start + 1}");
                    var q = line[i];
                    if (q == quote)
                    {
                        i++;
                        break;
                    }
                    if (quote == '"' && q == '\\' && i + 1 < line.Length && line[i + 1] is '"' or '\\')
                    {
                        word.Append(line[i + 1]);
                        i += 2;
                        continue;
                    }
                    word.Append(q);
                    i++;
                }
                continue;
            }
            // Only an '=' typed outside quotes separates a key from its value.
            if (c == '=' && equalsAt < 0) equalsAt = word.Length;
            word.Append(c);
            i++;
        }
        if (inWord) tokens.Add(new AdminToken(word.ToString(), equalsAt));
        return tokens;
    }
}
