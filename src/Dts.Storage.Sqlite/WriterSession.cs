using Dts.Contracts;
using Dts.Core;
using Dts.Core.Storage;
using Microsoft.Data.Sqlite;

namespace Dts.Storage.Sqlite;

/// <summary>
/// The one writer connection and its prepared statements. Used only by the writer loop, always
/// inside the loop's transaction and an operation's savepoint, so these methods never begin or
/// commit anything themselves.
/// </summary>
internal sealed partial class WriterSession : IDisposable
{
    private const string LeaseTokenFunction = "dts_lease_token";
    private const string CoalescingStates = "state IN ('queued', 'scheduled', 'running', 'awaiting_retry')";

    /// <summary>The term that puts a row in jobs_auto_key (0007_automatic_unique_keys.sql); queries repeat it verbatim.</summary>
    internal const string AutomaticKey = "substr(unique_key, 1, 9) = 'dts-auto:'";
    /// <summary>The term that, with the states, puts a row in jobs_unique_key.</summary>
    internal const string CallersKey = "substr(unique_key, 1, 9) <> 'dts-auto:'";

    /// <summary>An unfinished job holding a caller's key (through jobs_unique_key).</summary>
    internal const string FindUniqueSql =
        "SELECT id, state FROM jobs WHERE owner = $owner AND function = $function AND unique_key = $key AND unique_key IS NOT NULL " +
        $"AND {CallersKey} AND {CoalescingStates}";
    /// <summary>The job, in any state, holding an automatic key (through jobs_auto_key).</summary>
    internal const string FindAutoUniqueSql =
        $"SELECT id, state FROM jobs WHERE owner = $owner AND function = $function AND unique_key = $key AND {AutomaticKey}";
    // One function per query so that SQLite walks jobs_ready in order instead of sorting the queue.
    internal const string LeaseCandidatesSql =
        "SELECT rank, seq FROM jobs WHERE function = $function AND state = 'queued' ORDER BY rank, seq LIMIT $max";
    internal const string PromoteSql =
        "UPDATE jobs SET state = 'queued', updated_at = $now WHERE seq IN (SELECT seq FROM jobs " +
        "WHERE state IN ('scheduled', 'awaiting_retry') AND run_at <= $now ORDER BY run_at LIMIT $limit) RETURNING function";
    internal const string NextDueSql =
        "SELECT min(run_at) FROM jobs WHERE state IN ('scheduled', 'awaiting_retry') AND run_at > $now";
    internal const string ExpiredSql =
        $"SELECT {ReleaseColumns} FROM jobs WHERE state = 'running' AND lease_expires_at < $now ORDER BY lease_expires_at LIMIT $limit";
    internal const string WorkerRunningSql =
        "SELECT id, cancel_requested FROM jobs WHERE worker_id = $worker AND state = 'running'";

    private readonly SqliteConnection _connection;
    private readonly SqliteCommand _begin, _commit, _rollback, _savepoint, _release, _rollbackTo;
    private readonly SqliteCommand _findUnique, _findAutoUnique, _insertJob, _leaseCandidates, _leaseMany, _succeedHeld;
    private readonly SqliteCommand _reportLookup, _progress, _succeed, _retry, _finishFailed;
    private readonly SqliteCommand _ack, _cancelLookup, _cancelNow, _cancelRequest;
    private readonly SqliteCommand _promote, _nextDue, _expired, _requeue;
    private readonly SqliteCommand _userInsert, _workerUpsert, _workerTouch, _extendLeases, _workerRunning;
    private readonly SqliteCommand _nonceRecord, _nonceDeleteExpired;

    // Reused between calls; only the writer loop's thread touches them.
    private readonly List<(long Rank, long Seq)> _candidates = [];
    private readonly Dictionary<long, int> _leaseOrder = [];
    private readonly Dictionary<string, int> _reportIndex = new(StringComparer.Ordinal);
    private readonly System.Buffers.ArrayBufferWriter<byte> _itemsBuffer = new();
    private readonly System.Text.StringBuilder _seqList = new();
    private readonly HashSet<string> _functionSet = new(StringComparer.Ordinal);
    private readonly Dictionary<string, bool> _running = new(StringComparer.Ordinal);

