using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Dts.Contracts;

namespace Dts.Client;

/// <summary>
/// The signed HTTP transport to one Dts server, shared by <see cref="DtsClient"/> and the worker SDK.
/// Failed answers become <see cref="DtsApiException"/>; 429 and 503 (which the server did not apply)
/// are waited out and sent again.
/// </summary>
public sealed class DtsConnection : IDisposable
{
    private readonly HttpClient _http;
    private readonly Uri _baseUri;
    private readonly DtsConnectionOptions _options;

    public DtsConnection(DtsConnectionOptions options)
        : this(options, CreateSocketsHandler(options))
    {
    }

    /// <summary>Sends through <paramref name="innerHandler"/> (for example a test double) after signing.</summary>
    public DtsConnection(DtsConnectionOptions options, HttpMessageHandler innerHandler)
    {
        options.Validate();
        _options = options;
        var url = options.ServerUrl.EndsWith('/') ? options.ServerUrl : options.ServerUrl + "/";
        _baseUri = new Uri(url, UriKind.Absolute);
        var signing = new SigningHandler(options.UserId, options.Secret, options.TimeProvider, innerHandler);
        // Timeouts are per request (they depend on the long-poll wait), so the client-wide one is off.
        _http = new HttpClient(signing, disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
    }

    public DtsConnectionOptions Options => _options;

    public TimeProvider TimeProvider => _options.TimeProvider;

    public Uri BaseUri => _baseUri;

    private static SocketsHttpHandler CreateSocketsHandler(DtsConnectionOptions options)
    {
        // Validate first: the handler is built before the constructor body runs.
        options.Validate();
        var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = checked(2 * options.MaxConcurrency),
            ConnectTimeout = options.ConnectTimeout,
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(90),
            AutomaticDecompression = DecompressionMethods.None,
        };
        if (options.TrustedCaFile is { } caFile)
        {
            var roots = new X509Certificate2Collection();
            roots.ImportFromPemFile(caFile);
            if (roots.Count == 0) throw new ArgumentException($"The CA file '{caFile}' holds no PEM certificate.", nameof(options));
            handler.SslOptions.RemoteCertificateValidationCallback = (_, certificate, _, errors) => IsTrusted(certificate, errors, roots);
        }
        return handler;
    }

