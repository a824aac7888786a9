using Dts.Contracts;
using Dts.Core;
using Dts.Core.Storage;
using Microsoft.Data.Sqlite;

namespace Dts.Storage.Sqlite;

// The daemons' writes: schedules, lost workers, timeouts, the porter. Prepared on first use.
internal sealed partial class WriterSession
{
    internal const string ScheduleColumns =
        "id, owner, function, template_json, cron, time_zone, paused, next_fire_at, last_fired_at, last_job_id, created_at, updated_at";

    private SqliteCommand? _scheduleInsert, _scheduleDelete, _schedulePause, _scheduleFire, _scheduleFired,
        _lostCandidates, _markLost, _workerEvent, _workerJobs, _timedOut, _porterPick, _porterDelete, _finishDropped, _isSilent;

    public static ScheduleRecord ReadSchedule(SqliteDataReader r) => new()
    {
        Id = r.GetString(0),
        Owner = r.GetString(1),
        Function = r.GetString(2),
        TemplateJson = r.GetString(3),
        Cron = r.GetString(4),
        TimeZone = r.GetString(5),
        Paused = r.GetInt64(6) != 0,
        NextFireAt = r.IsDBNull(7) ? null : Sql.At(r.GetInt64(7)),
        LastFiredAt = r.IsDBNull(8) ? null : Sql.At(r.GetInt64(8)),
        LastJobId = r.IsDBNull(9) ? null : r.GetString(9),
        CreatedAt = Sql.At(r.GetInt64(10)),
        UpdatedAt = Sql.At(r.GetInt64(11)),
    };

    private static object Db(DateTimeOffset? t) => t is { } x ? Sql.Ms(x) : DBNull.Value;

    public bool ScheduleInsert(ScheduleRecord s)
    {
        _scheduleInsert ??= Sql.Command(_connection,
            "INSERT INTO schedules (id, owner, function, template_json, cron, time_zone, paused, next_fire_at, created_at, updated_at) " +
            "VALUES ($id, $owner, $function, $template, $cron, $tz, $paused, $next, $now, $now) ON CONFLICT (id) DO NOTHING",
            "$id", "$owner", "$function", "$template", "$cron", "$tz", "$paused", "$next", "$now");
        var ps = _scheduleInsert.Parameters;
        ps[0].Value = s.Id;
        ps[1].Value = s.Owner;
        ps[2].Value = s.Function;
        ps[3].Value = s.TemplateJson;
        ps[4].Value = s.Cron;
        ps[5].Value = s.TimeZone;
        ps[6].Value = s.Paused ? 1 : 0;
        ps[7].Value = Db(s.NextFireAt);
        ps[8].Value = Sql.Ms(s.CreatedAt);
        return _scheduleInsert.ExecuteNonQuery() == 1;
    }

    public bool ScheduleDelete(ScheduleDeleteParams p)
    {
        _scheduleDelete ??= Sql.Command(_connection,
            "DELETE FROM schedules WHERE id = $id AND ($owner IS NULL OR owner = $owner)", "$id", "$owner");
        _scheduleDelete.Parameters[0].Value = p.Id;
        _scheduleDelete.Parameters[1].Value = Sql.Db(p.Owner);
        return _scheduleDelete.ExecuteNonQuery() == 1;
    }

    public ScheduleRecord? ScheduleSetPaused(ScheduleSetPausedParams p)
    {
        // Pausing keeps next_fire_at as it is (the row is out of the due index while paused);
        // resuming replaces it with the caller's next tick after now, skipping what passed meanwhile.
        _schedulePause ??= Sql.Command(_connection,
            "UPDATE schedules SET paused = $paused, next_fire_at = CASE WHEN $paused = 1 THEN next_fire_at ELSE $next END, " +
            $"updated_at = $now WHERE id = $id AND ($owner IS NULL OR owner = $owner) RETURNING {ScheduleColumns}",
            "$paused", "$next", "$now", "$id", "$owner");
        var ps = _schedulePause.Parameters;
        ps[0].Value = p.Paused ? 1 : 0;
        ps[1].Value = Db(p.NextFireAt);
        ps[2].Value = Sql.Ms(p.Now);
        ps[3].Value = p.Id;
        ps[4].Value = Sql.Db(p.Owner);
        using var r = _schedulePause.ExecuteReader();
        return r.Read() ? ReadSchedule(r) : null;
    }

