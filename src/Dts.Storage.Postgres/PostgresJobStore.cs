using System.Security.Cryptography;
using System.Text;
using Dts.Contracts;
using Dts.Core;
using Dts.Core.Security;
using Dts.Core.Storage;
using Npgsql;

namespace Dts.Storage.Postgres;

/// <summary>
/// <see cref="IJobStore"/> on PostgreSQL, shared by several servers (<see cref="ISharedStore"/>).
/// Every operation is its own short transaction on a pooled connection of one
/// <see cref="NpgsqlDataSource"/>; concurrent servers meet through row locks (leases take rows with
/// FOR UPDATE SKIP LOCKED), unique indexes and advisory locks. Every table lives in the configured
/// schema. Call <see cref="MigrateAsync"/> once before use.
/// </summary>
public sealed partial class PostgresJobStore : IJobStore, ISharedStore
{
    private readonly NpgsqlDataSource _dataSource;
    private readonly ISecretCipher _cipher;
    private readonly string _schema;
    private readonly string _quotedSchema;
    private readonly string _connectionString;
    private readonly string _description;
    private int _disposed;

    public PostgresJobStore(PostgresStoreOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        PostgresStoreOptions.ValidateSchema(options.Schema);
        _cipher = options.SecretCipher
            ?? throw new ArgumentException("The PostgreSQL store needs a SecretCipher: users' secrets are never stored in plaintext.", nameof(options));
        if (string.IsNullOrWhiteSpace(options.ConnectionString))
            throw new ArgumentException("The PostgreSQL store needs a connection string.", nameof(options));
        var builder = new NpgsqlConnectionStringBuilder(PostgresConnectionStrings.Normalize(options.ConnectionString));
        // Every statement is one of a fixed set, so let Npgsql prepare them (plans kept per
        // connection), and keep them across pool returns: no session state is ever set outside a
        // transaction (only SET LOCAL), so there is nothing for DISCARD ALL to undo.
        if (builder.MaxAutoPrepare == 0) builder.MaxAutoPrepare = 64;
        builder.NoResetOnClose = true;
        _connectionString = builder.ConnectionString;
        _schema = options.Schema;
        _quotedSchema = "\"" + _schema + "\"";
        _description = $"PostgreSQL {builder.Host}:{builder.Port}/{builder.Database ?? builder.Username ?? ""} schema {_schema}";
        _dataSource = NpgsqlDataSource.Create(_connectionString);
    }

    public string Description => _description;

    /// <summary>The schema's quoted name, as it appears in every statement.</summary>
    internal string QuotedSchema => _quotedSchema;

    internal string Schema => _schema;

    internal NpgsqlDataSource DataSource => _dataSource;

    /// <summary>Replaces <c>{s}</c> in <paramref name="sql"/> with the quoted schema.</summary>
    internal string S(string sql) => sql.Replace("{s}", _quotedSchema, StringComparison.Ordinal);

    private NpgsqlCommand Cmd(NpgsqlConnection connection, NpgsqlTransaction? transaction, string sql) =>
        new(S(sql), connection, transaction);

    /// <summary>A 64-bit advisory lock key for <paramref name="purpose"/> on this schema.</summary>
    internal long LockKey(string purpose) =>
        BitConverter.ToInt64(SHA256.HashData(Encoding.UTF8.GetBytes($"dts:{purpose}:{_schema}")), 0);

