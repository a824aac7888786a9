using Dts.Contracts;
using Dts.Core.Storage;
using Microsoft.Data.Sqlite;

namespace Dts.Storage.Sqlite;

// The administration writes. Commands are prepared on first use so that a server nobody
// administers pays nothing for them.
internal sealed partial class WriterSession
{
    private SqliteCommand? _isDraining, _isPaused, _userUpdate, _userSetSecret, _userDeleteCancel, _userDeleteRequest,
        _userDeleteWorkers, _userDelete, _workerDrain, _retryLookup, _retryUniqueTaken, _retryQueue, _purgeDelete, _queueSet;

    /// <summary>True when the worker is registered and draining; an unknown worker id is not draining.</summary>
    private bool IsDraining(string workerId)
    {
        _isDraining ??= Sql.Command(_connection, "SELECT draining FROM workers WHERE id = $id", "$id");
        _isDraining.Parameters[0].Value = workerId;
        return _isDraining.ExecuteScalar() is long d && d != 0;
    }

    private bool IsPaused(string function)
    {
        _isPaused ??= Sql.Command(_connection, "SELECT paused FROM queues WHERE function = $function", "$function");
        _isPaused.Parameters[0].Value = function;
        return _isPaused.ExecuteScalar() is long d && d != 0;
    }

    public bool UserUpdate(UserUpdateParams p)
    {
        // A parameter left NULL keeps the column; 0 (or an empty list) clears a limit to NULL.
        _userUpdate ??= Sql.Command(_connection,
            "UPDATE users SET roles_json = coalesce($roles, roles_json), disabled = coalesce($disabled, disabled), " +
            "max_queued = CASE WHEN $max_queued IS NULL THEN max_queued WHEN $max_queued = 0 THEN NULL ELSE $max_queued END, " +
            "submit_rate = CASE WHEN $rate IS NULL THEN submit_rate WHEN $rate = 0 THEN NULL ELSE $rate END, " +
            "submit_burst = CASE WHEN $burst IS NULL THEN submit_burst WHEN $burst = 0 THEN NULL ELSE $burst END, " +
            "functions_json = CASE WHEN $functions IS NULL THEN functions_json WHEN $functions = '[]' THEN NULL ELSE $functions END " +
            "WHERE name = $name",
            "$roles", "$disabled", "$max_queued", "$rate", "$burst", "$functions", "$name");
        var ps = _userUpdate.Parameters;
        ps[0].Value = p.Roles is null ? DBNull.Value : Sql.ToJson(p.Roles);
        ps[1].Value = p.Disabled is { } d ? (d ? 1 : 0) : DBNull.Value;
        ps[2].Value = Sql.Db(p.MaxQueued);
        ps[3].Value = p.SubmitRate is { } rate ? rate : DBNull.Value;
        ps[4].Value = p.SubmitBurst is { } burst ? burst : DBNull.Value;
        ps[5].Value = p.Functions is null ? DBNull.Value : Sql.ToJson(p.Functions);
        ps[6].Value = p.Name;
        return _userUpdate.ExecuteNonQuery() == 1;
    }

    /// <summary>The second of the two places that write a secret (the other is <see cref="UserInsert"/>).</summary>
    public bool UserSetSecret(UserSetSecretParams p)
    {
        _userSetSecret ??= Sql.Command(_connection, "UPDATE users SET secret = $secret WHERE name = $name", "$secret", "$name");
        _userSetSecret.Parameters[0].Value = p.Secret;
        _userSetSecret.Parameters[1].Value = p.Name;
        return _userSetSecret.ExecuteNonQuery() == 1;
    }

