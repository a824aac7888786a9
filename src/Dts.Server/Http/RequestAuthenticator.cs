using System.Globalization;
using Dts.Contracts;
using Dts.Core;
using Dts.Core.Storage;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace Dts.Server.Http;

/// <summary>A request whose signature checked out: who sent it, and its body.</summary>
public sealed record Caller(UserRecord User, byte[] Body)
{
    public string Name => User.Name;
    public bool IsAdministrator => User.Roles.Contains(Roles.Administrator, StringComparer.Ordinal);
}

/// <summary>
/// Checks the signing headers of a request (docs/protocol.md, "Signing"), in an order that tells
/// the caller precisely what is wrong: missing or malformed headers, clock skew, unknown user,
/// signature, and last the nonce, so that only correctly signed requests use up nonces.
/// </summary>
public sealed class RequestAuthenticator(UserDirectory users, NonceCache nonces, TimeProvider time, TimeSpan window)
{
    public async Task<Caller> AuthenticateAsync(HttpContext ctx, long bodyLimit, CancellationToken cancellationToken)
    {
        var h = ctx.Request.Headers;
        var user = h[RequestSigning.UserHeader].ToString();
        var ts = h[RequestSigning.TimestampHeader].ToString();
        var nonce = h[RequestSigning.NonceHeader].ToString();
        var signature = h[RequestSigning.SignatureHeader].ToString();
        if (user.Length == 0 || ts.Length == 0 || nonce.Length == 0 || signature.Length == 0)
            throw new DtsException(ErrorCodes.MissingAuth);

        if (!long.TryParse(ts, NumberStyles.None, CultureInfo.InvariantCulture, out var timestamp))
            throw new DtsException(ErrorCodes.InvalidAuth, $"{RequestSigning.TimestampHeader} must be whole seconds since 1970-01-01 UTC.");
        if (!RequestSigning.IsValidNonce(nonce))
            throw new DtsException(ErrorCodes.InvalidAuth, $"{RequestSigning.NonceHeader} must be {RequestSigning.MinNonceLength} to {RequestSigning.MaxNonceLength} characters of letters, digits, '-' or '_'.");

        var now = time.GetUtcNow().ToUnixTimeSeconds();
        if (Math.Abs(now - timestamp) > window.TotalSeconds)
            throw new DtsException(ErrorCodes.StaleTimestamp, $"The timestamp is {timestamp - now} s from the server's clock; at most {window.TotalSeconds} s is accepted.");

        var record = await users.GetAsync(user, cancellationToken);
        if (record is null || record.Disabled) throw new DtsException(ErrorCodes.UnknownUser);

        var body = await RequestBody.ReadAsync(ctx.Request, bodyLimit, cancellationToken);
        if (body.Length > 0 && !RequestBody.IsJsonContentType(ctx.Request.ContentType))
            throw new DtsException(ErrorCodes.UnsupportedMediaType, "Send the body with Content-Type: application/json.");

        var (path, query) = RawTarget(ctx);
        var canonical = RequestSigning.CanonicalRequest(ctx.Request.Method, path, query, user, ts, nonce, RequestSigning.BodyHash(body));
        if (!RequestSigning.Verify(record.Secret, canonical, signature)) throw new DtsException(ErrorCodes.BadSignature);

        if (!nonces.TryUse(user, nonce, timestamp, now)) throw new DtsException(ErrorCodes.ReplayedNonce);
        return new Caller(record, body);
    }

    /// <summary>The path and query exactly as the client sent them, before any decoding.</summary>
    private static (string Path, string Query) RawTarget(HttpContext ctx)
    {
        var raw = ctx.Features.Get<IHttpRequestFeature>()?.RawTarget;
        if (string.IsNullOrEmpty(raw) || raw[0] != '/') return (ctx.Request.PathBase + ctx.Request.Path, ctx.Request.QueryString.Value ?? "");
        var q = raw.IndexOf('?', StringComparison.Ordinal);
        return q < 0 ? (raw, "") : (raw[..q], raw[q..]);
    }
}