    public ScheduleFireResult ScheduleFire(ScheduleFireParams p)
    {
        // Compare-and-set on next_fire_at: only the pass that moves the schedule off this tick
        // inserts its job, so a tick is fired once even if two passes (or servers) race for it.
        _scheduleFire ??= Sql.Command(_connection,
            "UPDATE schedules SET next_fire_at = $new_next, last_fired_at = $tick, updated_at = $now " +
            "WHERE id = $id AND paused = 0 AND next_fire_at = $expected",
            "$new_next", "$tick", "$now", "$id", "$expected");
        var ps = _scheduleFire.Parameters;
        ps[0].Value = Db(p.NewNextFireAt);
        ps[1].Value = Sql.Ms(p.TickAt);
        ps[2].Value = Sql.Ms(p.Now);
        ps[3].Value = p.Id;
        ps[4].Value = Sql.Ms(p.ExpectedNextFireAt);
        if (_scheduleFire.ExecuteNonQuery() != 1) return new ScheduleFireResult(false, null);

        var inserted = JobInsertMany(new JobInsertManyParams([p.Job], p.Now))[0];
        _scheduleFired ??= Sql.Command(_connection, "UPDATE schedules SET last_job_id = $job WHERE id = $id", "$job", "$id");
        _scheduleFired.Parameters[0].Value = inserted.Id;
        _scheduleFired.Parameters[1].Value = p.Id;
        _scheduleFired.ExecuteNonQuery();
        return new ScheduleFireResult(true, inserted);
    }

    public WorkerMarkLostResult WorkerMarkLost(WorkerMarkLostParams p)
    {
        if (p.Limit <= 0) return new WorkerMarkLostResult([], 0, 0, [], []);
        var now = Sql.Ms(p.Now);
        _lostCandidates ??= Sql.Command(_connection,
            "SELECT id, name, owner, last_heartbeat_at FROM workers WHERE lost_at IS NULL AND last_heartbeat_at < $before " +
            "ORDER BY last_heartbeat_at LIMIT $limit",
            "$before", "$limit");
        _lostCandidates.Parameters[0].Value = Sql.Ms(p.HeartbeatBefore);
        _lostCandidates.Parameters[1].Value = p.Limit;
        var candidates = new List<(string Id, string Name, string Owner, long LastBeat)>();
        using (var r = _lostCandidates.ExecuteReader())
        {
            while (r.Read()) candidates.Add((r.GetString(0), r.GetString(1), r.GetString(2), r.GetInt64(3)));
        }

        _markLost ??= Sql.Command(_connection, "UPDATE workers SET lost_at = $now WHERE id = $id", "$now", "$id");
        _workerEvent ??= Sql.Command(_connection,
            "INSERT INTO worker_events (worker_id, kind, at, detail) VALUES ($worker, $kind, $at, $detail)",
            "$worker", "$kind", "$at", "$detail");
        _workerJobs ??= Sql.Command(_connection,
            $"SELECT {ReleaseColumns} FROM jobs WHERE worker_id = $worker AND state = 'running'",
            "$worker");

        var lost = new List<LostWorker>();
        var release = new JobRelease(this, now);
        foreach (var c in candidates)
        {
            _markLost.Parameters[0].Value = now;
            _markLost.Parameters[1].Value = c.Id;
            _markLost.ExecuteNonQuery();
            _workerJobs.Parameters[0].Value = c.Id;
            var released = release.Run(_workerJobs, JobTransitions.LeaseExpiredErrorCode, JobTransitions.LeaseExpiredMessage);
            _workerEvent.Parameters[0].Value = c.Id;
            _workerEvent.Parameters[1].Value = "lost";
            _workerEvent.Parameters[2].Value = now;
            _workerEvent.Parameters[3].Value = $"no heartbeat since {Sql.At(c.LastBeat):O}; {released} job(s) released";
            _workerEvent.ExecuteNonQuery();
            lost.Add(new LostWorker(c.Id, c.Name, c.Owner, Sql.At(c.LastBeat), released));
        }
        return new WorkerMarkLostResult(lost, release.Requeued, release.Dead, [.. release.Functions], [.. release.Owners]) { DeadJobs = release.DeadJobs };
    }

    public JobRescueExpiredResult JobTimeoutExpired(JobTimeoutExpiredParams p)
    {
        if (p.Limit <= 0) return new JobRescueExpiredResult(0, 0, [], []);
        var now = Sql.Ms(p.Now);
        _timedOut ??= Sql.Command(_connection,
            $"SELECT {ReleaseColumns} FROM jobs " +
            "WHERE state = 'running' AND deadline_at IS NOT NULL AND deadline_at < $before ORDER BY deadline_at LIMIT $limit",
            "$before", "$limit");
        _timedOut.Parameters[0].Value = now - Sql.Ms(p.Grace);
        _timedOut.Parameters[1].Value = p.Limit;
        var release = new JobRelease(this, now) { RetryPolicy = p.RetryPolicy, Now = p.Now };
        release.Run(_timedOut, TimeoutErrorCode, TimeoutMessage);
        return release.Result();
    }

