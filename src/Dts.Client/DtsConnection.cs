using System.Net;
using System.Net.Http.Headers;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Dts.Contracts;

namespace Dts.Client;

/// <summary>
/// The signed HTTP transport to one or several Dts servers that share one database, used by
/// <see cref="DtsClient"/>, <see cref="DtsAdminClient"/> and the worker SDK. Failed answers become
/// <see cref="DtsApiException"/>; 429 and 503 (which the server did not apply) are waited out and
/// sent again. When a server cannot be reached (connection refused, reset, DNS failure, or a
/// 502/503/504 from a proxy rather than from Dts) the request is signed afresh and sent to the next
/// server in the list, round after round with a capped backoff, until
/// <see cref="DtsConnectionOptions.FailoverBudget"/> is spent or the caller cancels. Such a resend may
/// repeat a request the first server already carried out: every request the SDKs send is safe to
/// repeat (see docs/client.md, "Several servers").
/// </summary>
public sealed class DtsConnection : IDisposable
{
    private readonly HttpClient _http;
    private readonly DtsConnectionOptions _options;
    private readonly IReadOnlyList<Uri> _servers;
    /// <summary>Per server: the time (Unix ms) until which it is passed over after a failure.</summary>
    private readonly long[] _badUntil;
    private int _current;

    public DtsConnection(DtsConnectionOptions options)
        : this(options, CreateSocketsHandler(options))
    {
    }

    /// <summary>Sends through <paramref name="innerHandler"/> (for example a test double) after signing.</summary>
    public DtsConnection(DtsConnectionOptions options, HttpMessageHandler innerHandler)
    {
        _servers = options.Validate();
        _options = options;
        _badUntil = new long[_servers.Count];
        var signing = new SigningHandler(options.UserId, options.Secret, options.TimeProvider, innerHandler);
        // Timeouts are per request (they depend on the long-poll wait), so the client-wide one is off.
        _http = new HttpClient(signing, disposeHandler: true) { Timeout = Timeout.InfiniteTimeSpan };
    }

    public DtsConnectionOptions Options => _options;

    public TimeProvider TimeProvider => _options.TimeProvider;

    /// <summary>The server requests go to now (the same as <see cref="CurrentServer"/>).</summary>
    public Uri BaseUri => CurrentServer;

    /// <summary>The server requests go to now; it changes when that one cannot be reached.</summary>
    public Uri CurrentServer => _servers[Volatile.Read(ref _current)];

