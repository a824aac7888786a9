using System.Reflection;
using System.Security.Cryptography.X509Certificates;
using Dts.Core.Security;
using Dts.Contracts;
using Dts.Core;
using Dts.Core.Storage;
using Dts.Server.Daemons;
using Dts.Server.Endpoints;
using Dts.Server.Http;
using Dts.Storage.Sqlite;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Dts.Server;

/// <summary>One running job server: Kestrel, the endpoints, the daemons and the store.</summary>
public sealed class DtsServer : IAsyncDisposable
{
    public static string Version { get; } =
        typeof(DtsServer).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    private readonly WebApplication _app;
    private bool _stopped;

    private readonly bool _ownsStore;

    private DtsServer(WebApplication app, ServerContext context, Uri url, bool ownsStore)
    {
        _app = app;
        Context = context;
        Url = url;
        _ownsStore = ownsStore;
    }

    /// <summary>The address clients use, with the port actually bound.</summary>
    public Uri Url { get; }
    public ServerContext Context { get; }
    public IJobStore Store => Context.Store;

    /// <summary>The background daemons of this server (for tests and diagnostics: their counters).</summary>
    public IReadOnlyList<Daemon> Daemons =>
        [.. _app.Services.GetServices<IHostedService>().OfType<Daemon>()];

