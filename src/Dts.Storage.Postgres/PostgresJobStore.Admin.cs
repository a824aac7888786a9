using System.Text;
using Dts.Contracts;
using Dts.Core.Storage;
using Npgsql;

namespace Dts.Storage.Postgres;

// The administration operations.
public sealed partial class PostgresJobStore
{
    public Task<IReadOnlyList<UserSummary>> UserListAsync(UserListParams p, CancellationToken cancellationToken) =>
        ReadAsync<IReadOnlyList<UserSummary>>(async c =>
        {
            // The secret column is not selected: a listing has no use for secrets.
            await using var command = Cmd(c, null,
                $"SELECT {UserColumns} FROM {{s}}.users WHERE @after::text IS NULL OR name > @after::text ORDER BY name LIMIT @limit");
            command.P("after", p.AfterName).P("limit", p.Limit);
            var users = new List<UserSummary>();
            await using var r = await command.ExecuteReaderAsync(cancellationToken);
            while (await r.ReadAsync(cancellationToken)) users.Add(ReadUserSummary(r, 0));
            return users;
        }, cancellationToken);

    public Task<bool> UserUpdateAsync(UserUpdateParams p, CancellationToken cancellationToken) =>
        TxAsync(async (c, t) =>
        {
            // A parameter left NULL keeps the column; 0 (or an empty list) clears a limit to NULL.
            await using var command = Cmd(c, t,
                "UPDATE {s}.users SET roles = coalesce(@roles::text[], roles), disabled = coalesce(@disabled::boolean, disabled), " +
                "max_queued = CASE WHEN @max_queued::bigint IS NULL THEN max_queued WHEN @max_queued::bigint = 0 THEN NULL ELSE @max_queued::bigint END, " +
                "submit_rate = CASE WHEN @rate::double precision IS NULL THEN submit_rate WHEN @rate::double precision = 0 THEN NULL ELSE @rate::double precision END, " +
                "submit_burst = CASE WHEN @burst::double precision IS NULL THEN submit_burst WHEN @burst::double precision = 0 THEN NULL ELSE @burst::double precision END, " +
                "functions = CASE WHEN @functions::text[] IS NULL THEN functions WHEN cardinality(@functions::text[]) = 0 THEN NULL ELSE @functions::text[] END " +
                "WHERE name = @name");
            command.P("roles", p.Roles?.ToArray()).P("disabled", p.Disabled).P("max_queued", p.MaxQueued).P("rate", p.SubmitRate)
                .P("burst", p.SubmitBurst).P("functions", p.Functions?.ToArray()).P("name", p.Name);
            return await command.ExecuteNonQueryAsync(cancellationToken) == 1;
        }, cancellationToken);

    public Task<bool> UserSetSecretAsync(UserSetSecretParams p, CancellationToken cancellationToken)
    {
        // The second of the two places a secret goes into the database (the other is UserInsertAsync).
        var secret = _cipher.Protect(p.Name, p.Secret);
        return TxAsync(async (c, t) =>
        {
            await using var command = Cmd(c, t, "UPDATE {s}.users SET secret = @secret WHERE name = @name").P("secret", secret).P("name", p.Name);
            return await command.ExecuteNonQueryAsync(cancellationToken) == 1;
        }, cancellationToken);
    }

    public Task<UserDeleteResult> UserDeleteAsync(UserDeleteParams p, CancellationToken cancellationToken) =>
        TxAsync(async (c, t) =>
        {
            await using (var delete = Cmd(c, t, "DELETE FROM {s}.users WHERE name = @name").P("name", p.Name))
            {
                if (await delete.ExecuteNonQueryAsync(cancellationToken) == 0) return new UserDeleteResult(false, 0, []);
            }
            var now = Pg.Ts(p.Now);
            long cancelled = 0;
            var functions = new HashSet<string>(StringComparer.Ordinal);
            // Jobs that are not running stop at once; their cancellation waits as a result like any other.
            await using (var cancel = Cmd(c, t,
                "UPDATE {s}.jobs SET state = 'cancelled', finished_at = @now, updated_at = @now, result_pending = true, " +
                "result_expires_at = @now + retention_ms * interval '1 millisecond' " +
                "WHERE owner = @owner AND state IN ('queued', 'scheduled', 'awaiting_retry') RETURNING function"))
            {
                cancel.P("now", now).P("owner", p.Name);
                await using var r = await cancel.ExecuteReaderAsync(cancellationToken);
                while (await r.ReadAsync(cancellationToken))
                {
                    cancelled++;
                    functions.Add(r.GetString(0));
                }
            }
            // Running jobs are asked to stop; their workers learn it from the next heartbeat.
            await using (var request = Cmd(c, t,
                "UPDATE {s}.jobs SET cancel_requested = true, updated_at = @now WHERE owner = @owner AND state = 'running'"))
            {
                request.P("now", now).P("owner", p.Name);
                cancelled += await request.ExecuteNonQueryAsync(cancellationToken);
            }
            await using (var workers = Cmd(c, t, "DELETE FROM {s}.workers WHERE owner = @owner").P("owner", p.Name))
                await workers.ExecuteNonQueryAsync(cancellationToken);
            return new UserDeleteResult(true, cancelled, [.. functions]);
        }, cancellationToken);

