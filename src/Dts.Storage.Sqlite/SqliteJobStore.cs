using System.Collections.Concurrent;
using System.Globalization;
using System.Threading.Channels;
using Dts.Core.Security;
using Dts.Core.Storage;
using Microsoft.Data.Sqlite;

namespace Dts.Storage.Sqlite;

/// <summary>
/// <see cref="IJobStore"/> on one SQLite file in WAL mode. All writes go through one background
/// loop that owns the only writer connection and commits every operation waiting at that moment
/// in one transaction (group commit), each in its own savepoint so a failing operation fails
/// alone. Reads use a small pool of separate connections, which WAL lets run beside the writer.
/// Call <see cref="MigrateAsync"/> once before use; dispose to drain pending writes and close the file.
/// </summary>
public sealed partial class SqliteJobStore : IJobStore
{
    private readonly SqliteStoreOptions _options;
    private readonly ISecretCipher _cipher;
    private readonly string _connectionString;
    private readonly Channel<WriteOp> _queue;
    private readonly Task _writerLoop;
    private readonly ConcurrentQueue<ReaderSession> _idleReaders = new();
    private int _idleReaderCount;
    private WriterSession? _writer;
    private long _commitCount;
    private long _syncedCommitCount;
    private int _disposed;

    /// <summary>
    /// Nonces not yet written (see <see cref="NonceRecordAsync"/>), by user and hash. An entry leaves
    /// only once the commit that wrote it has succeeded, so until then the check still sees it here.
    /// </summary>
    private readonly ConcurrentDictionary<(string User, string Hash), NonceRecordParams> _unwrittenNonces = new();
    private int _unwrittenNonceCount;
    internal const int NonceFlushThreshold = 512;