    public async Task MigrateAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        await PostgresMigrator.MigrateAsync(this, cancellationToken);
        // A wrong key stops the start with one clear error instead of failing every request.
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var probe = Cmd(connection, null, "SELECT name, secret FROM {s}.users ORDER BY name LIMIT 1");
        await using var r = await probe.ExecuteReaderAsync(cancellationToken);
        if (await r.ReadAsync(cancellationToken)) _ = _cipher.Unprotect(r.GetString(0), r.GetString(1));
    }

    // ---- plumbing ----

    /// <summary>
    /// Prepended to the first statement of a transaction whose loss on a database crash is harmless:
    /// its commit then returns without waiting for its WAL to be flushed (for this transaction only;
    /// Npgsql sends BEGIN with that first statement, so this costs no round trip). PostgreSQL's WAL
    /// is one sequence and a flush covers everything before it, so the next ordinary commit of any
    /// session makes it durable too, and a crash before that loses a tail of such commits, never a
    /// write that was acknowledged as durable. Used for leases (a lost lease leaves the job queued:
    /// it runs again, at least once), heartbeats (older lease expiries and last-seen times: a lease
    /// may be rescued early and the job run again), worker registrations (the worker gets
    /// worker_not_found and registers again) and nonces (see NonceClaimAsync).
    /// </summary>
    private const string NoFlushWait = "SET LOCAL synchronous_commit TO OFF; ";

    /// <summary>
    /// Runs <paramref name="work"/> in one transaction and commits it. A deadlock or serialization
    /// failure (another server touched the same rows in another order) retries the whole operation.
    /// </summary>
    private Task<T> TxAsync<T>(Func<NpgsqlConnection, NpgsqlTransaction, Task<T>> work, CancellationToken cancellationToken) =>
        RetryingAsync(async () =>
        {
            await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
            await using var transaction = await connection.BeginTransactionAsync(cancellationToken);
            var result = await work(connection, transaction);
            await transaction.CommitAsync(cancellationToken);
            return result;
        }, cancellationToken);

    /// <summary>
    /// A transaction of one statement in one round trip: BEGIN, the statement and COMMIT go to the
    /// server together, where <see cref="TxAsync"/> needs a second trip for its COMMIT. Without
    /// <paramref name="flushWait"/> the statement is preceded by <see cref="NoFlushWait"/>.
    /// <paramref name="read"/> gets the statement's rows; the COMMIT's outcome is read after it, so
    /// a failed commit throws here as it would from <see cref="TxAsync"/>. An error leaves the
    /// transaction aborted on the connection; Npgsql rolls it back when the connection goes back to
    /// its pool, as it does for any transaction left open (not with multiplexing, which Dts does not use).
    /// </summary>
    private Task<T> OneTripTxAsync<T>(string sql, Action<NpgsqlCommand> bind, Func<NpgsqlDataReader, Task<T>> read,
        CancellationToken cancellationToken, bool flushWait = false) =>
        RetryingAsync(async () =>
        {
            await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
            await using var command = Cmd(connection, null, "BEGIN; " + (flushWait ? "" : NoFlushWait) + sql + "; COMMIT");
            bind(command);
            await using var r = await command.ExecuteReaderAsync(cancellationToken);
            var result = await read(r);
            while (await r.NextResultAsync(cancellationToken))
            {
            }
            return result;
        }, cancellationToken);

    /// <summary>Runs <paramref name="once"/> again (up to five times) when another transaction deadlocked with it or a serializable one failed.</summary>
    private async Task<T> RetryingAsync<T>(Func<Task<T>> once, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await once();
            }
            catch (PostgresException e) when (attempt < 5 && e.SqlState is PostgresErrorCodes.DeadlockDetected or PostgresErrorCodes.SerializationFailure)
            {
                await Task.Delay(Random.Shared.Next(5, 20 * attempt), cancellationToken);
            }
        }
    }

    private async Task<T> ReadAsync<T>(Func<NpgsqlConnection, Task<T>> read, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        return await read(connection);
    }

    private static async Task<List<JobRecord>> ReadJobsAsync(NpgsqlCommand command, CancellationToken cancellationToken)
    {
        await using var r = await command.ExecuteReaderAsync(cancellationToken);
        return await ReadJobsAsync(r, cancellationToken);
    }

    private static async Task<List<JobRecord>> ReadJobsAsync(NpgsqlDataReader r, CancellationToken cancellationToken)
    {
        var jobs = new List<JobRecord>();
        while (await r.ReadAsync(cancellationToken)) jobs.Add(Pg.ReadJob(r));
        return jobs;
    }

    private static async Task ExecuteBatchAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, NpgsqlBatch batch, CancellationToken cancellationToken)
    {
        if (batch.BatchCommands.Count == 0) return;
        batch.Connection = connection;
        batch.Transaction = transaction;
        await batch.ExecuteNonQueryAsync(cancellationToken);
    }

    // ---- jobs ----

    private const string InsertJobsSql =
        "INSERT INTO {s}.jobs (id, function, owner, state, args_json, kwargs_json, rank, unique_key, tags_json, run_at, " +
        "max_attempts, timeout_ms, retention_ms, created_at, updated_at) " +
        "SELECT id, function, owner, state, args_json, kwargs_json, rank, unique_key, tags_json, run_at, max_attempts, " +
        "timeout_ms, retention_ms, @now, @now FROM unnest(@ids::text[], @functions::text[], @owners::text[], @states::text[], " +
        "@args::text[], @kwargs::text[], @ranks::integer[], @keys::text[], @tags::text[], @run_at::timestamptz[], " +
        "@max_attempts::integer[], @timeouts::bigint[], @retentions::bigint[]) WITH ORDINALITY AS t(id, function, owner, state, " +
        "args_json, kwargs_json, rank, unique_key, tags_json, run_at, max_attempts, timeout_ms, retention_ms, ord) " +
        // In input order, so that of two jobs of one batch with the same unique key the first is inserted.
        "ORDER BY ord " +
        // Target-less: a clash with either unique-key index (jobs_unique_key for callers' keys,
        // jobs_auto_key for automatic ones, 0002_automatic_unique_keys.sql) stores nothing, and so
        // does a clash of ids, which InsertJobsAsync then tells apart and refuses.
        "ON CONFLICT DO NOTHING " +
        "RETURNING id";

    /// <summary>The term that puts a row in jobs_auto_key; queries that want that index repeat it.</summary>
    internal const string AutomaticKey = "substr(j.unique_key, 1, 9) = 'dts-auto:'";
    /// <summary>The term that, with the states, puts a row in jobs_unique_key.</summary>
    internal const string CallersKey = "j.unique_key IS NOT NULL AND substr(j.unique_key, 1, 9) <> 'dts-auto:'";

    /// <summary>
    /// For each looked-up key, the job that holds it: an automatic key's job in any state, a caller's
    /// key's unfinished job. The two arms are disjoint (a key is one kind or the other); each can use
    /// its own partial index.
    /// </summary>
    internal const string FindUniqueSql =
        "WITH k AS (SELECT * FROM unnest(@owners::text[], @functions::text[], @keys::text[]) WITH ORDINALITY AS k(owner, function, key, ord)) " +
        "SELECT k.ord, j.id, j.state FROM k JOIN {s}.jobs j ON j.owner = k.owner AND j.function = k.function AND j.unique_key = k.key " +
        "AND " + AutomaticKey + " " +
        "UNION ALL " +
        "SELECT k.ord, j.id, j.state FROM k JOIN {s}.jobs j ON j.owner = k.owner AND j.function = k.function AND j.unique_key = k.key " +
        "AND " + CallersKey + " AND j." + Pg.UnfinishedStates;

    public Task<IReadOnlyList<JobInsertResult>> JobInsertManyAsync(JobInsertManyParams p, CancellationToken cancellationToken) =>
        TxAsync<IReadOnlyList<JobInsertResult>>(
            async (c, t) => await InsertJobsAsync(c, t, p.Jobs, p.Now, cancellationToken, durable: p.Durable), cancellationToken);

    /// <summary>
    /// A transaction that commits at the session's synchronous_commit (on, unless the database is
    /// configured otherwise) and has a transaction id. Only such a transaction writes a commit
    /// record, and only then does its commit wait for the WAL to be flushed up to that record; a
    /// transaction that only reads commits without either. pg_current_xact_id() assigns the id
    /// without writing a row. As the WAL is one sequence, that flush covers every commit before it,
    /// of any session, including those made with <see cref="NoFlushWait"/>. No cheap way tells
    /// whether another session has left such commits unflushed, so this always runs (one round trip).
    /// </summary>
    public async Task FlushAsync(CancellationToken cancellationToken) =>
        LastFlush = await OneTripTxAsync("SELECT pg_current_xact_id()::text, current_setting('synchronous_commit')", _ => { }, async r =>
        {
            await r.ReadAsync(cancellationToken);
            return (r.GetString(0), r.GetString(1));
        }, cancellationToken, flushWait: true);

    /// <summary>For tests: the transaction id and synchronous_commit of the last flush's transaction.</summary>
    internal (string Xid, string SynchronousCommit)? LastFlush { get; private set; }

    /// <summary>
    /// Inserts jobs in one statement; a job whose unique key another job of the same owner and
    /// function holds (an automatic key: in any state; a caller's key: while unfinished, see
    /// <see cref="UniqueKeys"/>) is not inserted but coalesced with that job (also a job earlier in
    /// the batch). A job refused for its id alone is an error.
    /// </summary>
    private async Task<JobInsertResult[]> InsertJobsAsync(
        NpgsqlConnection connection, NpgsqlTransaction transaction, IReadOnlyList<NewJob> jobs, DateTimeOffset now, CancellationToken cancellationToken,
        bool durable = true)
    {
        var results = new JobInsertResult[jobs.Count];
        var pending = Enumerable.Range(0, jobs.Count).ToList();
        // A conflicting job may finish between the insert and the look-up (another server); then try again.
        for (var round = 0; pending.Count > 0; round++)
        {
            if (round == 5) throw new InvalidOperationException("Could not insert jobs whose unique keys keep changing hands.");
            var batch = pending.Select(i => jobs[i]).ToList();
            var states = batch.Select(j => JobRules.InitialState(j, now)).ToList();
            var inserted = new HashSet<string>(StringComparer.Ordinal);
            // Not durable when the caller asks (JobInsertManyParams.Durable): the first statement of the
            // transaction carries NoFlushWait, which holds for the rest of it, retries included.
            await using (var insert = Cmd(connection, transaction, round == 0 && !durable ? NoFlushWait + InsertJobsSql : InsertJobsSql))
            {
                insert.P("now", Pg.Ts(now))
                    .P("ids", batch.Select(j => j.Id).ToArray())
                    .P("functions", batch.Select(j => j.Function).ToArray())
                    .P("owners", batch.Select(j => j.Owner).ToArray())
                    .P("states", states.Select(s => s.ToWire()).ToArray())
                    .P("args", batch.Select(j => j.ArgsJson).ToArray())
                    .P("kwargs", batch.Select(j => j.KwargsJson).ToArray())
                    .P("ranks", batch.Select(j => j.Priority.Rank).ToArray())
                    .P("keys", batch.Select(j => j.UniqueKey).ToArray())
                    .P("tags", batch.Select(j => j.TagsJson).ToArray())
                    .P("run_at", batch.Select(j => Pg.Ts(j.RunAt)).ToArray())
                    .P("max_attempts", batch.Select(j => j.MaxAttempts).ToArray())
                    .P("timeouts", batch.Select(j => j.Timeout is { } x ? Pg.Ms(x) : (long?)null).ToArray())
                    .P("retentions", batch.Select(j => Pg.Ms(j.Retention)).ToArray());
                await using var r = await insert.ExecuteReaderAsync(cancellationToken);
                while (await r.ReadAsync(cancellationToken)) inserted.Add(r.GetString(0));
            }
            var coalesce = new List<int>();
            for (var k = 0; k < batch.Count; k++)
            {
                var i = pending[k];
                if (inserted.Contains(batch[k].Id)) results[i] = new JobInsertResult(batch[k].Id, states[k], false, batch[k].Function);
                else if (batch[k].UniqueKey is null) throw IdTaken(batch[k].Id);
                else coalesce.Add(i);
            }
            pending = [];
            if (coalesce.Count == 0) break;
            await using (var find = Cmd(connection, transaction, FindUniqueSql))
            {
                find.P("owners", coalesce.Select(i => jobs[i].Owner).ToArray())
                    .P("functions", coalesce.Select(i => jobs[i].Function).ToArray())
                    .P("keys", coalesce.Select(i => jobs[i].UniqueKey!).ToArray());
                await using var r = await find.ExecuteReaderAsync(cancellationToken);
                while (await r.ReadAsync(cancellationToken))
                {
                    var i = coalesce[(int)r.GetInt64(0) - 1];
                    results[i] = new JobInsertResult(r.GetString(1), JobStates.ParseStored(r.GetString(2)), true, jobs[i].Function);
                }
            }
            pending = [.. coalesce.Where(i => results[i] is null)];
            if (pending.Count == 0) break;
            // Refused, yet no job holds its key: either its id is taken (the insert's ON CONFLICT
            // covers ids too) or the holder finished in between (another server) and it is tried again.
            await using (var ids = Cmd(connection, transaction, "SELECT id FROM {s}.jobs WHERE id = ANY(@ids)"))
            {
                ids.P("ids", pending.Select(i => jobs[i].Id).ToArray());
                if (await ids.ExecuteScalarAsync(cancellationToken) is string taken) throw IdTaken(taken);
            }
        }
        return results;
    }

    private static InvalidOperationException IdTaken(string id) =>
        new($"Job '{id}' was not stored: a job with that id exists already.");

    public Task<JobRecord?> JobGetAsync(JobGetParams p, CancellationToken cancellationToken) =>
        ReadAsync(async c =>
        {
            await using var command = Cmd(c, null, $"SELECT {Pg.JobColumns} FROM {{s}}.jobs WHERE id = @id").P("id", p.Id);
            return (await ReadJobsAsync(command, cancellationToken)).SingleOrDefault();
        }, cancellationToken);

    /// <summary>
    /// The claim, one statement. For each requested function that is not paused, a window of its best
    /// queued jobs through the jobs_ready partial index (an ordered index scan that stops after
    /// @window rows, read without locks); of those, the best @max by (rank, seq) that no other
    /// transaction holds are locked (FOR UPDATE SKIP LOCKED sits under the LIMIT, so exactly the rows
    /// leased are locked: a concurrent leaser skips them and takes the next ones instead of coming
    /// back short) and leased. The window is larger than @max so that rows other leasers hold at
    /// that moment leave enough behind. Nothing is leased to a draining or silent worker.
    /// </summary>
    internal const string LeaseSql =
        "WITH fns AS (SELECT DISTINCT f.function FROM unnest(@functions::text[]) AS f(function) " +
        "  WHERE NOT EXISTS (SELECT 1 FROM {s}.queues q WHERE q.function = f.function AND q.paused)), " +
        "allowed AS (SELECT NOT EXISTS (SELECT 1 FROM {s}.workers w WHERE w.id = @worker " +
        "  AND (w.draining OR (@check_silent AND w.last_heartbeat_at < @silent_before))) AS ok), " +
        "window_rows AS (SELECT c.seq FROM fns CROSS JOIN LATERAL (SELECT j.seq FROM {s}.jobs j " +
        "  WHERE j.function = fns.function AND j.state = 'queued' ORDER BY j.rank, j.seq LIMIT @window) c " +
        "  WHERE (SELECT ok FROM allowed)), " +
        "picked AS (SELECT j.seq, j.rank FROM {s}.jobs j WHERE j.seq IN (SELECT seq FROM window_rows) AND j.state = 'queued' " +
        "  ORDER BY j.rank, j.seq LIMIT @max FOR UPDATE OF j SKIP LOCKED), " +
        "numbered AS (SELECT seq, row_number() OVER (ORDER BY rank, seq) AS n FROM picked), " +
        "leased AS (UPDATE {s}.jobs j SET state = 'running', lease_token = left(encode(sha256(convert_to(@salt || numbered.n::text, 'UTF8')), 'hex'), 32), " +
        "  lease_expires_at = @expires, worker_id = @worker, attempts = j.attempts + 1, " +
        "  started_at = coalesce(j.started_at, @now), updated_at = @now, " +
        "  deadline_at = CASE WHEN j.timeout_ms IS NULL THEN NULL ELSE @now + j.timeout_ms * interval '1 millisecond' END " +
        "  FROM numbered WHERE j.seq = numbered.seq RETURNING j.*) " +
        "SELECT " + Pg.JobColumns + " FROM leased ORDER BY rank, seq";

    public Task<IReadOnlyList<JobRecord>> JobLeaseAsync(JobLeaseParams p, CancellationToken cancellationToken)
    {
        if (p.Max <= 0 || p.Functions.Count == 0) return Task.FromResult<IReadOnlyList<JobRecord>>([]);
        return OneTripTxAsync<IReadOnlyList<JobRecord>>(LeaseSql, command => AddLeaseParameters(command, p, p.Now - p.LeaseDuration),
            async r => await ReadJobsAsync(r, cancellationToken), cancellationToken);
    }

    /// <summary>How many of a function's best queued jobs a lease considers: room for what other leasers hold.</summary>
    internal static int LeaseWindow(int max) => (int)Math.Min(int.MaxValue, 4L * max + 64);

    internal static void AddLeaseParameters(NpgsqlCommand command, JobLeaseParams p, DateTimeOffset silentBefore)
    {
        // Each job's lease token is derived from a fresh 128-bit secret of this call and the job's
        // place in it, so a lease of many jobs sends one value instead of one token per possible job;
        // without the secret no token can be guessed from another.
        command.P("functions", p.Functions.ToArray())
            .P("worker", p.WorkerId)
            // A worker whose lease request is recent is not silent, whatever its last heartbeat.
            .P("check_silent", (p.RequestedAt ?? p.Now) < silentBefore)
            .P("silent_before", Pg.Ts(silentBefore))
            .P("max", p.Max)
            .P("window", LeaseWindow(p.Max))
            .P("salt", JobIds.NewLeaseToken())
            .P("expires", Pg.Ts(p.Now + p.LeaseDuration))
            .P("now", Pg.Ts(p.Now));
    }

    private sealed class ReportRow
    {
        public long Seq;
        public JobState State;
        public string? Token;
        public int Attempts, MaxAttempts;
        public string Owner = "", Function = "";
        public long Retention;
        public bool CancelRequested;
    }

    public Task<IReadOnlyList<JobReportResult>> JobReportManyAsync(JobReportManyParams p, CancellationToken cancellationToken) =>
        TxAsync<IReadOnlyList<JobReportResult>>(async (c, t) =>
        {
            var rows = new Dictionary<string, ReportRow>(StringComparer.Ordinal);
            await using (var select = Cmd(c, t,
                "SELECT id, seq, state, lease_token, attempts, max_attempts, owner, function, retention_ms, cancel_requested " +
                "FROM {s}.jobs WHERE id = ANY(@ids) ORDER BY seq FOR UPDATE"))
            {
                select.P("ids", p.Items.Select(i => i.JobId).Distinct(StringComparer.Ordinal).ToArray());
                await using var r = await select.ExecuteReaderAsync(cancellationToken);
                while (await r.ReadAsync(cancellationToken))
                {
                    rows[r.GetString(0)] = new ReportRow
                    {
                        Seq = r.GetInt64(1),
                        State = JobStates.ParseStored(r.GetString(2)),
                        Token = Pg.StringOrNull(r, 3),
                        Attempts = r.GetInt32(4),
                        MaxAttempts = r.GetInt32(5),
                        Owner = r.GetString(6),
                        Function = r.GetString(7),
                        Retention = r.GetInt64(8),
                        CancelRequested = r.GetBoolean(9),
                    };
                }
            }

            var now = Pg.Ts(p.Now);
            var results = new JobReportResult[p.Items.Count];
            await using var batch = new NpgsqlBatch();
            for (var i = 0; i < p.Items.Count; i++)
            {
                var item = p.Items[i];
                if (!rows.TryGetValue(item.JobId, out var row))
                {
                    results[i] = new JobReportResult(item.JobId, JobReportStatus.NotFound, null, null, null);
                    continue;
                }
                if (row.State != JobState.Running || !string.Equals(row.Token, item.LeaseToken, StringComparison.Ordinal))
                {
                    // The owner is withheld: the reporter is not the job's current holder.
                    results[i] = new JobReportResult(item.JobId, JobReportStatus.StaleLease, row.State, null, row.Function);
                    continue;
                }
                JobState after;
                switch (item.Kind)
                {
                    case JobReportKind.Progress:
                        batch.BatchCommands.Add(new NpgsqlBatchCommand(S(
                            "UPDATE {s}.jobs SET progress_num = $1, progress_den = $2, updated_at = $3 WHERE seq = $4"))
                            .P(item.ProgressNumerator).P(item.ProgressDenominator).P(now).P(row.Seq));
                        after = JobState.Running;
                        break;
                    case JobReportKind.Succeed:
                        batch.BatchCommands.Add(new NpgsqlBatchCommand(S(
                            "UPDATE {s}.jobs SET state = 'succeeded', result_json = $1, finished_at = $2, updated_at = $2, " +
                            "result_pending = true, result_expires_at = $3, lease_token = NULL, lease_expires_at = NULL WHERE seq = $4"))
                            .P(item.ResultJson).P(now).P(Pg.Ts(p.Now.AddMilliseconds(row.Retention))).P(row.Seq));
                        after = JobState.Succeeded;
                        break;
                    case JobReportKind.Fail:
                        // A job whose cancellation was requested ends cancelled rather than being retried.
                        var (next, runAt) = row.CancelRequested
                            ? (JobState.Cancelled, p.Now)
                            : JobTransitions.AfterFailure(row.Attempts, row.MaxAttempts, item.Retry, p.Now, p.RetryPolicy);
                        if (next == JobState.AwaitingRetry) batch.BatchCommands.Add(RetryCommand(row.Seq, runAt, item.ErrorCode, item.ErrorMessage, p.Now));
                        else batch.BatchCommands.Add(FinishFailedCommand(row.Seq, next, item.ErrorCode, item.ErrorMessage, p.Now, row.Retention));
                        after = next;
                        break;
                    default:
                        throw new ArgumentOutOfRangeException(nameof(p), item.Kind, "Unknown report kind.");
                }
                // A later item of this call for the same job sees what this one did.
                row.State = after;
                if (after != JobState.Running) row.Token = null;
                results[i] = new JobReportResult(item.JobId, JobReportStatus.Ok, after, row.Owner, row.Function);
            }
            await ExecuteBatchAsync(c, t, batch, cancellationToken);
            return results;
        }, cancellationToken);

    private NpgsqlBatchCommand RetryCommand(long seq, DateTimeOffset runAt, string? code, string? message, DateTimeOffset now) =>
        new NpgsqlBatchCommand(S(
            "UPDATE {s}.jobs SET state = 'awaiting_retry', run_at = $1, error_code = $2, error_message = $3, updated_at = $4, " +
            "lease_token = NULL, lease_expires_at = NULL WHERE seq = $5"))
            .P(Pg.Ts(runAt)).P(code).P(message).P(Pg.Ts(now)).P(seq);

    /// <summary>For dead and cancelled endings of a running job: the result (an error) waits for its owner.</summary>
    private NpgsqlBatchCommand FinishFailedCommand(long seq, JobState state, string? code, string? message, DateTimeOffset now, long retentionMs) =>
        new NpgsqlBatchCommand(S(
            "UPDATE {s}.jobs SET state = $1, error_code = $2, error_message = $3, finished_at = $4, updated_at = $4, " +
            "result_pending = true, result_expires_at = $5, lease_token = NULL, lease_expires_at = NULL WHERE seq = $6"))
            .P(state.ToWire()).P(code).P(message).P(Pg.Ts(now)).P(Pg.Ts(now.AddMilliseconds(retentionMs))).P(seq);

    private NpgsqlBatchCommand RequeueCommand(long seq, DateTimeOffset now) =>
        new NpgsqlBatchCommand(S(
            "UPDATE {s}.jobs SET state = 'queued', lease_token = NULL, lease_expires_at = NULL, worker_id = NULL, updated_at = $1 WHERE seq = $2"))
            .P(Pg.Ts(now)).P(seq);

    public Task<IReadOnlyList<JobRecord>> JobResultsGetAsync(JobResultsGetParams p, CancellationToken cancellationToken)
    {
        if (p.Max <= 0) return Task.FromResult<IReadOnlyList<JobRecord>>([]);
        return ReadAsync<IReadOnlyList<JobRecord>>(async c =>
        {
            // jobs_results_pending orders and bounds the scan; the tag test runs per row it yields.
            await using var command = Cmd(c, null,
                $"SELECT {Pg.JobColumns} FROM {{s}}.jobs WHERE owner = @owner AND result_pending " +
                "AND (@tag::text IS NULL OR (tags_json IS NOT NULL AND tags_json::jsonb @> jsonb_build_array(@tag::text))) " +
                "ORDER BY finished_at, seq LIMIT @max");
            command.P("owner", p.Owner).P("tag", p.Tag).P("max", p.Max);
            return await ReadJobsAsync(command, cancellationToken);
        }, cancellationToken);
    }

    public Task<int> JobResultsAckAsync(JobResultsAckParams p, CancellationToken cancellationToken)
    {
        if (p.Ids.Count == 0) return Task.FromResult(0);
        return TxAsync(async (c, t) =>
        {
            await using var command = Cmd(c, t, "UPDATE {s}.jobs SET result_pending = false WHERE id = ANY(@ids) AND owner = @owner AND result_pending");
            command.P("ids", p.Ids.ToArray()).P("owner", p.Owner);
            return await command.ExecuteNonQueryAsync(cancellationToken);
        }, cancellationToken);
    }

    public Task<JobCancelResult> JobCancelAsync(JobCancelParams p, CancellationToken cancellationToken) =>
        TxAsync(async (c, t) =>
        {
            JobRecord job;
            long seq;
            await using (var lookup = Cmd(c, t, $"SELECT {Pg.JobColumns} FROM {{s}}.jobs WHERE id = @id FOR UPDATE").P("id", p.Id))
            await using (var r = await lookup.ExecuteReaderAsync(cancellationToken))
            {
                if (!await r.ReadAsync(cancellationToken)) return new JobCancelResult(JobCancelStatus.NotFound, null);
                seq = r.GetInt64(0);
                job = Pg.ReadJob(r);
            }
            if (p.Owner is not null && !string.Equals(p.Owner, job.Owner, StringComparison.Ordinal))
                return new JobCancelResult(JobCancelStatus.NotFound, null);
            if (job.State.IsTerminal()) return new JobCancelResult(JobCancelStatus.AlreadyFinished, job);

            var running = job.State == JobState.Running;
            var sql = running
                ? $"UPDATE {{s}}.jobs SET cancel_requested = true, updated_at = @now WHERE seq = @seq RETURNING {Pg.JobColumns}"
                : "UPDATE {s}.jobs SET state = 'cancelled', finished_at = @now, updated_at = @now, result_pending = true, " +
                  $"result_expires_at = @now + retention_ms * interval '1 millisecond' WHERE seq = @seq RETURNING {Pg.JobColumns}";
            await using var update = Cmd(c, t, sql).P("now", Pg.Ts(p.Now)).P("seq", seq);
            job = (await ReadJobsAsync(update, cancellationToken)).Single();
            return new JobCancelResult(running ? JobCancelStatus.CancelRequested : JobCancelStatus.Cancelled, job);
        }, cancellationToken);

    public Task<JobPromoteDueResult> JobPromoteDueAsync(JobPromoteDueParams p, CancellationToken cancellationToken) =>
        TxAsync(async (c, t) =>
        {
            var promoted = 0;
            var functions = new HashSet<string>(StringComparer.Ordinal);
            if (p.Limit > 0)
            {
                await using var promote = Cmd(c, t,
                    "UPDATE {s}.jobs j SET state = 'queued', updated_at = @now FROM (SELECT seq FROM {s}.jobs " +
                    "WHERE state IN ('scheduled', 'awaiting_retry') AND run_at <= @now ORDER BY run_at LIMIT @limit FOR UPDATE SKIP LOCKED) due " +
                    "WHERE j.seq = due.seq RETURNING j.function");
                promote.P("now", Pg.Ts(p.Now)).P("limit", p.Limit);
                await using var r = await promote.ExecuteReaderAsync(cancellationToken);
                while (await r.ReadAsync(cancellationToken))
                {
                    promoted++;
                    functions.Add(r.GetString(0));
                }
            }
            await using var next = Cmd(c, t, "SELECT min(run_at) FROM {s}.jobs WHERE state IN ('scheduled', 'awaiting_retry') AND run_at > @now");
            next.P("now", Pg.Ts(p.Now));
            var value = await next.ExecuteScalarAsync(cancellationToken);
            DateTimeOffset? nextDue = value is DateTime d ? new DateTimeOffset(DateTime.SpecifyKind(d, DateTimeKind.Utc)) : null;
            return new JobPromoteDueResult(promoted, [.. functions], nextDue);
        }, cancellationToken);

    public Task<JobRescueExpiredResult> JobRescueExpiredAsync(JobRescueExpiredParams p, CancellationToken cancellationToken)
    {
        if (p.Limit <= 0) return Task.FromResult(new JobRescueExpiredResult(0, 0, [], []));
        return TxAsync(async (c, t) =>
        {
            await using var select = Cmd(c, t,
                $"SELECT {ReleaseColumns} FROM {{s}}.jobs WHERE state = 'running' AND lease_expires_at < @now " +
                "ORDER BY lease_expires_at LIMIT @limit FOR UPDATE SKIP LOCKED");
            select.P("now", Pg.Ts(p.Now)).P("limit", p.Limit);
            var release = new JobRelease(p.Now, null);
            await ReleaseAsync(c, t, select, release, JobTransitions.LeaseExpiredErrorCode, JobTransitions.LeaseExpiredMessage, cancellationToken);
            return release.Result();
        }, cancellationToken);
    }

    /// <summary>The columns <see cref="ReleaseAsync"/> expects, in order.</summary>
    private const string ReleaseColumns = "seq, attempts, max_attempts, function, owner, retention_ms, cancel_requested, id";

    /// <summary>What ending the current attempt of some running jobs did.</summary>
    private sealed class JobRelease(DateTimeOffset now, RetryPolicy? retryPolicy)
    {
        public DateTimeOffset Now => now;
        public RetryPolicy? RetryPolicy => retryPolicy;
        public int Requeued;
        public int Dead;
        public HashSet<string> Functions { get; } = new(StringComparer.Ordinal);
        public HashSet<string> Owners { get; } = new(StringComparer.Ordinal);
        public List<DeadJob> DeadJobs { get; } = [];

        /// <summary>All of it, as a rescue or timeout pass reports it.</summary>
        public JobRescueExpiredResult Result() => new(Requeued, Dead, [.. Functions], [.. Owners]) { DeadJobs = DeadJobs };
    }

    /// <summary>
    /// Ends the current attempt of the running jobs <paramref name="select"/> returns (locked,
    /// columns <see cref="ReleaseColumns"/>). Without a retry policy (an expired lease, a lost
    /// worker) a job goes back to the queue at once; with one (a timeout) it waits its backoff.
    /// Cancel-requested jobs end cancelled; with no attempt left, dead. Returns how many it ended.
    /// </summary>
    private async Task<int> ReleaseAsync(NpgsqlConnection connection, NpgsqlTransaction transaction, NpgsqlCommand select,
        JobRelease release, string code, string message, CancellationToken cancellationToken)
    {
        var rows = new List<(long Seq, int Attempts, int Max, string Function, string Owner, long Retention, bool Cancel, string Id)>();
        await using (var r = await select.ExecuteReaderAsync(cancellationToken))
        {
            while (await r.ReadAsync(cancellationToken))
                rows.Add((r.GetInt64(0), r.GetInt32(1), r.GetInt32(2), r.GetString(3), r.GetString(4), r.GetInt64(5), r.GetBoolean(6), r.GetString(7)));
        }
        await using var batch = new NpgsqlBatch();
        foreach (var row in rows)
        {
            JobState next;
            var runAt = release.Now;
            if (row.Cancel) next = JobState.Cancelled;
            else if (release.RetryPolicy is null) next = JobTransitions.AfterLeaseExpired(row.Attempts, row.Max);
            else (next, runAt) = JobTransitions.AfterFailure(row.Attempts, row.Max, true, release.Now, release.RetryPolicy);

            switch (next)
            {
                case JobState.Queued:
                    batch.BatchCommands.Add(RequeueCommand(row.Seq, release.Now));
                    release.Requeued++;
                    release.Functions.Add(row.Function);
                    break;
                case JobState.AwaitingRetry:
                    batch.BatchCommands.Add(RetryCommand(row.Seq, runAt, code, message, release.Now));
                    release.Requeued++;
                    break;
                default:
                    batch.BatchCommands.Add(FinishFailedCommand(row.Seq, next, code, message, release.Now, row.Retention));
                    if (next == JobState.Dead)
                    {
                        release.Dead++;
                        release.DeadJobs.Add(new DeadJob(row.Id, row.Function, row.Owner, code, message));
                    }
                    release.Owners.Add(row.Owner);
                    break;
            }
        }
        await ExecuteBatchAsync(connection, transaction, batch, cancellationToken);
        return rows.Count;
    }

    // ---- users, nonces, workers ----

    private const string UserColumns = "name, roles, disabled, created_at, max_queued, submit_rate, submit_burst, functions";

    public Task<UserRecord?> UserGetAsync(string name, CancellationToken cancellationToken) =>
        ReadAsync(async c =>
        {
            await using var command = Cmd(c, null, $"SELECT secret, {UserColumns} FROM {{s}}.users WHERE name = @name").P("name", name);
            await using var r = await command.ExecuteReaderAsync(cancellationToken);
            if (!await r.ReadAsync(cancellationToken)) return null;
            var summary = ReadUserSummary(r, 1);
            return new UserRecord
            {
                Name = summary.Name,
                // The only way a secret comes out of the database.
                Secret = _cipher.Unprotect(summary.Name, r.GetString(0)),
                Roles = summary.Roles,
                Disabled = summary.Disabled,
                CreatedAt = summary.CreatedAt,
                MaxQueued = summary.MaxQueued,
                SubmitRate = summary.SubmitRate,
                SubmitBurst = summary.SubmitBurst,
                Functions = summary.Functions,
            };
        }, cancellationToken);

    private static UserSummary ReadUserSummary(NpgsqlDataReader r, int o) => new()
    {
        Name = r.GetString(o),
        Roles = Pg.Strings(r, o + 1),
        Disabled = r.GetBoolean(o + 2),
        CreatedAt = Pg.At(r, o + 3),
        MaxQueued = Pg.LongOrNull(r, o + 4),
        SubmitRate = r.IsDBNull(o + 5) ? null : r.GetDouble(o + 5),
        SubmitBurst = r.IsDBNull(o + 6) ? null : r.GetDouble(o + 6),
        Functions = r.IsDBNull(o + 7) ? null : Pg.Strings(r, o + 7),
    };

    public Task<bool> UserInsertAsync(UserInsertParams p, CancellationToken cancellationToken)
    {
        // The first of the two places a secret goes into the database, always encrypted for this user.
        var secret = _cipher.Protect(p.Name, p.Secret);
        return TxAsync(async (c, t) =>
        {
            await using var command = Cmd(c, t,
                "INSERT INTO {s}.users (name, secret, roles, disabled, created_at) VALUES (@name, @secret, @roles, false, @now) " +
                "ON CONFLICT (name) DO NOTHING");
            command.P("name", p.Name).P("secret", secret).P("roles", p.Roles.ToArray()).P("now", Pg.Ts(p.Now));
            return await command.ExecuteNonQueryAsync(cancellationToken) == 1;
        }, cancellationToken);
    }

    public Task<int> UserCountAsync(CancellationToken cancellationToken) =>
        ReadAsync(async c =>
        {
            await using var command = Cmd(c, null, "SELECT count(*) FROM {s}.users");
            return (int)(long)(await command.ExecuteScalarAsync(cancellationToken))!;
        }, cancellationToken);

    public Task NonceRecordAsync(NonceRecordParams p, CancellationToken cancellationToken) =>
        // A nonce seen again (only possible for an expired row not yet swept) keeps the later expiry.
        OneTripTxAsync(
            "INSERT INTO {s}.nonces (user_name, nonce_hash, expires_at) VALUES (@user, @hash, @expires) " +
            "ON CONFLICT (user_name, nonce_hash) DO UPDATE SET expires_at = greatest({s}.nonces.expires_at, excluded.expires_at)",
            command => command.P("user", p.User).P("hash", p.NonceHash).P("expires", Pg.Ts(p.ExpiresAt)),
            _ => Task.FromResult(0), cancellationToken);

    public Task<bool> NonceClaimAsync(NonceRecordParams p, DateTimeOffset now, CancellationToken cancellationToken) =>
        // The primary key decides between two servers claiming the same nonce at once; an expired row
        // (not yet swept) is taken over. The commit does not wait for its own WAL flush
        // (synchronous_commit off for this transaction only): PostgreSQL's WAL is one sequence, so the
        // flush of any write this request commits next (a submit, a report) makes the nonce durable
        // too, as the SQLite store's group commit does. Only a request that writes nothing could have
        // its nonce forgotten by a database crash, and replaying a read changes nothing.
        OneTripTxAsync(
            "INSERT INTO {s}.nonces AS n (user_name, nonce_hash, expires_at) VALUES (@user, @hash, @expires) " +
            "ON CONFLICT (user_name, nonce_hash) DO UPDATE SET expires_at = excluded.expires_at WHERE n.expires_at <= @now " +
            "RETURNING 1",
            command => command.P("user", p.User).P("hash", p.NonceHash).P("expires", Pg.Ts(p.ExpiresAt)).P("now", Pg.Ts(now)),
            r => r.ReadAsync(cancellationToken), cancellationToken);

    public Task<bool> NonceSeenAsync(NonceSeenParams p, CancellationToken cancellationToken) =>
        ReadAsync(async c =>
        {
            await using var command = Cmd(c, null,
                "SELECT 1 FROM {s}.nonces WHERE user_name = @user AND nonce_hash = @hash AND expires_at > @now");
            command.P("user", p.User).P("hash", p.NonceHash).P("now", Pg.Ts(p.Now));
            return await command.ExecuteScalarAsync(cancellationToken) is not null;
        }, cancellationToken);

    public Task<int> NonceDeleteExpiredAsync(NonceDeleteExpiredParams p, CancellationToken cancellationToken)
    {
        if (p.Limit <= 0) return Task.FromResult(0);
        return TxAsync(async (c, t) =>
        {
            // Through the expiry index, a bounded batch; rows another sweeper holds are left to it.
            await using var command = Cmd(c, t,
                "DELETE FROM {s}.nonces n USING (SELECT user_name, nonce_hash FROM {s}.nonces WHERE expires_at <= @now " +
                "ORDER BY expires_at LIMIT @limit FOR UPDATE SKIP LOCKED) x WHERE n.user_name = x.user_name AND n.nonce_hash = x.nonce_hash");
            command.P("now", Pg.Ts(p.Now)).P("limit", p.Limit);
            return await command.ExecuteNonQueryAsync(cancellationToken);
        }, cancellationToken);
    }

    public Task WorkerUpsertAsync(WorkerUpsertParams p, CancellationToken cancellationToken) =>
        TxAsync(async (c, t) =>
        {
            // A registration replaces the whole row, as a new worker: not draining, not lost.
            await using var command = Cmd(c, t, NoFlushWait +
                "INSERT INTO {s}.workers (id, owner, name, functions, concurrency, registered_at, last_heartbeat_at, draining, lost_at) " +
                "VALUES (@id, @owner, @name, @functions, @concurrency, @now, @now, false, NULL) ON CONFLICT (id) DO UPDATE SET " +
                "owner = excluded.owner, name = excluded.name, functions = excluded.functions, concurrency = excluded.concurrency, " +
                "registered_at = excluded.registered_at, last_heartbeat_at = excluded.last_heartbeat_at, draining = false, lost_at = NULL");
            command.P("id", p.Id).P("owner", p.Owner).P("name", p.Name).P("functions", p.Functions.ToArray())
                .P("concurrency", p.Concurrency).P("now", Pg.Ts(p.Now));
            return await command.ExecuteNonQueryAsync(cancellationToken);
        }, cancellationToken);

    public Task<WorkerRecord?> WorkerGetAsync(string id, CancellationToken cancellationToken) =>
        ReadAsync(async c =>
        {
            await using var command = Cmd(c, null, $"SELECT {Pg.WorkerColumns} FROM {{s}}.workers WHERE id = @id").P("id", id);
            await using var r = await command.ExecuteReaderAsync(cancellationToken);
            return await r.ReadAsync(cancellationToken) ? Pg.ReadWorker(r) : null;
        }, cancellationToken);

    public const string CancelledErrorCode = "cancelled";
    public const string CancelledMessage = "Cancelled on request; the worker stopped the job.";

    public Task<WorkerHeartbeatResult> WorkerHeartbeatAsync(WorkerHeartbeatParams p, CancellationToken cancellationToken) =>
        TxAsync(async (c, t) =>
        {
            // Any cancelled endings below ride on the next flush too: lost, the job is still running with
            // its cancel requested, and the next heartbeat or the lease rescuer ends it cancelled again.
            await using (var touch = Cmd(c, t, NoFlushWait + "UPDATE {s}.workers SET last_heartbeat_at = @now, lost_at = NULL WHERE id = @id"))
            {
                touch.P("now", Pg.Ts(p.Now)).P("id", p.WorkerId);
                if (await touch.ExecuteNonQueryAsync(cancellationToken) == 0) return new WorkerHeartbeatResult(false, []);
            }
            // Extends the leases of the jobs the worker lists (a lease whose answer it never got runs
            // out and is rescued) and lists all its running jobs, in one statement.
            var running = new Dictionary<string, bool>(StringComparer.Ordinal);
            await using (var extend = Cmd(c, t,
                "UPDATE {s}.jobs SET lease_expires_at = CASE WHEN id = ANY(@ids) THEN @expires ELSE lease_expires_at END " +
                "WHERE worker_id = @worker AND state = 'running' RETURNING id, cancel_requested"))
            {
                extend.P("expires", Pg.Ts(p.LeaseExpiresAt)).P("worker", p.WorkerId).P("ids", p.RunningJobIds.ToArray());
                await using var r = await extend.ExecuteReaderAsync(cancellationToken);
                while (await r.ReadAsync(cancellationToken)) running[r.GetString(0)] = r.GetBoolean(1);
            }
            var cancel = new List<string>();
            foreach (var id in p.RunningJobIds)
            {
                if (!running.ContainsKey(id)) cancel.Add(id);
            }
            var dropped = new List<string>();
            foreach (var (id, cancelRequested) in running)
            {
                if (!cancelRequested) continue;
                cancel.Add(id);
                // Not listed by the worker: it has dropped the job (after an earlier cancel list) or never
                // started it, and will not report it; it ends cancelled now rather than running forever.
                if (!p.RunningJobIds.Contains(id, StringComparer.Ordinal)) dropped.Add(id);
            }
            var finishedOwners = new List<string>();
            if (dropped.Count > 0)
            {
                await using var finish = Cmd(c, t,
                    "UPDATE {s}.jobs SET state = 'cancelled', error_code = @code, error_message = @message, finished_at = @now, updated_at = @now, " +
                    "result_pending = true, result_expires_at = @now + retention_ms * interval '1 millisecond', lease_token = NULL, lease_expires_at = NULL " +
                    "WHERE id = ANY(@ids) AND worker_id = @worker AND state = 'running' AND cancel_requested RETURNING owner");
                finish.P("code", CancelledErrorCode).P("message", CancelledMessage).P("now", Pg.Ts(p.Now)).P("ids", dropped.ToArray()).P("worker", p.WorkerId);
                await using var r = await finish.ExecuteReaderAsync(cancellationToken);
                while (await r.ReadAsync(cancellationToken)) finishedOwners.Add(r.GetString(0));
            }
            return new WorkerHeartbeatResult(true, cancel) { FinishedOwners = finishedOwners };
        }, cancellationToken);

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        await _dataSource.DisposeAsync();
    }
}
