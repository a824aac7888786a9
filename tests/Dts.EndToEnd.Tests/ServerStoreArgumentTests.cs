using Dts.Testing;

namespace Dts.EndToEnd.Tests;

/// <summary><c>dts server --store</c> and <c>DTS_STORE</c>: bad or unreachable databases get one line and exit 2, and no password is ever printed.</summary>
[Trait("Category", "EndToEnd")]
public sealed class ServerStoreArgumentTests : IDisposable
{
    private const string Password = "pw-4e1f9c2b";
    private readonly TempDirectory _dir = new("dts-store-args");

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task Help_WithAPasswordInDtsStore_DoesNotPrintIt()
    {
        var env = new Dictionary<string, string> { ["DTS_STORE"] = $"Host=127.0.0.1;Username=u;Password={Password}" };
        foreach (string[] args in new[] { new[] { "server", "--help" }, ["server", "migrate", "--help"], ["server", "add-user", "--help"] })
        {
            await using var p = await DtsProcess.RunAsync(args, environment: env);
            Assert.Equal(0, p.ExitCode);
            Assert.Contains("--store", p.Stdout, StringComparison.Ordinal);
            Assert.DoesNotContain(Password, p.Stdout + p.Stderr, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("Host=127.0.0.1;Bogus=1;Password=" + Password)]
    [InlineData("postgres://u:" + Password + "@127.0.0.1:notaport/db")]
    public async Task MalformedStore_IsOneLine_ExitTwo_WithoutThePassword(string store)
    {
        await using var p = await DtsProcess.RunAsync(["server", "migrate", "--store", store, "--data-dir", _dir.Path]);
        Assert.Equal(2, p.ExitCode);
        Assert.Single(p.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries), l => l.StartsWith("dts:", StringComparison.Ordinal) && !l.Contains("building", StringComparison.Ordinal));
        Assert.DoesNotContain(Password, p.Stdout + p.Stderr, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UnreachableDatabase_IsOneLine_ExitTwo_FromTheServerAndFromEnv()
    {
        // Port 1 on loopback: nothing listens there, so the connection is refused at once.
        var store = $"Host=127.0.0.1;Port=1;Username=u;Password={Password};Timeout=5";
        await using (var p = await DtsProcess.RunAsync(["server", "--url", "http://127.0.0.1:0", "--store", store, "--data-dir", _dir.Path]))
        {
            Assert.Equal(2, p.ExitCode);
            Assert.Contains("cannot use the store", p.Stderr, StringComparison.Ordinal);
            Assert.DoesNotContain(Password, p.Stdout + p.Stderr, StringComparison.Ordinal);
        }
        await using (var p = await DtsProcess.RunAsync(["server", "add-user", "bob", "--data-dir", _dir.Path], environment: new Dictionary<string, string> { ["DTS_STORE"] = store }))
        {
            Assert.Equal(2, p.ExitCode);
            Assert.Contains("cannot use the store", p.Stderr, StringComparison.Ordinal);
            Assert.DoesNotContain(Password, p.Stdout + p.Stderr, StringComparison.Ordinal);
        }
    }
}