    private readonly Dictionary<SqliteSynchronous, SqliteCommand> _setSynchronous;
    private SqliteSynchronous _synchronous;

    /// <param name="synchronous">The level the connection was opened with (<c>PRAGMA synchronous</c>).</param>
    public WriterSession(SqliteConnection connection, SqliteSynchronous synchronous)
    {
        _connection = connection;
        _synchronous = synchronous;
        _setSynchronous = Enum.GetValues<SqliteSynchronous>().ToDictionary(l => l, l => Sql.Command(connection, $"PRAGMA synchronous = {PragmaValue(l)}"));
        _begin = Sql.Command(connection, "BEGIN IMMEDIATE");
        _commit = Sql.Command(connection, "COMMIT");
        _rollback = Sql.Command(connection, "ROLLBACK");
        _savepoint = Sql.Command(connection, "SAVEPOINT op");
        _release = Sql.Command(connection, "RELEASE op");
        _rollbackTo = Sql.Command(connection, "ROLLBACK TO op");

        _findUnique = Sql.Command(connection, FindUniqueSql, "$owner", "$function", "$key");
        _findAutoUnique = Sql.Command(connection, FindAutoUniqueSql, "$owner", "$function", "$key");
        _insertJob = Sql.Command(connection,
            "INSERT INTO jobs (id, function, owner, state, args_json, kwargs_json, rank, unique_key, tags_json, run_at, " +
            "attempts, max_attempts, timeout_ms, retention_ms, created_at, updated_at) VALUES ($id, $function, $owner, " +
            "$state, $args, $kwargs, $rank, $key, $tags, $run_at, 0, $max_attempts, $timeout, $retention, $now, $now) " +
            // A clash with a held unique key (jobs_unique_key or jobs_auto_key) or with an id (never expected)
            // stores nothing; JobInsertMany sorts out which.
            "ON CONFLICT DO NOTHING",
            "$id", "$function", "$owner", "$state", "$args", "$kwargs", "$rank", "$key", "$tags", "$run_at",
            "$max_attempts", "$timeout", "$retention", "$now");
        _leaseCandidates = Sql.Command(connection, LeaseCandidatesSql, "$function", "$max");
        // Fresh random tokens per row from .NET's cryptographic generator, so one statement can lease a whole batch.
        connection.CreateFunction(LeaseTokenFunction, JobIds.NewLeaseToken, isDeterministic: false);
        _leaseMany = Sql.Command(connection,
            $"UPDATE jobs SET state = 'running', lease_token = {LeaseTokenFunction}(), lease_expires_at = $expires, worker_id = $worker, " +
            "attempts = attempts + 1, started_at = coalesce(started_at, $now), updated_at = $now, " +
            // The attempt's hard deadline, enforced by the timeout sweeper (0004_schedules.sql).
            "deadline_at = CASE WHEN timeout_ms IS NULL THEN NULL ELSE $now + timeout_ms END " +
            $"WHERE seq IN (SELECT value FROM json_each($seqs)) AND state = 'queued' RETURNING {Sql.JobColumns}",
            "$expires", "$worker", "$now", "$seqs");
        // A batch of success reports in one statement: each applies only when its reporter holds the lease.
        _succeedHeld = Sql.Command(connection,
            "UPDATE jobs SET state = 'succeeded', result_json = r.result, finished_at = $now, updated_at = $now, " +
            "result_pending = 1, result_expires_at = $now + retention_ms, lease_token = NULL, lease_expires_at = NULL " +
            "FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS token, json_extract(value, '$[2]') AS result " +
            "FROM json_each($items)) AS r " +
            // The unary + keeps SQLite on the id index rather than a partial index of running jobs.
            "WHERE jobs.id = r.id AND +jobs.state = 'running' AND jobs.lease_token = r.token RETURNING jobs.id, owner, function",
            "$now", "$items");

        _reportLookup = Sql.Command(connection,
            "SELECT seq, state, lease_token, attempts, max_attempts, owner, function, retention_ms, cancel_requested FROM jobs WHERE id = $id",
            "$id");
        _progress = Sql.Command(connection,
            "UPDATE jobs SET progress_num = $num, progress_den = $den, updated_at = $now WHERE seq = $seq",
            "$num", "$den", "$now", "$seq");
        _succeed = Sql.Command(connection,
            "UPDATE jobs SET state = 'succeeded', result_json = $result, finished_at = $now, updated_at = $now, " +
            "result_pending = 1, result_expires_at = $expires, lease_token = NULL, lease_expires_at = NULL WHERE seq = $seq",
            "$result", "$now", "$expires", "$seq");
        _retry = Sql.Command(connection,
            "UPDATE jobs SET state = 'awaiting_retry', run_at = $run_at, error_code = $code, error_message = $message, " +
            "updated_at = $now, lease_token = NULL, lease_expires_at = NULL WHERE seq = $seq",
            "$run_at", "$code", "$message", "$now", "$seq");
        // For dead and cancelled endings of a running job: the result (an error) waits for its owner.
        _finishFailed = Sql.Command(connection,
            "UPDATE jobs SET state = $state, error_code = $code, error_message = $message, finished_at = $now, " +
            "updated_at = $now, result_pending = 1, result_expires_at = $expires, lease_token = NULL, " +
            "lease_expires_at = NULL WHERE seq = $seq",
            "$state", "$code", "$message", "$now", "$expires", "$seq");

        _ack = Sql.Command(connection,
            // The unary + keeps SQLite on the id index: on owner it would walk every job the owner ever had.
            "UPDATE jobs SET result_pending = 0 WHERE id IN (SELECT value FROM json_each($ids)) AND +owner = $owner AND +result_pending = 1",
            "$ids", "$owner");
        _cancelLookup = Sql.Command(connection, $"SELECT {Sql.JobColumns} FROM jobs WHERE id = $id", "$id");
        _cancelNow = Sql.Command(connection,
            "UPDATE jobs SET state = 'cancelled', finished_at = $now, updated_at = $now, result_pending = 1, " +
            $"result_expires_at = $now + retention_ms WHERE seq = $seq RETURNING {Sql.JobColumns}",
            "$now", "$seq");
        _cancelRequest = Sql.Command(connection,
            $"UPDATE jobs SET cancel_requested = 1, updated_at = $now WHERE seq = $seq RETURNING {Sql.JobColumns}",
            "$now", "$seq");

        _promote = Sql.Command(connection, PromoteSql, "$now", "$limit");
        _nextDue = Sql.Command(connection, NextDueSql, "$now");
        _expired = Sql.Command(connection, ExpiredSql, "$now", "$limit");
        _requeue = Sql.Command(connection,
            "UPDATE jobs SET state = 'queued', lease_token = NULL, lease_expires_at = NULL, worker_id = NULL, " +
            "updated_at = $now WHERE seq = $seq",
            "$now", "$seq");

        _userInsert = Sql.Command(connection,
            "INSERT INTO users (name, secret, roles_json, disabled, created_at) VALUES ($name, $secret, $roles, 0, $now) " +
            "ON CONFLICT (name) DO NOTHING",
            "$name", "$secret", "$roles", "$now");
        _workerUpsert = Sql.Command(connection,
            "INSERT OR REPLACE INTO workers (id, owner, name, functions_json, concurrency, registered_at, last_heartbeat_at) " +
            "VALUES ($id, $owner, $name, $functions, $concurrency, $now, $now)",
            "$id", "$owner", "$name", "$functions", "$concurrency", "$now");
        _workerTouch = Sql.Command(connection, "UPDATE workers SET last_heartbeat_at = $now, lost_at = NULL WHERE id = $id", "$now", "$id");
        _extendLeases = Sql.Command(connection,
            // Only the jobs the worker lists: a lease whose answer it never got runs out and is rescued.
            "UPDATE jobs SET lease_expires_at = $expires WHERE worker_id = $worker AND state = 'running' " +
            "AND id IN (SELECT value FROM json_each($ids))",
            "$expires", "$worker", "$ids");
        _workerRunning = Sql.Command(connection, WorkerRunningSql, "$worker");
        // A nonce seen again (only possible for an expired row not yet swept) keeps the later expiry.
        _nonceRecord = Sql.Command(connection,
            "INSERT INTO nonces (user_name, nonce_hash, expires_at) VALUES ($user, $hash, $expires) " +
            "ON CONFLICT (user_name, nonce_hash) DO UPDATE SET expires_at = max(expires_at, excluded.expires_at)",
            "$user", "$hash", "$expires");
        // Through the expiry index, a bounded batch, so one sweep never holds the writer for long.
        _nonceDeleteExpired = Sql.Command(connection,
            "DELETE FROM nonces WHERE rowid IN (SELECT rowid FROM nonces WHERE expires_at <= $now ORDER BY expires_at LIMIT $limit)",
            "$now", "$limit");
    }

