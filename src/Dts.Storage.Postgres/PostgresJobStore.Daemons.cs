using System.Globalization;
using Dts.Core;
using Dts.Core.Storage;
using Npgsql;

namespace Dts.Storage.Postgres;

// The daemons' operations: schedules, lost workers, timeouts, the porter, function defaults.
public sealed partial class PostgresJobStore
{
    public const string TimeoutErrorCode = "timeout";
    public const string TimeoutMessage = "The job ran past its timeout (plus the server's grace) and was stopped by the server.";

    public Task<bool> ScheduleInsertAsync(ScheduleRecord schedule, CancellationToken cancellationToken) =>
        TxAsync(async (c, t) =>
        {
            await using var command = Cmd(c, t,
                "INSERT INTO {s}.schedules (id, owner, function, template_json, cron, time_zone, paused, next_fire_at, created_at, updated_at) " +
                "VALUES (@id, @owner, @function, @template, @cron, @tz, @paused, @next, @now, @now) ON CONFLICT (id) DO NOTHING");
            command.P("id", schedule.Id).P("owner", schedule.Owner).P("function", schedule.Function).P("template", schedule.TemplateJson)
                .P("cron", schedule.Cron).P("tz", schedule.TimeZone).P("paused", schedule.Paused)
                .P("next", Pg.Ts(schedule.NextFireAt)).P("now", Pg.Ts(schedule.CreatedAt));
            command.Parameters["next"].NpgsqlDbType = NpgsqlTypes.NpgsqlDbType.TimestampTz;
            return await command.ExecuteNonQueryAsync(cancellationToken) == 1;
        }, cancellationToken);

    public Task<ScheduleRecord?> ScheduleGetAsync(ScheduleGetParams p, CancellationToken cancellationToken) =>
        ReadAsync(async c =>
        {
            await using var command = Cmd(c, null,
                $"SELECT {Pg.ScheduleColumns} FROM {{s}}.schedules WHERE id = @id AND (@owner::text IS NULL OR owner = @owner::text)");
            command.P("id", p.Id).P("owner", p.Owner);
            await using var r = await command.ExecuteReaderAsync(cancellationToken);
            return await r.ReadAsync(cancellationToken) ? Pg.ReadSchedule(r) : null;
        }, cancellationToken);

    public Task<IReadOnlyList<ScheduleRecord>> ScheduleListAsync(ScheduleListParams p, CancellationToken cancellationToken) =>
        ReadAsync<IReadOnlyList<ScheduleRecord>>(async c =>
        {
            await using var command = Cmd(c, null,
                $"SELECT {Pg.ScheduleColumns} FROM {{s}}.schedules WHERE (@owner::text IS NULL OR owner = @owner::text) " +
                "AND (@after::text IS NULL OR id > @after::text) ORDER BY id LIMIT @limit");
            command.P("owner", p.Owner).P("after", p.AfterId).P("limit", p.Limit);
            var list = new List<ScheduleRecord>();
            await using var r = await command.ExecuteReaderAsync(cancellationToken);
            while (await r.ReadAsync(cancellationToken)) list.Add(Pg.ReadSchedule(r));
            return list;
        }, cancellationToken);

    public Task<bool> ScheduleDeleteAsync(ScheduleDeleteParams p, CancellationToken cancellationToken) =>
        TxAsync(async (c, t) =>
        {
            await using var command = Cmd(c, t, "DELETE FROM {s}.schedules WHERE id = @id AND (@owner::text IS NULL OR owner = @owner::text)");
            command.P("id", p.Id).P("owner", p.Owner);
            return await command.ExecuteNonQueryAsync(cancellationToken) == 1;
        }, cancellationToken);