    public SqliteJobStore(SqliteStoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (string.IsNullOrWhiteSpace(options.Path)) throw new ArgumentException("The SQLite store needs a file path.", nameof(options));
        if (options.MaxBatchOps < 1) throw new ArgumentOutOfRangeException(nameof(options), options.MaxBatchOps, "MaxBatchOps must be at least 1.");
        if (options.QueueCapacity < 1) throw new ArgumentOutOfRangeException(nameof(options), options.QueueCapacity, "QueueCapacity must be at least 1.");
        _cipher = options.SecretCipher
            ?? throw new ArgumentException("The SQLite store needs a SecretCipher: users' secrets are never stored in plaintext.", nameof(options));
        _options = options;
        SqliteEngine.EnsureConfigured();
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = options.Path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Cache = SqliteCacheMode.Private,
            // The store keeps its own connections; the driver's pool would hold the file open after disposal.
            Pooling = false,
            DefaultTimeout = Math.Max(1, (int)options.BusyTimeout.TotalSeconds),
        }.ToString();
        _queue = Channel.CreateBounded<WriteOp>(new BoundedChannelOptions(options.QueueCapacity)
        {
            SingleReader = true,
            FullMode = BoundedChannelFullMode.Wait,
        });
        _writerLoop = Task.Run(WriterLoopAsync);
    }

    public string Description => $"SQLite {_options.Path}";

    /// <summary>Transactions the writer loop has committed; many operations share one under load.</summary>
    public long CommitCount => Interlocked.Read(ref _commitCount);

    /// <summary>
    /// Commits that ran at <see cref="SqliteSynchronous.Full"/>: those holding at least one durable
    /// write, fsynced before their callers were answered. A Full commit that changed no page (a
    /// promotion that found nothing due, say) writes no WAL frame and so no fsync, but is counted
    /// too: this counts flush levels chosen, not fsyncs done. Never counts when the store is
    /// configured with a weaker <see cref="SqliteStoreOptions.Synchronous"/>.
    /// </summary>
    public long SyncedCommitCount => Interlocked.Read(ref _syncedCommitCount);

    public async Task MigrateAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        await using var connection = await OpenAsync(cancellationToken);
        await SqliteMigrator.MigrateAsync(connection, cancellationToken);
        await SecretMigration.RunAsync(connection, _cipher, cancellationToken);
    }

    // Not durable when the caller asks (see JobInsertManyParams.Durable): it flushes with FlushAsync
    // before it tells anyone about the jobs.
    public Task<IReadOnlyList<JobInsertResult>> JobInsertManyAsync(JobInsertManyParams p, CancellationToken cancellationToken) =>
        WriteAsync(static (s, a) => s.JobInsertMany(a), p, cancellationToken, p.Durable, owesFlush: !p.Durable);

    public Task<JobRecord?> JobGetAsync(JobGetParams p, CancellationToken cancellationToken) =>
        ReadAsync(static (r, a, ct) => r.JobGetAsync(a.Id, ct), p, cancellationToken);

    // Not durable: see RunBatch. A lease lost with the power leaves the job queued; it runs again.
    public Task<IReadOnlyList<JobRecord>> JobLeaseAsync(JobLeaseParams p, CancellationToken cancellationToken) =>
        WriteAsync(static (s, a) => s.JobLease(a), p, cancellationToken, durable: false);

    public Task<IReadOnlyList<JobReportResult>> JobReportManyAsync(JobReportManyParams p, CancellationToken cancellationToken) =>
        WriteAsync(static (s, a) => s.JobReportMany(a), p, cancellationToken);

    public Task<IReadOnlyList<JobRecord>> JobResultsGetAsync(JobResultsGetParams p, CancellationToken cancellationToken) =>
        ReadAsync(static (r, a, ct) => r.JobResultsGetAsync(a, ct), p, cancellationToken);

    public Task<int> JobResultsAckAsync(JobResultsAckParams p, CancellationToken cancellationToken) =>
        WriteAsync(static (s, a) => s.JobResultsAck(a), p, cancellationToken);

    public Task<JobCancelResult> JobCancelAsync(JobCancelParams p, CancellationToken cancellationToken) =>
        WriteAsync(static (s, a) => s.JobCancel(a), p, cancellationToken);

    public Task<JobPromoteDueResult> JobPromoteDueAsync(JobPromoteDueParams p, CancellationToken cancellationToken) =>
        WriteAsync(static (s, a) => s.JobPromoteDue(a), p, cancellationToken);

    public Task<JobRescueExpiredResult> JobRescueExpiredAsync(JobRescueExpiredParams p, CancellationToken cancellationToken) =>
        WriteAsync(static (s, a) => s.JobRescueExpired(a), p, cancellationToken);

    public async Task<UserRecord?> UserGetAsync(string name, CancellationToken cancellationToken) =>
        SecretFromStorage(await ReadAsync(static (r, a, ct) => r.UserGetAsync(a, ct), name, cancellationToken));

    public Task<bool> UserInsertAsync(UserInsertParams p, CancellationToken cancellationToken) =>
        WriteAsync(static (s, a) => s.UserInsert(a), p with { Secret = SecretForStorage(p.Name, p.Secret) }, cancellationToken);

    public Task<int> UserCountAsync(CancellationToken cancellationToken) =>
        ReadAsync(static (r, _, ct) => r.UserCountAsync(ct), 0, cancellationToken);

    /// <summary>
    /// Every signed request records its nonce, and most requests write something else too. So a
    /// nonce is not a write of its own: it waits in memory and is written at the start of the next
    /// group commit, whatever that commit holds (and by a commit of its own once
    /// <see cref="NonceFlushThreshold"/> are waiting, so a server that only answers reads stays bounded).
    /// The request's own write, if it makes one, is queued after its nonce, so it is committed in the
    /// same transaction as the nonce: an acknowledged write still implies a remembered nonce. A
    /// request that wrote nothing (a read) may have its nonce lost if the process dies before the
    /// next commit; replaying such a request after the restart gives the attacker nothing the
    /// captured answer did not. Until written, <see cref="NonceSeenAsync"/> sees it in memory.
    /// </summary>
    public Task NonceRecordAsync(NonceRecordParams p, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        // A nonce arrives once (the in-memory check refuses a second use before the store is asked).
        if (!_unwrittenNonces.TryAdd(NonceKey(p), p) || Interlocked.Increment(ref _unwrittenNonceCount) < NonceFlushThreshold)
            return Task.CompletedTask;
        // A commit that holds nothing but the waiting nonces (RunBatch writes them first).
        return WriteAsync(static (_, _) => 0, 0, cancellationToken, durable: false);
    }

    public Task<bool> NonceSeenAsync(NonceSeenParams p, CancellationToken cancellationToken) =>
        _unwrittenNonces.TryGetValue(NonceKey(p.User, p.NonceHash), out var waiting) && waiting.ExpiresAt > p.Now
            ? Task.FromResult(true)
            : ReadAsync(static (r, a, ct) => r.NonceSeenAsync(a, ct), p, cancellationToken);

    private static (string, string) NonceKey(NonceRecordParams p) => NonceKey(p.User, p.NonceHash);

    private static (string, string) NonceKey(string user, byte[] hash) => (user, Convert.ToHexString(hash));

    public Task<int> NonceDeleteExpiredAsync(NonceDeleteExpiredParams p, CancellationToken cancellationToken) =>
        WriteAsync(static (s, a) => s.NonceDeleteExpired(a), p, cancellationToken);

    /// <summary>
    /// The only way a secret goes into the file: every user write that carries a secret (insert,
    /// rotation) passes it through here before it is queued for the writer, so the writer thread
    /// never spends time on encryption and never sees plaintext.
    /// </summary>
    internal string SecretForStorage(string user, string plainSecret) => _cipher.Protect(user, plainSecret);

    /// <summary>
    /// The only way a secret comes out of the file: every user read (get, list) passes its records
    /// through here, so nothing above the store sees ciphertext.
    /// </summary>
    internal UserRecord? SecretFromStorage(UserRecord? stored) =>
        stored is null ? null : stored with { Secret = _cipher.Unprotect(stored.Name, stored.Secret) };

    // Not durable: see RunBatch. A registration lost with the power gets the worker worker_not_found
    // on its next call, and the worker registers again.
    public Task WorkerUpsertAsync(WorkerUpsertParams p, CancellationToken cancellationToken) =>
        WriteAsync(static (s, a) => s.WorkerUpsert(a), p, cancellationToken, durable: false);

    public Task<WorkerRecord?> WorkerGetAsync(string id, CancellationToken cancellationToken) =>
        ReadAsync(static (r, a, ct) => r.WorkerGetAsync(a, ct), id, cancellationToken);

    // Not durable: see RunBatch. A lost heartbeat leaves older lease expiries and "last seen" times.
    public Task<WorkerHeartbeatResult> WorkerHeartbeatAsync(WorkerHeartbeatParams p, CancellationToken cancellationToken) =>
        WriteAsync(static (s, a) => s.WorkerHeartbeat(a), p, cancellationToken, durable: false);

    public Task<IReadOnlyList<UserSummary>> UserListAsync(UserListParams p, CancellationToken cancellationToken) =>
        ReadAsync(static (r, a, ct) => r.UserListAsync(a, ct), p, cancellationToken);

    public Task<bool> UserUpdateAsync(UserUpdateParams p, CancellationToken cancellationToken) =>
        WriteAsync(static (s, a) => s.UserUpdate(a), p, cancellationToken);

    public Task<bool> UserSetSecretAsync(UserSetSecretParams p, CancellationToken cancellationToken) =>
        WriteAsync(static (s, a) => s.UserSetSecret(a), p with { Secret = SecretForStorage(p.Name, p.Secret) }, cancellationToken);

    public Task<UserDeleteResult> UserDeleteAsync(UserDeleteParams p, CancellationToken cancellationToken) =>
        WriteAsync(static (s, a) => s.UserDelete(a), p, cancellationToken);

    public Task<long> JobCountUnfinishedAsync(JobCountUnfinishedParams p, CancellationToken cancellationToken) =>
        ReadAsync(static (r, a, ct) => r.JobCountUnfinishedAsync(a, ct), p, cancellationToken);

    public Task<IReadOnlyList<WorkerListItem>> WorkerListAsync(WorkerListParams p, CancellationToken cancellationToken) =>
        ReadAsync(static (r, a, ct) => r.WorkerListAsync(a, ct), p, cancellationToken);

    public Task<bool> WorkerSetDrainingAsync(WorkerSetDrainingParams p, CancellationToken cancellationToken) =>
        WriteAsync(static (s, a) => s.WorkerSetDraining(a), p, cancellationToken);

    public Task<IReadOnlyList<FunctionStats>> FunctionStatsAsync(FunctionStatsParams p, CancellationToken cancellationToken) =>
        ReadAsync(static (r, a, ct) => r.FunctionStatsAsync(a, ct), p, cancellationToken);

    public Task<JobSearchResult> JobSearchAsync(JobSearchParams p, CancellationToken cancellationToken) =>
        ReadAsync(static (r, a, ct) => r.JobSearchAsync(a, ct), p, cancellationToken);

    public Task<JobRetryResult> JobRetryAsync(JobRetryParams p, CancellationToken cancellationToken) =>
        WriteAsync(static (s, a) => s.JobRetry(a), p, cancellationToken);

    /// <summary>
    /// Deletes in batches, each its own write operation (and so its own group commit), so that a
    /// purge of millions of jobs never holds the writer for long: other writes queue between batches.
    /// </summary>
    public async Task<long> JobPurgeAsync(JobPurgeParams p, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(p.BatchSize, 1);
        var batch = p with { BatchSize = Math.Min(p.BatchSize, 1000) };
        long total = 0;
        long? after = 0;
        while (after is { } from)
        {
            (var deleted, after) = await WriteAsync(static (s, a) => s.JobPurgeBatch(a.batch, a.from), (batch, from), cancellationToken);
            total += deleted;
        }
        return total;
    }

    public Task<QueueRecord> QueueSetPausedAsync(QueueSetPausedParams p, CancellationToken cancellationToken) =>
        WriteAsync(static (s, a) => s.QueueSetPaused(a), p, cancellationToken);

    public Task<IReadOnlyList<QueueRecord>> QueueListAsync(QueueListParams p, CancellationToken cancellationToken) =>
        ReadAsync(static (r, _, ct) => r.QueueListAsync(ct), p, cancellationToken);

    public Task<JobLogAppendResult> JobLogAppendAsync(JobLogAppendParams p, CancellationToken cancellationToken) =>
        WriteAsync(static (s, a) => s.JobLogAppend(a), p, cancellationToken);

    public Task<IReadOnlyList<JobLogLine>> JobLogReadAsync(JobLogReadParams p, CancellationToken cancellationToken) =>
        ReadAsync(static (r, a, ct) => r.JobLogReadAsync(a, ct), p, cancellationToken);

    /// <summary>
    /// Runs <paramref name="run"/> on the writer connection inside the next group commit. For
    /// tests of the group commit itself: an exception fails only this caller.
    /// </summary>
    internal Task<TResult> WriteRawAsync<TResult>(Func<SqliteConnection, TResult> run, CancellationToken cancellationToken, bool durable = true) =>
        WriteAsync(static (s, a) => a(s.Connection), run, cancellationToken, durable);

    /// <param name="durable">
    /// False only for writes whose loss on a power failure is harmless (see <see cref="RunBatch"/>);
    /// every other write must be flushed to disk before its caller learns it happened.
    /// </param>
    /// <param name="owesFlush">
    /// A non-durable write that <see cref="FlushAsync"/> must make durable later (an insert whose
    /// caller flushes before acknowledging it); leases, heartbeats and the like never need it.
    /// </param>
    private Task<TResult> WriteAsync<TArg, TResult>(
        Func<WriterSession, TArg, TResult> run, TArg arg, CancellationToken cancellationToken, bool durable = true, bool owesFlush = false)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        var op = new WriteOp<TArg, TResult>(run, arg, cancellationToken, durable) { OwesFlush = owesFlush };
        return _queue.Writer.TryWrite(op) ? op.Task : EnqueueSlowAsync(op, cancellationToken);
    }

    private async Task<TResult> EnqueueSlowAsync<TArg, TResult>(WriteOp<TArg, TResult> op, CancellationToken cancellationToken)
    {
        try
        {
            await _queue.Writer.WriteAsync(op, cancellationToken);
        }
        catch (ChannelClosedException)
        {
            throw new ObjectDisposedException(nameof(SqliteJobStore));
        }
        return await op.Task;
    }

    private async Task WriterLoopAsync()
    {
        var batch = new List<WriteOp>(_options.MaxBatchOps);
        // No cancellation token: the loop ends when disposal completes the queue and it is drained.
        while (await _queue.Reader.WaitToReadAsync())
        {
            while (batch.Count < _options.MaxBatchOps && _queue.Reader.TryRead(out var op)) batch.Add(op);
            RunBatch(batch);
            batch.Clear();
        }
        // Nonces still waiting for a commit are written before the store closes.
        if (!_unwrittenNonces.IsEmpty) RunBatch(batch);
        _writer?.Dispose();
        _writer = null;
    }

    /// <summary>
    /// Runs one group commit. Its flush level depends on what it holds. A batch with any durable
    /// write commits at the configured level: at Full, SQLite fsyncs the WAL before COMMIT returns.
    /// A batch of only non-durable writes (leases, heartbeats, worker registrations, nonces) commits
    /// at Normal, which in WAL mode appends to the WAL without an fsync; the data is in the OS's
    /// cache, safe from a crash of this process but not from a power loss.
    /// <para>
    /// That is safe because WAL frames are ordered and a recovered WAL is always a prefix of the
    /// commits: the next Full commit fsyncs the WAL file as a whole, which makes every earlier frame
    /// durable with it, and a power loss before that flush loses a tail of commits, never a middle.
    /// So a lost non-durable write takes with it only writes nobody was told were durable, and
    /// what it loses is harmless. A lease: the job is still queued after the restart and runs
    /// again, and the worker's report gets stale_lease (at-least-once). A heartbeat: lease expiries
    /// and the worker's last-seen time are older, so a lease may be rescued early and the job run
    /// again; a cancelled job it ended (the worker had dropped it) is running with its cancel
    /// still requested, and the next heartbeat or the lease rescuer ends it cancelled again. A
    /// registration: the worker gets worker_not_found and registers again. A nonce: a request that
    /// wrote something acknowledged had that write committed in this batch or a later one, whose
    /// flush covers the nonce; only a request that wrote nothing acknowledged (a read, a lease)
    /// could be replayed after the restart, within the signature window.
    /// </para>
    /// <para>
    /// SQLite refuses to change <c>synchronous</c> inside a transaction, so it is set before BEGIN,
    /// and only when it differs from the current setting. A configured Normal or Off never changes.
    /// </para>
    /// </summary>
    private void RunBatch(List<WriteOp> batch)
    {
        var level = _options.Synchronous;
        if (level == SqliteSynchronous.Full && !batch.Exists(static op => op.Durable)) level = SqliteSynchronous.Normal;

        WriterSession writer;
        try
        {
            writer = _writer ??= OpenWriter();
            writer.SetSynchronous(level);
            writer.Begin();
        }
        catch (Exception e)
        {
            foreach (var op in batch) op.Fail(e);
            return;
        }

        // For FlushAsync (SqliteJobStore.Flush.cs): whether this commit surely wrote to the WAL.
        var changesBefore = TotalChanges(writer);
        var rolledBack = false;

        // The nonces of requests that came before this batch's writes (see NonceRecordAsync). They
        // stay in memory until the commit succeeds; a failed batch leaves them for the next one.
        var nonces = _unwrittenNonces.IsEmpty ? null : _unwrittenNonces.Values.ToList();
        Exception? batchError = null;
        try
        {
            if (nonces is not null) foreach (var nonce in nonces) writer.NonceRecord(nonce);
        }
        catch (Exception e)
        {
            batchError = e;
        }

        foreach (var op in batch)
        {
            if (batchError is not null) break;
            if (op.SkipIfCancelled()) continue;
            try
            {
                writer.Savepoint();
            }
            catch (Exception e)
            {
                batchError = e;
                break;
            }
            try
            {
                op.Run(writer);
                writer.Release();
            }
            catch (Exception e)
            {
                op.SetError(e);
                rolledBack = true;
                try
                {
                    writer.RollbackToSavepoint();
                }
                catch (Exception rollbackError)
                {
                    // The transaction is unusable (SQLite may have rolled it back itself): nobody's write is safe.
                    batchError = rollbackError;
                    break;
                }
            }
        }

        if (batchError is null)
        {
            try
            {
                writer.Commit();
                Interlocked.Increment(ref _commitCount);
                if (level == SqliteSynchronous.Full) Interlocked.Increment(ref _syncedCommitCount);
                NoteCommit(level, wrote: !rolledBack && TotalChanges(writer) != changesBefore, owesFlush: batch.Exists(static op => op.OwesFlush));
            }
            catch (Exception e)
            {
                batchError = e;
            }
        }

        if (batchError is not null)
        {
            try
            {
                writer.Rollback();
            }
            catch (SqliteException)
            {
                // SQLite already ended the transaction; there is nothing left to roll back.
            }
            foreach (var op in batch) op.Fail(batchError);
            return;
        }

        if (nonces is not null)
        {
            foreach (var nonce in nonces)
            {
                if (_unwrittenNonces.TryRemove(NonceKey(nonce), out _)) Interlocked.Decrement(ref _unwrittenNonceCount);
            }
        }
        // Only now, after the commit, may any caller learn that its write happened.
        foreach (var op in batch) op.Complete();
    }

    /// <summary>
    /// WAL pages after which a commit of the writer also checkpoints (copies the WAL into the
    /// database file and fsyncs it), inside that commit. SQLite's default of 1,000 made every
    /// thirtieth or so single-job commit carry a checkpoint, which showed as the p99 of single
    /// foreground jobs (docs/performance.md, "Third round"). A checkpoint copies each changed page
    /// once, however often it changed, so ten times fewer checkpoints do not cost ten times more
    /// each. The WAL file grows to about this many pages (40 MB) and is then reused from its start.
    /// </summary>
    internal const int WalAutoCheckpointPages = 10_000;

    private WriterSession OpenWriter()
    {
        var connection = new SqliteConnection(_connectionString);
        try
        {
            connection.Open();
            using var pragma = connection.CreateCommand();
            pragma.CommandText =
                $"PRAGMA busy_timeout = {BusyTimeoutMs}; PRAGMA journal_mode = WAL; " +
                $"PRAGMA synchronous = {WriterSession.PragmaValue(_options.Synchronous)}; PRAGMA temp_store = MEMORY; " +
                $"PRAGMA wal_autocheckpoint = {WalAutoCheckpointPages.ToString(CultureInfo.InvariantCulture)};";
            pragma.ExecuteNonQuery();
            return new WriterSession(connection, _options.Synchronous);
        }
        catch
        {
            connection.Dispose();
            throw;
        }
    }

    private string BusyTimeoutMs => ((long)_options.BusyTimeout.TotalMilliseconds).ToString(CultureInfo.InvariantCulture);

    private async Task<SqliteConnection> OpenAsync(CancellationToken cancellationToken)
    {
        var connection = new SqliteConnection(_connectionString);
        try
        {
            await connection.OpenAsync(cancellationToken);
            await using var pragma = connection.CreateCommand();
            pragma.CommandText = $"PRAGMA busy_timeout = {BusyTimeoutMs};";
            await pragma.ExecuteNonQueryAsync(cancellationToken);
            return connection;
        }
        catch
        {
            await connection.DisposeAsync();
            throw;
        }
    }

    private async Task<TResult> ReadAsync<TArg, TResult>(
        Func<ReaderSession, TArg, CancellationToken, Task<TResult>> read, TArg arg, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        ReaderSession reader;
        if (_idleReaders.TryDequeue(out var idle))
        {
            Interlocked.Decrement(ref _idleReaderCount);
            reader = idle;
        }
        else
        {
            reader = new ReaderSession(await OpenAsync(cancellationToken));
        }

        TResult result;
        try
        {
            result = await read(reader, arg, cancellationToken);
        }
        catch
        {
            // The connection may be in any state after a failure; a fresh one is cheap.
            reader.Dispose();
            throw;
        }
        ReturnReader(reader);
        return result;
    }

    private void ReturnReader(ReaderSession reader)
    {
        if (_disposed != 0 || Interlocked.Increment(ref _idleReaderCount) > _options.MaxIdleReaders)
        {
            if (_disposed == 0) Interlocked.Decrement(ref _idleReaderCount);
            reader.Dispose();
            return;
        }
        _idleReaders.Enqueue(reader);
        // Disposal may have drained the pool between the check above and the enqueue.
        if (_disposed != 0) DisposeIdleReaders();
    }

    private void DisposeIdleReaders()
    {
        while (_idleReaders.TryDequeue(out var reader)) reader.Dispose();
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        _queue.Writer.TryComplete();
        await _writerLoop;
        DisposeIdleReaders();
    }

    private abstract class WriteOp(bool durable)
    {
        /// <summary>Whether the batch holding this operation must be flushed to disk before it completes.</summary>
        public bool Durable { get; } = durable;

        /// <summary>Committed without a flush, but <see cref="SqliteJobStore.FlushAsync"/> must cover it.</summary>
        public bool OwesFlush { get; init; }

        /// <summary>True when the caller gave up before the operation ran; it is then not run at all.</summary>
        public abstract bool SkipIfCancelled();
        public abstract void Run(WriterSession session);
        public abstract void SetError(Exception error);
        public abstract void Complete();
        public abstract void Fail(Exception error);
    }

    private sealed class WriteOp<TArg, TResult>(Func<WriterSession, TArg, TResult> run, TArg arg, CancellationToken cancellationToken, bool durable)
        : WriteOp(durable)
    {
        private readonly TaskCompletionSource<TResult> _completion = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private TResult? _result;
        private Exception? _error;
        private bool _skipped;

        public Task<TResult> Task => _completion.Task;

        public override bool SkipIfCancelled() => _skipped = cancellationToken.IsCancellationRequested;

        public override void Run(WriterSession session) => _result = run(session, arg);

        public override void SetError(Exception error) => _error = error;

        public override void Complete()
        {
            if (_skipped) _completion.TrySetCanceled(cancellationToken);
            else if (_error is not null) _completion.TrySetException(_error);
            else _completion.TrySetResult(_result!);
        }

        public override void Fail(Exception error)
        {
            if (_skipped) _completion.TrySetCanceled(cancellationToken);
            else _completion.TrySetException(error);
        }
    }
}