    public UserDeleteResult UserDelete(UserDeleteParams p)
    {
        _userDelete ??= Sql.Command(_connection, "DELETE FROM users WHERE name = $name", "$name");
        _userDelete.Parameters[0].Value = p.Name;
        if (_userDelete.ExecuteNonQuery() == 0) return new UserDeleteResult(false, 0, []);

        var now = Sql.Ms(p.Now);
        // Jobs that are not running stop at once; their cancellation waits as a result like any other.
        _userDeleteCancel ??= Sql.Command(_connection,
            "UPDATE jobs SET state = 'cancelled', finished_at = $now, updated_at = $now, result_pending = 1, " +
            "result_expires_at = $now + retention_ms WHERE owner = $owner AND state IN ('queued', 'scheduled', 'awaiting_retry') " +
            "RETURNING function",
            "$now", "$owner");
        _userDeleteCancel.Parameters[0].Value = now;
        _userDeleteCancel.Parameters[1].Value = p.Name;
        long cancelled = 0;
        var functions = new HashSet<string>(StringComparer.Ordinal);
        using (var r = _userDeleteCancel.ExecuteReader())
        {
            while (r.Read())
            {
                cancelled++;
                functions.Add(r.GetString(0));
            }
        }
        // Running jobs are asked to stop; their workers learn it from the next heartbeat.
        _userDeleteRequest ??= Sql.Command(_connection,
            "UPDATE jobs SET cancel_requested = 1, updated_at = $now WHERE owner = $owner AND state = 'running'",
            "$now", "$owner");
        _userDeleteRequest.Parameters[0].Value = now;
        _userDeleteRequest.Parameters[1].Value = p.Name;
        cancelled += _userDeleteRequest.ExecuteNonQuery();

        _userDeleteWorkers ??= Sql.Command(_connection, "DELETE FROM workers WHERE owner = $owner", "$owner");
        _userDeleteWorkers.Parameters[0].Value = p.Name;
        _userDeleteWorkers.ExecuteNonQuery();
        return new UserDeleteResult(true, cancelled, [.. functions]);
    }

    public bool WorkerSetDraining(WorkerSetDrainingParams p)
    {
        _workerDrain ??= Sql.Command(_connection, "UPDATE workers SET draining = $draining WHERE id = $id", "$draining", "$id");
        _workerDrain.Parameters[0].Value = p.Draining ? 1 : 0;
        _workerDrain.Parameters[1].Value = p.Id;
        return _workerDrain.ExecuteNonQuery() == 1;
    }

    public JobRetryResult JobRetry(JobRetryParams p)
    {
        _retryLookup ??= Sql.Command(_connection, $"SELECT {Sql.JobColumns} FROM jobs WHERE id = $id", "$id");
        _retryLookup.Parameters[0].Value = p.Id;
        JobRecord job;
        long seq;
        using (var r = _retryLookup.ExecuteReader())
        {
            if (!r.Read()) return new JobRetryResult(JobRetryStatus.NotFound, null);
            seq = r.GetInt64(0);
            job = Sql.ReadJob(r);
        }
        if (job.State is not (JobState.Dead or JobState.AwaitingRetry or JobState.Cancelled))
            return new JobRetryResult(JobRetryStatus.NotRetryable, job);
        // An automatic key is held by this very row in every state (jobs_auto_key), so no other job can
        // hold it and re-queueing cannot clash. A caller's key was given up when the job ended.
        if (job.UniqueKey is { } key && !UniqueKeys.IsAutomatic(key) && job.State != JobState.AwaitingRetry)
        {
            // Another unfinished job holding the same unique key would make two of them; refuse rather than break the key.
            _retryUniqueTaken ??= Sql.Command(_connection, FindUniqueSql, "$owner", "$function", "$key");
            _retryUniqueTaken.Parameters[0].Value = job.Owner;
            _retryUniqueTaken.Parameters[1].Value = job.Function;
            _retryUniqueTaken.Parameters[2].Value = key;
            if (_retryUniqueTaken.ExecuteScalar() is not null) return new JobRetryResult(JobRetryStatus.UniqueKeyTaken, job);
        }
        _retryQueue ??= Sql.Command(_connection,
            "UPDATE jobs SET state = 'queued', attempts = 0, run_at = $now, updated_at = $now, error_code = NULL, " +
            "error_message = NULL, result_json = NULL, result_pending = 0, result_expires_at = NULL, finished_at = NULL, " +
            "cancel_requested = 0, lease_token = NULL, lease_expires_at = NULL, worker_id = NULL, progress_num = NULL, " +
            $"progress_den = NULL WHERE seq = $seq RETURNING {Sql.JobColumns}",
            "$now", "$seq");
        _retryQueue.Parameters[0].Value = Sql.Ms(p.Now);
        _retryQueue.Parameters[1].Value = seq;
        using (var r = _retryQueue.ExecuteReader())
        {
            r.Read();
            job = Sql.ReadJob(r);
        }
        return new JobRetryResult(JobRetryStatus.Retried, job);
    }