    public Task<ScheduleRecord?> ScheduleSetPausedAsync(ScheduleSetPausedParams p, CancellationToken cancellationToken) =>
        TxAsync(async (c, t) =>
        {
            // Pausing keeps next_fire_at (the row leaves the due index while paused); resuming replaces
            // it with the caller's next tick after now, skipping what passed meanwhile.
            await using var command = Cmd(c, t,
                "UPDATE {s}.schedules SET paused = @paused, next_fire_at = CASE WHEN @paused THEN next_fire_at ELSE @next::timestamptz END, " +
                $"updated_at = @now WHERE id = @id AND (@owner::text IS NULL OR owner = @owner::text) RETURNING {Pg.ScheduleColumns}");
            command.P("paused", p.Paused).P("next", Pg.Ts(p.NextFireAt)).P("now", Pg.Ts(p.Now)).P("id", p.Id).P("owner", p.Owner);
            await using var r = await command.ExecuteReaderAsync(cancellationToken);
            return await r.ReadAsync(cancellationToken) ? Pg.ReadSchedule(r) : null;
        }, cancellationToken);

    public Task<ScheduleDueResult> ScheduleDueAsync(ScheduleDueParams p, CancellationToken cancellationToken) =>
        ReadAsync(async c =>
        {
            var due = new List<ScheduleRecord>();
            await using var batch = new NpgsqlBatch(c);
            batch.BatchCommands.Add(new NpgsqlBatchCommand(S(
                $"SELECT {Pg.ScheduleColumns} FROM {{s}}.schedules WHERE NOT paused AND next_fire_at IS NOT NULL " +
                "AND next_fire_at <= $1 ORDER BY next_fire_at LIMIT $2")).P(Pg.Ts(p.Now)).P(p.Limit));
            batch.BatchCommands.Add(new NpgsqlBatchCommand(S(
                "SELECT min(next_fire_at) FROM {s}.schedules WHERE NOT paused AND next_fire_at > $1")).P(Pg.Ts(p.Now)));
            await using var r = await batch.ExecuteReaderAsync(cancellationToken);
            while (await r.ReadAsync(cancellationToken)) due.Add(Pg.ReadSchedule(r));
            await r.NextResultAsync(cancellationToken);
            await r.ReadAsync(cancellationToken);
            return new ScheduleDueResult(due, Pg.AtOrNull(r, 0));
        }, cancellationToken);

    public Task<ScheduleFireResult> ScheduleFireAsync(ScheduleFireParams p, CancellationToken cancellationToken) =>
        TxAsync(async (c, t) =>
        {
            // Compare-and-set on next_fire_at: only the pass that moves the schedule off this tick inserts
            // its job, so a tick fires once even if two servers race for it (the loser waits on the row
            // lock, then finds next_fire_at moved and updates nothing).
            await using (var fire = Cmd(c, t,
                "UPDATE {s}.schedules SET next_fire_at = @new_next::timestamptz, last_fired_at = @tick, updated_at = @now " +
                "WHERE id = @id AND NOT paused AND next_fire_at = @expected"))
            {
                fire.P("new_next", Pg.Ts(p.NewNextFireAt)).P("tick", Pg.Ts(p.TickAt)).P("now", Pg.Ts(p.Now))
                    .P("id", p.Id).P("expected", Pg.Ts(p.ExpectedNextFireAt));
                if (await fire.ExecuteNonQueryAsync(cancellationToken) != 1) return new ScheduleFireResult(false, null);
            }
            var inserted = (await InsertJobsAsync(c, t, [p.Job], p.Now, cancellationToken))[0];
            await using (var fired = Cmd(c, t, "UPDATE {s}.schedules SET last_job_id = @job WHERE id = @id").P("job", inserted.Id).P("id", p.Id))
                await fired.ExecuteNonQueryAsync(cancellationToken);
            return new ScheduleFireResult(true, inserted);
        }, cancellationToken);

