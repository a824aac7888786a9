using System.CommandLine;
using Dts.Client;

namespace Dts.Cli.Commands;

/// <summary>The --server, --user, --secret and --secret-file options shared by the commands that talk to a server.</summary>
internal sealed class ConnectionArguments
{
    public const string UrlVariable = "DTS_URL";
    public const string UserVariable = "DTS_USER";
    public const string SecretVariable = "DTS_SECRET";
    public const string CaFileVariable = "DTS_CA_FILE";

    public Option<string[]> Server { get; } = new("--server")
    {
        Description = $"A server's base URL; repeat it (or separate URLs with commas) to list several servers that share " +
            $"one database, tried in order when one cannot be reached (default: ${UrlVariable}, a comma-separated list).",
        HelpName = "URL",
        Arity = ArgumentArity.OneOrMore,
        AllowMultipleArgumentsPerToken = false,
    };

    /// <summary>The --server values, each split at commas; empty when none was given.</summary>
    public IReadOnlyList<string> ServerValues(ParseResult parse) => SplitUrls(parse.GetValue(Server) ?? []);

    /// <summary>Splits each value at commas and trims the parts; an empty part is kept, for the check to refuse.</summary>
    internal static List<string> SplitUrls(IEnumerable<string?> values)
    {
        var urls = new List<string>();
        foreach (var value in values)
        {
            if (value is null) continue;
            urls.AddRange(value.Split(',', StringSplitOptions.TrimEntries));
        }
        return urls;
    }

    public Option<string> User { get; } = new("--user")
    {
        Description = $"The user to sign requests as (default: ${UserVariable}).",
        HelpName = "NAME",
    };

    public Option<string> Secret { get; } = new("--secret")
    {
        Description = $"The user's secret (default: ${SecretVariable}); prefer --secret-file, since arguments are visible to other users.",
        HelpName = "S",
    };

    public Option<FileInfo> SecretFile { get; } = new("--secret-file")
    {
        Description = "A file holding the user's secret.",
        HelpName = "PATH",
    };

    public Option<string> CaFile { get; } = new("--ca-file")
    {
        Description = $"A PEM file of CA certificates to trust for an https:// server (default: ${CaFileVariable}).",
        HelpName = "PATH",
    };

    public void AddTo(Command command)
    {
        command.Options.Add(CaFile);
        command.Options.Add(Server);
        command.Options.Add(User);
        command.Options.Add(Secret);
        command.Options.Add(SecretFile);
    }

    /// <summary>Resolves the options against the environment; a missing value is a <see cref="UsageException"/>.</summary>
    public async Task<ResolvedConnection> ResolveAsync(ParseResult parse, CancellationToken cancellationToken)
    {
        var urls = ServerValues(parse);
        if (urls.Count == 0 && Environment.GetEnvironmentVariable(UrlVariable) is { } fromEnvironment && !string.IsNullOrWhiteSpace(fromEnvironment))
            urls = SplitUrls([fromEnvironment]);
        if (urls.Count == 0) throw new UsageException($"no server: pass --server URL (once per server) or set {UrlVariable}");
        foreach (var url in urls)
        {
            if (url.Length == 0) throw new UsageException("a server URL is empty (check --server and commas in the list)");
            if (!Uri.TryCreate(url, UriKind.Absolute, out var uri) || (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps) || uri.Host.Length == 0)
                throw new UsageException($"the server URL '{url}' is not an http:// or https:// URL");
        }
        var user = parse.GetValue(User) ?? Environment.GetEnvironmentVariable(UserVariable);
        if (string.IsNullOrWhiteSpace(user)) throw new UsageException($"no user: pass --user NAME or set {UserVariable}");

        string? secret;
        if (parse.GetValue(SecretFile) is { } file)
        {
            try
            {
                secret = (await File.ReadAllTextAsync(file.FullName, cancellationToken).ConfigureAwait(false)).Trim();
            }
            catch (IOException ex)
            {
                throw new UsageException($"cannot read the secret file {file.FullName}: {ex.Message}");
            }
            catch (UnauthorizedAccessException ex)
            {
                throw new UsageException($"cannot read the secret file {file.FullName}: {ex.Message}");
            }
        }
        else
        {
            secret = parse.GetValue(Secret) ?? Environment.GetEnvironmentVariable(SecretVariable);
        }
        if (string.IsNullOrEmpty(secret)) throw new UsageException($"no secret: pass --secret-file PATH, --secret S or set {SecretVariable}");

        var caFile = parse.GetValue(CaFile) ?? Environment.GetEnvironmentVariable(CaFileVariable);
        if (string.IsNullOrWhiteSpace(caFile)) caFile = null;
        else if (!File.Exists(caFile)) throw new UsageException($"the CA file {caFile} does not exist");
        return new ResolvedConnection(urls, user, secret) { CaFile = caFile };
    }
}

internal sealed record ResolvedConnection(IReadOnlyList<string> ServerUrls, string UserId, string Secret)
{
    /// <summary>The first server, where requests go while it answers.</summary>
    public string ServerUrl => ServerUrls[0];

    /// <summary>The servers for messages: one URL, or all of them separated by commas.</summary>
    public string Describe() => string.Join(", ", ServerUrls);

    /// <summary>The --ca-file to trust for https://, or null for the system's roots.</summary>
    public string? CaFile { get; init; }

    /// <summary>Connection options for an interactive command: a small pool, and the CA file passed on.</summary>
    public Dts.Client.DtsConnectionOptions Options(int? maxThrottleRetries = null) => new()
    {
        ServerUrls = ServerUrls,
        UserId = UserId,
        Secret = Secret,
        MaxConcurrency = 2,
        TrustedCaFile = CaFile,
        MaxThrottleRetries = maxThrottleRetries,
    };
}

/// <summary>A mistake in how the command was called; printed as one line, exit status 2.</summary>
internal sealed class UsageException : Exception
{
    public UsageException(string message)
        : base(message)
    {
    }

    public UsageException()
    {
    }

    public UsageException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

internal static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>The job failed (dead or cancelled) or the server refused the request.</summary>
    public const int Failed = 1;
    public const int Usage = 2;
    /// <summary>The wait ended before the job finished.</summary>
    public const int TimedOut = 3;
    public const int Interrupted = 130;

    /// <summary>Turns what a command threw into one line on stderr and an exit status.</summary>
    public static int Report(string command, Exception ex, CancellationToken cancellationToken)
    {
        switch (ex)
        {
            case UsageException:
                Console.Error.WriteLine($"dts {command}: {ex.Message}");
                return Usage;
            case OperationCanceledException when cancellationToken.IsCancellationRequested:
                Console.Error.WriteLine($"dts {command}: interrupted");
                return Interrupted;
            case DtsApiException api:
                Console.Error.WriteLine($"dts {command}: {api.Message}");
                return Failed;
            case HttpRequestException or TimeoutException:
                Console.Error.WriteLine($"dts {command}: cannot reach the server: {ex.Message}");
                return Failed;
            default:
                Console.Error.WriteLine($"dts {command}: {ex.GetType().Name}: {ex.Message}");
                return Failed;
        }
    }
}
