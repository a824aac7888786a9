using System.Globalization;
using System.Net.Http.Headers;
using Dts.Contracts;

namespace Dts.Client;

/// <summary>
/// Signs every outgoing request with the Dts scheme (<see cref="RequestSigning"/>). It must run
/// last before the wire: it reads the final body and the final URI, and each send (including a
/// retry) gets a fresh nonce and timestamp.
/// </summary>
public sealed class SigningHandler : DelegatingHandler
{
    private readonly string _user;
    private readonly string _secret;
    private readonly TimeProvider _time;

    public SigningHandler(string user, string secret, TimeProvider? timeProvider = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(user);
        ArgumentException.ThrowIfNullOrEmpty(secret);
        _user = user;
        _secret = secret;
        _time = timeProvider ?? TimeProvider.System;
    }

    public SigningHandler(string user, string secret, TimeProvider? timeProvider, HttpMessageHandler innerHandler)
        : this(user, secret, timeProvider)
    {
        InnerHandler = innerHandler;
    }

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        await SignAsync(request, cancellationToken).ConfigureAwait(false);
        return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
    }

    internal async Task SignAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var uri = request.RequestUri ?? throw new InvalidOperationException("The request has no URI.");
        var bodyHash = RequestSigning.EmptyBodyHash;
        if (request.Content is not null)
        {
            var body = await request.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
            if (request.Content is not ByteArrayContent)
            {
                // A streamed body could differ on a second read; send exactly the bytes that were hashed.
                var buffered = new ByteArrayContent(body);
                foreach (var header in request.Content.Headers)
                    buffered.Headers.TryAddWithoutValidation(header.Key, header.Value);
                request.Content.Dispose();
                request.Content = buffered;
            }
            bodyHash = RequestSigning.BodyHash(body);
        }

        var timestamp = _time.GetUtcNow().ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture);
        var nonce = RequestSigning.NewNonce();
        var canonical = RequestSigning.CanonicalRequest(request.Method.Method, uri.AbsolutePath, uri.Query, _user, timestamp, nonce, bodyHash);
        var headers = request.Headers;
        headers.Remove(RequestSigning.UserHeader);
        headers.Remove(RequestSigning.TimestampHeader);
        headers.Remove(RequestSigning.NonceHeader);
        headers.Remove(RequestSigning.SignatureHeader);
        headers.TryAddWithoutValidation(RequestSigning.UserHeader, _user);
        headers.TryAddWithoutValidation(RequestSigning.TimestampHeader, timestamp);
        headers.TryAddWithoutValidation(RequestSigning.NonceHeader, nonce);
        headers.TryAddWithoutValidation(RequestSigning.SignatureHeader, RequestSigning.Sign(_secret, canonical));
    }
}

internal static class JsonMedia
{
    public static readonly MediaTypeHeaderValue Type = new("application/json");
}
