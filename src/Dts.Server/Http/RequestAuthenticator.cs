using System.Globalization;
using System.Security.Cryptography;
using System.Text;
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
/// Nonces are checked in memory first; with a <paramref name="store"/> they are also written to it
/// and, when the memory of this process cannot know them, looked up there, so that a request
/// replayed after a restart is still refused.
/// </summary>
public sealed class RequestAuthenticator(UserDirectory users, NonceCache nonces, TimeProvider time, TimeSpan window, IJobStore? store = null)
{
    // A nonce used by an earlier process came with a timestamp at most one window after that
    // process last accepted a request, hence before this one started plus a window. Later
    // timestamps can only have been seen by this process, whose memory cache is complete, so they
    // skip the store lookup. This holds while one server owns the store; with a store shared by
    // several servers (ISharedStore) every nonce is claimed in the store instead.
    private readonly long _storeLookupBefore = time.GetUtcNow().ToUnixTimeSeconds() + (long)Math.Ceiling(window.TotalSeconds);

    /// <summary>Told about a nonce that could not be written to the store (the request itself was already answered).</summary>
    public Action<Exception>? NonceWriteFailed { get; set; }

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
        if (store is not null) await UseStoredNonceAsync(user, nonce, timestamp, cancellationToken);
        return new Caller(record, body);
    }

    private async Task UseStoredNonceAsync(string user, string nonce, long timestamp, CancellationToken cancellationToken)
    {
        var hash = NonceHash(nonce);
        var expires = DateTimeOffset.FromUnixTimeSeconds(timestamp + (long)Math.Ceiling(window.TotalSeconds) + 1);
        if (store is ISharedStore shared)
        {
            // Several servers: any of them may have seen the nonce, so every request claims it in the
            // store, atomically, before it does anything else.
            if (!await shared.NonceClaimAsync(new NonceRecordParams(user, hash, expires), time.GetUtcNow(), cancellationToken))
                throw new DtsException(ErrorCodes.ReplayedNonce);
            return;
        }
        if (timestamp < _storeLookupBefore && await store!.NonceSeenAsync(new NonceSeenParams(user, hash, time.GetUtcNow()), cancellationToken))
            throw new DtsException(ErrorCodes.ReplayedNonce);
        // Not awaited: waiting for its commit would add a group commit to every request. The store's
        // writer runs writes in the order they are queued, so any write this request makes next is
        // committed in the same transaction as the nonce or a later one; an acknowledged write thus
        // implies a remembered nonce. CancellationToken.None: a client hanging up must not drop it.
        var write = store!.NonceRecordAsync(new NonceRecordParams(user, hash, expires), CancellationToken.None);
        if (!write.IsCompleted || write.IsFaulted)
        {
            _ = write.ContinueWith(
                static (t, self) => ((RequestAuthenticator)self!).NonceWriteFailed?.Invoke(t.Exception!.GetBaseException()),
                this, CancellationToken.None, TaskContinuationOptions.OnlyOnFaulted, TaskScheduler.Default);
        }
    }

    /// <summary>The stored form of a nonce: 128 bits of its SHA-256, fixed in size whatever the nonce's length.</summary>
    public static byte[] NonceHash(string nonce) => SHA256.HashData(Encoding.UTF8.GetBytes(nonce))[..16];

    /// <summary>The path and query exactly as the client sent them, before any decoding.</summary>
    private static (string Path, string Query) RawTarget(HttpContext ctx)
    {
        var raw = ctx.Features.Get<IHttpRequestFeature>()?.RawTarget;
        if (string.IsNullOrEmpty(raw) || raw[0] != '/') return (ctx.Request.PathBase + ctx.Request.Path, ctx.Request.QueryString.Value ?? "");
        var q = raw.IndexOf('?', StringComparison.Ordinal);
        return q < 0 ? (raw, "") : (raw[..q], raw[q..]);
    }
}
