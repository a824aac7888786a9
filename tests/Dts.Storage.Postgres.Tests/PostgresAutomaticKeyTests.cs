using Dts.Contracts;
using Dts.Core.Storage;
using Dts.Testing;
using Dts.Testing.Postgres;
using Npgsql;

namespace Dts.Storage.Postgres.Tests;

/// <summary>
/// 0002_automatic_unique_keys.sql on a schema made before it, and the plan of the look-up after an
/// insert that stored nothing.
/// </summary>
public sealed class PostgresAutomaticKeyTests : PostgresStoreTest
{
    private static readonly DateTimeOffset T0 = DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000);
    private const int Version = 2;

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(Ct);
    }

    private static async Task InsertRowAsync(NpgsqlConnection connection, string s, long n, string owner, string? key, string state)
    {
        var finished = state is "succeeded" or "dead" or "cancelled";
        await using var command = new NpgsqlCommand(
            $"INSERT INTO {s}.jobs (id, function, owner, state, args_json, kwargs_json, rank, unique_key, run_at, max_attempts, " +
            "retention_ms, result_json, created_at, updated_at, finished_at) VALUES (@id, 'f', @owner, @state, '[]', '{}', 1000, @key, " +
            "@t, 3, 86400000, @result, @t, @t, @finished)", connection);
        command.Parameters.AddWithValue("id", $"job-{n}");
        command.Parameters.AddWithValue("owner", owner);
        command.Parameters.AddWithValue("state", state);
        command.Parameters.Add(new NpgsqlParameter<string?>("key", key));
        command.Parameters.AddWithValue("t", T0.UtcDateTime.AddMilliseconds(n));
        command.Parameters.Add(new NpgsqlParameter<string?>("result", finished ? $"\"result {n}\"" : null));
        command.Parameters.Add(new NpgsqlParameter<DateTime?>("finished", finished ? T0.UtcDateTime.AddMilliseconds(n) : null));
        await command.ExecuteNonQueryAsync(Ct);
    }

    /// <summary>id, then every column but the key, then the key, in seq order.</summary>
    private static async Task<List<(string Id, string Cells, string? Key)>> RowsAsync(NpgsqlConnection connection, string s)
    {
        await using var command = new NpgsqlCommand($"SELECT * FROM {s}.jobs ORDER BY seq", connection);
        await using var r = await command.ExecuteReaderAsync(Ct);
        var rows = new List<(string, string, string?)>();
        while (await r.ReadAsync(Ct))
        {
            var cells = new List<string>();
            string? key = null;
            for (var i = 0; i < r.FieldCount; i++)
            {
                var value = r.IsDBNull(i) ? "null" : Convert.ToString(r.GetValue(i), System.Globalization.CultureInfo.InvariantCulture);
                if (r.GetName(i) == "unique_key") key = r.IsDBNull(i) ? null : r.GetString(i);
                else cells.Add($"{r.GetName(i)}={value}");
            }
            rows.Add((r.GetString(r.GetOrdinal("id")), string.Join(",", cells), key));
        }
        return rows;
    }

    [Fact]
    public async Task Migration_DuplicateAutomaticKeys_OneRowKeepsEachKey_TheOthersAreRenamed_NothingElseChanges()
    {
        var schema = _database.NewSchema();
        await using var store = _database.NewStore(schema);
        var s = store.QuotedSchema;
        await using var connection = await _database.OpenAsync(Ct);
        // The schema as the migrations before this one left it, recorded as the migrator records it.
        await ExecuteAsync(connection, $"CREATE SCHEMA {s}; CREATE TABLE {s}.schema_migrations (version integer PRIMARY KEY, " +
            "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())");
        Assert.Contains(PostgresMigrator.Migrations, m => m.Version == Version);
        foreach (var (version, name, sql) in PostgresMigrator.Migrations.Where(m => m.Version < Version))
        {
            await ExecuteAsync(connection, sql.Replace("{schema}", s, StringComparison.Ordinal));
            await ExecuteAsync(connection, $"INSERT INTO {s}.schema_migrations (version, name) VALUES ({version}, '{name}')");
        }
        const string a = "dts-auto:aaaa", b = "dts-auto:bbbb", c = "dts-auto:cccc";
        // a: two finished jobs, then the unfinished one that holds the key now: it keeps it.
        await InsertRowAsync(connection, s, 1, "alice", a, "succeeded");
        await InsertRowAsync(connection, s, 2, "alice", a, "dead");
        await InsertRowAsync(connection, s, 3, "alice", a, "queued");
        // b: finished only: the oldest keeps it.
        await InsertRowAsync(connection, s, 4, "alice", b, "succeeded");
        await InsertRowAsync(connection, s, 5, "alice", b, "cancelled");
        await InsertRowAsync(connection, s, 6, "alice", b, "succeeded");
        // No duplicates: a single job, another owner's job with a's key, callers' keys, no key.
        await InsertRowAsync(connection, s, 7, "alice", c, "succeeded");
        await InsertRowAsync(connection, s, 8, "bob", a, "succeeded");
        await InsertRowAsync(connection, s, 9, "alice", "report", "succeeded");
        await InsertRowAsync(connection, s, 10, "alice", "report", "succeeded");
        await InsertRowAsync(connection, s, 11, "alice", "report", "running");
        await InsertRowAsync(connection, s, 12, "alice", null, "succeeded");
        var before = await RowsAsync(connection, s);

        await store.MigrateAsync(Ct);

        var after = await RowsAsync(connection, s);
        Assert.Equal(before.Select(x => x.Cells), after.Select(x => x.Cells));
        var seq = before.ToDictionary(x => x.Id, x => after.Single(y => y.Id == x.Id).Cells.Split(',')[0].Split('=')[1]);
        Assert.Equal(new Dictionary<string, string?>
        {
            ["job-1"] = $"dup:{seq["job-1"]}:" + a, ["job-2"] = $"dup:{seq["job-2"]}:" + a, ["job-3"] = a,
            ["job-4"] = b, ["job-5"] = $"dup:{seq["job-5"]}:" + b, ["job-6"] = $"dup:{seq["job-6"]}:" + b,
            ["job-7"] = c, ["job-8"] = a, ["job-9"] = "report", ["job-10"] = "report", ["job-11"] = "report", ["job-12"] = null,
        }, after.ToDictionary(x => x.Id, x => x.Key));

        // Resends now find the key holders, finished or not; the renamed keys are callers' keys of finished jobs.
        var results = await store.JobInsertManyAsync(new JobInsertManyParams(
            [Job("alice", a), Job("alice", b), Job("alice", c), Job("bob", a), Job("alice", after[4].Key!)], T0), Ct);
        Assert.Equal(["job-3", "job-4", "job-7", "job-8"], results.Take(4).Select(r => r.Id));
        Assert.All(results.Take(4), r => Assert.True(r.Coalesced));
        Assert.Equal([JobState.Queued, JobState.Succeeded, JobState.Succeeded, JobState.Succeeded], results.Take(4).Select(r => r.State));
        Assert.False(results[4].Coalesced);
    }

    [Fact]
    public async Task FindUnique_UsesTheTwoPartialIndexes_NotASeqScan()
    {
        var s = _store.QuotedSchema;
        await using var connection = await _database.OpenAsync(Ct);
        await ExecuteAsync(connection,
            $"INSERT INTO {s}.jobs (id, function, owner, state, args_json, kwargs_json, rank, unique_key, run_at, max_attempts, retention_ms, created_at, updated_at) " +
            "SELECT 'job-' || g, 'fn' || (g % 8), 'alice', CASE WHEN g % 3 = 0 THEN 'queued' ELSE 'succeeded' END, '[]', '{}', 1000, " +
            "CASE WHEN g % 2 = 0 THEN 'dts-auto:' || g ELSE 'k' || g END, now(), 3, 86400000, now(), now() FROM generate_series(1, 50000) AS g");
        await ExecuteAsync(connection, $"ANALYZE {s}.jobs");

        string plan;
        await using (var explain = new NpgsqlCommand("EXPLAIN (FORMAT JSON) " + _store.S(PostgresJobStore.FindUniqueSql), connection))
        {
            explain.Parameters.AddWithValue("owners", new[] { "alice", "alice" });
            explain.Parameters.AddWithValue("functions", new[] { "fn2", "fn3" });
            explain.Parameters.AddWithValue("keys", new[] { "dts-auto:10", "k3" });
            plan = (string)(await explain.ExecuteScalarAsync(Ct))!;
        }
        var jobScans = QueryPlans.JobScans(plan);

        Assert.DoesNotContain(jobScans, x => x.Node == "Seq Scan");
        Assert.Contains(jobScans, x => x.Index == "jobs_auto_key");
        Assert.Contains(jobScans, x => x.Index == "jobs_unique_key");
    }

    private static NewJob Job(string owner, string key) =>
        TestJobs.New(T0, "f", retention: TimeSpan.FromHours(1)) with { Owner = owner, UniqueKey = key };
}