    public Task<long> JobCountUnfinishedAsync(JobCountUnfinishedParams p, CancellationToken cancellationToken) =>
        ReadAsync(async c =>
        {
            await using var command = Cmd(c, null, $"SELECT count(*) FROM {{s}}.jobs WHERE owner = @owner AND {Pg.UnfinishedStates}").P("owner", p.Owner);
            return (long)(await command.ExecuteScalarAsync(cancellationToken))!;
        }, cancellationToken);

    public Task<IReadOnlyList<WorkerListItem>> WorkerListAsync(WorkerListParams p, CancellationToken cancellationToken) =>
        ReadAsync<IReadOnlyList<WorkerListItem>>(async c =>
        {
            await using var command = Cmd(c, null,
                $"SELECT {Pg.WorkerColumns}, (SELECT count(*) FROM {{s}}.jobs j WHERE j.worker_id = w.id AND j.state = 'running') " +
                "FROM {s}.workers w WHERE (@after::text IS NULL OR id > @after::text) AND (@id::text IS NULL OR id = @id::text) ORDER BY id LIMIT @limit");
            command.P("after", p.AfterId).P("id", p.Id).P("limit", p.Limit);
            var workers = new List<WorkerListItem>();
            await using var r = await command.ExecuteReaderAsync(cancellationToken);
            while (await r.ReadAsync(cancellationToken)) workers.Add(new WorkerListItem(Pg.ReadWorker(r), (int)r.GetInt64(8)));
            return workers;
        }, cancellationToken);

    public Task<bool> WorkerSetDrainingAsync(WorkerSetDrainingParams p, CancellationToken cancellationToken) =>
        TxAsync(async (c, t) =>
        {
            await using var command = Cmd(c, t, "UPDATE {s}.workers SET draining = @draining WHERE id = @id").P("draining", p.Draining).P("id", p.Id);
            return await command.ExecuteNonQueryAsync(cancellationToken) == 1;
        }, cancellationToken);

    public Task<IReadOnlyList<FunctionStats>> FunctionStatsAsync(FunctionStatsParams p, CancellationToken cancellationToken) =>
        ReadAsync<IReadOnlyList<FunctionStats>>(async c =>
        {
            var counts = new SortedDictionary<string, Dictionary<JobState, long>>(StringComparer.Ordinal);
            Dictionary<JobState, long> For(string function)
            {
                if (!counts.TryGetValue(function, out var d)) counts[function] = d = [];
                return d;
            }
            var paused = new HashSet<string>(StringComparer.Ordinal);
            var workers = new Dictionary<string, List<string>>(StringComparer.Ordinal);
            // Three result sets in one round trip.
            await using var batch = new NpgsqlBatch(c);
            batch.BatchCommands.Add(new NpgsqlBatchCommand(S("SELECT function, state, count(*) FROM {s}.jobs GROUP BY function, state")));
            batch.BatchCommands.Add(new NpgsqlBatchCommand(S("SELECT function, paused FROM {s}.queues")));
            batch.BatchCommands.Add(new NpgsqlBatchCommand(S("SELECT id, functions FROM {s}.workers WHERE last_heartbeat_at >= $1 ORDER BY id")).P(Pg.Ts(p.AliveSince)));
            await using var r = await batch.ExecuteReaderAsync(cancellationToken);
            while (await r.ReadAsync(cancellationToken)) For(r.GetString(0))[JobStates.ParseStored(r.GetString(1))] = r.GetInt64(2);
            await r.NextResultAsync(cancellationToken);
            while (await r.ReadAsync(cancellationToken))
            {
                For(r.GetString(0));
                if (r.GetBoolean(1)) paused.Add(r.GetString(0));
            }
            await r.NextResultAsync(cancellationToken);
            while (await r.ReadAsync(cancellationToken))
            {
                var id = r.GetString(0);
                foreach (var f in Pg.Strings(r, 1))
                {
                    For(f);
                    if (!workers.TryGetValue(f, out var list)) workers[f] = list = [];
                    list.Add(id);
                }
            }
            return [.. counts.Select(kv => new FunctionStats
            {
                Function = kv.Key,
                Counts = kv.Value,
                Paused = paused.Contains(kv.Key),
                Workers = workers.TryGetValue(kv.Key, out var w) ? w : [],
            })];
        }, cancellationToken);

