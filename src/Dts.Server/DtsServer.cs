using System.Reflection;
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

    private DtsServer(WebApplication app, ServerContext context, Uri url)
    {
        _app = app;
        Context = context;
        Url = url;
    }

    /// <summary>The address clients use, with the port actually bound.</summary>
    public Uri Url { get; }
    public ServerContext Context { get; }
    public IJobStore Store => Context.Store;

    /// <summary>
    /// Opens the store (migrating it), creates the first administrator on an empty store, and
    /// starts listening. <paramref name="store"/> overrides the SQLite file of the options.
    /// </summary>
    public static async Task<DtsServer> StartAsync(
        DtsServerOptions options,
        TimeProvider? time = null,
        IJobStore? store = null,
        Action<ILoggingBuilder>? logging = null,
        CancellationToken cancellationToken = default)
    {
        time ??= TimeProvider.System;
        // The data directory holds the database (with users' secrets) and the admin secret: owner only.
        if (!Directory.Exists(options.DataDirectory))
        {
            if (OperatingSystem.IsWindows()) Directory.CreateDirectory(options.DataDirectory);
            else Directory.CreateDirectory(options.DataDirectory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        store ??= new SqliteJobStore(new SqliteStoreOptions { Path = options.ResolvedStorePath, Synchronous = options.Synchronous });
        try
        {
            await store.MigrateAsync(cancellationToken);
            var builder = WebApplication.CreateSlimBuilder();
            builder.WebHost.UseUrls(options.Url);
            builder.WebHost.ConfigureKestrel(k =>
            {
                k.AddServerHeader = false;
                k.Limits.MaxRequestBodySize = Math.Max(options.MaxBodyBytes, options.MaxBatchBodyBytes);
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
            var authenticator = new RequestAuthenticator(users, new NonceCache(options.SignatureWindow), time, options.SignatureWindow);
            builder.Services.AddSingleton(sp => new ServerContext(options, store, signals, time, authenticator, users, RetryPolicy.Default,
                sp.GetRequiredService<ILoggerFactory>()));
            builder.Services.AddHostedService<SchedulerDaemon>();
            builder.Services.AddHostedService<LeaseRescueDaemon>();

            var app = builder.Build();
            var context = app.Services.GetRequiredService<ServerContext>();
            var lifetime = app.Services.GetRequiredService<IHostApplicationLifetime>();
            context.Stopping = lifetime.ApplicationStopping;
            var logger = app.Services.GetRequiredService<ILoggerFactory>().CreateLogger("Dts.Server");

            await EnsureAdministratorAsync(context, logger, cancellationToken);
            Configure(app, context, logger);
            await app.StartAsync(cancellationToken);

            var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            var url = new Uri(address.Replace("[::]", "127.0.0.1", StringComparison.Ordinal).Replace("0.0.0.0", "127.0.0.1", StringComparison.Ordinal));
            Log.Listening(logger, url.ToString(), store.Description);
            return new DtsServer(app, context, url);
        }
        catch
        {
            await store.DisposeAsync();
            throw;
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
        await Context.Store.DisposeAsync();
    }
}