    /// <summary>
    /// True when neither the worker's last heartbeat nor its lease request is more recent than
    /// <paramref name="before"/> (now minus the lease timeout): a frozen worker's long poll, still
    /// open on the server, must not be handed the very jobs just taken back from it.
    /// </summary>
    private bool IsSilent(string workerId, DateTimeOffset before, DateTimeOffset requestedAt)
    {
        if (requestedAt >= before) return false;
        _isSilent ??= Sql.Command(_connection,
            "SELECT 1 FROM workers WHERE id = $id AND last_heartbeat_at < $before", "$id", "$before");
        _isSilent.Parameters[0].Value = workerId;
        _isSilent.Parameters[1].Value = Sql.Ms(before);
        return _isSilent.ExecuteScalar() is not null;
    }

    public const string CancelledErrorCode = "cancelled";
    public const string CancelledMessage = "Cancelled on request; the worker stopped the job.";

    /// <summary>Ends a cancel-requested job its worker has dropped; returns its owner, or null when it was not that.</summary>
    private string? FinishDroppedCancel(string jobId, string workerId, DateTimeOffset at)
    {
        _finishDropped ??= Sql.Command(_connection,
            "UPDATE jobs SET state = 'cancelled', error_code = $code, error_message = $message, finished_at = $now, updated_at = $now, " +
            "result_pending = 1, result_expires_at = $now + retention_ms, lease_token = NULL, lease_expires_at = NULL " +
            "WHERE id = $id AND worker_id = $worker AND state = 'running' AND cancel_requested = 1 RETURNING owner",
            "$code", "$message", "$now", "$id", "$worker");
        var ps = _finishDropped.Parameters;
        ps[0].Value = CancelledErrorCode;
        ps[1].Value = CancelledMessage;
        ps[2].Value = Sql.Ms(at);
        ps[3].Value = jobId;
        ps[4].Value = workerId;
        return _finishDropped.ExecuteScalar() as string;
    }

    public const string TimeoutErrorCode = "timeout";
    public const string TimeoutMessage = "The job ran past its timeout (plus the server's grace) and was stopped by the server.";

    public int JobPorterPurge(JobPorterPurgeParams p)
    {
        if (p.BatchSize <= 0) return 0;
        // Through jobs_finished, oldest first, a bounded batch: one pass never holds the writer long.
        _porterPick ??= Sql.Command(_connection,
            "SELECT seq FROM jobs WHERE state IN ('succeeded', 'dead', 'cancelled') AND finished_at IS NOT NULL " +
            "AND ((result_expires_at IS NOT NULL AND result_expires_at <= $now) OR (result_pending = 0 AND finished_at <= $acked_before)) " +
            "ORDER BY finished_at LIMIT $limit",
            "$now", "$acked_before", "$limit");
        var now = Sql.Ms(p.Now);
        _porterPick.Parameters[0].Value = now;
        _porterPick.Parameters[1].Value = now - Sql.Ms(p.AcknowledgedGrace);
        _porterPick.Parameters[2].Value = p.BatchSize;
        var seqs = new List<long>();
        using (var r = _porterPick.ExecuteReader())
        {
            while (r.Read()) seqs.Add(r.GetInt64(0));
        }
        _porterDelete ??= Sql.Command(_connection, "DELETE FROM jobs WHERE seq = $seq", "$seq");
        foreach (var seq in seqs)
        {
            _porterDelete.Parameters[0].Value = seq;
            _porterDelete.ExecuteNonQuery();
        }
        return seqs.Count;
    }

    /// <summary>The columns <see cref="JobRelease.Run"/> expects, in order.</summary>
    private const string ReleaseColumns = "seq, attempts, max_attempts, function, owner, retention_ms, cancel_requested, id";