    public Task<WorkerMarkLostResult> WorkerMarkLostAsync(WorkerMarkLostParams p, CancellationToken cancellationToken)
    {
        if (p.Limit <= 0) return Task.FromResult(new WorkerMarkLostResult([], 0, 0, [], []));
        return TxAsync(async (c, t) =>
        {
            var candidates = new List<(string Id, string Name, string Owner, DateTimeOffset LastBeat)>();
            await using (var select = Cmd(c, t,
                "UPDATE {s}.workers w SET lost_at = @now FROM (SELECT id FROM {s}.workers WHERE lost_at IS NULL AND last_heartbeat_at < @before " +
                "ORDER BY last_heartbeat_at LIMIT @limit FOR UPDATE SKIP LOCKED) x WHERE w.id = x.id " +
                "RETURNING w.id, w.name, w.owner, w.last_heartbeat_at"))
            {
                select.P("now", Pg.Ts(p.Now)).P("before", Pg.Ts(p.HeartbeatBefore)).P("limit", p.Limit);
                await using var r = await select.ExecuteReaderAsync(cancellationToken);
                while (await r.ReadAsync(cancellationToken)) candidates.Add((r.GetString(0), r.GetString(1), r.GetString(2), Pg.At(r, 3)));
            }
            candidates.Sort((a, b) => a.LastBeat.CompareTo(b.LastBeat));
            var lost = new List<LostWorker>();
            var release = new JobRelease(p.Now, null);
            foreach (var w in candidates)
            {
                int released;
                await using (var jobs = Cmd(c, t,
                    $"SELECT {ReleaseColumns} FROM {{s}}.jobs WHERE worker_id = @worker AND state = 'running' ORDER BY seq FOR UPDATE"))
                {
                    jobs.P("worker", w.Id);
                    released = await ReleaseAsync(c, t, jobs, release, JobTransitions.LeaseExpiredErrorCode, JobTransitions.LeaseExpiredMessage, cancellationToken);
                }
                await using (var ev = Cmd(c, t, "INSERT INTO {s}.worker_events (worker_id, kind, at, detail) VALUES (@worker, 'lost', @at, @detail)"))
                {
                    ev.P("worker", w.Id).P("at", Pg.Ts(p.Now))
                        .P("detail", string.Create(CultureInfo.InvariantCulture, $"no heartbeat since {w.LastBeat:O}; {released} job(s) released"));
                    await ev.ExecuteNonQueryAsync(cancellationToken);
                }
                lost.Add(new LostWorker(w.Id, w.Name, w.Owner, w.LastBeat, released));
            }
            return new WorkerMarkLostResult(lost, release.Requeued, release.Dead, [.. release.Functions], [.. release.Owners]) { DeadJobs = release.DeadJobs };
        }, cancellationToken);
    }

    public Task<IReadOnlyList<WorkerEventRecord>> WorkerEventListAsync(WorkerEventListParams p, CancellationToken cancellationToken) =>
        ReadAsync<IReadOnlyList<WorkerEventRecord>>(async c =>
        {
            await using var command = Cmd(c, null,
                "SELECT seq, worker_id, kind, at, detail FROM {s}.worker_events WHERE (@worker::text IS NULL OR worker_id = @worker::text) " +
                "ORDER BY seq DESC LIMIT @limit");
            command.P("worker", p.WorkerId).P("limit", p.Limit);
            var list = new List<WorkerEventRecord>();
            await using var r = await command.ExecuteReaderAsync(cancellationToken);
            while (await r.ReadAsync(cancellationToken))
                list.Add(new WorkerEventRecord(r.GetInt64(0), r.GetString(1), r.GetString(2), Pg.At(r, 3), Pg.StringOrNull(r, 4)));
            return list;
        }, cancellationToken);

