using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Dts.Contracts;

namespace Dts.Testing;

/// <summary>
/// A deliberately low-level HTTP helper for tests: it signs requests itself so that a test can
/// break any part of the signature (timestamp, nonce, body) and see the server's answer.
/// </summary>
public sealed class SignedHttp(Uri baseUrl, string user, string secret, TimeProvider time) : IDisposable
{
    private readonly HttpClient _http = new() { BaseAddress = baseUrl, Timeout = TimeSpan.FromSeconds(100) };

    public string User { get; } = user;
    public string Secret { get; } = secret;

    public sealed record Tweak
    {
        public string? User { get; init; }
        public string? Secret { get; init; }
        public long? Timestamp { get; init; }
        public string? Nonce { get; init; }
        /// <summary>Sign this body but send <see cref="Body"/>.</summary>
        public string? SignedBody { get; init; }
        public string ContentType { get; init; } = "application/json";
        public bool OmitSignature { get; init; }
        /// <summary>Send the body chunked, without a Content-Length.</summary>
        public bool Chunked { get; init; }
    }

    public async Task<HttpResponseMessage> SendAsync(HttpMethod method, string pathAndQuery, string? body = null, Tweak? tweak = null)
    {
        tweak ??= new Tweak();
        var request = new HttpRequestMessage(method, pathAndQuery);
        var bytes = body is null ? [] : Encoding.UTF8.GetBytes(body);
        if (body is not null)
        {
            request.Content = new ByteArrayContent(bytes);
            request.Content.Headers.ContentType = MediaTypeHeaderValue.Parse(tweak.ContentType);
            if (tweak.Chunked)
            {
                request.Headers.TransferEncodingChunked = true;
                request.Content.Headers.ContentLength = null;
            }
        }
        var uri = new Uri(_http.BaseAddress!, pathAndQuery);
        var ts = (tweak.Timestamp ?? time.GetUtcNow().ToUnixTimeSeconds()).ToString(System.Globalization.CultureInfo.InvariantCulture);
        var nonce = tweak.Nonce ?? RequestSigning.NewNonce();
        var who = tweak.User ?? User;
        var signedBytes = tweak.SignedBody is null ? bytes : Encoding.UTF8.GetBytes(tweak.SignedBody);
        var canonical = RequestSigning.CanonicalRequest(method.Method, uri.AbsolutePath, uri.Query, who, ts, nonce, RequestSigning.BodyHash(signedBytes));
        if (!tweak.OmitSignature)
        {
            request.Headers.Add(RequestSigning.UserHeader, who);
            request.Headers.Add(RequestSigning.TimestampHeader, ts);
            request.Headers.Add(RequestSigning.NonceHeader, nonce);
            request.Headers.Add(RequestSigning.SignatureHeader, RequestSigning.Sign(tweak.Secret ?? Secret, canonical));
        }
        return await _http.SendAsync(request);
    }

    public Task<HttpResponseMessage> PostAsync(string path, string? body, Tweak? tweak = null) => SendAsync(HttpMethod.Post, path, body, tweak);
    public Task<HttpResponseMessage> GetAsync(string path, Tweak? tweak = null) => SendAsync(HttpMethod.Get, path, null, tweak);

    /// <summary>Sends and expects a 2xx answer of the given type.</summary>
    public async Task<T> CallAsync<T>(HttpMethod method, string path, string? body, JsonTypeInfo<T> type)
    {
        using var response = await SendAsync(method, path, body);
        var text = await response.Content.ReadAsStringAsync();
        if (!response.IsSuccessStatusCode) throw new HttpRequestException($"{(int)response.StatusCode} from {method} {path}: {text}");
        return JsonSerializer.Deserialize(text, type)!;
    }

    public static string Json<T>(T value, JsonTypeInfo<T> type) => JsonSerializer.Serialize(value, type);

    public void Dispose() => _http.Dispose();
}

public static class ResponseAssert
{
    /// <summary>Asserts a problem+json answer with the given status and code, and returns it.</summary>
    public static async Task<Problem> ProblemAsync(HttpResponseMessage response, ErrorCode expected)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True((int)response.StatusCode == expected.Status, $"expected {expected.Status} {expected.Code}, got {(int)response.StatusCode}: {text}");
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        var problem = JsonSerializer.Deserialize(text, DtsJsonContext.Default.Problem)!;
        Assert.Equal(expected.Code, problem.Code);
        Assert.False(string.IsNullOrWhiteSpace(problem.Detail));
        return problem;
    }
}
