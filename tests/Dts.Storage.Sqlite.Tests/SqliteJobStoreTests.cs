using Dts.Testing;
using Dts.Contracts;
using Dts.Core;
using Dts.Core.Storage;
using Microsoft.Data.Sqlite;

namespace Dts.Storage.Sqlite.Tests;

/// <summary>Behaviour particular to the SQLite store: schema, group commit, query plans.</summary>
public sealed class SqliteJobStoreTests : SqliteStoreTest
{
    private static readonly DateTimeOffset T0 = DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000);
    private static readonly TimeSpan WaitLimit = TimeSpan.FromSeconds(30);



    private static NewJob NewJob(string function = "f") => TestJobs.New(T0, function, retention: TimeSpan.FromHours(1));

    private Task<IReadOnlyList<JobInsertResult>> InsertAsync(NewJob job, CancellationToken cancellationToken) =>
        _store.JobInsertManyAsync(new JobInsertManyParams([job], T0), cancellationToken);

    private async Task<SqliteConnection> OpenAsync()
    {
        var connection = new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = _path, Pooling = false }.ToString());
        await connection.OpenAsync(Ct);
        return connection;
    }

    private async Task<long> ScalarAsync(string sql)
    {
        await using var connection = await OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = sql;
        return Convert.ToInt64(await command.ExecuteScalarAsync(Ct), System.Globalization.CultureInfo.InvariantCulture);
    }

    /// <summary>Occupies the writer loop until released, so that later writes pile up behind it.</summary>
    private async Task<(Task Done, ManualResetEventSlim Release)> BlockWriterAsync()
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new ManualResetEventSlim();
        var done = _store.WriteRawAsync(_ =>
        {
            started.SetResult();
            return release.Wait(WaitLimit);
        }, Ct);
        await started.Task.WaitAsync(WaitLimit, Ct);
        return (done, release);
    }

    [Fact]
    public async Task Migrate_Repeated_AppliesEachMigrationOnceAndRecordsIt()
    {
        await _store.MigrateAsync(Ct);
        await using (var second = new SqliteJobStore(TempDatabase.Options(_path)))
        {
            await second.MigrateAsync(Ct);
        }

        Assert.NotEmpty(SqliteMigrator.Embedded);
        Assert.Equal(SqliteMigrator.Embedded.Count, await ScalarAsync("SELECT count(*) FROM schema_migrations"));
        Assert.Equal(SqliteMigrator.Embedded[^1].Version, await ScalarAsync("SELECT max(version) FROM schema_migrations"));
        Assert.Equal(1, await ScalarAsync("SELECT count(*) FROM schema_migrations WHERE version = 1 AND name = '0001_initial'"));
    }

    [Fact]
    public async Task Migrate_SetsWalJournalMode()
    {
        await using var connection = await OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "PRAGMA journal_mode";
        Assert.Equal("wal", (string?)await command.ExecuteScalarAsync(Ct));
    }

    [Fact]
    public async Task GroupCommit_ConcurrentInserts_ShareTransactions()
    {
        var before = _store.CommitCount;

        var inserts = Enumerable.Range(0, 500).Select(_ => InsertAsync(NewJob(), Ct)).ToList();
        await Task.WhenAll(inserts);

        var commits = _store.CommitCount - before;
        Assert.InRange(commits, 1, 499);
        Assert.Equal(500, await ScalarAsync("SELECT count(*) FROM jobs"));
    }

    [Fact]
    public async Task GroupCommit_FailingOperation_DoesNotRollBackTheOthers()
    {
        var (blocker, release) = await BlockWriterAsync();
        var before = _store.CommitCount;
        var first = NewJob();
        var last = NewJob();

        var firstInsert = InsertAsync(first, Ct);
        var failing = _store.WriteRawAsync<int>(connection =>
        {
            using var command = connection.CreateCommand();
            command.CommandText = "INSERT INTO users (name, secret, roles_json, created_at) VALUES ('ghost', 's', '[]', 0)";
            command.ExecuteNonQuery();
            throw new InvalidOperationException("This operation fails after writing.");
        }, Ct);
        var lastInsert = InsertAsync(last, Ct);
        release.Set();
        await blocker;

        await firstInsert;
        await lastInsert;
        await Assert.ThrowsAsync<InvalidOperationException>(() => failing);
        // The blocker's batch, then one batch holding all three operations.
        Assert.Equal(2, _store.CommitCount - before);
        Assert.NotNull(await _store.JobGetAsync(new JobGetParams(first.Id), Ct));
        Assert.NotNull(await _store.JobGetAsync(new JobGetParams(last.Id), Ct));
        Assert.Null(await _store.UserGetAsync("ghost", Ct));
    }

    [Fact]
    public async Task GroupCommit_TransactionLost_FailsEveryCallerAndCommitsNothing()
    {
        var (blocker, release) = await BlockWriterAsync();
        var first = NewJob();
        var last = NewJob();

        var firstInsert = InsertAsync(first, Ct);
        // Ending the transaction behind the loop's back leaves no savepoint to return to.
        var saboteur = _store.WriteRawAsync(connection =>
        {
            using var command = connection.CreateCommand();
            command.CommandText = "ROLLBACK";
            return command.ExecuteNonQuery();
        }, Ct);
        var lastInsert = InsertAsync(last, Ct);
        release.Set();
        await blocker;

        await Assert.ThrowsAsync<SqliteException>(() => firstInsert);
        await Assert.ThrowsAsync<SqliteException>(() => saboteur);
        await Assert.ThrowsAsync<SqliteException>(() => lastInsert);
        Assert.Equal(0, await ScalarAsync("SELECT count(*) FROM jobs"));

        var after = NewJob();
        await InsertAsync(after, Ct);
        Assert.NotNull(await _store.JobGetAsync(new JobGetParams(after.Id), Ct));
    }

    [Fact]
    public async Task GroupCommit_WriteIsNotVisibleToReadersBeforeItsCommit()
    {
        var (blocker, release) = await BlockWriterAsync();
        var job = NewJob();
        var insert = InsertAsync(job, Ct);

        // The writer is busy, so the insert has not run; a read is not held up by the writer.
        Assert.False(insert.IsCompleted);
        Assert.Null(await _store.JobGetAsync(new JobGetParams(job.Id), Ct).WaitAsync(WaitLimit, Ct));

        release.Set();
        await blocker;
        await insert;
        Assert.NotNull(await _store.JobGetAsync(new JobGetParams(job.Id), Ct));
    }

    [Fact]
    public async Task CancelledBeforeItRuns_WriteIsSkipped()
    {
        var (blocker, release) = await BlockWriterAsync();
        using var cts = new CancellationTokenSource();
        var job = NewJob();
        var insert = InsertAsync(job, cts.Token);
        await cts.CancelAsync();
        release.Set();
        await blocker;

        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => insert);
        Assert.Null(await _store.JobGetAsync(new JobGetParams(job.Id), Ct));
    }

    [Fact]
    public async Task Dispose_DrainsPendingWrites()
    {
        var (blocker, release) = await BlockWriterAsync();
        var jobs = Enumerable.Range(0, 100).Select(_ => NewJob()).ToList();
        var inserts = jobs.Select(j => InsertAsync(j, Ct)).ToList();

        var disposing = _store.DisposeAsync();
        release.Set();
        await disposing;
        await blocker;

        Assert.All(inserts, t => Assert.True(t.IsCompletedSuccessfully));
        Assert.Equal(100, await ScalarAsync("SELECT count(*) FROM jobs"));
        await Assert.ThrowsAsync<ObjectDisposedException>(() => InsertAsync(NewJob(), Ct));
        _store = new SqliteJobStore(TempDatabase.Options(_path));
    }

    [Theory]
    [InlineData(nameof(WriterSession.LeaseCandidatesSql), "jobs_ready")]
    [InlineData(nameof(WriterSession.FindUniqueSql), "jobs_unique_key")]
    [InlineData(nameof(WriterSession.FindAutoUniqueSql), "jobs_auto_key")]
    [InlineData(nameof(WriterSession.PromoteSql), "jobs_due")]
    [InlineData(nameof(WriterSession.NextDueSql), "jobs_due")]
    [InlineData(nameof(WriterSession.ExpiredSql), "jobs_lease_expiry")]
    [InlineData(nameof(WriterSession.WorkerRunningSql), "jobs_worker_running")]
    [InlineData(nameof(ReaderSession.ResultsGetSql), "jobs_results_pending")]
    public async Task HotQuery_UsesItsPartialIndex_WithoutSorting(string query, string index)
    {
        var sql = query switch
        {
            nameof(WriterSession.LeaseCandidatesSql) => WriterSession.LeaseCandidatesSql,
            nameof(WriterSession.FindUniqueSql) => WriterSession.FindUniqueSql,
            nameof(WriterSession.FindAutoUniqueSql) => WriterSession.FindAutoUniqueSql,
            nameof(WriterSession.PromoteSql) => WriterSession.PromoteSql,
            nameof(WriterSession.NextDueSql) => WriterSession.NextDueSql,
            nameof(WriterSession.ExpiredSql) => WriterSession.ExpiredSql,
            nameof(WriterSession.WorkerRunningSql) => WriterSession.WorkerRunningSql,
            _ => ReaderSession.ResultsGetSql,
        };
        // Some rows in several states, so that the plan is not chosen for an empty table.
        var jobs = Enumerable.Range(0, 200).Select(i => NewJob($"f{i % 5}") with { UniqueKey = i % 2 == 0 ? $"k{i}" : $"dts-auto:{i:x32}" }).ToList();
        await _store.JobInsertManyAsync(new JobInsertManyParams(jobs, T0), Ct);
        await _store.JobLeaseAsync(new JobLeaseParams("w", ["f0", "f1"], 50, T0, TimeSpan.FromMinutes(1)), Ct);

        await using var connection = await OpenAsync();
        await using var command = connection.CreateCommand();
        command.CommandText = "EXPLAIN QUERY PLAN " + sql;
        foreach (var name in new[] { "$function", "$max", "$owner", "$key", "$now", "$limit", "$worker", "$tag" })
        {
            if (sql.Contains(name, StringComparison.Ordinal)) command.Parameters.AddWithValue(name, name == "$max" || name == "$limit" || name == "$now" ? 10 : "x");
        }
        var plan = new List<string>();
        await using (var reader = await command.ExecuteReaderAsync(Ct))
        {
            while (await reader.ReadAsync(Ct)) plan.Add(reader.GetString(3));
        }
        var text = string.Join("\n", plan);

        Assert.Contains(index, text, StringComparison.Ordinal);
        Assert.DoesNotContain("USE TEMP B-TREE", text, StringComparison.Ordinal);
        Assert.DoesNotContain("SCAN jobs\n", text + "\n", StringComparison.Ordinal);
    }
}
