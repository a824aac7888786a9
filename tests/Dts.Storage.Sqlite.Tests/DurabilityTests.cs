using Dts.Testing;
using System.Security.Cryptography;
using System.Text;
using Dts.Contracts;
using Dts.Core;
using Dts.Core.Storage;
using Microsoft.Data.Sqlite;

namespace Dts.Storage.Sqlite.Tests;

/// <summary>
/// Which group commits are flushed: a batch holding a durable write commits at the configured
/// synchronous level; a batch of only leases, heartbeats, registrations and nonces at NORMAL.
/// </summary>
public sealed class DurabilityTests : SqliteStoreTest
{
    private static readonly DateTimeOffset T0 = DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000);
    private static readonly TimeSpan WaitLimit = TimeSpan.FromSeconds(30);
    private const long Normal = 1, Full = 2;

    private static NewJob NewJob(string function = "f") => TestJobs.New(T0, function, retention: TimeSpan.FromHours(1));

    private static byte[] Hash(string nonce) => SHA256.HashData(Encoding.UTF8.GetBytes(nonce))[..16];

    private static Task InsertAsync(SqliteJobStore store, NewJob job) =>
        store.JobInsertManyAsync(new JobInsertManyParams([job], T0), Ct);

    private static Task<IReadOnlyList<JobRecord>> LeaseAsync(SqliteJobStore store, string function = "f") =>
        store.JobLeaseAsync(new JobLeaseParams("w1", [function], 10, T0, TimeSpan.FromSeconds(15)), Ct);

    private static Task NonceAsync(SqliteJobStore store, string nonce) =>
        store.NonceRecordAsync(new NonceRecordParams("alice", Hash(nonce), T0.AddMinutes(5)), Ct);

    /// <summary>The writer connection's <c>PRAGMA synchronous</c>, read inside a write operation's transaction.</summary>
    private static Task<long> WriterSynchronousAsync(SqliteJobStore store, bool durable) =>
        store.WriteRawAsync(connection =>
        {
            using var command = connection.CreateCommand();
            command.CommandText = "PRAGMA synchronous";
            return (long)command.ExecuteScalar()!;
        }, Ct, durable);

    /// <summary>Occupies the writer loop (without making its own batch durable) until released.</summary>
    private static async Task<(Task Done, ManualResetEventSlim Release)> BlockWriterAsync(SqliteJobStore store)
    {
        var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new ManualResetEventSlim();
        var done = store.WriteRawAsync(_ =>
        {
            started.SetResult();
            return release.Wait(WaitLimit);
        }, Ct, durable: false);
        await started.Task.WaitAsync(WaitLimit, Ct);
        return (done, release);
    }

    [Fact]
    public async Task LeasesNoncesHeartbeatsAndRegistrations_CommitWithoutTheFullFlush()
    {
        await InsertAsync(_store, NewJob());
        var commits = _store.CommitCount;
        var synced = _store.SyncedCommitCount;

        Assert.Single(await LeaseAsync(_store));
        await NonceAsync(_store, "n1");
        await _store.WorkerUpsertAsync(new WorkerUpsertParams("w2", "alice", "box", ["f"], 4, T0), Ct);
        Assert.True((await _store.WorkerHeartbeatAsync(new WorkerHeartbeatParams("w2", [], T0, T0.AddSeconds(15)), Ct)).Found);
        var level = await WriterSynchronousAsync(_store, durable: false);

        // Four commits: the nonce is not a write of its own, it rides with the next one.
        Assert.Equal(commits + 4, _store.CommitCount);
        Assert.Equal(synced, _store.SyncedCommitCount);
        Assert.Equal(Normal, level);
    }

    [Fact]
    public async Task AnInsert_CommitsAtFull()
    {
        var synced = _store.SyncedCommitCount;
        var commits = _store.CommitCount;

        await InsertAsync(_store, NewJob());

        Assert.Equal(commits + 1, _store.CommitCount);
        Assert.Equal(synced + 1, _store.SyncedCommitCount);
        Assert.Equal(Full, await WriterSynchronousAsync(_store, durable: true));
    }

    [Fact]
    public async Task ADurableWriteAfterNonDurableOnes_CommitsAtFullAgain()
    {
        await InsertAsync(_store, NewJob());
        await LeaseAsync(_store);
        await NonceAsync(_store, "n1");
        Assert.Equal(Normal, await WriterSynchronousAsync(_store, durable: false));
        var synced = _store.SyncedCommitCount;

        // The setting left at NORMAL by the batches before is put back for the durable one.
        Assert.Equal(Full, await WriterSynchronousAsync(_store, durable: true));
        await InsertAsync(_store, NewJob());

        Assert.Equal(synced + 2, _store.SyncedCommitCount);
    }

    [Fact]
    public async Task ABatchMixingBothKinds_CommitsAtFull()
    {
        await InsertAsync(_store, NewJob());
        var (blocker, release) = await BlockWriterAsync(_store);
        var commits = _store.CommitCount;
        var synced = _store.SyncedCommitCount;

        var writes = new List<Task>();
        for (var i = 0; i < 20; i++) writes.Add(NonceAsync(_store, $"n{i}"));
        writes.Add(LeaseAsync(_store));
        var level = WriterSynchronousAsync(_store, durable: false);
        writes.Add(InsertAsync(_store, NewJob()));
        release.Set();
        await blocker;
        await Task.WhenAll(writes);

        // The blocker's batch (not durable), then one batch for everything queued behind it.
        Assert.Equal(commits + 2, _store.CommitCount);
        Assert.Equal(synced + 1, _store.SyncedCommitCount);
        Assert.Equal(Full, await level);
    }

    [Fact]
    public async Task NonDurableWritesFollowedByADurableOne_SurviveReopening()
    {
        var leased = NewJob();
        await InsertAsync(_store, leased);
        await LeaseAsync(_store);
        await NonceAsync(_store, "kept");
        await _store.WorkerUpsertAsync(new WorkerUpsertParams("w2", "alice", "box", ["f"], 4, T0), Ct);
        var later = NewJob("g");
        await InsertAsync(_store, later);
        await _store.DisposeAsync();

        _store = new SqliteJobStore(TempDatabase.Options(_path));
        await _store.MigrateAsync(Ct);
        var job = await _store.JobGetAsync(new JobGetParams(leased.Id), Ct);
        Assert.Equal(JobState.Running, job!.State);
        Assert.Equal("w1", job.WorkerId);
        Assert.True(await _store.NonceSeenAsync(new NonceSeenParams("alice", Hash("kept"), T0), Ct));
        Assert.NotNull(await _store.WorkerGetAsync("w2", Ct));
        Assert.NotNull(await _store.JobGetAsync(new JobGetParams(later.Id), Ct));
        Assert.Equal(Full, await WriterSynchronousAsync(_store, durable: true));
    }

    /// <summary>Rows of the nonces table, read on the writer connection inside the next batch.</summary>
    private static Task<long> StoredNoncesAsync(SqliteJobStore store) =>
        store.WriteRawAsync(connection =>
        {
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT count(*) FROM nonces";
            return (long)command.ExecuteScalar()!;
        }, Ct, durable: false);

    [Fact]
    public async Task ANonce_IsSeenAtOnce_AndWrittenInTheNextBatch_NotACommitOfItsOwn()
    {
        var commits = _store.CommitCount;

        await NonceAsync(_store, "n1");

        Assert.Equal(commits, _store.CommitCount);
        Assert.True(await _store.NonceSeenAsync(new NonceSeenParams("alice", Hash("n1"), T0), Ct));
        Assert.False(await _store.NonceSeenAsync(new NonceSeenParams("alice", Hash("n1"), T0.AddMinutes(5)), Ct));
        Assert.False(await _store.NonceSeenAsync(new NonceSeenParams("bob", Hash("n1"), T0), Ct));
        // The next batch, whatever it holds, writes the nonce first, in its own transaction.
        Assert.Equal(1, await StoredNoncesAsync(_store));
        Assert.Equal(commits + 1, _store.CommitCount);
        Assert.True(await _store.NonceSeenAsync(new NonceSeenParams("alice", Hash("n1"), T0), Ct));
    }

    [Fact]
    public async Task ARequestsNonce_IsCommittedWithTheWriteItMakesAfterIt()
    {
        var (blocker, release) = await BlockWriterAsync(_store);
        var synced = _store.SyncedCommitCount;
        await NonceAsync(_store, "n1");
        var insert = InsertAsync(_store, NewJob());
        release.Set();
        await blocker;
        await insert;

        // One durable commit holds both: the acknowledged insert implies the remembered nonce.
        Assert.Equal(synced + 1, _store.SyncedCommitCount);
        Assert.Equal(1, await StoredNoncesAsync(_store));
    }

    [Fact]
    public async Task ManyNoncesWithoutWrites_AreWrittenByACommitOfTheirOwn()
    {
        var commits = _store.CommitCount;
        var writes = new List<Task>();
        for (var i = 0; i < SqliteJobStore.NonceFlushThreshold; i++) writes.Add(NonceAsync(_store, $"n{i}"));
        await Task.WhenAll(writes);

        Assert.Equal(commits + 1, _store.CommitCount);
        Assert.Equal(SqliteJobStore.NonceFlushThreshold, await StoredNoncesAsync(_store));
    }

    [Fact]
    public async Task NoncesWaitingAtClose_AreWrittenBeforeTheStoreCloses()
    {
        var path = TempDatabase.NewPath();
        try
        {
            await using (var store = new SqliteJobStore(TempDatabase.Options(path)))
            {
                await store.MigrateAsync(Ct);
                await NonceAsync(store, "last");
            }
            await using var reopened = new SqliteJobStore(TempDatabase.Options(path));
            Assert.True(await reopened.NonceSeenAsync(new NonceSeenParams("alice", Hash("last"), T0), Ct));
        }
        finally
        {
            TempDatabase.Delete(path);
        }
    }

    [Theory]
    [InlineData(SqliteSynchronous.Normal, Normal)]
    [InlineData(SqliteSynchronous.Off, 0L)]
    public Task AWeakerConfiguredLevel_IsNeverRaisedNorChanged(SqliteSynchronous configured, long expected) =>
        WithStoreAtAsync(configured, async store =>
        {
            await InsertAsync(store, NewJob());
            await LeaseAsync(store);
            await NonceAsync(store, "n1");
            var durableLevel = await WriterSynchronousAsync(store, durable: true);
            var lazyLevel = await WriterSynchronousAsync(store, durable: false);
            await InsertAsync(store, NewJob());

            Assert.Equal(5, store.CommitCount);
            Assert.Equal(0, store.SyncedCommitCount);
            Assert.Equal(expected, durableLevel);
            Assert.Equal(expected, lazyLevel);
        });

    /// <summary>Runs <paramref name="body"/> on a fresh migrated store configured at <paramref name="configured"/>; its files are deleted after.</summary>
    private static async Task WithStoreAtAsync(SqliteSynchronous configured, Func<SqliteJobStore, Task> body)
    {
        var path = TempDatabase.NewPath();
        try
        {
            var options = TempDatabase.Options(path);
            options.Synchronous = configured;
            await using var store = new SqliteJobStore(options);
            await store.MigrateAsync(Ct);
            await body(store);
        }
        finally
        {
            TempDatabase.Delete(path);
        }
    }

    private static Task InsertLazilyAsync(SqliteJobStore store, NewJob job) =>
        store.JobInsertManyAsync(new JobInsertManyParams([job], T0) { Durable = false }, Ct);

    private static async Task<long> FlushMarkerAsync(SqliteJobStore store) =>
        await store.WriteRawAsync(connection =>
        {
            using var command = connection.CreateCommand();
            command.CommandText = "SELECT coalesce((SELECT flushes FROM flush_marker WHERE id = 1), 0)";
            return (long)command.ExecuteScalar()!;
        }, Ct, durable: false);

    [Fact]
    public async Task AnInsertNotDurable_CommitsWithoutTheFlush_AndOneFlushAfterItFsyncsOnce()
    {
        await InsertAsync(_store, NewJob());
        var commits = _store.CommitCount;
        var synced = _store.SyncedCommitCount;

        await InsertLazilyAsync(_store, NewJob());
        Assert.Equal(commits + 1, _store.CommitCount);
        Assert.Equal(synced, _store.SyncedCommitCount);

        await _store.FlushAsync(Ct);
        Assert.Equal(commits + 2, _store.CommitCount);
        Assert.Equal(synced + 1, _store.SyncedCommitCount);

        // Nothing committed since that flush: the second one queues nothing.
        await _store.FlushAsync(Ct);
        Assert.Equal(commits + 2, _store.CommitCount);
        Assert.Equal(synced + 1, _store.SyncedCommitCount);
    }

    [Fact]
    public async Task AFlushRightAfterADurableWrite_QueuesNothing()
    {
        await InsertLazilyAsync(_store, NewJob());
        await InsertAsync(_store, NewJob());
        var commits = _store.CommitCount;
        var synced = _store.SyncedCommitCount;

        await _store.FlushAsync(Ct);

        Assert.Equal(commits, _store.CommitCount);
        Assert.Equal(synced, _store.SyncedCommitCount);
    }

    [Fact]
    public async Task LeasesAfterTheDurableWrite_OweNoFlush_ButALeaseBeforeItDoesNotHideTheInsert()
    {
        // The foreground path: insert without a flush, lease it (no flush), the report (durable)
        // flushes both; the worker's next lease poll then commits without a flush again.
        await InsertLazilyAsync(_store, NewJob());
        Assert.Single(await LeaseAsync(_store));
        await InsertAsync(_store, NewJob("g"));
        await LeaseAsync(_store, "g");
        await _store.WorkerUpsertAsync(new WorkerUpsertParams("w2", "alice", "box", ["f"], 4, T0), Ct);
        var commits = _store.CommitCount;

        await _store.FlushAsync(Ct);
        Assert.Equal(commits, _store.CommitCount);

        // An insert without a flush followed only by non-durable commits still owes its flush.
        await InsertLazilyAsync(_store, NewJob());
        Assert.Single(await LeaseAsync(_store));
        var synced = _store.SyncedCommitCount;
        await _store.FlushAsync(Ct);
        Assert.Equal(synced + 1, _store.SyncedCommitCount);
    }

    [Fact]
    public async Task ADurableBatchThatChangedNothing_DoesNotCountAsAFlush()
    {
        await InsertLazilyAsync(_store, NewJob());
        // Durable, but it finds nothing due: its Full commit writes no WAL frame, so fsyncs nothing.
        var promoted = await _store.JobPromoteDueAsync(new JobPromoteDueParams(T0, 100), Ct);
        Assert.Equal(0, promoted.Promoted);
        var before = await FlushMarkerAsync(_store);
        var synced = _store.SyncedCommitCount;

        await _store.FlushAsync(Ct);

        Assert.Equal(synced + 1, _store.SyncedCommitCount);
        Assert.Equal(before + 1, await FlushMarkerAsync(_store));
    }

    [Fact]
    public async Task AnInsertNotDurable_SurvivesReopeningAfterAFlush()
    {
        var job = NewJob();
        await InsertLazilyAsync(_store, job);
        await _store.FlushAsync(Ct);
        await _store.DisposeAsync();

        _store = new SqliteJobStore(TempDatabase.Options(_path));
        await _store.MigrateAsync(Ct);
        Assert.Equal(JobState.Queued, (await _store.JobGetAsync(new JobGetParams(job.Id), Ct))!.State);
        Assert.Equal(1, await FlushMarkerAsync(_store));
    }

    [Theory]
    [InlineData(SqliteSynchronous.Normal)]
    [InlineData(SqliteSynchronous.Off)]
    public Task WithAWeakerConfiguredLevel_FlushCompletesAtOnce(SqliteSynchronous configured) =>
        WithStoreAtAsync(configured, async store =>
        {
            await InsertLazilyAsync(store, NewJob());
            var commits = store.CommitCount;

            var flush = store.FlushAsync(Ct);

            Assert.True(flush.IsCompletedSuccessfully);
            await flush;
            Assert.Equal(commits, store.CommitCount);
            Assert.Equal(0, store.SyncedCommitCount);
        });
}