    /// <summary>
    /// Ends the current attempt of running jobs selected by a command whose columns are
    /// <see cref="ReleaseColumns"/>. Without a retry policy (an expired lease, a lost worker) a job
    /// goes back to the queue at once; with one (a timeout) it waits its backoff. Cancel-requested
    /// jobs end cancelled; no attempt left, dead.
    /// </summary>
    private sealed class JobRelease(WriterSession session, long now)
    {
        public RetryPolicy? RetryPolicy { get; init; }
        public DateTimeOffset Now { get; init; } = Sql.At(now);
        public int Requeued { get; private set; }
        public int Dead { get; private set; }
        public HashSet<string> Functions { get; } = new(StringComparer.Ordinal);
        public HashSet<string> Owners { get; } = new(StringComparer.Ordinal);
        public List<DeadJob> DeadJobs { get; } = [];

        /// <summary>All of it, as a rescue or timeout pass reports it.</summary>
        public JobRescueExpiredResult Result() => new(Requeued, Dead, [.. Functions], [.. Owners]) { DeadJobs = DeadJobs };

        /// <summary>Ends the current attempt of the running jobs <paramref name="select"/> returns (columns <see cref="ReleaseColumns"/>).</summary>
        public int Run(SqliteCommand select, string code, string message)
        {
            var rows = new List<(long Seq, int Attempts, int Max, string Function, string Owner, long Retention, bool Cancel, string Id)>();
            using (var r = select.ExecuteReader())
            {
                while (r.Read())
                    rows.Add((r.GetInt64(0), r.GetInt32(1), r.GetInt32(2), r.GetString(3), r.GetString(4), r.GetInt64(5), r.GetInt64(6) != 0, r.GetString(7)));
            }
            foreach (var row in rows)
            {
                JobState next;
                var runAt = Now;
                if (row.Cancel) next = JobState.Cancelled;
                else if (RetryPolicy is null) next = JobTransitions.AfterLeaseExpired(row.Attempts, row.Max);
                else (next, runAt) = JobTransitions.AfterFailure(row.Attempts, row.Max, true, Now, RetryPolicy);

                switch (next)
                {
                    case JobState.Queued:
                        session._requeue.Parameters[0].Value = now;
                        session._requeue.Parameters[1].Value = row.Seq;
                        session._requeue.ExecuteNonQuery();
                        Requeued++;
                        Functions.Add(row.Function);
                        break;
                    case JobState.AwaitingRetry:
                        var ps = session._retry.Parameters;
                        ps[0].Value = Sql.Ms(runAt);
                        ps[1].Value = code;
                        ps[2].Value = message;
                        ps[3].Value = now;
                        ps[4].Value = row.Seq;
                        session._retry.ExecuteNonQuery();
                        Requeued++;
                        break;
                    default:
                        session.FinishFailed(row.Seq, next, code, message, now, row.Retention);
                        if (next == JobState.Dead)
                        {
                            Dead++;
                            DeadJobs.Add(new DeadJob(row.Id, row.Function, row.Owner, code, message));
                        }
                        Owners.Add(row.Owner);
                        break;
                }
            }
            return rows.Count;
        }
    }

    public bool FunctionDefaultsSet(FunctionDefaultsSetParams p)
    {
        var d = p.Defaults;
        using var command = _connection.CreateCommand();
        if (d.MaxAttempts is null && d.Timeout is null && d.Retention is null)
        {
            command.CommandText = "DELETE FROM function_defaults WHERE function = $function";
            command.Parameters.AddWithValue("$function", d.Function);
        }
        else
        {
            command.CommandText =
                "INSERT INTO function_defaults (function, max_attempts, timeout_ms, retention_ms, updated_at) " +
                "VALUES ($function, $max, $timeout, $retention, $now) ON CONFLICT (function) DO UPDATE SET " +
                "max_attempts = excluded.max_attempts, timeout_ms = excluded.timeout_ms, retention_ms = excluded.retention_ms, updated_at = excluded.updated_at";
            command.Parameters.AddWithValue("$function", d.Function);
            command.Parameters.AddWithValue("$max", d.MaxAttempts is { } m ? m : DBNull.Value);
            command.Parameters.AddWithValue("$timeout", d.Timeout is { } t ? Sql.Ms(t) : DBNull.Value);
            command.Parameters.AddWithValue("$retention", d.Retention is { } r ? Sql.Ms(r) : DBNull.Value);
            command.Parameters.AddWithValue("$now", Sql.Ms(p.Now));
        }
        command.ExecuteNonQuery();
        return true;
    }

    private void DisposeDaemons()
    {
        foreach (var command in new[]
                 {
                     _scheduleInsert, _scheduleDelete, _schedulePause, _scheduleFire, _scheduleFired, _lostCandidates,
                     _markLost, _workerEvent, _workerJobs, _timedOut, _porterPick, _porterDelete, _finishDropped, _isSilent,
                 })
        {
            command?.Dispose();
        }
    }
}