    public Task<JobRescueExpiredResult> JobTimeoutExpiredAsync(JobTimeoutExpiredParams p, CancellationToken cancellationToken)
    {
        if (p.Limit <= 0) return Task.FromResult(new JobRescueExpiredResult(0, 0, [], []));
        return TxAsync(async (c, t) =>
        {
            await using var select = Cmd(c, t,
                $"SELECT {ReleaseColumns} FROM {{s}}.jobs WHERE state = 'running' AND deadline_at IS NOT NULL AND deadline_at < @before " +
                "ORDER BY deadline_at LIMIT @limit FOR UPDATE SKIP LOCKED");
            select.P("before", Pg.Ts(p.Now - p.Grace)).P("limit", p.Limit);
            var release = new JobRelease(p.Now, p.RetryPolicy);
            await ReleaseAsync(c, t, select, release, TimeoutErrorCode, TimeoutMessage, cancellationToken);
            return release.Result();
        }, cancellationToken);
    }

    public Task<int> JobPorterPurgeAsync(JobPorterPurgeParams p, CancellationToken cancellationToken)
    {
        if (p.BatchSize <= 0) return Task.FromResult(0);
        return TxAsync(async (c, t) =>
        {
            // Through jobs_finished, oldest first, a bounded batch; logs go by ON DELETE CASCADE.
            await using var command = Cmd(c, t,
                "DELETE FROM {s}.jobs j USING (SELECT seq FROM {s}.jobs WHERE state IN ('succeeded', 'dead', 'cancelled') AND finished_at IS NOT NULL " +
                "AND ((result_expires_at IS NOT NULL AND result_expires_at <= @now) OR (NOT result_pending AND finished_at <= @acked_before)) " +
                "ORDER BY finished_at LIMIT @limit FOR UPDATE SKIP LOCKED) x WHERE j.seq = x.seq");
            command.P("now", Pg.Ts(p.Now)).P("acked_before", Pg.Ts(p.Now - p.AcknowledgedGrace)).P("limit", p.BatchSize);
            return await command.ExecuteNonQueryAsync(cancellationToken);
        }, cancellationToken);
    }

    public Task<FunctionDefaults?> FunctionDefaultsGetAsync(string function, CancellationToken cancellationToken) =>
        ReadAsync(async c =>
        {
            await using var command = Cmd(c, null, "SELECT max_attempts, timeout_ms, retention_ms FROM {s}.function_defaults WHERE function = @function")
                .P("function", function);
            await using var r = await command.ExecuteReaderAsync(cancellationToken);
            if (!await r.ReadAsync(cancellationToken)) return null;
            return new FunctionDefaults(function,
                r.IsDBNull(0) ? null : r.GetInt32(0),
                r.IsDBNull(1) ? null : TimeSpan.FromMilliseconds(r.GetInt64(1)),
                r.IsDBNull(2) ? null : TimeSpan.FromMilliseconds(r.GetInt64(2)));
        }, cancellationToken);

    public Task FunctionDefaultsSetAsync(FunctionDefaultsSetParams p, CancellationToken cancellationToken) =>
        TxAsync(async (c, t) =>
        {
            var d = p.Defaults;
            if (d.MaxAttempts is null && d.Timeout is null && d.Retention is null)
            {
                await using var delete = Cmd(c, t, "DELETE FROM {s}.function_defaults WHERE function = @function").P("function", d.Function);
                return await delete.ExecuteNonQueryAsync(cancellationToken);
            }
            await using var upsert = Cmd(c, t,
                "INSERT INTO {s}.function_defaults (function, max_attempts, timeout_ms, retention_ms, updated_at) " +
                "VALUES (@function, @max::integer, @timeout::bigint, @retention::bigint, @now) ON CONFLICT (function) DO UPDATE SET " +
                "max_attempts = excluded.max_attempts, timeout_ms = excluded.timeout_ms, retention_ms = excluded.retention_ms, updated_at = excluded.updated_at");
            upsert.P("function", d.Function).P("max", d.MaxAttempts).P("timeout", d.Timeout is { } x ? Pg.Ms(x) : null)
                .P("retention", d.Retention is { } y ? Pg.Ms(y) : null).P("now", Pg.Ts(p.Now));
            return await upsert.ExecuteNonQueryAsync(cancellationToken);
        }, cancellationToken);
}
