using System.Net;
using Dts.Testing;

namespace Dts.EndToEnd.Tests;

/// <summary>The hardening options through the real command line: HTTPS with --ca-file, a separate key file, and a key file others can read.</summary>
[Trait("Category", "EndToEnd")]
public sealed class HardeningEndToEndTests : IDisposable
{
    private readonly TempDirectory _dir = new("dts-e2e-hardening");

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task HttpsServer_WithKeyFileElsewhere_ServesClientsThatTrustItsCa()
    {
        using (var ca = TestCertificates.MakeCa("Dts E2E CA"))
        using (var cert = TestCertificates.MakeServerCertificate(ca, "localhost", IPAddress.Loopback))
        {
            await File.WriteAllTextAsync(_dir.File("ca.pem"), ca.ExportCertificatePem(), TestContext.Current.CancellationToken);
            TestCertificates.WritePem(cert, _dir.File("server.pem"), _dir.File("server.key"));
        }
        var data = Path.Combine(_dir.Path, "data");
        var keyFile = _dir.File("keys/dts.key");
        var urlFile = _dir.File("url.txt");

        await using var server = DtsProcess.Start(["server", "--url", "https://127.0.0.1:0", "--data-dir", data, "--url-file", urlFile,
            "--key-file", keyFile, "--tls-cert", _dir.File("server.pem"), "--tls-key", _dir.File("server.key")]);
        var url = await server.WaitForFileAsync(urlFile, TimeSpan.FromSeconds(60));
        Assert.StartsWith("https://", url, StringComparison.Ordinal);
        Assert.True(File.Exists(keyFile), "the key file is created where --key-file says");
        Assert.False(File.Exists(Path.Combine(data, "secrets.key")), "no second key in the data directory");

        string secret;
        await using (var add = await DtsProcess.RunAsync(["server", "add-user", "alice", "--roles", "client", "--data-dir", data, "--key-file", keyFile]))
        {
            Assert.True(add.ExitCode == 0, add.Stderr);
            secret = add.Stdout.Trim();
        }

        var conn = new[] { "--server", url, "--user", "alice", "--secret", secret };
        await using (var trusted = await DtsProcess.RunAsync(["client", "submit", .. conn, "--ca-file", _dir.File("ca.pem"), "--function", "f", "--arg", "x"]))
            Assert.True(trusted.ExitCode == 0, trusted.Stderr);
        await using (var viaEnv = await DtsProcess.RunAsync(["client", "submit", .. conn, "--function", "f", "--arg", "y"],
                         environment: new Dictionary<string, string> { ["DTS_CA_FILE"] = _dir.File("ca.pem") }))
            Assert.True(viaEnv.ExitCode == 0, viaEnv.Stderr);
        await using (var untrusted = await DtsProcess.RunAsync(["client", "submit", .. conn, "--function", "f", "--arg", "z"]))
        {
            Assert.NotEqual(0, untrusted.ExitCode);
            Assert.Contains("cannot reach the server", untrusted.Stderr, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Server_WithAKeyFileOthersCanRead_ExitsWithOneClearLine()
    {
        Assert.SkipWhen(OperatingSystem.IsWindows(), "Unix permissions only.");
        var keyFile = _dir.File("secrets.key");
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
        await using (var f = new FileStream(keyFile, options)) await f.WriteAsync(new byte[32], TestContext.Current.CancellationToken);

        await using var server = await DtsProcess.RunAsync(["server", "--url", "http://127.0.0.1:0", "--data-dir", _dir.Path]);
        Assert.NotEqual(0, server.ExitCode);
        Assert.Contains("chmod 600", server.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", server.Stderr, StringComparison.Ordinal);
    }
}
