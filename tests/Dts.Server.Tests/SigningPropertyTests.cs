using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using CsCheck;
using Dts.Contracts;
using Dts.Testing;
using Microsoft.Data.Sqlite;

namespace Dts.Server.Tests;

/// <summary>
/// Generated signed submits against a real server, each sent first with exactly one part tampered
/// (refused, and creating no job), then as signed (accepted). The tampered copy goes first so that
/// it cannot be refused merely for reusing the nonce of the valid one.
/// </summary>
public sealed class SigningPropertyTests : IAsyncLifetime
{
    private TestServer _server = null!;
    private SignedHttp _alice = null!;
    private SignedHttp _bob = null!;
    private HttpClient _http = null!;
    private int _accepted;

    public async ValueTask InitializeAsync()
    {
        _server = await TestServer.StartAsync();
        _alice = await _server.UserAsync("alice", Roles.Client);
        _bob = await _server.UserAsync("bob", Roles.Client);
        _http = new HttpClient { BaseAddress = _server.Url };
    }

    public async ValueTask DisposeAsync()
    {
        _http.Dispose();
        _alice.Dispose();
        _bob.Dispose();
        await _server.DisposeAsync();
    }

    public enum Part { Method, Path, Query, User, Timestamp, Nonce, Body, Signature }

    private sealed record Signed(string Method, string Path, string Query, string User, string Timestamp, string Nonce, string Body, string Signature);

    private static readonly Gen<(string Function, int[] Args, string Tag, Part Part, int Pick)> Cases =
        Gen.Select(
            Gen.String[Gen.Char["abcdefghijklmnopqrstuvwxyz"], 1, 20],
            Gen.Int[-1000, 1000].Array[0, 5],
            Gen.String[Gen.Char["abcdefghijklmnopqrstuvwxyz0123456789"], 1, 10],
            Gen.Enum<Part>(),
            Gen.Int[0, 1_000_000]);

    [Fact]
    public async Task EveryTamperedRequest_IsRefused_AndCreatesNoJob()
    {
        await Cases.SampleAsync(async c =>
        {
            var signed = Sign(c.Function, c.Args, c.Tag);
            var tampered = Tamper(signed, c.Part, c.Pick);
            Assert.NotEqual(signed, tampered);

            using (var refused = await SendAsync(tampered))
            {
                var status = (int)refused.StatusCode;
                var text = await refused.Content.ReadAsStringAsync();
                Assert.True(status is >= 400 and < 500, $"{c.Part}: expected a 4xx, got {status}: {text}");
                // Changing what the signature covers, or the signature itself, is an authentication failure.
                if (c.Part is not (Part.Method or Part.Path))
                    Assert.True(status == 401, $"{c.Part}: expected 401, got {status}: {text}");
            }

            using var accepted = await SendAsync(signed);
            Assert.Equal(HttpStatusCode.Created, accepted.StatusCode);
            Interlocked.Increment(ref _accepted);
        }, iter: 100, threads: 1);

        // Only the untampered submits made jobs.
        Assert.Equal(_accepted, await CountJobsAsync());
    }

    private Signed Sign(string function, int[] args, string tag)
    {
        var body = $"{{\"function\":\"{function}\",\"args\":[{string.Join(',', args)}],\"tags\":[\"{tag}\"]}}";
        // The submit endpoint ignores this query; it is there so that tampering with a signed query can be tried.
        var query = $"?trace={tag}&a=1";
        var ts = _server.Time.GetUtcNow().ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        var nonce = RequestSigning.NewNonce();
        var canonical = RequestSigning.CanonicalRequest("POST", ApiRoutes.Jobs, query, _alice.User, ts, nonce, RequestSigning.BodyHash(Encoding.UTF8.GetBytes(body)));
        return new Signed("POST", ApiRoutes.Jobs, query, _alice.User, ts, nonce, body, RequestSigning.Sign(_alice.Secret, canonical));
    }

    private Signed Tamper(Signed s, Part part, int pick) => part switch
    {
        Part.Method => s with { Method = (pick % 3) switch { 0 => "PUT", 1 => "PATCH", _ => "DELETE" } },
        Part.Path => s with { Path = (pick % 2) == 0 ? ApiRoutes.JobsBatch : ApiRoutes.Job("j" + pick.ToString(CultureInfo.InvariantCulture)) },
        Part.Query => (pick % 3) switch
        {
            0 => s with { Query = s.Query + "&x=" + pick.ToString(CultureInfo.InvariantCulture) },
            1 => s with { Query = s.Query.Replace("a=1", "a=2", StringComparison.Ordinal) },
            _ => s with { Query = "" },
        },
        // Another real user (the signature is not theirs) or one that does not exist.
        Part.User => s with { User = (pick % 2) == 0 ? _bob.User : "nobody" + pick.ToString(CultureInfo.InvariantCulture) },
        // Within the window (only the signature gives it away) or outside it.
        Part.Timestamp => s with
        {
            Timestamp = (long.Parse(s.Timestamp, CultureInfo.InvariantCulture) + ((pick % 2) == 0 ? 1 + (pick % 100) : -(1000 + pick))).ToString(CultureInfo.InvariantCulture),
        },
        Part.Nonce => s with { Nonce = RequestSigning.NewNonce() },
        Part.Body => s with { Body = TamperBody(s.Body, pick) },
        _ => s with { Signature = FlipHexDigit(s.Signature, pick % s.Signature.Length) },
    };

    private static string TamperBody(string body, int pick) => (pick % 3) switch
    {
        0 => body.Replace("\"tags\"", "\"tagz\"", StringComparison.Ordinal),
        1 => body + " ",
        _ => body.Replace("[", "[7,", StringComparison.Ordinal),
    };

    private static string FlipHexDigit(string hex, int at)
    {
        var chars = hex.ToCharArray();
        chars[at] = chars[at] == '0' ? '1' : '0';
        return new string(chars);
    }

    private async Task<HttpResponseMessage> SendAsync(Signed s)
    {
        var request = new HttpRequestMessage(new HttpMethod(s.Method), s.Path + s.Query)
        {
            Content = new ByteArrayContent(Encoding.UTF8.GetBytes(s.Body)),
        };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.Add(RequestSigning.UserHeader, s.User);
        request.Headers.Add(RequestSigning.TimestampHeader, s.Timestamp);
        request.Headers.Add(RequestSigning.NonceHeader, s.Nonce);
        request.Headers.Add(RequestSigning.SignatureHeader, s.Signature);
        return await _http.SendAsync(request, TestContext.Current.CancellationToken);
    }

    private async Task<int> CountJobsAsync()
    {
        await using var c = new SqliteConnection(new SqliteConnectionStringBuilder
        {
            DataSource = Path.Combine(_server.DataDirectory, "dts.db"),
            Mode = SqliteOpenMode.ReadOnly,
            Pooling = false,
        }.ToString());
        await c.OpenAsync(TestContext.Current.CancellationToken);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT count(*) FROM jobs";
        return Convert.ToInt32(await cmd.ExecuteScalarAsync(TestContext.Current.CancellationToken), CultureInfo.InvariantCulture);
    }
}
