using System.Globalization;
using System.Text;
using Dts.Contracts;
using Dts.Core.Storage;
using Microsoft.Data.Sqlite;

namespace Dts.Storage.Sqlite;

// The administration reads. Except for the unfinished-job count, which every submit of a user with
// max_queued runs, these are rare, so their commands are built per call instead of kept prepared.
internal sealed partial class ReaderSession
{
    internal const string UnfinishedStates = "state IN ('queued', 'scheduled', 'running', 'awaiting_retry')";

    private SqliteCommand? _countUnfinished;

    public async Task<IReadOnlyList<UserSummary>> UserListAsync(UserListParams p, CancellationToken cancellationToken)
    {
        await using var command = _connection.CreateCommand();
        // The secret column is not selected: a listing has no use for secrets.
        command.CommandText =
            $"SELECT name, roles_json, disabled, created_at, {Sql.UserLimitColumns} FROM users " +
            "WHERE $after IS NULL OR name > $after ORDER BY name LIMIT $limit";
        command.Parameters.AddWithValue("$after", Sql.Db(p.AfterName));
        command.Parameters.AddWithValue("$limit", p.Limit);
        var users = new List<UserSummary>();
        await using var r = await command.ExecuteReaderAsync(cancellationToken);
        while (await r.ReadAsync(cancellationToken))
        {
            users.Add(new UserSummary
            {
                Name = r.GetString(0),
                Roles = Sql.FromJson(r.GetString(1)),
                Disabled = r.GetInt64(2) != 0,
                CreatedAt = Sql.At(r.GetInt64(3)),
                MaxQueued = r.IsDBNull(4) ? null : r.GetInt64(4),
                SubmitRate = r.IsDBNull(5) ? null : r.GetDouble(5),
                SubmitBurst = r.IsDBNull(6) ? null : r.GetDouble(6),
                Functions = r.IsDBNull(7) ? null : Sql.FromJson(r.GetString(7)),
            });
        }
        return users;
    }

    public async Task<long> JobCountUnfinishedAsync(JobCountUnfinishedParams p, CancellationToken cancellationToken)
    {
        _countUnfinished ??= Sql.Command(_connection, $"SELECT count(*) FROM jobs WHERE owner = $owner AND {UnfinishedStates}", "$owner");
        _countUnfinished.Parameters[0].Value = p.Owner;
        return Convert.ToInt64(await _countUnfinished.ExecuteScalarAsync(cancellationToken), CultureInfo.InvariantCulture);
    }

    public async Task<IReadOnlyList<WorkerListItem>> WorkerListAsync(WorkerListParams p, CancellationToken cancellationToken)
    {
        await using var command = _connection.CreateCommand();
        command.CommandText =
            $"SELECT {Sql.WorkerColumns}, (SELECT count(*) FROM jobs WHERE worker_id = workers.id AND state = 'running') " +
            "FROM workers WHERE ($after IS NULL OR id > $after) AND ($id IS NULL OR id = $id) ORDER BY id LIMIT $limit";
        command.Parameters.AddWithValue("$after", Sql.Db(p.AfterId));
        command.Parameters.AddWithValue("$id", Sql.Db(p.Id));
        command.Parameters.AddWithValue("$limit", p.Limit);
        var workers = new List<WorkerListItem>();
        await using var r = await command.ExecuteReaderAsync(cancellationToken);
        while (await r.ReadAsync(cancellationToken)) workers.Add(new WorkerListItem(Sql.ReadWorker(r), r.GetInt32(8)));
        return workers;
    }

