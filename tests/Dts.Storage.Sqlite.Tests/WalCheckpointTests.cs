using Dts.Core.Storage;
using Dts.Testing;

namespace Dts.Storage.Sqlite.Tests;

/// <summary>The writer checkpoints the WAL every <see cref="SqliteJobStore.WalAutoCheckpointPages"/> pages, not SQLite's 1,000.</summary>
public sealed class WalCheckpointTests : SqliteStoreTest
{
    private static readonly DateTimeOffset T0 = DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000);
    private const int PageSize = 4096;

    [Fact]
    public async Task TheWriterConnection_CheckpointsOnlyAfterTenThousandPages()
    {
        var setting = await _store.WriteRawAsync(connection =>
        {
            using var command = connection.CreateCommand();
            command.CommandText = "PRAGMA wal_autocheckpoint";
            return (long)command.ExecuteScalar()!;
        }, Ct);

        Assert.Equal(SqliteJobStore.WalAutoCheckpointPages, setting);
        Assert.Equal(10_000, setting);
    }

    [Fact]
    public async Task TheWal_GrowsPastSqlitesDefaultCheckpointInterval_AndTheJobsAreAllThere()
    {
        // Each job carries about 16 KB of arguments, so each commit (one job each) writes at least
        // four pages. A checkpoint at SQLite's default of 1,000 pages would start the WAL over at
        // about 4 MB; with 10,000 it grows on.
        var args = $"[\"{new string('a', 16 * 1024)}\"]";
        const int jobs = 450;
        for (var i = 0; i < jobs; i++)
        {
            var job = TestJobs.New(T0) with { ArgsJson = args };
            await _store.JobInsertManyAsync(new JobInsertManyParams([job], T0), Ct);
        }

        var wal = new FileInfo(_path + "-wal");
        Assert.True(wal.Exists, "no WAL file");
        Assert.True(wal.Length > 1_500L * PageSize, $"the WAL is {wal.Length} bytes: it was checkpointed and started over before 1,500 pages");
        var leased = await _store.JobLeaseAsync(new JobLeaseParams("w1", ["f"], 1000, T0, TimeSpan.FromSeconds(30)), Ct);
        Assert.Equal(jobs, leased.Count);
    }
}