    /// <summary>
    /// Deletes the next matching jobs with a seq above <paramref name="afterSeq"/>, examining at most
    /// <see cref="JobPurgeParams.BatchSize"/> matches. Returns how many it deleted and where the next
    /// batch starts (null when nothing is left), so that no batch rescans rows an earlier one passed.
    /// </summary>
    public (int Deleted, long? NextAfterSeq) JobPurgeBatch(JobPurgeParams p, long afterSeq)
    {
        // Built per call: the state list varies; a purge is rare and each batch does far more work than the parse.
        using var select = _connection.CreateCommand();
        var states = new List<string>(p.States.Count);
        for (var i = 0; i < p.States.Count; i++)
        {
            if (!p.States[i].IsTerminal()) throw new ArgumentException("Only finished jobs can be purged.", nameof(p));
            states.Add($"$s{i}");
            select.Parameters.AddWithValue($"$s{i}", p.States[i].ToWire());
        }
        if (states.Count == 0) return (0, null);
        var where = $"seq > $after AND state IN ({string.Join(", ", states)})";
        select.Parameters.AddWithValue("$after", afterSeq);
        if (p.Function is not null)
        {
            where += " AND function = $function";
            select.Parameters.AddWithValue("$function", p.Function);
        }
        if (p.Owner is not null)
        {
            where += " AND owner = $owner";
            select.Parameters.AddWithValue("$owner", p.Owner);
        }
        if (p.FinishedBefore is { } before)
        {
            where += " AND finished_at < $before";
            select.Parameters.AddWithValue("$before", Sql.Ms(before));
        }
        select.CommandText = $"SELECT seq FROM jobs WHERE {where} ORDER BY seq LIMIT $limit";
        select.Parameters.AddWithValue("$limit", p.BatchSize);
        var seqs = new List<long>(p.BatchSize);
        using (var r = select.ExecuteReader())
        {
            while (r.Read()) seqs.Add(r.GetInt64(0));
        }
        _purgeDelete ??= Sql.Command(_connection, "DELETE FROM jobs WHERE seq = $seq", "$seq");
        foreach (var seq in seqs)
        {
            _purgeDelete.Parameters[0].Value = seq;
            _purgeDelete.ExecuteNonQuery();
        }
        return (seqs.Count, seqs.Count < p.BatchSize ? null : seqs[^1]);
    }

    public QueueRecord QueueSetPaused(QueueSetPausedParams p)
    {
        _queueSet ??= Sql.Command(_connection,
            "INSERT INTO queues (function, paused, updated_at) VALUES ($function, $paused, $now) " +
            "ON CONFLICT (function) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at " +
            "RETURNING paused, (SELECT count(*) FROM jobs WHERE function = $function AND state = 'queued')",
            "$function", "$paused", "$now");
        _queueSet.Parameters[0].Value = p.Function;
        _queueSet.Parameters[1].Value = p.Paused ? 1 : 0;
        _queueSet.Parameters[2].Value = Sql.Ms(p.Now);
        using var r = _queueSet.ExecuteReader();
        r.Read();
        return new QueueRecord(p.Function, r.GetInt64(0) != 0, r.GetInt64(1));
    }

    private void DisposeAdmin()
    {
        foreach (var command in new[]
                 {
                     _isDraining, _isPaused, _userUpdate, _userSetSecret, _userDeleteCancel, _userDeleteRequest,
                     _userDeleteWorkers, _userDelete, _workerDrain, _retryLookup, _retryUniqueTaken, _retryQueue, _purgeDelete, _queueSet,
                 })
        {
            command?.Dispose();
        }
    }
}