    public async Task<IReadOnlyList<FunctionStats>> FunctionStatsAsync(FunctionStatsParams p, CancellationToken cancellationToken)
    {
        var counts = new SortedDictionary<string, Dictionary<JobState, long>>(StringComparer.Ordinal);
        Dictionary<JobState, long> For(string function)
        {
            if (!counts.TryGetValue(function, out var c)) counts[function] = c = [];
            return c;
        }

        await using (var command = _connection.CreateCommand())
        {
            command.CommandText = "SELECT function, state, count(*) FROM jobs GROUP BY function, state";
            await using var r = await command.ExecuteReaderAsync(cancellationToken);
            while (await r.ReadAsync(cancellationToken)) For(r.GetString(0))[JobStates.ParseStored(r.GetString(1))] = r.GetInt64(2);
        }

        var paused = new HashSet<string>(StringComparer.Ordinal);
        await using (var command = _connection.CreateCommand())
        {
            command.CommandText = "SELECT function, paused FROM queues";
            await using var r = await command.ExecuteReaderAsync(cancellationToken);
            while (await r.ReadAsync(cancellationToken))
            {
                For(r.GetString(0));
                if (r.GetInt64(1) != 0) paused.Add(r.GetString(0));
            }
        }

        var workers = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        await using (var command = _connection.CreateCommand())
        {
            command.CommandText = "SELECT id, functions_json FROM workers WHERE last_heartbeat_at >= $since ORDER BY id";
            command.Parameters.AddWithValue("$since", Sql.Ms(p.AliveSince));
            await using var r = await command.ExecuteReaderAsync(cancellationToken);
            while (await r.ReadAsync(cancellationToken))
            {
                var id = r.GetString(0);
                foreach (var f in Sql.FromJson(r.GetString(1)))
                {
                    For(f);
                    if (!workers.TryGetValue(f, out var list)) workers[f] = list = [];
                    list.Add(id);
                }
            }
        }

        var stats = new List<FunctionStats>(counts.Count);
        foreach (var (function, c) in counts)
        {
            stats.Add(new FunctionStats
            {
                Function = function,
                Counts = c,
                Paused = paused.Contains(function),
                Workers = workers.TryGetValue(function, out var w) ? w : [],
            });
        }
        return stats;
    }

    public async Task<JobSearchResult> JobSearchAsync(JobSearchParams p, CancellationToken cancellationToken)
    {
        await using var command = _connection.CreateCommand();
        var where = new StringBuilder("1 = 1");
        if (p.State is { } state)
        {
            where.Append(" AND state = $state");
            command.Parameters.AddWithValue("$state", state.ToWire());
        }
        if (p.Function is not null)
        {
            where.Append(" AND function = $function");
            command.Parameters.AddWithValue("$function", p.Function);
        }
        if (p.Owner is not null)
        {
            where.Append(" AND owner = $owner");
            command.Parameters.AddWithValue("$owner", p.Owner);
        }
        if (p.Tag is not null)
        {
            where.Append(" AND tags_json IS NOT NULL AND EXISTS (SELECT 1 FROM json_each(jobs.tags_json) WHERE value = $tag)");
            command.Parameters.AddWithValue("$tag", p.Tag);
        }
        if (p.CreatedAfter is { } after)
        {
            where.Append(" AND created_at >= $after");
            command.Parameters.AddWithValue("$after", Sql.Ms(after));
        }
        if (p.CreatedBefore is { } before)
        {
            where.Append(" AND created_at < $before");
            command.Parameters.AddWithValue("$before", Sql.Ms(before));
        }
        if (p.BeforeSeq is { } cursor)
        {
            where.Append(" AND seq < $cursor");
            command.Parameters.AddWithValue("$cursor", cursor);
        }
        // One row more than asked tells whether another page follows.
        command.CommandText = $"SELECT {Sql.JobColumns} FROM jobs WHERE {where} ORDER BY seq DESC LIMIT $limit";
        command.Parameters.AddWithValue("$limit", p.Limit + 1);

        var jobs = new List<JobRecord>(Math.Min(p.Limit, 1000));
        long lastSeq = 0;
        var more = false;
        await using var r = await command.ExecuteReaderAsync(cancellationToken);
        while (await r.ReadAsync(cancellationToken))
        {
            if (jobs.Count == p.Limit)
            {
                more = true;
                break;
            }
            lastSeq = r.GetInt64(0);
            jobs.Add(Sql.ReadJob(r));
        }
        return new JobSearchResult(jobs, more ? lastSeq : null);
    }

    public async Task<IReadOnlyList<QueueRecord>> QueueListAsync(CancellationToken cancellationToken)
    {
        var queues = new SortedDictionary<string, (bool Paused, long Queued)>(StringComparer.Ordinal);
        await using (var command = _connection.CreateCommand())
        {
            // Walks the jobs_ready index, which holds only queued jobs.
            command.CommandText = "SELECT function, count(*) FROM jobs WHERE state = 'queued' GROUP BY function";
            await using var r = await command.ExecuteReaderAsync(cancellationToken);
            while (await r.ReadAsync(cancellationToken)) queues[r.GetString(0)] = (false, r.GetInt64(1));
        }
        await using (var command = _connection.CreateCommand())
        {
            command.CommandText = "SELECT function, paused FROM queues";
            await using var r = await command.ExecuteReaderAsync(cancellationToken);
            while (await r.ReadAsync(cancellationToken))
            {
                var f = r.GetString(0);
                queues[f] = (r.GetInt64(1) != 0, queues.TryGetValue(f, out var q) ? q.Queued : 0);
            }
        }
        return [.. queues.Select(q => new QueueRecord(q.Key, q.Value.Paused, q.Value.Queued))];
    }
}
