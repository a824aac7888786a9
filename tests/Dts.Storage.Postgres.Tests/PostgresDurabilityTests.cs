using Dts.Testing;
using Dts.Contracts;
using Dts.Core;
using Dts.Core.Storage;
using Npgsql;

namespace Dts.Storage.Postgres.Tests;

/// <summary>
/// Which transactions commit without waiting for their WAL flush: leases, heartbeats, worker
/// registrations and nonces do; submits, cancels and the rest wait. Observed with statement
/// triggers that log <c>synchronous_commit</c> as it is inside each writing transaction.
/// </summary>
public sealed class PostgresDurabilityTests : PostgresStoreTest
{
    private static readonly DateTimeOffset T0 = DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000);

    private static NewJob Job() => TestJobs.New(T0);

    public override async ValueTask InitializeAsync()
    {
        await base.InitializeAsync();
        var s = _database.Schema;
        await ExecuteAsync(
            $"CREATE TABLE {s}.sync_log (seq bigserial PRIMARY KEY, tbl text NOT NULL, op text NOT NULL, setting text NOT NULL); " +
            $"CREATE FUNCTION {s}.log_sync() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN " +
            $"INSERT INTO {s}.sync_log (tbl, op, setting) VALUES (TG_TABLE_NAME, TG_OP, current_setting('synchronous_commit')); " +
            "RETURN NULL; END $$; " +
            $"CREATE TRIGGER log_sync AFTER INSERT OR UPDATE ON {s}.jobs FOR EACH STATEMENT EXECUTE FUNCTION {s}.log_sync(); " +
            $"CREATE TRIGGER log_sync AFTER INSERT OR UPDATE ON {s}.workers FOR EACH STATEMENT EXECUTE FUNCTION {s}.log_sync(); " +
            $"CREATE TRIGGER log_sync AFTER INSERT OR UPDATE ON {s}.nonces FOR EACH STATEMENT EXECUTE FUNCTION {s}.log_sync();");
    }

    private async Task ExecuteAsync(string sql)
    {
        await using var connection = await _database.OpenAsync(Ct);
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(Ct);
    }

    /// <summary>Runs <paramref name="write"/> and returns the log lines its statements left, as "table op setting".</summary>
    private async Task<List<string>> SettingsDuring(Func<Task> write)
    {
        await ExecuteAsync($"DELETE FROM {_database.Schema}.sync_log");
        await write();
        var lines = new List<string>();
        await using var connection = await _database.OpenAsync(Ct);
        await using var command = new NpgsqlCommand($"SELECT tbl || ' ' || op || ' ' || setting FROM {_database.Schema}.sync_log ORDER BY seq", connection);
        await using var r = await command.ExecuteReaderAsync(Ct);
        while (await r.ReadAsync(Ct)) lines.Add(r.GetString(0));
        return lines;
    }

    [Fact]
    public async Task LeasesHeartbeatsRegistrationsAndNonces_DoNotWaitForTheFlush_TheOtherWritesDo()
    {
        var running = Job();
        var queued = Job();
        Assert.Equal(["jobs INSERT on"], await SettingsDuring(() =>
            _store.JobInsertManyAsync(new JobInsertManyParams([running, queued], T0), Ct)));

        // An upsert fires both statement triggers of its table.
        Assert.Equal(["workers UPDATE off", "workers INSERT off"], await SettingsDuring(() =>
            _store.WorkerUpsertAsync(new WorkerUpsertParams("w1", "alice", "box", ["f"], 1, T0), Ct)));

        IReadOnlyList<JobRecord> leased = [];
        Assert.Equal(["jobs UPDATE off"], await SettingsDuring(async () =>
            leased = await _store.JobLeaseAsync(new JobLeaseParams("w1", ["f"], 1, T0, TimeSpan.FromSeconds(15)), Ct)));
        Assert.Equal(running.Id, Assert.Single(leased).Id);

        // A cancel request is durable; the heartbeat that ends the dropped job rides on the next flush.
        Assert.All(await SettingsDuring(() => _store.JobCancelAsync(new JobCancelParams(running.Id, null, T0), Ct)),
            line => Assert.EndsWith(" on", line, StringComparison.Ordinal));
        WorkerHeartbeatResult? beat = null;
        var heartbeat = await SettingsDuring(async () =>
            beat = await _store.WorkerHeartbeatAsync(new WorkerHeartbeatParams("w1", [], T0, T0.AddSeconds(15)), Ct));
        Assert.Equal(["alice"], beat!.FinishedOwners);
        Assert.Contains("workers UPDATE off", heartbeat);
        Assert.All(heartbeat, line => Assert.EndsWith(" off", line, StringComparison.Ordinal));

        Assert.Equal(["nonces UPDATE off", "nonces INSERT off"], await SettingsDuring(() =>
            _store.NonceRecordAsync(new NonceRecordParams("alice", new byte[16], T0.AddMinutes(5)), Ct)));

        var cancel = await SettingsDuring(() => _store.JobCancelAsync(new JobCancelParams(queued.Id, null, T0), Ct));
        Assert.NotEmpty(cancel);
        Assert.All(cancel, line => Assert.EndsWith(" on", line, StringComparison.Ordinal));
    }

    [Fact]
    public async Task AnInsertNotDurable_DoesNotWaitForTheFlush_AndFlushCommitsATransactionIdThatWaits()
    {
        Assert.Equal(["jobs INSERT off"], await SettingsDuring(() =>
            _store.JobInsertManyAsync(new JobInsertManyParams([Job()], T0) { Durable = false }, Ct)));
        // The default is unchanged.
        Assert.Equal(["jobs INSERT on"], await SettingsDuring(() =>
            _store.JobInsertManyAsync(new JobInsertManyParams([Job()], T0), Ct)));

        // The flush writes no row, so no trigger sees it: the store reports what its transaction saw.
        Assert.Empty(await SettingsDuring(() => _store.FlushAsync(Ct)));
        var (xid, setting) = Assert.NotNull(_store.LastFlush);
        Assert.Equal("on", setting);
        await using var connection = await _database.OpenAsync(Ct);
        await using var command = new NpgsqlCommand("SELECT pg_xact_status(@xid::xid8)", connection);
        command.Parameters.AddWithValue("xid", xid);
        // A transaction id that was assigned and committed, so its commit wrote a commit record and waited for its flush.
        Assert.Equal("committed", (string?)await command.ExecuteScalarAsync(Ct));
    }
}
