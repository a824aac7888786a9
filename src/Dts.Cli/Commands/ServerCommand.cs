using System.CommandLine;
using Dts.Contracts;
using Dts.Core.Security;
using Dts.Core.Storage;
using Dts.Server;
using Dts.Storage.Sqlite;

namespace Dts.Cli.Commands;

internal static class ServerCommand
{
    public static Command Build()
    {
        var url = new Option<string>("--url") { Description = "Address to listen on; port 0 picks a free port.", DefaultValueFactory = _ => "http://127.0.0.1:7460" };
        var dataDir = new Option<string>("--data-dir") { Description = "Directory of the SQLite file and the first admin secret.", DefaultValueFactory = _ => DtsServerOptions.DefaultDataDirectory };
        var store = new Option<string?>("--store")
        {
            // DTS_STORE is read when the command runs, not as a default value: help prints defaults,
            // and a connection string may hold a password.
            Description = "The SQLite file (default: dts.db in the data directory), or a PostgreSQL database as \"Host=...;Database=...;Username=...\" or postgres://user@host/db (default: $DTS_STORE); several servers may share one PostgreSQL database.",
        };
        var schema = new Option<string>("--schema")
        {
            Description = "PostgreSQL schema of Dts's tables (also DTS_SCHEMA).",
            DefaultValueFactory = _ => Cli.Variable("DTS_SCHEMA") ?? "dts",
        };
        var heartbeat = new Option<double>("--heartbeat-interval") { Description = "Seconds between worker heartbeats.", DefaultValueFactory = _ => 3 };
        var leaseTimeout = new Option<double>("--lease-timeout") { Description = "Seconds without a heartbeat after which a worker's jobs are queued again.", DefaultValueFactory = _ => 15 };
        var sync = new Option<Dts.Storage.Sqlite.SqliteSynchronous>("--sync")
        {
            Description = "Full: fsync every commit (survives power loss). Normal: survives a crash of the server, not of the machine.",
            DefaultValueFactory = _ => Dts.Storage.Sqlite.SqliteSynchronous.Full,
        };
        var urlFile = new Option<string?>("--url-file") { Description = "Write the address actually bound to this file once listening (for scripts using port 0)." };

        var keyFile = KeyFileOption();
        var tlsCert = new Option<string?>("--tls-cert") { Description = "PEM certificate (chain) to serve HTTPS with; needs --tls-key and an https:// --url.", HelpName = "FILE" };
        var tlsKey = new Option<string?>("--tls-key") { Description = "PEM private key of --tls-cert.", HelpName = "FILE" };
        var tlsPfx = new Option<string?>("--tls-pfx") { Description = "PKCS#12 file with certificate and key, instead of --tls-cert and --tls-key.", HelpName = "FILE" };
        var tlsPfxPassword = new Option<string?>("--tls-pfx-password") { Description = "Password of --tls-pfx.", HelpName = "PASSWORD" };

        var alerts = new ServerAlertArguments();
        var command = new Command("server", "Run a job server (a SQLite file by default, or a PostgreSQL database shared with other servers).")
        {
            url, dataDir, store, schema, sync, heartbeat, leaseTimeout, urlFile, keyFile, tlsCert, tlsKey, tlsPfx, tlsPfxPassword,
        };
        alerts.AddTo(command);
        command.SetAction(async (parse, cancellationToken) =>
        {
            var options = new DtsServerOptions
            {
                Url = parse.GetValue(url)!,
                DataDirectory = parse.GetValue(dataDir)!,
                StorePath = StoreOf(parse, store),
                PostgresSchema = parse.GetValue(schema)!,
                HeartbeatInterval = TimeSpan.FromSeconds(parse.GetValue(heartbeat)),
                LeaseTimeout = TimeSpan.FromSeconds(parse.GetValue(leaseTimeout)),
                Synchronous = parse.GetValue(sync),
                KeyFile = parse.GetValue(keyFile),
                TlsCertificateFile = parse.GetValue(tlsCert),
                TlsKeyFile = parse.GetValue(tlsKey),
                TlsPfxFile = parse.GetValue(tlsPfx),
                TlsPfxPassword = parse.GetValue(tlsPfxPassword),
            };
            if (await alerts.ApplyAsync(parse, options, cancellationToken) is { } alertError) return Cli.Fail(alertError);
            if (options.LeaseTimeout <= options.HeartbeatInterval)
                return Cli.Fail("--lease-timeout must be longer than --heartbeat-interval.");
            using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            using var signals = Cli.StopOnSignals(stop, "the server");
            DtsServer server;
            try
            {
                server = await DtsServer.StartAsync(options, cancellationToken: stop.Token);
            }
            catch (Exception ex) when (ex is SecretKeyFileException or SecretDecryptionException or ArgumentException)
            {
                // A configuration mistake: one line that says what to fix, not a stack trace.
                return Cli.Fail(PlainMessage(ex));
            }
            catch (Exception ex) when (IsDatabaseUnreachable(ex))
            {
                return Cli.Fail(UnreachableMessage(ex));
            }
            await using var _ = server;
            if (parse.GetValue(urlFile) is { } f) await File.WriteAllTextAsync(f, server.Url.ToString().TrimEnd('/') + "\n", CancellationToken.None);
            try
            {
                await Task.Delay(Timeout.Infinite, stop.Token);
            }
            catch (OperationCanceledException)
            {
                // Ctrl-C or SIGTERM: stop gracefully below.
            }
            await server.StopAsync(CancellationToken.None);
            return 0;
        });
        command.Subcommands.Add(BuildAddUser(dataDir, store, schema));
        command.Subcommands.Add(BuildMigrate(dataDir, store, schema));
        return command;
    }

