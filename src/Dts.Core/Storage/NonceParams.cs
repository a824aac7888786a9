namespace Dts.Core.Storage;

/// <summary>
/// One nonce used by a correctly signed request. <paramref name="NonceHash"/> is a hash of the nonce
/// (fixed size, so the table's rows are too); the row may be deleted after <paramref name="ExpiresAt"/>,
/// when the request's timestamp has left the signature window and it would be refused as stale anyway.
/// </summary>
public sealed record NonceRecordParams(string User, byte[] NonceHash, DateTimeOffset ExpiresAt);

/// <summary>Asks whether <paramref name="User"/> used the nonce with this hash in a request that has not expired at <paramref name="Now"/>.</summary>
public sealed record NonceSeenParams(string User, byte[] NonceHash, DateTimeOffset Now);

/// <summary>Deletes at most <paramref name="Limit"/> nonces that expired before <paramref name="Now"/>.</summary>
public sealed record NonceDeleteExpiredParams(DateTimeOffset Now, int Limit);