    public SqliteConnection Connection => _connection;

    public void Begin() => _begin.ExecuteNonQuery();

    /// <summary>
    /// Sets <c>PRAGMA synchronous</c> for the following commits; a no-op when it is set already.
    /// Outside a transaction only: SQLite refuses the change inside one.
    /// </summary>
    public void SetSynchronous(SqliteSynchronous level)
    {
        if (level == _synchronous) return;
        _setSynchronous[level].ExecuteNonQuery();
        _synchronous = level;
    }

    public static string PragmaValue(SqliteSynchronous level) => level switch
    {
        SqliteSynchronous.Off => "OFF",
        SqliteSynchronous.Normal => "NORMAL",
        _ => "FULL",
    };
    public void Commit() => _commit.ExecuteNonQuery();
    public void Rollback() => _rollback.ExecuteNonQuery();
    public void Savepoint() => _savepoint.ExecuteNonQuery();
    public void Release() => _release.ExecuteNonQuery();

    public void RollbackToSavepoint()
    {
        _rollbackTo.ExecuteNonQuery();
        _release.ExecuteNonQuery();
    }

    public IReadOnlyList<JobInsertResult> JobInsertMany(JobInsertManyParams p)
    {
        var results = new JobInsertResult[p.Jobs.Count];
        var now = Sql.Ms(p.Now);
        for (var i = 0; i < p.Jobs.Count; i++)
        {
            var job = p.Jobs[i];
            var state = JobRules.InitialState(job, p.Now);
            var ps = _insertJob.Parameters;
            ps[0].Value = job.Id;
            ps[1].Value = job.Function;
            ps[2].Value = job.Owner;
            ps[3].Value = state.ToWire();
            ps[4].Value = job.ArgsJson;
            ps[5].Value = job.KwargsJson;
            ps[6].Value = job.Priority.Rank;
            ps[7].Value = Sql.Db(job.UniqueKey);
            ps[8].Value = Sql.Db(job.TagsJson);
            ps[9].Value = Sql.Ms(job.RunAt);
            ps[10].Value = job.MaxAttempts;
            ps[11].Value = job.Timeout is { } t ? Sql.Ms(t) : DBNull.Value;
            ps[12].Value = Sql.Ms(job.Retention);
            ps[13].Value = now;
            // The insert itself probes the unique-key index; only a job it refused needs looking up.
            if (_insertJob.ExecuteNonQuery() == 1)
            {
                results[i] = new JobInsertResult(job.Id, state, false, job.Function);
                continue;
            }
            results[i] = FindCoalescing(job)
                ?? throw new InvalidOperationException($"Job '{job.Id}' was not stored: a job with that id exists already.");
        }
        return results;
    }