    private static Option<string?> KeyFileOption() => new("--key-file")
    {
        Description = "The key that encrypts users' secrets (default: secrets.key in the data directory; created owner-only on first start). Back it up apart from the database.",
        HelpName = "PATH",
    };

    /// <summary>--store, else DTS_STORE, else null (the SQLite file in the data directory).</summary>
    private static string? StoreOf(ParseResult parse, Option<string?> store) =>
        parse.GetValue(store) ?? Cli.Variable("DTS_STORE");

    /// <summary>The message without the " (Parameter 'x')" that ArgumentException appends for programmers.</summary>
    private static string PlainMessage(Exception ex) =>
        ex is ArgumentException { ParamName: { } name } a ? a.Message.Replace($" (Parameter '{name}')", "", StringComparison.Ordinal) : ex.Message;

    /// <summary>A database that cannot be reached or refuses the login: told in one line, not a stack trace.</summary>
    private static bool IsDatabaseUnreachable(Exception ex) =>
        ex is Npgsql.NpgsqlException or System.Net.Sockets.SocketException or TimeoutException
        || ex.GetBaseException() is Npgsql.NpgsqlException or System.Net.Sockets.SocketException;

    private static string UnreachableMessage(Exception ex) => $"cannot use the store: {ex.GetBaseException().Message}";

    /// <summary>Opens and migrates the store the command line names (for the commands that work on the store directly), or returns the one-line error.</summary>
    private static Task<(IJobStore? Store, string? Error)> OpenMigratedAsync(ParseResult parse, Option<string> dataDir, Option<string?> store,
        Option<string> schema, Option<string?> keyFile, CancellationToken cancellationToken) =>
        OpenMigratedAsync(new DtsServerOptions
        {
            DataDirectory = parse.GetValue(dataDir)!, StorePath = StoreOf(parse, store),
            PostgresSchema = parse.GetValue(schema)!, KeyFile = parse.GetValue(keyFile),
        }, cancellationToken);

    /// <summary>Opens and migrates the store of the options, or returns the one-line error.</summary>
    private static async Task<(IJobStore? Store, string? Error)> OpenMigratedAsync(DtsServerOptions options, CancellationToken cancellationToken)
    {
        IJobStore db;
        try
        {
            if (!options.UsesPostgres) Directory.CreateDirectory(options.DataDirectory);
            // The same key file as the server's, so the server can read the secrets written here.
            db = DtsServer.OpenStore(options);
        }
        catch (Exception ex) when (ex is SecretKeyFileException or ArgumentException)
        {
            return (null, PlainMessage(ex));
        }
        try
        {
            await db.MigrateAsync(cancellationToken);
            return (db, null);
        }
        catch (Exception ex) when (ex is SecretDecryptionException || IsDatabaseUnreachable(ex))
        {
            await db.DisposeAsync();
            return (null, ex is SecretDecryptionException ? ex.Message : UnreachableMessage(ex));
        }
    }

    private static Command BuildMigrate(Option<string> dataDir, Option<string?> store, Option<string> schema)
    {
        var keyFile = KeyFileOption();
        var command = new Command("migrate", "Create or upgrade the store's schema and exit (safe while other servers run: migrations take a lock).")
        {
            dataDir, store, schema, keyFile,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var (db, error) = await OpenMigratedAsync(parse, dataDir, store, schema, keyFile, cancellationToken);
            if (db is null) return Cli.Fail(error!);
            await using var _ = db;
            Console.WriteLine($"{db.Description}: schema up to date");
            return 0;
        });
        return command;
    }

    private static Command BuildAddUser(Option<string> dataDir, Option<string?> store, Option<string> schema)
    {
        var keyFile = KeyFileOption();
        var name = new Argument<string>("name") { Description = "The new user's id." };
        var roles = new Option<string>("--roles") { Description = "Comma-separated roles: administrator, client, worker.", DefaultValueFactory = _ => "client" };
        var command = new Command("add-user", "Create a user directly in the server's store and print its new secret (works while the server runs).")
        {
            name, roles, dataDir, store, schema, keyFile,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var roleList = parse.GetValue(roles)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            foreach (var r in roleList)
            {
                if (!Roles.IsKnown(r)) return Cli.Fail($"unknown role '{r}'; use {string.Join(", ", Roles.All)}.");
            }
            var userName = parse.GetValue(name)!;
            if (userName.Length is 0 or > 64 || userName.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.')))
                return Cli.Fail("a user id is 1 to 64 letters, digits, '_', '-' or '.'.");
            var (db, error) = await OpenMigratedAsync(parse, dataDir, store, schema, keyFile, cancellationToken);
            if (db is null) return Cli.Fail(error!);
            await using var _ = db;
            var secret = RequestSigning.NewSecret();
            if (!await db.UserInsertAsync(new UserInsertParams(userName, secret, roleList, DateTimeOffset.UtcNow), cancellationToken))
                return Cli.Fail($"user '{userName}' exists already.");
            Console.WriteLine(secret);
            await Console.Error.WriteLineAsync($"created user '{userName}' with roles {string.Join(",", roleList)}; the line above is its secret, shown only now.");
            return 0;
        });
        return command;
    }
}
