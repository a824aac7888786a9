using Dts.Core.Storage;
using Microsoft.Data.Sqlite;

namespace Dts.Storage.Sqlite;

/// <summary>A read connection with its prepared statements; used by one caller at a time, then pooled.</summary>
internal sealed partial class ReaderSession : IDisposable
{
    internal const string ResultsGetSql =
        $"SELECT {Sql.JobColumns} FROM jobs WHERE owner = $owner AND result_pending = 1" +
        // The tag test runs per row the partial index yields, so the index still orders and bounds the scan.
        " AND ($tag IS NULL OR EXISTS (SELECT 1 FROM json_each(jobs.tags_json) WHERE json_each.value = $tag))" +
        " ORDER BY finished_at, seq LIMIT $max";

    private readonly SqliteConnection _connection;
    private readonly SqliteCommand _jobGet, _resultsGet, _userGet, _userCount, _workerGet, _nonceSeen;

    public ReaderSession(SqliteConnection connection)
    {
        _connection = connection;
        _jobGet = Sql.Command(connection, $"SELECT {Sql.JobColumns} FROM jobs WHERE id = $id", "$id");
        _resultsGet = Sql.Command(connection, ResultsGetSql, "$owner", "$max", "$tag");
        _userGet = Sql.Command(connection, $"SELECT name, secret, roles_json, disabled, created_at, {Sql.UserLimitColumns} FROM users WHERE name = $name", "$name");
        _userCount = Sql.Command(connection, "SELECT count(*) FROM users");
        _nonceSeen = Sql.Command(connection,
            "SELECT 1 FROM nonces WHERE user_name = $user AND nonce_hash = $hash AND expires_at > $now", "$user", "$hash", "$now");
        _workerGet = Sql.Command(connection,
            $"SELECT {Sql.WorkerColumns} FROM workers WHERE id = $id",
            "$id");
    }

    public async Task<JobRecord?> JobGetAsync(string id, CancellationToken cancellationToken)
    {
        _jobGet.Parameters[0].Value = id;
        await using var r = await _jobGet.ExecuteReaderAsync(cancellationToken);
        return await r.ReadAsync(cancellationToken) ? Sql.ReadJob(r) : null;
    }

    public async Task<IReadOnlyList<JobRecord>> JobResultsGetAsync(JobResultsGetParams p, CancellationToken cancellationToken)
    {
        if (p.Max <= 0) return [];
        _resultsGet.Parameters[0].Value = p.Owner;
        _resultsGet.Parameters[1].Value = p.Max;
        _resultsGet.Parameters[2].Value = (object?)p.Tag ?? DBNull.Value;
        var jobs = new List<JobRecord>();
        await using var r = await _resultsGet.ExecuteReaderAsync(cancellationToken);
        while (await r.ReadAsync(cancellationToken)) jobs.Add(Sql.ReadJob(r));
        return jobs;
    }

    public async Task<UserRecord?> UserGetAsync(string name, CancellationToken cancellationToken)
    {
        _userGet.Parameters[0].Value = name;
        await using var r = await _userGet.ExecuteReaderAsync(cancellationToken);
        if (!await r.ReadAsync(cancellationToken)) return null;
        return new UserRecord
        {
            Name = r.GetString(0),
            Secret = r.GetString(1),
            Roles = Sql.FromJson(r.GetString(2)),
            Disabled = r.GetInt64(3) != 0,
            CreatedAt = Sql.At(r.GetInt64(4)),
            MaxQueued = r.IsDBNull(5) ? null : r.GetInt64(5),
            SubmitRate = r.IsDBNull(6) ? null : r.GetDouble(6),
            SubmitBurst = r.IsDBNull(7) ? null : r.GetDouble(7),
            Functions = r.IsDBNull(8) ? null : Sql.FromJson(r.GetString(8)),
        };
    }

    public async Task<int> UserCountAsync(CancellationToken cancellationToken) =>
        Convert.ToInt32(await _userCount.ExecuteScalarAsync(cancellationToken), System.Globalization.CultureInfo.InvariantCulture);

    public async Task<bool> NonceSeenAsync(NonceSeenParams p, CancellationToken cancellationToken)
    {
        _nonceSeen.Parameters[0].Value = p.User;
        _nonceSeen.Parameters[1].Value = p.NonceHash;
        _nonceSeen.Parameters[2].Value = Sql.Ms(p.Now);
        return await _nonceSeen.ExecuteScalarAsync(cancellationToken) is not null;
    }

    public async Task<WorkerRecord?> WorkerGetAsync(string id, CancellationToken cancellationToken)
    {
        _workerGet.Parameters[0].Value = id;
        await using var r = await _workerGet.ExecuteReaderAsync(cancellationToken);
        if (!await r.ReadAsync(cancellationToken)) return null;
        return Sql.ReadWorker(r);
    }

    public void Dispose()
    {
        _jobGet.Dispose();
        _resultsGet.Dispose();
        _userGet.Dispose();
        _userCount.Dispose();
        _workerGet.Dispose();
        _countUnfinished?.Dispose();
        _nonceSeen.Dispose();
        _logRead?.Dispose();
        _connection.Dispose();
    }
}