    /// <summary>
    /// The job of the same owner, function and unique key that <paramref name="job"/> attaches to: for
    /// an automatic key the one holding it in any state, for a caller's key the unfinished one.
    /// </summary>
    private JobInsertResult? FindCoalescing(NewJob job)
    {
        if (job.UniqueKey is not { } key) return null;
        var find = UniqueKeys.IsAutomatic(key) ? _findAutoUnique : _findUnique;
        find.Parameters[0].Value = job.Owner;
        find.Parameters[1].Value = job.Function;
        find.Parameters[2].Value = key;
        using var r = find.ExecuteReader();
        return r.Read() ? new JobInsertResult(r.GetString(0), JobStates.ParseStored(r.GetString(1)), true, job.Function) : null;
    }

    public IReadOnlyList<JobRecord> JobLease(JobLeaseParams p)
    {
        if (p.Max <= 0 || p.Functions.Count == 0 || IsDraining(p.WorkerId) || IsSilent(p.WorkerId, p.Now - p.LeaseDuration, p.RequestedAt ?? p.Now)) return [];
        _candidates.Clear();
        _functionSet.Clear();
        foreach (var function in p.Functions)
        {
            if (!_functionSet.Add(function) || IsPaused(function)) continue;
            _leaseCandidates.Parameters[0].Value = function;
            _leaseCandidates.Parameters[1].Value = p.Max;
            using var r = _leaseCandidates.ExecuteReader();
            while (r.Read()) _candidates.Add((r.GetInt64(0), r.GetInt64(1)));
        }
        if (_candidates.Count == 0) return [];
        _candidates.Sort();

        var now = Sql.Ms(p.Now);
        var count = Math.Min(p.Max, _candidates.Count);
        _leaseOrder.Clear();
        _seqList.Clear().Append('[');
        for (var i = 0; i < count; i++)
        {
            var seq = _candidates[i].Seq;
            _leaseOrder[seq] = i;
            if (i > 0) _seqList.Append(',');
            _seqList.Append(seq.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        _seqList.Append(']');
        var ps = _leaseMany.Parameters;
        ps[0].Value = now + Sql.Ms(p.LeaseDuration);
        ps[1].Value = p.WorkerId;
        ps[2].Value = now;
        ps[3].Value = _seqList.ToString();
        // RETURNING yields rows in no promised order; the answer keeps the queue's order.
        var slots = new JobRecord?[count];
        var leasedCount = 0;
        using (var r = _leaseMany.ExecuteReader())
        {
            while (r.Read())
            {
                slots[_leaseOrder[r.GetInt64(0)]] = Sql.ReadJob(r);
                leasedCount++;
            }
        }
        var leased = new List<JobRecord>(leasedCount);
        foreach (var job in slots)
        {
            if (job is not null) leased.Add(job);
        }
        return leased;
    }

    public IReadOnlyList<JobReportResult> JobReportMany(JobReportManyParams p)
    {
        var results = new JobReportResult[p.Items.Count];
        var now = Sql.Ms(p.Now);
        SucceedHeldBatch(p.Items, results, now);
        for (var i = 0; i < p.Items.Count; i++)
        {
            var item = p.Items[i];
            if (results[i] is not null) continue;
            long seq;
            JobState state;
            string? token;
            int attempts, maxAttempts;
            string owner, function;
            long retention;
            bool cancelRequested;
            _reportLookup.Parameters[0].Value = item.JobId;
            using (var r = _reportLookup.ExecuteReader())
            {
                if (!r.Read())
                {
                    results[i] = new JobReportResult(item.JobId, JobReportStatus.NotFound, null, null, null);
                    continue;
                }
                seq = r.GetInt64(0);
                state = JobStates.ParseStored(r.GetString(1));
                token = r.IsDBNull(2) ? null : r.GetString(2);
                attempts = r.GetInt32(3);
                maxAttempts = r.GetInt32(4);
                owner = r.GetString(5);
                function = r.GetString(6);
                retention = r.GetInt64(7);
                cancelRequested = r.GetInt64(8) != 0;
            }
            if (state != JobState.Running || !string.Equals(token, item.LeaseToken, StringComparison.Ordinal))
            {
                // The owner is withheld: the reporter is not the job's current holder.
                results[i] = new JobReportResult(item.JobId, JobReportStatus.StaleLease, state, null, function);
                continue;
            }

            JobState after;
            switch (item.Kind)
            {
                case JobReportKind.Progress:
                    _progress.Parameters[0].Value = Sql.Db(item.ProgressNumerator);
                    _progress.Parameters[1].Value = Sql.Db(item.ProgressDenominator);
                    _progress.Parameters[2].Value = now;
                    _progress.Parameters[3].Value = seq;
                    _progress.ExecuteNonQuery();
                    after = JobState.Running;
                    break;
                case JobReportKind.Succeed:
                    _succeed.Parameters[0].Value = Sql.Db(item.ResultJson);
                    _succeed.Parameters[1].Value = now;
                    _succeed.Parameters[2].Value = now + retention;
                    _succeed.Parameters[3].Value = seq;
                    _succeed.ExecuteNonQuery();
                    after = JobState.Succeeded;
                    break;
                case JobReportKind.Fail:
                    // A job whose cancellation was requested ends cancelled rather than being retried.
                    var (next, runAt) = cancelRequested
                        ? (JobState.Cancelled, p.Now)
                        : JobTransitions.AfterFailure(attempts, maxAttempts, item.Retry, p.Now, p.RetryPolicy);
                    if (next == JobState.AwaitingRetry)
                    {
                        _retry.Parameters[0].Value = Sql.Ms(runAt);
                        _retry.Parameters[1].Value = Sql.Db(item.ErrorCode);
                        _retry.Parameters[2].Value = Sql.Db(item.ErrorMessage);
                        _retry.Parameters[3].Value = now;
                        _retry.Parameters[4].Value = seq;
                        _retry.ExecuteNonQuery();
                    }
                    else
                    {
                        FinishFailed(seq, next, item.ErrorCode, item.ErrorMessage, now, retention);
                    }
                    after = next;
                    break;
                default:
                    throw new ArgumentOutOfRangeException(nameof(p), item.Kind, "Unknown report kind.");
            }
            results[i] = new JobReportResult(item.JobId, JobReportStatus.Ok, after, owner, function);
        }
        return results;
    }

    /// <summary>
    /// When every item is a success report of a distinct job (the usual batch), applies those whose
    /// lease is held in one statement and fills their results; the rest stay null for the per-item path,
    /// which then finds them not found or stale. Mixed batches keep their order and go item by item.
    /// </summary>
    private void SucceedHeldBatch(IReadOnlyList<JobReportItem> items, JobReportResult[] results, long now)
    {
        _reportIndex.Clear();
        for (var i = 0; i < items.Count; i++)
        {
            var item = items[i];
            if (item.Kind != JobReportKind.Succeed || item.LeaseToken is null || !_reportIndex.TryAdd(item.JobId, i)) return;
        }
        _itemsBuffer.Clear();
        using (var json = new System.Text.Json.Utf8JsonWriter(_itemsBuffer))
        {
            json.WriteStartArray();
            foreach (var item in items)
            {
                json.WriteStartArray();
                json.WriteStringValue(item.JobId);
                json.WriteStringValue(item.LeaseToken);
                if (item.ResultJson is null) json.WriteNullValue();
                else json.WriteStringValue(item.ResultJson);
                json.WriteEndArray();
            }
            json.WriteEndArray();
        }
        _succeedHeld.Parameters[0].Value = now;
        _succeedHeld.Parameters[1].Value = System.Text.Encoding.UTF8.GetString(_itemsBuffer.WrittenSpan);
        using var r = _succeedHeld.ExecuteReader();
        while (r.Read())
        {
            var i = _reportIndex[r.GetString(0)];
            results[i] = new JobReportResult(items[i].JobId, JobReportStatus.Ok, JobState.Succeeded, r.GetString(1), r.GetString(2));
        }
    }

    private void FinishFailed(long seq, JobState state, string? code, string? message, long now, long retention)
    {
        var ps = _finishFailed.Parameters;
        ps[0].Value = state.ToWire();
        ps[1].Value = Sql.Db(code);
        ps[2].Value = Sql.Db(message);
        ps[3].Value = now;
        ps[4].Value = now + retention;
        ps[5].Value = seq;
        _finishFailed.ExecuteNonQuery();
    }

    public int JobResultsAck(JobResultsAckParams p)
    {
        if (p.Ids.Count == 0) return 0;
        _ack.Parameters[0].Value = Sql.ToJson(p.Ids);
        _ack.Parameters[1].Value = p.Owner;
        return _ack.ExecuteNonQuery();
    }

    public JobCancelResult JobCancel(JobCancelParams p)
    {
        JobRecord job;
        long seq;
        _cancelLookup.Parameters[0].Value = p.Id;
        using (var r = _cancelLookup.ExecuteReader())
        {
            if (!r.Read()) return new JobCancelResult(JobCancelStatus.NotFound, null);
            seq = r.GetInt64(0);
            job = Sql.ReadJob(r);
        }
        if (p.Owner is not null && !string.Equals(p.Owner, job.Owner, StringComparison.Ordinal))
            return new JobCancelResult(JobCancelStatus.NotFound, null);
        if (job.State.IsTerminal()) return new JobCancelResult(JobCancelStatus.AlreadyFinished, job);

        var running = job.State == JobState.Running;
        var command = running ? _cancelRequest : _cancelNow;
        command.Parameters[0].Value = Sql.Ms(p.Now);
        command.Parameters[1].Value = seq;
        using (var r = command.ExecuteReader())
        {
            r.Read();
            job = Sql.ReadJob(r);
        }
        return new JobCancelResult(running ? JobCancelStatus.CancelRequested : JobCancelStatus.Cancelled, job);
    }

    public JobPromoteDueResult JobPromoteDue(JobPromoteDueParams p)
    {
        var now = Sql.Ms(p.Now);
        var promoted = 0;
        _functionSet.Clear();
        if (p.Limit > 0)
        {
            _promote.Parameters[0].Value = now;
            _promote.Parameters[1].Value = p.Limit;
            using var r = _promote.ExecuteReader();
            while (r.Read())
            {
                promoted++;
                _functionSet.Add(r.GetString(0));
            }
        }
        _nextDue.Parameters[0].Value = now;
        var next = _nextDue.ExecuteScalar();
        return new JobPromoteDueResult(promoted, [.. _functionSet], next is long ms ? Sql.At(ms) : null);
    }

    public JobRescueExpiredResult JobRescueExpired(JobRescueExpiredParams p)
    {
        if (p.Limit <= 0) return new JobRescueExpiredResult(0, 0, [], []);
        var now = Sql.Ms(p.Now);
        _expired.Parameters[0].Value = now;
        _expired.Parameters[1].Value = p.Limit;
        // No retry policy: queued again at once, or dead with no attempt left (cancel-requested: cancelled).
        var release = new JobRelease(this, now);
        release.Run(_expired, JobTransitions.LeaseExpiredErrorCode, JobTransitions.LeaseExpiredMessage);
        return release.Result();
    }

    public bool UserInsert(UserInsertParams p)
    {
        _userInsert.Parameters[0].Value = p.Name;
        _userInsert.Parameters[1].Value = p.Secret;
        _userInsert.Parameters[2].Value = Sql.ToJson(p.Roles);
        _userInsert.Parameters[3].Value = Sql.Ms(p.Now);
        return _userInsert.ExecuteNonQuery() == 1;
    }

    public bool NonceRecord(NonceRecordParams p)
    {
        _nonceRecord.Parameters[0].Value = p.User;
        _nonceRecord.Parameters[1].Value = p.NonceHash;
        _nonceRecord.Parameters[2].Value = Sql.Ms(p.ExpiresAt);
        _nonceRecord.ExecuteNonQuery();
        return true;
    }

    public int NonceDeleteExpired(NonceDeleteExpiredParams p)
    {
        if (p.Limit <= 0) return 0;
        _nonceDeleteExpired.Parameters[0].Value = Sql.Ms(p.Now);
        _nonceDeleteExpired.Parameters[1].Value = p.Limit;
        return _nonceDeleteExpired.ExecuteNonQuery();
    }

    public bool WorkerUpsert(WorkerUpsertParams p)
    {
        var ps = _workerUpsert.Parameters;
        ps[0].Value = p.Id;
        ps[1].Value = p.Owner;
        ps[2].Value = p.Name;
        ps[3].Value = Sql.ToJson(p.Functions);
        ps[4].Value = p.Concurrency;
        ps[5].Value = Sql.Ms(p.Now);
        _workerUpsert.ExecuteNonQuery();
        return true;
    }

    public WorkerHeartbeatResult WorkerHeartbeat(WorkerHeartbeatParams p)
    {
        _workerTouch.Parameters[0].Value = Sql.Ms(p.Now);
        _workerTouch.Parameters[1].Value = p.WorkerId;
        if (_workerTouch.ExecuteNonQuery() == 0) return new WorkerHeartbeatResult(false, []);

        _extendLeases.Parameters[0].Value = Sql.Ms(p.LeaseExpiresAt);
        _extendLeases.Parameters[1].Value = p.WorkerId;
        _extendLeases.Parameters[2].Value = Sql.ToJson(p.RunningJobIds);
        _extendLeases.ExecuteNonQuery();

        _running.Clear();
        _workerRunning.Parameters[0].Value = p.WorkerId;
        using (var r = _workerRunning.ExecuteReader())
        {
            while (r.Read()) _running[r.GetString(0)] = r.GetInt64(1) != 0;
        }
        var cancel = new List<string>();
        foreach (var id in p.RunningJobIds)
        {
            if (!_running.ContainsKey(id)) cancel.Add(id);
        }
        List<string>? finishedOwners = null;
        foreach (var (id, cancelRequested) in _running)
        {
            if (!cancelRequested) continue;
            cancel.Add(id);
            // Not listed by the worker: it has dropped the job (after an earlier cancel list) or
            // never started it, and will not report it; it ends cancelled now rather than running forever.
            if (!p.RunningJobIds.Contains(id, StringComparer.Ordinal) && FinishDroppedCancel(id, p.WorkerId, p.Now) is { } owner)
                (finishedOwners ??= []).Add(owner);
        }
        return new WorkerHeartbeatResult(true, cancel) { FinishedOwners = finishedOwners ?? [] };
    }

    public void Dispose()
    {
        foreach (var command in (SqliteCommand[])
                 [
                     _begin, _commit, _rollback, _savepoint, _release, _rollbackTo, _findUnique, _findAutoUnique, _insertJob,
                     _leaseCandidates, _leaseMany, _succeedHeld, _reportLookup, _progress, _succeed, _retry, _finishFailed, _ack,
                     _cancelLookup, _cancelNow, _cancelRequest, _promote, _nextDue, _expired, _requeue, _userInsert,
                     _workerUpsert, _workerTouch, _extendLeases, _workerRunning, _nonceRecord, _nonceDeleteExpired,
                     .. _setSynchronous.Values,
                 ])
        {
            command.Dispose();
        }
        DisposeAdmin();
        DisposeLogs();
        DisposeDaemons();
        _connection.Dispose();
    }
}
