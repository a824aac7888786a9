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
    private readonly TempDirectory _dir;

    private TestServer(DtsServer server, TempDirectory dir, TimeProvider time)
    {
        Server = server;
        _dir = dir;
        Time = time;
    }

    public DtsServer Server { get; }
    public TimeProvider Time { get; }
    public Uri Url => Server.Url;
    public string DataDirectory => _dir.Path;

    public static async Task<TestServer> StartAsync(TimeProvider? time = null, Action<DtsServerOptions>? configure = null)
    {
        var dir = new TempDirectory("dts-server");
        var options = new DtsServerOptions { Url = "http://127.0.0.1:0", DataDirectory = dir.Path };
        configure?.Invoke(options);
        time ??= TimeProvider.System;
        var server = await DtsServer.StartAsync(options, time, logging: b =>
        {
            b.AddSimpleConsole();
            b.SetMinimumLevel(LogLevel.Error);
        });
        return new TestServer(server, dir, time);
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
        _dir.Dispose();
    }
}