    /// <summary>Every server of the list, in order of preference, each ending in '/'.</summary>
    public IReadOnlyList<Uri> Servers => _servers;

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
        var relative = pathAndQuery.TrimStart('/');
        var timeout = _options.RequestTimeout + (longPollWait > TimeSpan.Zero ? longPollWait : TimeSpan.Zero);
        var time = _options.TimeProvider;
        var started = time.GetTimestamp();
        var throttled = 0;
        var failures = 0;
        var backoff = _options.FailoverBackoff;
        while (true)
        {
            var index = Volatile.Read(ref _current);
            var uri = new Uri(_servers[index], relative);
            using var request = new HttpRequestMessage(method, uri);
            request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
            if (body is not null)
            {
                request.Content = new ByteArrayContent(body);
                request.Content.Headers.ContentType = JsonMedia.Type;
            }

            using var timeoutCts = new CancellationTokenSource(timeout, time);
            using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeoutCts.Token);
            Exception failure;
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
                if (error.Status is 502 or 503 or 504 && error.Code is null)
                {
                    // A proxy or load balancer speaking, not Dts: the server behind it is away.
                    failure = error;
                }
                else if (error.Is(ErrorCodes.ShuttingDown) && _servers.Count > 1)
                {
                    // "Try another server": with a list there is one to try at once.
                    failure = error;
                }
                else if (error.Status is 429 or 503 && (_options.MaxThrottleRetries is null || ++throttled <= _options.MaxThrottleRetries))
                {
                    await Task.Delay(error.RetryAfter ?? _options.SnoozeInterval, time, cancellationToken).ConfigureAwait(false);
                    continue;
                }
                else
                {
                    throw error;
                }
            }
            catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested && timeoutCts.IsCancellationRequested)
            {
                // The server took the request and went quiet: it is not resent (it may still be
                // running), but the next request tries another server.
                MarkBad(index, $"no answer to {method} {uri.AbsolutePath} within {timeout.TotalSeconds:0.#} s");
                throw new TimeoutException($"{method} {uri.AbsolutePath} got no answer within {timeout.TotalSeconds:0.#} s.", ex);
            }
            catch (OperationCanceledException ex) when (!cancellationToken.IsCancellationRequested)
            {
                // The handler's connect timeout.
                failure = ex;
            }
            catch (HttpRequestException ex) when (IsConnectionFailure(ex))
            {
                failure = ex;
            }
            catch (IOException ex)
            {
                // The connection broke while the answer's body was read.
                failure = ex;
            }

            failures++;
            MarkBad(index, $"{method} {uri.AbsolutePath} to {_servers[index]} failed: {Describe(failure)}");
            var elapsed = time.GetElapsedTime(started);
            if (_options.FailoverBudget is { } budget && elapsed >= budget)
            {
                if (failure is DtsApiException) throw failure;
                throw new HttpRequestException(
                    $"No Dts server could be reached ({string.Join(", ", _servers)}) within {elapsed.TotalSeconds:0.#} s; last error: {Describe(failure)}",
                    failure);
            }
            if (failures % _servers.Count == 0)
            {
                // Every server failed once in this round: wait before the next round.
                var wait = backoff * (0.5 + Random.Shared.NextDouble() / 2);
                if (_options.FailoverBudget is { } limit && elapsed + wait > limit) wait = limit - elapsed;
                backoff = backoff * 2 > DtsConnectionOptions.MaxFailoverBackoff ? DtsConnectionOptions.MaxFailoverBackoff : backoff * 2;
                if (wait > TimeSpan.Zero) await Task.Delay(wait, time, cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>
    /// True for failures that happened on the way to a server (refused, reset, name not found, the
    /// connection closed before an answer); false for ones another attempt would not cure, such as
    /// a certificate that is not trusted.
    /// </summary>
    private static bool IsConnectionFailure(HttpRequestException ex) => ex.HttpRequestError switch
    {
        HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError or HttpRequestError.ResponseEnded or HttpRequestError.Unknown =>
            ex.InnerException is not System.Security.Authentication.AuthenticationException,
        _ => false,
    };

    private static string Describe(Exception ex) => ex switch
    {
        HttpRequestException { InnerException: { } inner } http when !string.IsNullOrEmpty(inner.Message) && !http.Message.Contains(inner.Message, StringComparison.Ordinal)
            => $"{http.Message} ({inner.Message})",
        OperationCanceledException => "connect timed out",
        _ => ex.Message,
    };

    /// <summary>
    /// Passes over <paramref name="index"/> for the cool-down and, if requests still go to it, moves
    /// them to the next server that is not cooling down (or, when all are, the one that recovers first).
    /// </summary>
    private void MarkBad(int index, string why)
    {
        var now = _options.TimeProvider.GetUtcNow().ToUnixTimeMilliseconds();
        Volatile.Write(ref _badUntil[index], now + (long)_options.FailoverCooldown.TotalMilliseconds);
        if (_servers.Count == 1) return;
        var next = -1;
        var soonest = long.MaxValue;
        for (var step = 1; step < _servers.Count; step++)
        {
            var candidate = (index + step) % _servers.Count;
            var until = Volatile.Read(ref _badUntil[candidate]);
            if (until <= now)
            {
                next = candidate;
                break;
            }
            if (until < soonest)
            {
                soonest = until;
                next = candidate;
            }
        }
        if (Interlocked.CompareExchange(ref _current, next, index) == index)
            Log($"{why}; switching to {_servers[next]}");
    }

    private void Log(string line)
    {
        try
        {
            _options.Log?.Invoke(line);
        }
        catch (Exception)
        {
            // A broken log sink must not break the request.
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
