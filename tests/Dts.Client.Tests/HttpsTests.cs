using System.Security.Cryptography.X509Certificates;
using Dts.Client;
using Dts.Contracts;
using Dts.Testing;

namespace Dts.Client.Tests;

/// <summary>
/// A real server on HTTPS with a certificate from a private CA made here: the SDK trusts it only
/// when given that CA's file, and never a certificate from another CA or for another name.
/// </summary>
public sealed class HttpsTests : IAsyncLifetime
{
    private readonly TempDirectory _dir = new("dts-https");
    private TestServer _server = null!;
    private string _secret = null!;
    private string _caFile = null!;
    private string _otherCaFile = null!;

    public async ValueTask InitializeAsync()
    {
        using var ca = TestCertificates.MakeCa("Dts Test CA");
        using var otherCa = TestCertificates.MakeCa("Some Other CA");
        using var serverCert = TestCertificates.MakeServerCertificate(ca, "localhost");
        _caFile = _dir.File("ca.pem");
        _otherCaFile = _dir.File("other-ca.pem");
        var certFile = _dir.File("server.pem");
        var keyFile = _dir.File("server.key");
        await File.WriteAllTextAsync(_caFile, ca.ExportCertificatePem());
        await File.WriteAllTextAsync(_otherCaFile, otherCa.ExportCertificatePem());
        await File.WriteAllTextAsync(certFile, serverCert.ExportCertificatePem());
        using (var key = serverCert.GetECDsaPrivateKey()!) await File.WriteAllTextAsync(keyFile, key.ExportPkcs8PrivateKeyPem());

        _server = await TestServer.StartAsync(configure: o =>
        {
            o.Url = "https://127.0.0.1:0";
            o.TlsCertificateFile = certFile;
            o.TlsKeyFile = keyFile;
        });
        Assert.Equal("https", _server.Url.Scheme);
        _secret = await _server.Server.CreateUserAsync("alice", [Roles.Client]);
    }

    public async ValueTask DisposeAsync()
    {
        await _server.DisposeAsync();
        _dir.Dispose();
    }

    private DtsClient Client(string? caFile, string host = "localhost") => new(new DtsConnectionOptions
    {
        ServerUrl = $"https://{host}:{_server.Url.Port}",
        UserId = "alice",
        Secret = _secret,
        TrustedCaFile = caFile,
        MaxThrottleRetries = 0,
    });

    [Fact]
    public async Task Submit_OverHttps_SucceedsWithTheCaFile()
    {
        using var client = Client(_caFile);
        var submitted = await client.SubmitAsync("f", ["x"], TestContext.Current.CancellationToken);
        var view = await client.GetJobAsync(submitted.Id, TestContext.Current.CancellationToken);
        Assert.Equal(submitted.Id, view.Id);
    }

    [Fact]
    public async Task Submit_OverHttps_FailsWithoutTheCaFile()
    {
        using var client = Client(null);
        var ex = await Assert.ThrowsAsync<HttpRequestException>(() => client.SubmitAsync("f", ["x"], TestContext.Current.CancellationToken));
        Assert.IsType<System.Security.Authentication.AuthenticationException>(ex.InnerException);
    }

    [Fact]
    public async Task Submit_OverHttps_FailsWithAnotherCa()
    {
        using var client = Client(_otherCaFile);
        var ex = await Assert.ThrowsAsync<HttpRequestException>(() => client.SubmitAsync("f", ["x"], TestContext.Current.CancellationToken));
        Assert.IsType<System.Security.Authentication.AuthenticationException>(ex.InnerException);
    }

    [Fact]
    public async Task Submit_OverHttps_FailsWhenTheNameDoesNotMatch()
    {
        // The certificate names localhost only; the right CA does not excuse a wrong name.
        using var client = Client(_caFile, host: "127.0.0.1");
        var ex = await Assert.ThrowsAsync<HttpRequestException>(() => client.SubmitAsync("f", ["x"], TestContext.Current.CancellationToken));
        Assert.IsType<System.Security.Authentication.AuthenticationException>(ex.InnerException);
    }

    [Fact]
    public async Task Server_FromAPfxFile_ServesHttps()
    {
        using var ca = TestCertificates.MakeCa("Dts Test CA 2");
        using var serverCert = TestCertificates.MakeServerCertificate(ca, "localhost");
        var caFile = _dir.File("ca2.pem");
        var pfx = _dir.File("server.pfx");
        await File.WriteAllTextAsync(caFile, ca.ExportCertificatePem(), TestContext.Current.CancellationToken);
        await File.WriteAllBytesAsync(pfx, serverCert.Export(X509ContentType.Pfx, "pfx-password"), TestContext.Current.CancellationToken);

        await using var server = await TestServer.StartAsync(configure: o =>
        {
            o.Url = "https://127.0.0.1:0";
            o.TlsPfxFile = pfx;
            o.TlsPfxPassword = "pfx-password";
        });
        var secret = await server.Server.CreateUserAsync("bob", [Roles.Client], TestContext.Current.CancellationToken);
        using var client = new DtsClient(new DtsConnectionOptions
        {
            ServerUrl = $"https://localhost:{server.Url.Port}",
            UserId = "bob",
            Secret = secret,
            TrustedCaFile = caFile,
        });
        var submitted = await client.SubmitAsync("f", ["y"], TestContext.Current.CancellationToken);
        Assert.False(string.IsNullOrEmpty(submitted.Id));
    }

    [Theory]
    [InlineData("https://127.0.0.1:0", false, "needs a certificate")]
    [InlineData("http://127.0.0.1:0", true, "must start with https://")]
    public async Task Server_WithMismatchedUrlAndCertificate_RefusesToStart(string url, bool withCertificate, string message)
    {
        var ex = await Assert.ThrowsAsync<ArgumentException>(() => TestServer.StartAsync(configure: o =>
        {
            o.Url = url;
            if (withCertificate)
            {
                o.TlsCertificateFile = _dir.File("server.pem");
                o.TlsKeyFile = _dir.File("server.key");
            }
        }));
        Assert.Contains(message, ex.Message, StringComparison.Ordinal);
    }
}