    public Task<JobSearchResult> JobSearchAsync(JobSearchParams p, CancellationToken cancellationToken) =>
        ReadAsync(async c =>
        {
            await using var command = new NpgsqlCommand { Connection = c };
            var where = new StringBuilder("true");
            if (p.State is { } state)
            {
                where.Append(" AND state = @state");
                command.P("state", state.ToWire());
            }
            if (p.Function is not null)
            {
                where.Append(" AND function = @function");
                command.P("function", p.Function);
            }
            if (p.Owner is not null)
            {
                where.Append(" AND owner = @owner");
                command.P("owner", p.Owner);
            }
            if (p.Tag is not null)
            {
                where.Append(" AND tags_json IS NOT NULL AND tags_json::jsonb @> jsonb_build_array(@tag::text)");
                command.P("tag", p.Tag);
            }
            if (p.CreatedAfter is { } after)
            {
                where.Append(" AND created_at >= @created_after");
                command.P("created_after", Pg.Ts(after));
            }
            if (p.CreatedBefore is { } before)
            {
                where.Append(" AND created_at < @created_before");
                command.P("created_before", Pg.Ts(before));
            }
            if (p.BeforeSeq is { } cursor)
            {
                where.Append(" AND seq < @cursor");
                command.P("cursor", cursor);
            }
            // One row more than asked tells whether another page follows (keyset paging on seq).
            command.CommandText = S($"SELECT {Pg.JobColumns} FROM {{s}}.jobs WHERE {where} ORDER BY seq DESC LIMIT @limit");
            command.P("limit", p.Limit + 1);
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
                jobs.Add(Pg.ReadJob(r));
            }
            return new JobSearchResult(jobs, more ? lastSeq : null);
        }, cancellationToken);

    public Task<JobRetryResult> JobRetryAsync(JobRetryParams p, CancellationToken cancellationToken) =>
        TxAsync(async (c, t) =>
        {
            JobRecord job;
            long seq;
            await using (var lookup = Cmd(c, t, $"SELECT {Pg.JobColumns} FROM {{s}}.jobs WHERE id = @id FOR UPDATE").P("id", p.Id))
            await using (var r = await lookup.ExecuteReaderAsync(cancellationToken))
            {
                if (!await r.ReadAsync(cancellationToken)) return new JobRetryResult(JobRetryStatus.NotFound, null);
                seq = r.GetInt64(0);
                job = Pg.ReadJob(r);
            }
            if (job.State is not (JobState.Dead or JobState.AwaitingRetry or JobState.Cancelled))
                return new JobRetryResult(JobRetryStatus.NotRetryable, job);
            // An automatic key is held by this very row in every state (jobs_auto_key), so no other job can
            // hold it and re-queueing cannot clash. A caller's key was given up when the job ended.
            if (job.UniqueKey is { } key && !UniqueKeys.IsAutomatic(key) && job.State != JobState.AwaitingRetry)
            {
                // Another unfinished job holding the same unique key would make two of them; refuse rather than break the key.
                await using var taken = Cmd(c, t,
                    "SELECT 1 FROM {s}.jobs j WHERE j.owner = @owner AND j.function = @function AND j.unique_key = @key AND " +
                    $"{CallersKey} AND j.{Pg.UnfinishedStates}");
                taken.P("owner", job.Owner).P("function", job.Function).P("key", key);
                if (await taken.ExecuteScalarAsync(cancellationToken) is not null) return new JobRetryResult(JobRetryStatus.UniqueKeyTaken, job);
            }
            await using var queue = Cmd(c, t,
                "UPDATE {s}.jobs SET state = 'queued', attempts = 0, run_at = @now, updated_at = @now, error_code = NULL, " +
                "error_message = NULL, result_json = NULL, result_pending = false, result_expires_at = NULL, finished_at = NULL, " +
                "cancel_requested = false, lease_token = NULL, lease_expires_at = NULL, worker_id = NULL, progress_num = NULL, " +
                $"progress_den = NULL, deadline_at = NULL WHERE seq = @seq RETURNING {Pg.JobColumns}");
            queue.P("now", Pg.Ts(p.Now)).P("seq", seq);
            try
            {
                job = (await ReadJobsAsync(queue, cancellationToken)).Single();
            }
            catch (PostgresException e) when (e.SqlState == PostgresErrorCodes.UniqueViolation)
            {
                // Another server queued a job with the key between the check and the update.
                return new JobRetryResult(JobRetryStatus.UniqueKeyTaken, job);
            }
            return new JobRetryResult(JobRetryStatus.Retried, job);
        }, cancellationToken);

    /// <summary>
    /// Deletes in batches of at most 1000, each its own transaction, so that a purge of millions of
    /// jobs never holds locks for long; each batch continues after the last seq the previous one saw.
    /// </summary>
    public async Task<long> JobPurgeAsync(JobPurgeParams p, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(p.BatchSize, 1);
        foreach (var s in p.States)
        {
            if (!s.IsTerminal()) throw new ArgumentException("Only finished jobs can be purged.", nameof(p));
        }
        if (p.States.Count == 0) return 0;
        var batchSize = Math.Min(p.BatchSize, 1000);
        var states = p.States.Select(s => s.ToWire()).ToArray();
        long total = 0;
        long after = 0;
        while (true)
        {
            var (deleted, examined, last) = await TxAsync(async (c, t) =>
            {
                await using var command = Cmd(c, t,
                    "WITH picked AS (SELECT seq FROM {s}.jobs WHERE seq > @after AND state = ANY(@states) " +
                    "AND (@function::text IS NULL OR function = @function::text) AND (@owner::text IS NULL OR owner = @owner::text) " +
                    "AND (@before::timestamptz IS NULL OR finished_at < @before::timestamptz) ORDER BY seq LIMIT @limit FOR UPDATE SKIP LOCKED), " +
                    "gone AS (DELETE FROM {s}.jobs j USING picked WHERE j.seq = picked.seq RETURNING j.seq) " +
                    "SELECT count(*), max(seq) FROM gone");
                command.P("after", after).P("states", states).P("function", p.Function).P("owner", p.Owner)
                    .P("before", Pg.Ts(p.FinishedBefore)).P("limit", batchSize);
                await using var r = await command.ExecuteReaderAsync(cancellationToken);
                await r.ReadAsync(cancellationToken);
                var n = r.GetInt64(0);
                return (n, n, r.IsDBNull(1) ? after : r.GetInt64(1));
            }, cancellationToken);
            total += deleted;
            if (examined < batchSize) return total;
            after = last;
        }
    }

    public Task<QueueRecord> QueueSetPausedAsync(QueueSetPausedParams p, CancellationToken cancellationToken) =>
        TxAsync(async (c, t) =>
        {
            await using var command = Cmd(c, t,
                "INSERT INTO {s}.queues (function, paused, updated_at) VALUES (@function, @paused, @now) " +
                "ON CONFLICT (function) DO UPDATE SET paused = excluded.paused, updated_at = excluded.updated_at " +
                "RETURNING paused, (SELECT count(*) FROM {s}.jobs WHERE function = @function AND state = 'queued')");
            command.P("function", p.Function).P("paused", p.Paused).P("now", Pg.Ts(p.Now));
            await using var r = await command.ExecuteReaderAsync(cancellationToken);
            await r.ReadAsync(cancellationToken);
            return new QueueRecord(p.Function, r.GetBoolean(0), r.GetInt64(1));
        }, cancellationToken);

    public Task<IReadOnlyList<QueueRecord>> QueueListAsync(QueueListParams p, CancellationToken cancellationToken) =>
        ReadAsync<IReadOnlyList<QueueRecord>>(async c =>
        {
            // The queued counts come from the jobs_ready partial index, which holds only queued jobs.
            await using var command = Cmd(c, null,
                "SELECT coalesce(q.function, j.function), coalesce(q.paused, false), coalesce(j.queued, 0) " +
                "FROM {s}.queues q FULL JOIN (SELECT function, count(*) AS queued FROM {s}.jobs WHERE state = 'queued' GROUP BY function) j " +
                "ON j.function = q.function ORDER BY coalesce(q.function, j.function) COLLATE \"C\"");
            var list = new List<QueueRecord>();
            await using var r = await command.ExecuteReaderAsync(cancellationToken);
            while (await r.ReadAsync(cancellationToken)) list.Add(new QueueRecord(r.GetString(0), r.GetBoolean(1), r.GetInt64(2)));
            return list;
        }, cancellationToken);
}