    /// <summary>
    /// Opens the store (migrating it), creates the first administrator on an empty store, and
    /// starts listening. <paramref name="store"/> overrides the SQLite file of the options.
    /// </summary>
    /// <param name="ownsStore">
    /// False leaves <paramref name="store"/> open when the server stops (or fails to start), for a
    /// caller that shares one store between several servers and disposes it itself.
    /// </param>
    public static async Task<DtsServer> StartAsync(
        DtsServerOptions options,
        TimeProvider? time = null,
        IJobStore? store = null,
        Action<ILoggingBuilder>? logging = null,
        bool ownsStore = true,
        CancellationToken cancellationToken = default)
    {
        if (store is null) ownsStore = true;
        time ??= TimeProvider.System;
        // The data directory holds the database (with users' secrets) and the admin secret: owner only.
        if (!Directory.Exists(options.DataDirectory))
        {
            if (OperatingSystem.IsWindows()) Directory.CreateDirectory(options.DataDirectory);
            else Directory.CreateDirectory(options.DataDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        // Checked before the store is opened, so a mistake in the options leaves nothing behind.
        var certificate = LoadCertificate(options);
        store ??= OpenStore(options);
        try
        {
            await store.MigrateAsync(cancellationToken);
            // Servers sharing a store keep time by the database's clock (unless a test gives its own).
            Cluster.ClusterClock? clusterClock = null;
            if (store is ISharedStore sharedStore && time == TimeProvider.System)
            {
                clusterClock = new Cluster.ClusterClock(time) { Offset = await sharedStore.MeasureClockOffsetAsync(cancellationToken) };
                time = clusterClock;
            }
            var builder = CreateHostBuilder();
            builder.WebHost.UseUrls(options.Url);
            // The slim builder leaves out HTTPS; without this an https:// URL would not bind.
            if (certificate is not null) builder.WebHost.UseKestrelHttpsConfiguration();
            builder.WebHost.ConfigureKestrel(k =>
            {
                k.AddServerHeader = false;
                k.Limits.MaxRequestBodySize = Math.Max(options.MaxBodyBytes, options.MaxBatchBodyBytes);
                if (certificate is not null) k.ConfigureHttpsDefaults(h => h.ServerCertificate = certificate);
            });
            builder.Logging.ClearProviders();
            if (logging is null)
            {
                builder.Logging.AddSimpleConsole(o => { o.SingleLine = true; o.TimestampFormat = "HH:mm:ss "; });
                builder.Logging.SetMinimumLevel(LogLevel.Information);
                builder.Logging.AddFilter("Microsoft", LogLevel.Warning);
            }
            else
            {
                logging(builder.Logging);
            }
            builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10));

            var signals = new JobSignals();
            var users = new UserDirectory(store, time, options.UserCacheTime);
            var authenticator = new RequestAuthenticator(users, new NonceCache(options.SignatureWindow), time, options.SignatureWindow, store);
            builder.Services.AddSingleton(sp => new ServerContext(options, store, signals, time, authenticator, users, RetryPolicy.Default,
                sp.GetRequiredService<ILoggerFactory>()));
            builder.Services.AddHostedService<SchedulerDaemon>();
            builder.Services.AddHostedService<LeaseRescueDaemon>();
            builder.Services.AddHostedService<NonceSweepDaemon>();
            builder.Services.AddHostedService<Notifications.AlertMailer>();
            builder.Services.AddHostedService<Notifications.AlertWatchDaemon>();
            builder.Services.AddHostedService<StethoscopeDaemon>();
            builder.Services.AddHostedService<TimeoutDaemon>();
            builder.Services.AddHostedService<PorterDaemon>();
            builder.Services.AddHostedService<CronDaemon>();
            if (store is ISharedStore shared)
            {
                builder.Services.AddSingleton(sp => new Cluster.ClusterRelay(sp.GetRequiredService<ServerContext>(), shared));
                builder.Services.AddHostedService(sp => sp.GetRequiredService<Cluster.ClusterRelay>());
                builder.Services.AddHostedService(sp => new Cluster.LeaderElection(sp.GetRequiredService<ServerContext>(), shared, clusterClock));
            }

            var app = builder.Build();
            var context = app.Services.GetRequiredService<ServerContext>();
            var lifetime = app.Services.GetRequiredService<IHostApplicationLifetime>();
            context.Stopping = lifetime.ApplicationStopping;
            var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Dts.Server");
            authenticator.NonceWriteFailed = ex => Log.NonceWriteFailed(logger, ex);

            await EnsureAdministratorAsync(context, logger, cancellationToken);
            Configure(app, context, logger);
            await app.StartAsync(cancellationToken);

            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            var url = new Uri(address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal).Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal));
            Log.Listening(logger, url.ToString(), store.Description);
            if (clusterClock is not null) Log.ClockOffset(logger, clusterClock.Offset.TotalMilliseconds);
            return new DtsServer(app, context, url, ownsStore);
        }
        catch
        {
            if (ownsStore) await store.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// The store the options name: a shared PostgreSQL database when <see cref="DtsServerOptions.StorePath"/>
    /// is a connection string or URL, else the SQLite file. Either way users' secrets are encrypted
    /// with the key in <see cref="DtsServerOptions.ResolvedKeyFile"/> (servers sharing a database
    /// need copies of the same key file). Not yet migrated.
    /// </summary>
    /// <exception cref="SecretKeyFileException">The key file is too open, the wrong size or unreadable.</exception>
    /// <exception cref="ArgumentException">The connection string or schema is malformed.</exception>
    public static IJobStore OpenStore(DtsServerOptions options)
    {
        if (!options.UsesPostgres) return OpenSqliteStore(options);
        var connectionString = Dts.Storage.Postgres.PostgresConnectionStrings.Normalize(options.StorePath!);
        return WithCipher(options, cipher => new Dts.Storage.Postgres.PostgresJobStore(new Dts.Storage.Postgres.PostgresStoreOptions
        {
            ConnectionString = connectionString,
            Schema = options.PostgresSchema,
            SecretCipher = cipher,
        }));
    }

    /// <summary>
    /// The SQLite store of <paramref name="options"/> with its secrets encrypted by the key in
    /// <see cref="DtsServerOptions.ResolvedKeyFile"/> (created on first use). The server and
    /// <c>dts server add-user</c> both open the store here, so they always agree on the key.
    /// </summary>
    /// <exception cref="SecretKeyFileException">The key file is too open, the wrong size or unreadable.</exception>
    public static SqliteJobStore OpenSqliteStore(DtsServerOptions options) =>
        WithCipher(options, cipher => new SqliteJobStore(new SqliteStoreOptions
        {
            Path = options.ResolvedStorePath,
            Synchronous = options.Synchronous,
            SecretCipher = cipher,
        }));

    /// <summary>Makes a store with the cipher of the options' key file; the key bytes are wiped afterwards (the cipher keeps its own copy).</summary>
    private static T WithCipher<T>(DtsServerOptions options, Func<ISecretCipher, T> open)
    {
        var key = SecretKeyFile.LoadOrCreate(options.ResolvedKeyFile);
        try
        {
            return open(new AesGcmSecretCipher(key));
        }
        finally
        {
            System.Security.Cryptography.CryptographicOperations.ZeroMemory(key);
        }
    }

    /// <summary>The HTTPS certificate of the options, or null for plain HTTP; refuses mismatched options with a clear message.</summary>
    /// <summary>
    /// The web host, configured by the server's own options only. It reads no configuration file and
    /// watches none: left to its defaults, the slim builder loads an optional appsettings.json from the
    /// current directory and, to notice the file appearing, watches that directory and everything
    /// below it. With the data directory below it (a server started in its user's home, or a bench
    /// started in the temporary directory), every write to the SQLite WAL became a file-system event
    /// for the server to take in: on a foreground job's path about 5% of the server's allocations,
    /// and about a tenth of its round trip (docs/performance.md). A stray appsettings.json in the
    /// current directory could also have changed Kestrel's endpoints or limits behind the options.
    /// </summary>
    internal static WebApplicationBuilder CreateHostBuilder() =>
        WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            // The documented host setting that turns off reload-on-change (and with it the watcher).
            Args = ["--hostBuilder:reloadConfigOnChange=false"],
            // Not the current directory: an appsettings.json there is not Dts's configuration.
            ContentRootPath = AppContext.BaseDirectory,
        });

    private static X509Certificate2? LoadCertificate(DtsServerOptions options)
    {
        var https = options.Url.StartsWith("https://", StringComparison.OrdinalIgnoreCase);
        if (options.TlsCertificateFile is not null && options.TlsPfxFile is not null)
            throw new ArgumentException("Give either a PEM certificate and key or a PFX file, not both.");
        if ((options.TlsCertificateFile is null) != (options.TlsKeyFile is null))
            throw new ArgumentException("A PEM certificate needs its key: give both --tls-cert and --tls-key.");
        if (options.UsesTls && !https)
            throw new ArgumentException($"With a TLS certificate the URL must start with https://, not '{options.Url}'.");
        if (!options.UsesTls && https)
            throw new ArgumentException("An https:// URL needs a certificate: --tls-cert and --tls-key, or --tls-pfx.");
        if (!options.UsesTls) return null;
        try
        {
            return options.TlsPfxFile is { } pfx
                ? X509CertificateLoader.LoadPkcs12FromFile(pfx, options.TlsPfxPassword)
                : X509Certificate2.CreateFromPemFile(options.TlsCertificateFile!, options.TlsKeyFile);
        }
        catch (Exception ex) when (ex is System.Security.Cryptography.CryptographicException or IOException or UnauthorizedAccessException)
        {
            throw new ArgumentException($"Cannot load the TLS certificate: {ex.Message}", ex);
        }
    }

    private static void Configure(WebApplication app, ServerContext s, ILogger logger)
    {
        // Outermost: nothing escapes as a bare 500 or a dropped connection.
        app.Use(async (ctx, next) =>
        {
            try
            {
                await next(ctx);
                // Routing answers unknown paths and methods with empty 404s and 405s; give them problem bodies.
                if (!ctx.Response.HasStarted)
                {
                    if (ctx.Response.StatusCode == 405)
                        await Problems.WriteAsync(ctx, ErrorCodes.MethodNotAllowed, $"{ctx.Request.Method} is not accepted on {ctx.Request.Path}.");
                    else if (ctx.Response.StatusCode == 404)
                        await Problems.WriteAsync(ctx, ErrorCodes.RouteNotFound, $"There is no endpoint {ctx.Request.Method} {ctx.Request.Path}; see docs/protocol.md.");
                }
            }
            catch (BadHttpRequestException ex) when (!ctx.Response.HasStarted)
            {
                var code = ex.StatusCode == 413 ? ErrorCodes.PayloadTooLarge : ErrorCodes.MalformedJson;
                await Problems.WriteAsync(ctx, code, ex.StatusCode == 413 ? null : ex.Message);
            }
            catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
            {
            }
            catch (Exception ex) when (!ctx.Response.HasStarted)
            {
                Log.Unhandled(logger, ex, ctx.Request.Method, ctx.Request.Path);
                await Problems.WriteAsync(ctx, ErrorCodes.Internal);
            }
        });

        app.MapGet(ApiRoutes.Health, (HttpContext ctx) => Api.WriteAsync(ctx, 200,
            new HealthResponse { Status = "ok", Version = Version, Store = s.Store.Description }, DtsJsonContext.Default.HealthResponse));
        ClientEndpoints.Map(app, s);
        WorkerEndpoints.Map(app, s);
        AdminEndpoints.Map(app, s);
        LogEndpoints.Map(app, s);
        ScheduleEndpoints.Map(app, s);
    }

    /// <summary>On an empty store, creates user 'admin' and writes its secret to a file only this OS user can read.</summary>
    private static async Task EnsureAdministratorAsync(ServerContext s, ILogger logger, CancellationToken cancellationToken)
    {
        if (await s.Store.UserCountAsync(cancellationToken) > 0) return;
        var secret = RequestSigning.NewSecret();
        var file = s.Options.ResolvedAdminSecretFile;
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(file))!);
        File.Delete(file);
        var fileOptions = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) fileOptions.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        await using (var stream = new FileStream(file, fileOptions))
        await using (var writer = new StreamWriter(stream))
        {
            await writer.WriteAsync(secret + "\n");
        }
        if (await s.Store.UserInsertAsync(new UserInsertParams("admin", secret, [Roles.Administrator, Roles.Client, Roles.Worker], s.Time.GetUtcNow()), cancellationToken))
            Log.AdminCreated(logger, "admin", Path.GetFullPath(file));
        else
            File.Delete(file); // Another server sharing the store created it first; this secret is not valid.
    }

    /// <summary>Creates a user with a new secret (until the admin API exists, the CLI and tests use this directly).</summary>
    public async Task<string> CreateUserAsync(string name, IReadOnlyList<string> roles, CancellationToken cancellationToken = default)
    {
        var secret = RequestSigning.NewSecret();
        if (!await Store.UserInsertAsync(new UserInsertParams(name, secret, roles, Context.Time.GetUtcNow()), cancellationToken))
            throw new InvalidOperationException($"User '{name}' exists already.");
        return secret;
    }

    public Task WaitForShutdownAsync(CancellationToken cancellationToken) => _app.WaitForShutdownAsync(cancellationToken);

    public async Task StopAsync(CancellationToken cancellationToken = default)
    {
        if (_stopped) return;
        _stopped = true;
        await _app.StopAsync(cancellationToken);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        await _app.DisposeAsync();
        if (_ownsStore) await Context.Store.DisposeAsync();
    }
}
