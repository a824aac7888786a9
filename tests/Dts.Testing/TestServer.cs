using Dts.Contracts;
using Dts.Server;
using Microsoft.Extensions.Logging;

namespace Dts.Testing;

/// <summary>
/// A real Dts server on Kestrel, 127.0.0.1 and an ephemeral port, with a fresh SQLite file.
/// Creates users on demand and hands out signing HTTP helpers for them.
/// </summary>
public sealed class TestServer : IAsyncDisposable
{
    private readonly TempDirectory? _dir;

    private TestServer(DtsServer server, TempDirectory? dir, string dataDirectory, TimeProvider time)
    {
        Server = server;
        _dir = dir;
        DataDirectory = dataDirectory;
        Time = time;
    }

    public DtsServer Server { get; }
    public TimeProvider Time { get; }
    public Uri Url => Server.Url;
    public string DataDirectory { get; }

    /// <param name="time">The server's clock.</param>
    /// <param name="configure">Changes to the options before start.</param>
    /// <param name="dataDirectory">
    /// An existing data directory to start on (for restart tests); the caller owns it and it is not
    /// deleted on dispose. Null makes a fresh one that is.
    /// </param>
    /// <param name="log">Receives every log message of the server at every level, instead of the console.</param>
    public static async Task<TestServer> StartAsync(
        TimeProvider? time = null, Action<DtsServerOptions>? configure = null, string? dataDirectory = null, Action<string>? log = null)
    {
        var dir = dataDirectory is null ? new TempDirectory("dts-server") : null;
        var path = dataDirectory ?? dir!.Path;
        var options = new DtsServerOptions { Url = "http://127.0.0.1:0", DataDirectory = path };
        configure?.Invoke(options);
        time ??= TimeProvider.System;
        try
        {
            var server = await DtsServer.StartAsync(options, time, logging: b =>
            {
                if (log is null)
                {
                    b.AddSimpleConsole();
                    b.SetMinimumLevel(LogLevel.Error);
                }
                else
                {
                    b.AddProvider(new CapturingLoggerProvider(log));
                    b.SetMinimumLevel(LogLevel.Trace);
                }
            });
            return new TestServer(server, dir, path, time);
        }
        catch
        {
            dir?.Dispose();
            throw;
        }
    }

    /// <summary>Creates a user with the given roles and returns a signing HTTP helper for it.</summary>
    public async Task<SignedHttp> UserAsync(string name, params string[] roles)
    {
        var secret = await Server.CreateUserAsync(name, roles.Length == 0 ? [Roles.Client] : roles);
        return new SignedHttp(Url, name, secret, Time);
    }

    public async ValueTask DisposeAsync()
    {
        await Server.DisposeAsync();
        _dir?.Dispose();
    }
}
