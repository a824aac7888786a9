using Dts.Testing;
using System.Threading.Channels;
using Dts.Contracts;
using Dts.Core;
using Dts.Core.Security;
using Dts.Core.Storage;
using Dts.Testing.Postgres;
using Npgsql;

namespace Dts.Storage.Postgres.Tests;

/// <summary>What only a shared PostgreSQL store does: concurrent servers, the claim's plan, NOTIFY, leadership.</summary>
public sealed class PostgresSpecificTests : PostgresStoreTest
{
    private static readonly DateTimeOffset T0 = DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000);

    private static NewJob Job(string function) => TestJobs.New(T0, function);

    private async Task<T> ScalarAsync<T>(string sql)
    {
        await using var connection = await _database.OpenAsync(Ct);
        await using var command = new NpgsqlCommand(sql, connection);
        return (T)(await command.ExecuteScalarAsync(Ct))!;
    }

    [Fact]
    public async Task ThreeStores_MigratingOneFreshSchemaAtOnce_AllSucceed_AndEachMigrationIsAppliedOnce()
    {
        var schema = _database.NewSchema();
        var stores = Enumerable.Range(0, 3).Select(_ => _database.NewStore(schema)).ToList();
        try
        {
            await Task.WhenAll(stores.Select(s => Task.Run(() => s.MigrateAsync(Ct), Ct)));
        }
        finally
        {
            foreach (var s in stores) await s.DisposeAsync();
        }
        var versions = PostgresMigrator.Migrations.Count;
        Assert.True(versions >= 1);
        Assert.Equal((long)versions, await ScalarAsync<long>($"SELECT count(*) FROM \"{schema}\".schema_migrations"));
        Assert.Equal((long)versions, await ScalarAsync<long>($"SELECT count(DISTINCT version) FROM \"{schema}\".schema_migrations"));
        Assert.Equal(0L, await ScalarAsync<long>($"SELECT count(*) FROM \"{schema}\".jobs"));
    }

    [Fact]
    public async Task FourStores_LeasingConcurrentlyInSmallBatches_LeaseEveryJobExactlyOnce()
    {
        var functions = new[] { "a", "b", "c", "d" };
        var jobs = Enumerable.Range(0, 2000).Select(i => Job(functions[i % functions.Length])).ToList();
        foreach (var chunk in jobs.Chunk(500)) await _store.JobInsertManyAsync(new JobInsertManyParams(chunk, T0), Ct);

        var stores = Enumerable.Range(0, 4).Select(_ => _database.NewStore()).ToList();
        try
        {
            var leasers = stores.SelectMany((store, s) => Enumerable.Range(0, 3).Select(k => Task.Run(async () =>
            {
                var mine = new List<string>();
                var worker = $"worker-{s}-{k}";
                while (true)
                {
                    var batch = await store.JobLeaseAsync(new JobLeaseParams(worker, functions, 7, T0, TimeSpan.FromMinutes(1)), Ct);
                    // An empty batch while others hold the last rows is not the end: stop when nothing is queued.
                    if (batch.Count == 0 && (await store.QueueListAsync(new QueueListParams(), Ct)).Sum(q => q.Queued) == 0) break;
                    foreach (var j in batch)
                    {
                        Assert.Equal(JobState.Running, j.State);
                        Assert.Equal(worker, j.WorkerId);
                        mine.Add(j.Id);
                    }
                }
                return mine;
            }, Ct))).ToList();
            var leased = (await Task.WhenAll(leasers)).SelectMany(x => x).ToList();
            Assert.Equal(2000, leased.Count);
            Assert.Equal(jobs.Select(j => j.Id).Order(StringComparer.Ordinal), leased.Order(StringComparer.Ordinal));
        }
        finally
        {
            foreach (var s in stores) await s.DisposeAsync();
        }
    }

    [Fact]
    public async Task ClaimQuery_On200kQueuedRows_UsesThePartialIndex_NotASeqScan()
    {
        var s = _store.QuotedSchema;
        await using var connection = await _database.OpenAsync(Ct);
        await using (var fill = new NpgsqlCommand(
            $"INSERT INTO {s}.jobs (id, function, owner, state, args_json, kwargs_json, rank, run_at, max_attempts, retention_ms, created_at, updated_at) " +
            "SELECT 'job-' || g, 'fn' || (g % 8), 'alice', 'queued', '[]', '{}', 1000 + (g % 3) * 1000, now(), 3, 86400000, now(), now() " +
            "FROM generate_series(1, 200000) AS g", connection) { CommandTimeout = 120 })
        {
            await fill.ExecuteNonQueryAsync(Ct);
        }
        // Finished jobs too, as a long-running store mostly holds: the partial index ignores them.
        await using (var finished = new NpgsqlCommand(
            $"INSERT INTO {s}.jobs (id, function, owner, state, args_json, kwargs_json, rank, run_at, max_attempts, retention_ms, created_at, updated_at, finished_at) " +
            "SELECT 'done-' || g, 'fn' || (g % 8), 'alice', 'succeeded', '[]', '{}', 2000, now(), 3, 86400000, now(), now(), now() " +
            "FROM generate_series(1, 50000) AS g", connection) { CommandTimeout = 120 })
        {
            await finished.ExecuteNonQueryAsync(Ct);
        }
        await using (var analyze = new NpgsqlCommand($"ANALYZE {s}.jobs", connection)) await analyze.ExecuteNonQueryAsync(Ct);

        string plan;
        await using (var explain = new NpgsqlCommand("EXPLAIN (FORMAT JSON) " + _store.S(PostgresJobStore.LeaseSql), connection))
        {
            PostgresJobStore.AddLeaseParameters(explain, new JobLeaseParams("w", ["fn1", "fn2", "fn3"], 10, T0, TimeSpan.FromMinutes(1)), T0);
            plan = (string)(await explain.ExecuteScalarAsync(Ct))!;
        }
        var jobScans = QueryPlans.JobScans(plan);

        Assert.DoesNotContain(jobScans, x => x.Node == "Seq Scan");
        Assert.Contains(jobScans, x => x.Index == "jobs_ready");

        // And the claim itself takes the best of those functions.
        var leased = await _store.JobLeaseAsync(new JobLeaseParams("w", ["fn1", "fn2"], 5, T0, TimeSpan.FromMinutes(1)), Ct);
        Assert.Equal(5, leased.Count);
        Assert.All(leased, j => Assert.Equal(1000, j.Priority.Rank));
    }

    [Fact]
    public async Task Publish_OnOneStore_IsReceivedByListenOnAnother_AfterResync()
    {
        await using var other = _database.NewStore();
        var received = Channel.CreateUnbounded<ClusterSignal>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var listening = other.ListenAsync(s => received.Writer.TryWrite(s), stop.Token);

        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(20));
        Assert.Equal(new ClusterSignal(ClusterSignalKind.Resync, ""), await received.Reader.ReadAsync(timeout.Token));

        var sent = new[]
        {
            new ClusterSignal(ClusterSignalKind.JobsReady, "resize"),
            new ClusterSignal(ClusterSignalKind.ResultsReady, "alice"),
            new ClusterSignal(ClusterSignalKind.Scheduled, ""),
            new ClusterSignal(ClusterSignalKind.LogsAppended, "job:with:colons"),
        };
        // A key too long for a NOTIFY payload is skipped, not an error.
        await _store.PublishAsync([.. sent, new ClusterSignal(ClusterSignalKind.JobsReady, new string('x', 7001))], Ct);
        foreach (var expected in sent) Assert.Equal(expected, await received.Reader.ReadAsync(timeout.Token));

        stop.Cancel();
        await listening;
        Assert.False(received.Reader.TryRead(out _));
    }

    [Fact]
    public async Task Listen_AfterItsConnectionIsTerminated_Reconnects_ResyncsAndReceivesAgain()
    {
        var received = Channel.CreateUnbounded<ClusterSignal>();
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        var listening = _store.ListenAsync(s => received.Writer.TryWrite(s), stop.Token);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(Ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(20));
        var resync = new ClusterSignal(ClusterSignalKind.Resync, "");
        Assert.Equal(resync, await received.Reader.ReadAsync(timeout.Token));

        Assert.Equal(1L, await ScalarAsync<long>(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity " +
            $"WHERE query = 'LISTEN \"{_store.Channel}\"' AND pid <> pg_backend_pid()) t"));

        Assert.Equal(resync, await received.Reader.ReadAsync(timeout.Token));
        await _store.PublishAsync([new ClusterSignal(ClusterSignalKind.JobsReady, "after")], Ct);
        Assert.Equal(new ClusterSignal(ClusterSignalKind.JobsReady, "after"), await received.Reader.ReadAsync(timeout.Token));
        stop.Cancel();
        await listening;
    }

    [Fact]
    public async Task Leadership_TwoCandidates_ExactlyOneLeads_AndDisposingItHandsOver()
    {
        await using var other = _database.NewStore();
        var a = _store.CreateLeadership();
        await using var b = other.CreateLeadership();
        try
        {
            var aLeads = await a.TryAcquireAsync(Ct);
            var bLeads = await b.TryAcquireAsync(Ct);
            Assert.True(aLeads);
            Assert.False(bLeads);
            // Asking again keeps things as they are (session locks stack: the leader must not take it twice).
            Assert.True(await a.TryAcquireAsync(Ct));
            Assert.False(await b.TryAcquireAsync(Ct));
            Assert.True(a.IsLeader);
            Assert.False(b.IsLeader);
        }
        finally
        {
            await a.DisposeAsync();
        }
        Assert.True(await b.TryAcquireAsync(Ct));
        Assert.True(b.IsLeader);
    }

    [Fact]
    public async Task Leadership_LeaderConnectionTerminated_LosesLeadership_AndTheOtherTakesOver()
    {
        await using var other = _database.NewStore();
        await using var a = _store.CreateLeadership();
        await using var b = other.CreateLeadership();
        Assert.True(await a.TryAcquireAsync(Ct));
        Assert.False(await b.TryAcquireAsync(Ct));

        // The backend holding this schema's leader lock (an advisory lock on the two halves of the key).
        var key = _store.LockKey("leader");
        var terminated = await ScalarAsync<long>(
            // With a timeout, pg_terminate_backend waits until the backend has exited (and its locks are free).
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid, 10000) FROM pg_locks WHERE locktype = 'advisory' AND granted " +
            $"AND classid = {(uint)(key >> 32)} AND objid = {(uint)key} AND objsubid = 1) t");
        Assert.Equal(1L, terminated);

        Assert.False(await a.TryAcquireAsync(Ct));
        Assert.False(a.IsLeader);
        Assert.True(await b.TryAcquireAsync(Ct));
        // The old leader reconnects on its next call and finds the lock taken.
        Assert.False(await a.TryAcquireAsync(Ct));
        Assert.True(await b.TryAcquireAsync(Ct));
    }

    [Fact]
    public async Task NonceClaim_TwoStoresClaimingOneNonceAtOnce_ExactlyOneWins_AndAnExpiredNonceCanBeClaimedAgain()
    {
        await using var other = _database.NewStore();
        var now = DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000);
        var p = new NonceRecordParams("alice", [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16], now.AddMinutes(5));
        var claims = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => (i % 2 == 0 ? _store : other).NonceClaimAsync(p, now, Ct)));
        Assert.Equal(1, claims.Count(c => c));
        Assert.True(await _store.NonceSeenAsync(new NonceSeenParams("alice", p.NonceHash, now), Ct));
        // Another user's identical nonce is its own.
        Assert.True(await other.NonceClaimAsync(p with { User = "bob" }, now, Ct));
        // After its expiry (not yet swept) the same nonce may be used again, once.
        var later = now.AddMinutes(6);
        Assert.True(await other.NonceClaimAsync(p with { ExpiresAt = later.AddMinutes(5) }, later, Ct));
        Assert.False(await _store.NonceClaimAsync(p with { ExpiresAt = later.AddMinutes(5) }, later, Ct));
    }

    [Fact]
    public async Task AOneTripTransactionThatFails_LeavesNoConnectionInAnAbortedTransaction()
    {
        // A trigger refuses one user's nonces: the statement fails inside its BEGIN ... COMMIT round trip.
        var schema = $"\"{_database.Schema}\"";
        await using (var connection = await _database.OpenAsync(Ct))
        await using (var command = new NpgsqlCommand(
            $"CREATE FUNCTION {schema}.refuse_mallory() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN " +
            "IF NEW.user_name = 'mallory' THEN RAISE EXCEPTION 'refused for the test'; END IF; RETURN NEW; END $$; " +
            $"CREATE TRIGGER refuse_mallory BEFORE INSERT ON {schema}.nonces FOR EACH ROW EXECUTE FUNCTION {schema}.refuse_mallory()", connection))
            await command.ExecuteNonQueryAsync(Ct);
        var now = DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000);

        // Failures on several pooled connections at once, then ordinary work on whatever connections the pool hands out.
        var failures = await Task.WhenAll(Enumerable.Range(0, 8).Select(i => Assert.ThrowsAsync<PostgresException>(() =>
            _store.NonceClaimAsync(new NonceRecordParams("mallory", [(byte)i, 1, 2, 3], now.AddMinutes(5)), now, Ct))));
        Assert.All(failures, e => Assert.Contains("refused for the test", e.MessageText, StringComparison.Ordinal));
        for (var i = 0; i < 24; i++)
        {
            Assert.True(await _store.NonceClaimAsync(new NonceRecordParams("alice", [(byte)i, 9, 9, 9], now.AddMinutes(5)), now, Ct));
            await _store.FlushAsync(Ct);
        }

        // Every claim was committed (seen from another connection); none of mallory's was.
        Assert.Equal(24L, await ScalarAsync<long>($"SELECT count(*) FROM {schema}.nonces WHERE user_name = 'alice'"));
        Assert.Equal(0L, await ScalarAsync<long>($"SELECT count(*) FROM {schema}.nonces WHERE user_name = 'mallory'"));
    }

    [Fact]
    public async Task ClockOffset_OnLocalhost_IsSmall()
    {
        var offset = await _store.MeasureClockOffsetAsync(Ct);
        Assert.True(offset.Duration() < TimeSpan.FromSeconds(1), $"offset {offset}");
    }

    [Fact]
    public async Task Secrets_AreStoredEncryptedAndBoundToTheUser_AndAWrongKeyStopsMigrate()
    {
        const string secret = "0123456789abcdef0123456789abcdef";
        Assert.True(await _store.UserInsertAsync(new UserInsertParams("alice", secret, [Roles.Client], T0), Ct));
        var stored = await ScalarAsync<string>($"SELECT secret FROM {_store.QuotedSchema}.users WHERE name = 'alice'");
        Assert.StartsWith(AesGcmSecretCipher.Prefix, stored, StringComparison.Ordinal);
        Assert.DoesNotContain(secret, stored, StringComparison.Ordinal);
        Assert.Equal(secret, (await _store.UserGetAsync("alice", Ct))!.Secret);

        Assert.True(await _store.UserSetSecretAsync(new UserSetSecretParams("alice", "rotated", T0), Ct));
        Assert.Equal("rotated", (await _store.UserGetAsync("alice", Ct))!.Secret);
        Assert.DoesNotContain("rotated", await ScalarAsync<string>($"SELECT secret FROM {_store.QuotedSchema}.users WHERE name = 'alice'"), StringComparison.Ordinal);

        await using var wrong = new PostgresJobStore(new PostgresStoreOptions
        {
            ConnectionString = _database.ConnectionString,
            Schema = _database.Schema,
            SecretCipher = new AesGcmSecretCipher(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)),
        });
        await Assert.ThrowsAsync<SecretDecryptionException>(() => wrong.MigrateAsync(Ct));
    }

    [Fact]
    public async Task EveryTable_LivesInTheConfiguredSchema()
    {
        var tables = await ScalarAsync<string[]>(
            $"SELECT array_agg(table_name::text ORDER BY table_name) FROM information_schema.tables WHERE table_schema = '{_database.Schema}'");
        Assert.Equal(
            ["function_defaults", "job_log_totals", "job_logs", "jobs", "nonces", "queues", "schedules", "schema_migrations", "users", "worker_events", "workers"],
            tables);
    }

    [Fact]
    public void Constructor_RefusesABadSchemaName() =>
        Assert.Throws<ArgumentException>(() => _database.NewStore("Bad-Name"));
}
