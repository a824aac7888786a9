using Dts.Contracts;
using Dts.Core.Storage;
using Npgsql;

namespace Dts.Storage.Postgres;

/// <summary>Conversions between records and rows.</summary>
internal static class Pg
{
    /// <summary>The columns every job query selects, in the order <see cref="ReadJob"/> reads them.</summary>
    public const string JobColumns =
        "seq, id, function, owner, state, args_json, kwargs_json, rank, unique_key, tags_json, run_at, attempts, " +
        "max_attempts, timeout_ms, retention_ms, progress_num, progress_den, result_json, error_code, error_message, " +
        "lease_token, lease_expires_at, worker_id, cancel_requested, result_pending, created_at, updated_at, " +
        "started_at, finished_at";

    public const string WorkerColumns =
        "id, owner, name, functions, concurrency, registered_at, last_heartbeat_at, draining";

    public const string ScheduleColumns =
        "id, owner, function, template_json, cron, time_zone, paused, next_fire_at, last_fired_at, last_job_id, created_at, updated_at";

    public const string UnfinishedStates = "state IN ('queued', 'scheduled', 'running', 'awaiting_retry')";

    /// <summary>A time as the store keeps it: UTC, whole milliseconds (as the SQLite store does).</summary>
    public static DateTime Ts(DateTimeOffset t) => DateTime.UnixEpoch.AddMilliseconds(t.ToUnixTimeMilliseconds());

    public static object Ts(DateTimeOffset? t) => t is { } x ? Ts(x) : DBNull.Value;

    public static long Ms(TimeSpan t) => t.Ticks / TimeSpan.TicksPerMillisecond;

    public static DateTimeOffset At(NpgsqlDataReader r, int i) => r.GetFieldValue<DateTimeOffset>(i);

    public static DateTimeOffset? AtOrNull(NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : r.GetFieldValue<DateTimeOffset>(i);

    public static string? StringOrNull(NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);

    public static long? LongOrNull(NpgsqlDataReader r, int i) => r.IsDBNull(i) ? null : r.GetInt64(i);

    public static string[] Strings(NpgsqlDataReader r, int i) => r.GetFieldValue<string[]>(i);


    public static JobRecord ReadJob(NpgsqlDataReader r, int o = 0) => new()
    {
        Id = r.GetString(o + 1),
        Function = r.GetString(o + 2),
        Owner = r.GetString(o + 3),
        State = JobStates.ParseStored(r.GetString(o + 4)),
        ArgsJson = r.GetString(o + 5),
        KwargsJson = r.GetString(o + 6),
        Priority = Priority.FromRank(r.GetInt32(o + 7)),
        UniqueKey = StringOrNull(r, o + 8),
        TagsJson = StringOrNull(r, o + 9),
        RunAt = At(r, o + 10),
        Attempts = r.GetInt32(o + 11),
        MaxAttempts = r.GetInt32(o + 12),
        Timeout = r.IsDBNull(o + 13) ? null : TimeSpan.FromMilliseconds(r.GetInt64(o + 13)),
        Retention = TimeSpan.FromMilliseconds(r.GetInt64(o + 14)),
        ProgressNumerator = LongOrNull(r, o + 15),
        ProgressDenominator = LongOrNull(r, o + 16),
        ResultJson = StringOrNull(r, o + 17),
        ErrorCode = StringOrNull(r, o + 18),
        ErrorMessage = StringOrNull(r, o + 19),
        LeaseToken = StringOrNull(r, o + 20),
        LeaseExpiresAt = AtOrNull(r, o + 21),
        WorkerId = StringOrNull(r, o + 22),
        CancelRequested = r.GetBoolean(o + 23),
        ResultPending = r.GetBoolean(o + 24),
        CreatedAt = At(r, o + 25),
        UpdatedAt = At(r, o + 26),
        StartedAt = AtOrNull(r, o + 27),
        FinishedAt = AtOrNull(r, o + 28),
    };

    public static WorkerRecord ReadWorker(NpgsqlDataReader r) => new()
    {
        Id = r.GetString(0),
        Owner = r.GetString(1),
        Name = r.GetString(2),
        Functions = Strings(r, 3),
        Concurrency = r.GetInt32(4),
        RegisteredAt = At(r, 5),
        LastHeartbeatAt = At(r, 6),
        Draining = r.GetBoolean(7),
    };

    public static ScheduleRecord ReadSchedule(NpgsqlDataReader r) => new()
    {
        Id = r.GetString(0),
        Owner = r.GetString(1),
        Function = r.GetString(2),
        TemplateJson = r.GetString(3),
        Cron = r.GetString(4),
        TimeZone = r.GetString(5),
        Paused = r.GetBoolean(6),
        NextFireAt = AtOrNull(r, 7),
        LastFiredAt = AtOrNull(r, 8),
        LastJobId = StringOrNull(r, 9),
        CreatedAt = At(r, 10),
        UpdatedAt = At(r, 11),
    };

    /// <summary>Adds a named parameter; null becomes SQL NULL (cast it in the SQL where its type cannot be inferred).</summary>
    public static NpgsqlCommand P(this NpgsqlCommand command, string name, object? value)
    {
        command.Parameters.Add(new NpgsqlParameter(name, value ?? DBNull.Value));
        return command;
    }

    /// <summary>Adds a positional parameter to a batch command.</summary>
    public static NpgsqlBatchCommand P(this NpgsqlBatchCommand command, object? value)
    {
        command.Parameters.Add(new NpgsqlParameter { Value = value ?? DBNull.Value });
        return command;
    }
}
