using Dts.Contracts;
using Dts.Core.Storage;
using Dts.Testing;
using Microsoft.Data.Sqlite;

namespace Dts.Storage.Sqlite.Tests;

/// <summary>
/// 0007_automatic_unique_keys.sql on a database made before it, which holds what the old rule let
/// through: several jobs of one owner, function and automatic key, all but at most one finished.
/// </summary>
public sealed class AutomaticKeyMigrationTests : IAsyncDisposable
{
    private static readonly DateTimeOffset T0 = DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000);
    private const int Version = 7;
    private readonly string _path = TempDatabase.NewPath();

    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public ValueTask DisposeAsync()
    {
        TempDatabase.Delete(_path);
        return ValueTask.CompletedTask;
    }

    private SqliteConnection Open()
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = _path, Pooling = false }.ToString());
        connection.Open();
        return connection;
    }

    private static void Execute(SqliteConnection connection, string sql)
    {
        using var command = connection.CreateCommand();
        command.CommandText = sql;
        command.ExecuteNonQuery();
    }

    /// <summary>The schema as the migrations before <see cref="Version"/> left it, recorded as the migrator records it.</summary>
    private void CreateOldSchema()
    {
        using var connection = Open();
        Execute(connection, "PRAGMA journal_mode = WAL; CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)");
        Assert.Contains(SqliteMigrator.Embedded, m => m.Version == Version);
        foreach (var m in SqliteMigrator.Embedded.Where(m => m.Version < Version))
        {
            Execute(connection, m.Sql);
            Execute(connection, $"INSERT INTO schema_migrations (version, name, applied_at) VALUES ({m.Version}, '{m.Name}', 0)");
        }
    }

    private static void InsertRow(SqliteConnection connection, long seq, string owner, string? key, string state)
    {
        using var command = connection.CreateCommand();
        command.CommandText =
            "INSERT INTO jobs (seq, id, function, owner, state, args_json, kwargs_json, rank, unique_key, run_at, max_attempts, " +
            "retention_ms, result_json, created_at, updated_at, finished_at) VALUES ($seq, $id, 'f', $owner, $state, '[]', '{}', 1000, $key, " +
            "$t, 3, 86400000, $result, $t, $t, $finished)";
        command.Parameters.AddWithValue("$seq", seq);
        command.Parameters.AddWithValue("$id", $"job-{seq}");
        command.Parameters.AddWithValue("$owner", owner);
        command.Parameters.AddWithValue("$state", state);
        command.Parameters.AddWithValue("$key", (object?)key ?? DBNull.Value);
        command.Parameters.AddWithValue("$t", T0.ToUnixTimeMilliseconds() + seq);
        var finished = state is "succeeded" or "dead" or "cancelled";
        command.Parameters.AddWithValue("$result", finished ? $"\"result {seq}\"" : DBNull.Value);
        command.Parameters.AddWithValue("$finished", finished ? T0.ToUnixTimeMilliseconds() + seq : DBNull.Value);
        command.ExecuteNonQuery();
    }

    /// <summary>Every column of every job but the key, in seq order, as text.</summary>
    private List<string> RowsWithoutKey()
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT * FROM jobs ORDER BY seq";
        using var r = command.ExecuteReader();
        var rows = new List<string>();
        while (r.Read())
        {
            var cells = new List<string>();
            for (var i = 0; i < r.FieldCount; i++)
            {
                if (r.GetName(i) != "unique_key") cells.Add($"{r.GetName(i)}={(r.IsDBNull(i) ? "null" : r.GetValue(i))}");
            }
            rows.Add(string.Join(",", cells));
        }
        return rows;
    }

    private Dictionary<long, string?> Keys()
    {
        using var connection = Open();
        using var command = connection.CreateCommand();
        command.CommandText = "SELECT seq, unique_key FROM jobs";
        using var r = command.ExecuteReader();
        var keys = new Dictionary<long, string?>();
        while (r.Read()) keys[r.GetInt64(0)] = r.IsDBNull(1) ? null : r.GetString(1);
        return keys;
    }

    [Fact]
    public async Task DuplicateAutomaticKeys_OneRowKeepsEachKey_TheOthersAreRenamed_NothingElseChanges()
    {
        CreateOldSchema();
        const string a = "dts-auto:aaaa", b = "dts-auto:bbbb", c = "dts-auto:cccc";
        using (var connection = Open())
        {
            // a: two finished jobs, then the unfinished one that holds the key now: it keeps it.
            InsertRow(connection, 1, "alice", a, "succeeded");
            InsertRow(connection, 2, "alice", a, "dead");
            InsertRow(connection, 3, "alice", a, "queued");
            // b: finished only: the oldest keeps it.
            InsertRow(connection, 4, "alice", b, "succeeded");
            InsertRow(connection, 5, "alice", b, "cancelled");
            InsertRow(connection, 6, "alice", b, "succeeded");
            // No duplicates: a single job, another owner's job with a's key, callers' keys, no key.
            InsertRow(connection, 7, "alice", c, "succeeded");
            InsertRow(connection, 8, "bob", a, "succeeded");
            InsertRow(connection, 9, "alice", "report", "succeeded");
            InsertRow(connection, 10, "alice", "report", "succeeded");
            InsertRow(connection, 11, "alice", "report", "running");
            InsertRow(connection, 12, "alice", null, "succeeded");
        }
        var before = RowsWithoutKey();

        await using var store = new SqliteJobStore(TempDatabase.Options(_path));
        await store.MigrateAsync(Ct);

        Assert.Equal(before, RowsWithoutKey());
        Assert.Equal(new Dictionary<long, string?>
        {
            [1] = "dup:1:" + a, [2] = "dup:2:" + a, [3] = a,
            [4] = b, [5] = "dup:5:" + b, [6] = "dup:6:" + b,
            [7] = c, [8] = a, [9] = "report", [10] = "report", [11] = "report", [12] = null,
        }, Keys());

        // Resends now find the key holders, finished or not; the renamed keys are callers' keys of finished jobs.
        var results = await store.JobInsertManyAsync(new JobInsertManyParams(
            [Job("alice", a), Job("alice", b), Job("alice", c), Job("bob", a), Job("alice", "dup:5:" + b)], T0), Ct);
        Assert.Equal(["job-3", "job-4", "job-7", "job-8"], results.Take(4).Select(r => r.Id));
        Assert.All(results.Take(4), r => Assert.True(r.Coalesced));
        Assert.Equal([JobState.Queued, JobState.Succeeded, JobState.Succeeded, JobState.Succeeded], results.Take(4).Select(r => r.State));
        Assert.False(results[4].Coalesced);

        using (var connection = Open())
        {
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT count(*) FROM schema_migrations WHERE version = 7";
            Assert.Equal(1L, command.ExecuteScalar());
        }
    }

    private static NewJob Job(string owner, string key) =>
        TestJobs.New(T0, "f", retention: TimeSpan.FromHours(1)) with { Owner = owner, UniqueKey = key };
}
