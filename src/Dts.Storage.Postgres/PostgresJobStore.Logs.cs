using System.Globalization;
using System.Text;
using Dts.Contracts;
using Dts.Core.Storage;

namespace Dts.Storage.Postgres;

// Job logs.
public sealed partial class PostgresJobStore
{
    private sealed class LogTotals
    {
        public long Lines;
        public long Bytes;
        public bool Cut;
        public bool Changed;
    }

    public Task<JobLogAppendResult> JobLogAppendAsync(JobLogAppendParams p, CancellationToken cancellationToken)
    {
        if (p.Lines.Count == 0) return Task.FromResult(new JobLogAppendResult(0, 0, [], []));
        return TxAsync(async (c, t) =>
        {
            var jobIds = p.Lines.Select(l => l.JobId).Distinct(StringComparer.Ordinal).ToArray();
            // Who may log: the current holder of the lease, or the worker of the last attempt once it has
            // ended (the tail of a log may arrive just after the report).
            var jobs = new Dictionary<string, (JobState State, string? Token, string? Worker)>(StringComparer.Ordinal);
            await using (var select = Cmd(c, t, "SELECT id, state, lease_token, worker_id FROM {s}.jobs WHERE id = ANY(@ids)").P("ids", jobIds))
            await using (var r = await select.ExecuteReaderAsync(cancellationToken))
            {
                while (await r.ReadAsync(cancellationToken))
                    jobs[r.GetString(0)] = (JobStates.ParseStored(r.GetString(1)), Pg.StringOrNull(r, 2), Pg.StringOrNull(r, 3));
            }
            bool MayLog(string jobId, string token)
            {
                if (!jobs.TryGetValue(jobId, out var j)) return false;
                if (j.State == JobState.Running) return string.Equals(j.Token, token, StringComparison.Ordinal);
                return string.Equals(j.Worker, p.WorkerId, StringComparison.Ordinal);
            }
            var allowed = new HashSet<string>(StringComparer.Ordinal);
            foreach (var line in p.Lines)
            {
                if (MayLog(line.JobId, line.LeaseToken)) allowed.Add(line.JobId);
            }

            // The totals rows, created when missing and locked (in a fixed order) until commit, so that
            // appends to one job from several servers take turns and never reuse a sequence number.
            var totals = new Dictionary<string, LogTotals>(StringComparer.Ordinal);
            if (allowed.Count > 0)
            {
                await using var lockTotals = Cmd(c, t,
                    "INSERT INTO {s}.job_log_totals (job_id, lines, bytes, cut) SELECT id, 0, 0, false FROM unnest(@ids::text[]) AS x(id) ORDER BY id " +
                    "ON CONFLICT (job_id) DO UPDATE SET lines = {s}.job_log_totals.lines RETURNING job_id, lines, bytes, cut");
                lockTotals.P("ids", allowed.Order(StringComparer.Ordinal).ToArray());
                await using var r = await lockTotals.ExecuteReaderAsync(cancellationToken);
                while (await r.ReadAsync(cancellationToken))
                    totals[r.GetString(0)] = new LogTotals { Lines = r.GetInt64(1), Bytes = r.GetInt64(2), Cut = r.GetBoolean(3) };
            }

            var refused = new HashSet<string>(StringComparer.Ordinal);
            var ids = new List<string>();
            var seqs = new List<long>();
            var ats = new List<DateTime>();
            var streams = new List<string>();
            var texts = new List<string>();
            int stored = 0, dropped = 0;
            foreach (var line in p.Lines)
            {
                // A line is judged by its own token: a stale token is refused even when another line of the job is taken.
                if (!MayLog(line.JobId, line.LeaseToken) || !totals.TryGetValue(line.JobId, out var tt))
                {
                    refused.Add(line.JobId);
                    continue;
                }
                if (tt.Cut)
                {
                    dropped++;
                    continue;
                }
                var bytes = Encoding.UTF8.GetByteCount(line.Text);
                string stream = line.Stream, text = line.Text;
                if (tt.Lines + 1 >= p.MaxLines || tt.Bytes + bytes > p.MaxBytes)
                {
                    // The last line a job's log may hold says why the rest is missing.
                    text = string.Create(CultureInfo.InvariantCulture,
                        $"log cut: this job's log reached its limit of {p.MaxLines} lines or {p.MaxBytes} bytes; later lines were dropped");
                    stream = LogStreams.Server;
                    bytes = Encoding.UTF8.GetByteCount(text);
                    tt.Cut = true;
                    dropped++;
                }
                tt.Lines++;
                tt.Bytes += bytes;
                tt.Changed = true;
                stored++;
                ids.Add(line.JobId);
                seqs.Add(tt.Lines);
                ats.Add(Pg.Ts(line.At));
                streams.Add(stream);
                texts.Add(text);
            }
            var changed = totals.Where(kv => kv.Value.Changed).Select(kv => kv.Key).ToList();
            if (ids.Count > 0)
            {
                await using var insert = Cmd(c, t,
                    "INSERT INTO {s}.job_logs (job_id, seq, at, stream, text) " +
                    "SELECT * FROM unnest(@ids::text[], @seqs::bigint[], @ats::timestamptz[], @streams::text[], @texts::text[])");
                insert.P("ids", ids.ToArray()).P("seqs", seqs.ToArray()).P("ats", ats.ToArray()).P("streams", streams.ToArray()).P("texts", texts.ToArray());
                await insert.ExecuteNonQueryAsync(cancellationToken);

                await using var update = Cmd(c, t,
                    "UPDATE {s}.job_log_totals t SET lines = x.lines, bytes = x.bytes, cut = x.cut " +
                    "FROM unnest(@ids::text[], @lines::bigint[], @bytes::bigint[], @cut::boolean[]) AS x(job_id, lines, bytes, cut) WHERE t.job_id = x.job_id");
                update.P("ids", changed.ToArray())
                    .P("lines", changed.Select(id => totals[id].Lines).ToArray())
                    .P("bytes", changed.Select(id => totals[id].Bytes).ToArray())
                    .P("cut", changed.Select(id => totals[id].Cut).ToArray());
                await update.ExecuteNonQueryAsync(cancellationToken);
            }
            return new JobLogAppendResult(stored, dropped, [.. refused], changed);
        }, cancellationToken);
    }

    public Task<IReadOnlyList<JobLogLine>> JobLogReadAsync(JobLogReadParams p, CancellationToken cancellationToken)
    {
        if (p.Max <= 0) return Task.FromResult<IReadOnlyList<JobLogLine>>([]);
        return ReadAsync<IReadOnlyList<JobLogLine>>(async c =>
        {
            // The primary key (job_id, seq) serves this range scan directly.
            await using var command = Cmd(c, null,
                "SELECT seq, at, stream, text FROM {s}.job_logs WHERE job_id = @id AND seq > @after ORDER BY seq LIMIT @max");
            command.P("id", p.JobId).P("after", p.AfterSeq).P("max", p.Max);
            var lines = new List<JobLogLine>();
            await using var r = await command.ExecuteReaderAsync(cancellationToken);
            while (await r.ReadAsync(cancellationToken)) lines.Add(new JobLogLine(r.GetInt64(0), Pg.At(r, 1), r.GetString(2), r.GetString(3)));
            return lines;
        }, cancellationToken);
    }
}
