using Dts.Core.Storage;

namespace Dts.Storage.Sqlite;

// The daemons' reads: schedules and worker events. Commands are built per call: these are rare.
internal sealed partial class ReaderSession
{
    public async Task<ScheduleRecord?> ScheduleGetAsync(ScheduleGetParams p, CancellationToken cancellationToken)
    {
        await using var command = _connection.CreateCommand();
        command.CommandText = $"SELECT {WriterSession.ScheduleColumns} FROM schedules WHERE id = $id AND ($owner IS NULL OR owner = $owner)";
        command.Parameters.AddWithValue("$id", p.Id);
        command.Parameters.AddWithValue("$owner", Sql.Db(p.Owner));
        await using var r = await command.ExecuteReaderAsync(cancellationToken);
        return await r.ReadAsync(cancellationToken) ? WriterSession.ReadSchedule(r) : null;
    }

    public async Task<IReadOnlyList<ScheduleRecord>> ScheduleListAsync(ScheduleListParams p, CancellationToken cancellationToken)
    {
        await using var command = _connection.CreateCommand();
        command.CommandText =
            $"SELECT {WriterSession.ScheduleColumns} FROM schedules WHERE ($owner IS NULL OR owner = $owner) " +
            "AND ($after IS NULL OR id > $after) ORDER BY id LIMIT $limit";
        command.Parameters.AddWithValue("$owner", Sql.Db(p.Owner));
        command.Parameters.AddWithValue("$after", Sql.Db(p.AfterId));
        command.Parameters.AddWithValue("$limit", p.Limit);
        var list = new List<ScheduleRecord>();
        await using var r = await command.ExecuteReaderAsync(cancellationToken);
        while (await r.ReadAsync(cancellationToken)) list.Add(WriterSession.ReadSchedule(r));
        return list;
    }

    public async Task<ScheduleDueResult> ScheduleDueAsync(ScheduleDueParams p, CancellationToken cancellationToken)
    {
        var now = Sql.Ms(p.Now);
        var due = new List<ScheduleRecord>();
        await using (var command = _connection.CreateCommand())
        {
            command.CommandText =
                $"SELECT {WriterSession.ScheduleColumns} FROM schedules WHERE paused = 0 AND next_fire_at IS NOT NULL " +
                "AND next_fire_at <= $now ORDER BY next_fire_at LIMIT $limit";
            command.Parameters.AddWithValue("$now", now);
            command.Parameters.AddWithValue("$limit", p.Limit);
            await using var r = await command.ExecuteReaderAsync(cancellationToken);
            while (await r.ReadAsync(cancellationToken)) due.Add(WriterSession.ReadSchedule(r));
        }
        await using var next = _connection.CreateCommand();
        next.CommandText = "SELECT min(next_fire_at) FROM schedules WHERE paused = 0 AND next_fire_at > $now";
        next.Parameters.AddWithValue("$now", now);
        var value = await next.ExecuteScalarAsync(cancellationToken);
        return new ScheduleDueResult(due, value is long ms ? Sql.At(ms) : null);
    }

    public async Task<IReadOnlyList<WorkerEventRecord>> WorkerEventListAsync(WorkerEventListParams p, CancellationToken cancellationToken)
    {
        await using var command = _connection.CreateCommand();
        command.CommandText =
            "SELECT seq, worker_id, kind, at, detail FROM worker_events WHERE ($worker IS NULL OR worker_id = $worker) " +
            "ORDER BY seq DESC LIMIT $limit";
        command.Parameters.AddWithValue("$worker", Sql.Db(p.WorkerId));
        command.Parameters.AddWithValue("$limit", p.Limit);
        var list = new List<WorkerEventRecord>();
        await using var r = await command.ExecuteReaderAsync(cancellationToken);
        while (await r.ReadAsync(cancellationToken))
            list.Add(new WorkerEventRecord(r.GetInt64(0), r.GetString(1), r.GetString(2), Sql.At(r.GetInt64(3)), r.IsDBNull(4) ? null : r.GetString(4)));
        return list;
    }

    public async Task<FunctionDefaults?> FunctionDefaultsGetAsync(string function, CancellationToken cancellationToken)
    {
        await using var command = _connection.CreateCommand();
        command.CommandText = "SELECT max_attempts, timeout_ms, retention_ms FROM function_defaults WHERE function = $function";
        command.Parameters.AddWithValue("$function", function);
        await using var r = await command.ExecuteReaderAsync(cancellationToken);
        if (!await r.ReadAsync(cancellationToken)) return null;
        return new FunctionDefaults(function,
            r.IsDBNull(0) ? null : r.GetInt32(0),
            r.IsDBNull(1) ? null : TimeSpan.FromMilliseconds(r.GetInt64(1)),
            r.IsDBNull(2) ? null : TimeSpan.FromMilliseconds(r.GetInt64(2)));
    }
}
