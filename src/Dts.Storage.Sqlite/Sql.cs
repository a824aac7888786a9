using Dts.Contracts;
using Dts.Core.Storage;
using Microsoft.Data.Sqlite;

namespace Dts.Storage.Sqlite;

/// <summary>Conversions between records and rows, shared by the writer and the readers.</summary>
internal static class Sql
{
    /// <summary>The columns every job query selects, in the order <see cref="ReadJob"/> reads them.</summary>
    public const string JobColumns =
        "seq, id, function, owner, state, args_json, kwargs_json, rank, unique_key, tags_json, run_at, attempts, " +
        "max_attempts, timeout_ms, retention_ms, progress_num, progress_den, result_json, error_code, error_message, " +
        "lease_token, lease_expires_at, worker_id, cancel_requested, result_pending, created_at, updated_at, " +
        "started_at, finished_at";

    /// <summary>The limit columns of users, in the order user readers expect them after the base columns.</summary>
    public const string UserLimitColumns = "max_queued, submit_rate, submit_burst, functions_json";

    /// <summary>The columns every worker query selects, in the order <see cref="ReadWorker"/> reads them.</summary>
    public const string WorkerColumns =
        "id, owner, name, functions_json, concurrency, registered_at, last_heartbeat_at, draining";

    public static WorkerRecord ReadWorker(SqliteDataReader r) => new()
    {
        Id = r.GetString(0),
        Owner = r.GetString(1),
        Name = r.GetString(2),
        Functions = FromJson(r.GetString(3)),
        Concurrency = r.GetInt32(4),
        RegisteredAt = At(r.GetInt64(5)),
        LastHeartbeatAt = At(r.GetInt64(6)),
        Draining = r.GetInt64(7) != 0,
    };

    public static long Ms(DateTimeOffset t) => t.ToUnixTimeMilliseconds();

    public static long Ms(TimeSpan t) => t.Ticks / TimeSpan.TicksPerMillisecond;

    public static DateTimeOffset At(long ms) => DateTimeOffset.FromUnixTimeMilliseconds(ms);

    public static object Db(string? s) => (object?)s ?? DBNull.Value;

    public static object Db(long? v) => v is { } x ? x : DBNull.Value;

    public static JobRecord ReadJob(SqliteDataReader r) => new()
    {
        Id = r.GetString(1),
        Function = r.GetString(2),
        Owner = r.GetString(3),
        State = JobStates.ParseStored(r.GetString(4)),
        ArgsJson = r.GetString(5),
        KwargsJson = r.GetString(6),
        Priority = Priority.FromRank(r.GetInt32(7)),
        UniqueKey = r.IsDBNull(8) ? null : r.GetString(8),
        TagsJson = r.IsDBNull(9) ? null : r.GetString(9),
        RunAt = At(r.GetInt64(10)),
        Attempts = r.GetInt32(11),
        MaxAttempts = r.GetInt32(12),
        Timeout = r.IsDBNull(13) ? null : TimeSpan.FromMilliseconds(r.GetInt64(13)),
        Retention = TimeSpan.FromMilliseconds(r.GetInt64(14)),
        ProgressNumerator = r.IsDBNull(15) ? null : r.GetInt64(15),
        ProgressDenominator = r.IsDBNull(16) ? null : r.GetInt64(16),
        ResultJson = r.IsDBNull(17) ? null : r.GetString(17),
        ErrorCode = r.IsDBNull(18) ? null : r.GetString(18),
        ErrorMessage = r.IsDBNull(19) ? null : r.GetString(19),
        LeaseToken = r.IsDBNull(20) ? null : r.GetString(20),
        LeaseExpiresAt = r.IsDBNull(21) ? null : At(r.GetInt64(21)),
        WorkerId = r.IsDBNull(22) ? null : r.GetString(22),
        CancelRequested = r.GetInt64(23) != 0,
        ResultPending = r.GetInt64(24) != 0,
        CreatedAt = At(r.GetInt64(25)),
        UpdatedAt = At(r.GetInt64(26)),
        StartedAt = r.IsDBNull(27) ? null : At(r.GetInt64(27)),
        FinishedAt = r.IsDBNull(28) ? null : At(r.GetInt64(28)),
    };

    public static string ToJson(IReadOnlyList<string> list) =>
        System.Text.Json.JsonSerializer.Serialize(list as List<string> ?? [.. list], DtsJsonContext.Default.ListString);

    public static List<string> FromJson(string json) =>
        System.Text.Json.JsonSerializer.Deserialize(json, DtsJsonContext.Default.ListString) ?? [];

    public static SqliteCommand Command(SqliteConnection connection, string sql, params string[] parameters)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        foreach (var name in parameters) command.Parameters.Add(new SqliteParameter(name, DBNull.Value));
        return command;
    }
}
