using System.Security.Cryptography;
using System.Text;
using Dts.Core.Security;
using Dts.Core.Storage;
using Microsoft.Data.Sqlite;

namespace Dts.Storage.Sqlite.Tests;

/// <summary>Secrets encrypted at rest in the SQLite file, and the table of used nonces.</summary>
public sealed class SecretAndNonceStoreTests : SqliteStoreTest
{
    private static readonly DateTimeOffset T0 = DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000);


    [Fact]
    public void Constructor_WithoutCipher_IsRefused()
    {
        var ex = Assert.Throws<ArgumentException>(() => new SqliteJobStore(new SqliteStoreOptions { Path = _path }));
        Assert.Contains("SecretCipher", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UserInsert_StoresCiphertextBoundToTheUser_AndUserGetReturnsPlain()
    {
        const string secret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
        Assert.True(await _store.UserInsertAsync(new UserInsertParams("alice", secret, ["client"], T0), Ct));

        var stored = await ScalarTextAsync("SELECT secret FROM users WHERE name = 'alice'");
        Assert.StartsWith(AesGcmSecretCipher.Prefix, stored, StringComparison.Ordinal);
        Assert.DoesNotContain(secret, stored, StringComparison.Ordinal);
        Assert.Equal(secret, (await _store.UserGetAsync("alice", Ct))!.Secret);

        // The same ciphertext moved onto another user's row does not open: the name is associated data.
        Assert.True(await _store.UserInsertAsync(new UserInsertParams("mallory", "other", ["client"], T0), Ct));
        await ExecuteAsync($"UPDATE users SET secret = '{stored}' WHERE name = 'mallory'");
        await Assert.ThrowsAsync<SecretDecryptionException>(() => _store.UserGetAsync("mallory", Ct));
    }

    [Fact]
    public async Task Migrate_EncryptsLegacyPlaintextSecrets()
    {
        await ExecuteAsync("INSERT INTO users (name, secret, roles_json, disabled, created_at) VALUES ('old', 'legacy-plain-secret', '[\"client\"]', 0, 0)");

        await _store.MigrateAsync(Ct);

        var stored = await ScalarTextAsync("SELECT secret FROM users WHERE name = 'old'");
        Assert.StartsWith(AesGcmSecretCipher.Prefix, stored, StringComparison.Ordinal);
        Assert.Equal("legacy-plain-secret", (await _store.UserGetAsync("old", Ct))!.Secret);
    }

    [Fact]
    public async Task Migrate_WithAnotherKey_FailsWithAClearErrorThatHoldsNoSecret()
    {
        const string secret = "a-secret-that-must-not-leak-0000";
        Assert.True(await _store.UserInsertAsync(new UserInsertParams("alice", secret, ["client"], T0), Ct));

        await using var wrong = new SqliteJobStore(new SqliteStoreOptions { Path = _path, SecretCipher = new AesGcmSecretCipher(RandomNumberGenerator.GetBytes(32)) });
        var ex = await Assert.ThrowsAsync<SecretDecryptionException>(() => wrong.MigrateAsync(Ct));
        Assert.Contains("key file", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain(secret, ex.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Migrations_ToleratesAGapInVersions()
    {
        // 0002 belongs to another branch; this one ships 0001 and 0003 and must apply both.
        var versions = SqliteMigrator.Embedded.Select(m => m.Version).ToList();
        Assert.Contains(3, versions);
        Assert.Equal(versions.Count, (int)await ScalarLongAsync("SELECT count(*) FROM schema_migrations"));
        Assert.Equal(1, await ScalarLongAsync("SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'nonces'"));
    }

    [Fact]
    public async Task Nonces_AreSeenUntilTheyExpire_ThenSweptInBatches()
    {
        var hash = SHA256.HashData(Encoding.UTF8.GetBytes("nonce-1"))[..16];
        await _store.NonceRecordAsync(new NonceRecordParams("alice", hash, T0.AddMinutes(5)), Ct);

        Assert.True(await _store.NonceSeenAsync(new NonceSeenParams("alice", hash, T0), Ct));
        Assert.False(await _store.NonceSeenAsync(new NonceSeenParams("bob", hash, T0), Ct));
        Assert.False(await _store.NonceSeenAsync(new NonceSeenParams("alice", hash, T0.AddMinutes(5)), Ct));

        for (var i = 0; i < 5; i++)
        {
            var h = SHA256.HashData(Encoding.UTF8.GetBytes($"old-{i}"))[..16];
            await _store.NonceRecordAsync(new NonceRecordParams("alice", h, T0.AddSeconds(-1)), Ct);
        }
        Assert.Equal(3, await _store.NonceDeleteExpiredAsync(new NonceDeleteExpiredParams(T0, 3), Ct));
        Assert.Equal(2, await _store.NonceDeleteExpiredAsync(new NonceDeleteExpiredParams(T0, 3), Ct));
        Assert.Equal(0, await _store.NonceDeleteExpiredAsync(new NonceDeleteExpiredParams(T0, 3), Ct));
        Assert.True(await _store.NonceSeenAsync(new NonceSeenParams("alice", hash, T0), Ct));
    }

    [Fact]
    public async Task NonceRecords_JoinTheGroupCommit_InQueueOrderWithOtherWrites()
    {
        // Hold the writer so that the nonces and a user insert queue up behind it.
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var release = new ManualResetEventSlim();
        var blocker = _store.WriteRawAsync(_ =>
        {
            started.SetResult();
            return release.Wait(TimeSpan.FromSeconds(30));
        }, Ct);
        await started.Task.WaitAsync(TimeSpan.FromSeconds(30), Ct);
        var before = _store.CommitCount;

        var writes = new List<Task>();
        for (var i = 0; i < 50; i++)
            writes.Add(_store.NonceRecordAsync(new NonceRecordParams("alice", SHA256.HashData(Encoding.UTF8.GetBytes($"n{i}"))[..16], T0.AddMinutes(5)), Ct));
        writes.Add(_store.UserInsertAsync(new UserInsertParams("after-nonces", "s", ["client"], T0), Ct));
        release.Set();
        await blocker;
        await Task.WhenAll(writes);

        // The blocker's transaction, then one more for all fifty nonces and the insert behind them.
        Assert.Equal(before + 2, _store.CommitCount);
        Assert.Equal(50, await ScalarLongAsync("SELECT count(*) FROM nonces"));
    }

    [Fact]
    public async Task NonceSweep_UsesTheExpiryIndex()
    {
        var plan = new List<string>();
        await using var c = await OpenAsync();
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "EXPLAIN QUERY PLAN SELECT rowid FROM nonces WHERE expires_at <= 5 ORDER BY expires_at LIMIT 10";
        await using var r = await cmd.ExecuteReaderAsync(Ct);
        while (await r.ReadAsync(Ct)) plan.Add(r.GetString(3));
        Assert.Contains(plan, p => p.Contains("nonces_expires", StringComparison.Ordinal));
    }

    private async Task<SqliteConnection> OpenAsync()
    {
        var c = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = _path, Pooling = false }.ToString());
        await c.OpenAsync(Ct);
        return c;
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var c = await OpenAsync();
        await using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        await cmd.ExecuteNonQueryAsync(Ct);
    }

    private async Task<string> ScalarTextAsync(string sql)
    {
        await using var c = await OpenAsync();
        await using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        return (string)(await cmd.ExecuteScalarAsync(Ct))!;
    }

    private async Task<long> ScalarLongAsync(string sql)
    {
        await using var c = await OpenAsync();
        await using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        return (long)(await cmd.ExecuteScalarAsync(Ct))!;
    }
}
