using Dts.Contracts;
using Dts.Testing;

namespace Dts.Server.Tests;

/// <summary>A test server per test with one client user (alice) and one worker user (w1), signed HTTP for each.</summary>
public abstract class ClientWorkerServerTest : IAsyncLifetime
{
    protected TestServer _server = null!;
    protected SignedHttp _client = null!;
    protected SignedHttp _worker = null!;

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>Options of the test's server beyond the defaults; none unless a test class says.</summary>
    protected virtual void Configure(DtsServerOptions options)
    {
    }

    public virtual async ValueTask InitializeAsync()
    {
        _server = await TestServer.StartAsync(configure: Configure);
        _client = await _server.UserAsync("alice", Roles.Client);
        _worker = await _server.UserAsync("w1", Roles.Worker);
    }

    public async ValueTask DisposeAsync()
    {
        _client.Dispose();
        _worker.Dispose();
        await _server.DisposeAsync();
        GC.SuppressFinalize(this);
    }
}
