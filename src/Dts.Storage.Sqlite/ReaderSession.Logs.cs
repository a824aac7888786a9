using Dts.Core.Storage;
using Microsoft.Data.Sqlite;

namespace Dts.Storage.Sqlite;

internal sealed partial class ReaderSession
{
    private SqliteCommand? _logRead;

    public async Task<IReadOnlyList<JobLogLine>> JobLogReadAsync(JobLogReadParams p, CancellationToken cancellationToken)
    {
        if (p.Max <= 0) return [];
        // The primary key (job_id, seq) serves this range scan directly.
        _logRead ??= Sql.Command(_connection,
            "SELECT seq, at, stream, text FROM job_logs WHERE job_id = $id AND seq > $after ORDER BY seq LIMIT $max",
            "$id", "$after", "$max");
        _logRead.Parameters[0].Value = p.JobId;
        _logRead.Parameters[1].Value = p.AfterSeq;
        _logRead.Parameters[2].Value = p.Max;
        var lines = new List<JobLogLine>();
        await using var r = await _logRead.ExecuteReaderAsync(cancellationToken);
        while (await r.ReadAsync(cancellationToken)) lines.Add(new JobLogLine(r.GetInt64(0), Sql.At(r.GetInt64(1)), r.GetString(2), r.GetString(3)));
        return lines;
    }
}
