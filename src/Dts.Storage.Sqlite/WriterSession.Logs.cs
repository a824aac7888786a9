using System.Globalization;
using System.Text;
using Dts.Contracts;
using Dts.Core.Storage;
using Microsoft.Data.Sqlite;

namespace Dts.Storage.Sqlite;

// Job logs. Commands are prepared on first use so that a server whose workers never log pays nothing.
internal sealed partial class WriterSession
{
    private SqliteCommand? _logJob, _logTotals, _logTotalsSet, _logInsert;

    public JobLogAppendResult JobLogAppend(JobLogAppendParams p)
    {
        _logJob ??= Sql.Command(_connection, "SELECT state, lease_token, worker_id FROM jobs WHERE id = $id", "$id");
        _logTotals ??= Sql.Command(_connection, "SELECT lines, bytes, cut FROM job_log_totals WHERE job_id = $id", "$id");
        _logTotalsSet ??= Sql.Command(_connection,
            "INSERT OR REPLACE INTO job_log_totals (job_id, lines, bytes, cut) VALUES ($id, $lines, $bytes, $cut)",
            "$id", "$lines", "$bytes", "$cut");
        _logInsert ??= Sql.Command(_connection,
            "INSERT INTO job_logs (job_id, seq, at, stream, text) VALUES ($id, $seq, $at, $stream, $text)",
            "$id", "$seq", "$at", "$stream", "$text");

        // Per job of this call: whether its lines are taken, and its running totals (written back once at the end).
        var allowed = new Dictionary<(string Job, string Token), bool>();
        var totals = new Dictionary<string, Totals>(StringComparer.Ordinal);
        var refused = new HashSet<string>(StringComparer.Ordinal);
        int stored = 0, dropped = 0;
        foreach (var line in p.Lines)
        {
            if (!allowed.TryGetValue((line.JobId, line.LeaseToken), out var ok))
            {
                ok = MayLog(line.JobId, line.LeaseToken, p.WorkerId);
                allowed[(line.JobId, line.LeaseToken)] = ok;
            }
            if (!ok)
            {
                refused.Add(line.JobId);
                continue;
            }
            if (!totals.TryGetValue(line.JobId, out var t))
            {
                t = LoadTotals(line.JobId);
                totals[line.JobId] = t;
            }
            if (t.Cut)
            {
                dropped++;
                continue;
            }
            var bytes = Encoding.UTF8.GetByteCount(line.Text);
            if (t.Lines + 1 >= p.MaxLines || t.Bytes + bytes > p.MaxBytes)
            {
                // The last line a job's log may hold says why the rest is missing.
                var note = string.Create(CultureInfo.InvariantCulture,
                    $"log cut: this job's log reached its limit of {p.MaxLines} lines or {p.MaxBytes} bytes; later lines were dropped");
                InsertLogLine(line.JobId, t.Lines + 1, line.At, LogStreams.Server, note);
                t.Lines++;
                t.Bytes += Encoding.UTF8.GetByteCount(note);
                t.Cut = true;
                t.Changed = true;
                stored++;
                dropped++;
                continue;
            }
            InsertLogLine(line.JobId, t.Lines + 1, line.At, line.Stream, line.Text);
            t.Lines++;
            t.Bytes += bytes;
            t.Changed = true;
            stored++;
        }
        var changed = new List<string>();
        foreach (var (id, t) in totals)
        {
            if (!t.Changed) continue;
            var ps = _logTotalsSet.Parameters;
            ps[0].Value = id;
            ps[1].Value = t.Lines;
            ps[2].Value = t.Bytes;
            ps[3].Value = t.Cut ? 1 : 0;
            _logTotalsSet.ExecuteNonQuery();
            changed.Add(id);
        }
        return new JobLogAppendResult(stored, dropped, [.. refused], changed);
    }

    /// <summary>
    /// The current holder of the lease may log; so may the worker of the last attempt once it has ended
    /// (finished, or waiting for a retry), because the tail of a log may arrive just after the report.
    /// </summary>
    private bool MayLog(string jobId, string token, string workerId)
    {
        _logJob!.Parameters[0].Value = jobId;
        using var r = _logJob.ExecuteReader();
        if (!r.Read()) return false;
        var state = JobStates.ParseStored(r.GetString(0));
        var current = r.IsDBNull(1) ? null : r.GetString(1);
        var worker = r.IsDBNull(2) ? null : r.GetString(2);
        if (state == JobState.Running) return string.Equals(current, token, StringComparison.Ordinal);
        return string.Equals(worker, workerId, StringComparison.Ordinal);
    }

    private Totals LoadTotals(string jobId)
    {
        _logTotals!.Parameters[0].Value = jobId;
        using var r = _logTotals.ExecuteReader();
        return r.Read() ? new Totals { Lines = r.GetInt64(0), Bytes = r.GetInt64(1), Cut = r.GetInt64(2) != 0 } : new Totals();
    }

    private void InsertLogLine(string jobId, long seq, DateTimeOffset at, string stream, string text)
    {
        var ps = _logInsert!.Parameters;
        ps[0].Value = jobId;
        ps[1].Value = seq;
        ps[2].Value = Sql.Ms(at);
        ps[3].Value = stream;
        ps[4].Value = text;
        _logInsert.ExecuteNonQuery();
    }

    private void DisposeLogs()
    {
        _logJob?.Dispose();
        _logTotals?.Dispose();
        _logTotalsSet?.Dispose();
        _logInsert?.Dispose();
    }

    private sealed class Totals
    {
        public long Lines;
        public long Bytes;
        public bool Cut;
        public bool Changed;
    }
}