    /// <summary>
    /// Accepts the server's certificate only if it names the host we asked for and chains to one of
    /// <paramref name="roots"/>; the system's own verdict on the chain is replaced, nothing else is relaxed.
    /// </summary>
    private static bool IsTrusted(X509Certificate? certificate, SslPolicyErrors errors, X509Certificate2Collection roots)
    {
        if (certificate is null) return false;
        if ((errors & (SslPolicyErrors.RemoteCertificateNameMismatch | SslPolicyErrors.RemoteCertificateNotAvailable)) != 0) return false;
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots);
        // A private CA rarely publishes revocation lists; the chain, dates and usage are still checked.
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        using var leaf = new X509Certificate2(certificate);
        return chain.Build(leaf);
    }

    /// <summary>Sends a JSON body and reads a JSON answer.</summary>
    public Task<TResponse> SendAsync<TRequest, TResponse>(
        HttpMethod method, string pathAndQuery, TRequest body,
        JsonTypeInfo<TRequest> requestType, JsonTypeInfo<TResponse> responseType,
        TimeSpan longPollWait = default, CancellationToken cancellationToken = default)
    {
        var bytes = JsonSerializer.SerializeToUtf8Bytes(body, requestType);
        return SendCoreAsync(method, pathAndQuery, bytes, responseType, longPollWait, cancellationToken);
    }

    /// <summary>Sends a request without a body and reads a JSON answer.</summary>
    public Task<TResponse> SendAsync<TResponse>(
        HttpMethod method, string pathAndQuery, JsonTypeInfo<TResponse> responseType,
        TimeSpan longPollWait = default, CancellationToken cancellationToken = default) =>
        SendCoreAsync(method, pathAndQuery, null, responseType, longPollWait, cancellationToken);

    private async Task<TResponse> SendCoreAsync<TResponse>(
        HttpMethod method, string pathAndQuery, byte[]? body, JsonTypeInfo<TResponse> responseType,
        TimeSpan longPollWait, CancellationToken cancellationToken)
    {
        var uri = new Uri(_baseUri, pathAndQuery.TrimStart('/'));
        var timeout = _options.RequestTimeout + (longPollWait > TimeSpan.Zero ? longPollWait : TimeSpan.Zero);
        for (var attempt = 1; ; attempt++)
        {
            using var request = new HttpRequestMessage(method, uri);
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
            if (body is not null)
            {
                request.Content = new ByteArrayContent(body);
                request.Content.Headers.ContentType = JsonMedia.Type;
            }

            using var timeoutCts = new CancellationTokenSource(timeout, _options.TimeProvider);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeoutCts.Token);
            try
            {
                using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, linked.Token).ConfigureAwait(false);
                if (response.IsSuccessStatusCode)
                {
                    var stream = await response.Content.ReadAsStreamAsync(linked.Token).ConfigureAwait(false);
                    await using (stream.ConfigureAwait(false))
                    {
                        var value = await JsonSerializer.DeserializeAsync(stream, LenientJson.For(responseType), linked.Token).ConfigureAwait(false);
                        return value ?? throw new DtsApiException((int)response.StatusCode, null, "The server answered with an empty JSON body.");
                    }
                }

                var error = await ReadProblemAsync(response, linked.Token).ConfigureAwait(false);
                if (error.Status is 429 or 503 && (_options.MaxThrottleRetries is null || attempt <= _options.MaxThrottleRetries))
                {
                    await Task.Delay(error.RetryAfter ?? _options.SnoozeInterval, _options.TimeProvider, cancellationToken).ConfigureAwait(false);
                    continue;
                }
                throw error;
            }
            catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested && timeoutCts.IsCancellationRequested)
            {
                throw new TimeoutException($"{method} {uri.AbsolutePath} got no answer within {timeout.TotalSeconds:0.#} s.", ex);
            }
        }
    }

    private async Task<DtsApiException> ReadProblemAsync(HttpResponseMessage response, CancellationToken cancellationToken)
    {
        var status = (int)response.StatusCode;
        var retryAfter = ParseRetryAfter(response.Headers.RetryAfter);
        string text;
        try
        {
            text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (HttpRequestException)
        {
            text = "";
        }

        if (text.Length > 0)
        {
            try
            {
                var problem = JsonSerializer.Deserialize(text, LenientJson.For(DtsJsonContext.Default.Problem));
                if (problem is not null && (problem.Code is not null || problem.Detail is not null || problem.Title is not null))
                    return new DtsApiException(status, problem.Code, problem.Detail ?? problem.Title, problem.Field, retryAfter);
            }
            catch (JsonException)
            {
                // Not a problem document (a proxy's HTML page, say): report the status and a bit of the text.
            }
        }
        var detail = text.Length > 0 ? Truncate(text.Trim(), 200) : response.ReasonPhrase;
        return new DtsApiException(status, null, detail, null, retryAfter);
    }

    private TimeSpan? ParseRetryAfter(RetryConditionHeaderValue? header)
    {
        if (header is null) return null;
        if (header.Delta is { } delta) return delta < TimeSpan.Zero ? TimeSpan.Zero : delta;
        if (header.Date is { } date)
        {
            var wait = date - _options.TimeProvider.GetUtcNow();
            return wait < TimeSpan.Zero ? TimeSpan.Zero : wait;
        }
        return null;
    }

    private static string Truncate(string text, int max) => text.Length <= max ? text : text[..max] + "...";

    public void Dispose() => _http.Dispose();
}
