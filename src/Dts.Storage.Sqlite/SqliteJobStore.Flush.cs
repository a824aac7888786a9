using Dts.Core.Storage;
using Microsoft.Data.Sqlite;

namespace Dts.Storage.Sqlite;

/// <summary>
/// <see cref="IJobStore.FlushAsync"/>: making commits that ran without an fsync durable on demand.
/// The writer loop records, after each commit and before any of its callers is answered, whether a
/// commit without an fsync has happened since the last fsynced one (see <see cref="NoteCommit"/>).
/// </summary>
public sealed partial class SqliteJobStore
{
    /// <summary>
    /// True when some commit since the last fsynced commit that wrote to the WAL ran at Normal (no
    /// fsync) and held a write that owes a flush (an insert made with Durable false). Leases,
    /// heartbeats, registrations and nonces commit without a flush too, but nobody ever waits for
    /// theirs (see RunBatch), so they do not set it: otherwise the lease poll a worker sends right
    /// after its report would make every foreground answer pay the flush it was meant to save. Written only by the writer loop, before it completes the batch's operations, so a
    /// caller that has seen its write complete also sees the flag that write set. Starts true: the
    /// file may hold commits of an earlier process that nobody flushed.
    /// </summary>
    private volatile bool _unflushed = true;

    /// <summary>
    /// Returns at once when nothing committed so far waits for an fsync, or when the store is
    /// configured with Synchronous Normal or Off (then nothing is ever fsynced at Full, and there is
    /// nothing to wait for). Otherwise queues a durable write of the one marker row: its batch
    /// commits at Full, and because the WAL is fsynced as a whole, that flush covers every commit
    /// before it.
    /// </summary>
    public Task FlushAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        if (_options.Synchronous != SqliteSynchronous.Full || !_unflushed) return Task.CompletedTask;
        return WriteAsync(static (s, _) => WriteFlushMarker(s.Connection), 0, cancellationToken);
    }

    /// <summary>
    /// A real change, so the commit has a WAL frame to write and SQLite fsyncs it (a transaction that
    /// changed nothing commits without touching the WAL, and an fsync would not happen). The row is
    /// read by nothing; counting the flushes only makes it visible to tests and to people.
    /// </summary>
    private static int WriteFlushMarker(SqliteConnection connection)
    {
        using var command = connection.CreateCommand();
        command.CommandText =
            "INSERT INTO flush_marker (id, flushes) VALUES (1, 1) ON CONFLICT (id) DO UPDATE SET flushes = flushes + 1";
        return command.ExecuteNonQuery();
    }

    /// <summary>Rows changed on the writer connection so far; the difference across a batch tells whether it wrote.</summary>
    private static long TotalChanges(WriterSession writer) => SQLitePCL.raw.sqlite3_total_changes(writer.Connection.Handle);

    /// <summary>
    /// Called by the writer loop after each successful commit, before the batch's callers are
    /// answered. <paramref name="wrote"/> must be true only when the commit certainly changed rows
    /// (so wrote WAL frames, which an fsync at Full then flushed); when unsure, false keeps the
    /// flag set and costs at most one extra flush. A batch whose durable writes all changed
    /// nothing (a due-job promotion that found none, say) commits at Full without an fsync, so it
    /// must not clear the flag.
    /// </summary>
    private void NoteCommit(SqliteSynchronous level, bool wrote, bool owesFlush)
    {
        if (_options.Synchronous != SqliteSynchronous.Full) return;
        if (level != SqliteSynchronous.Full)
        {
            if (owesFlush) _unflushed = true;
        }
        else if (wrote)
        {
            _unflushed = false;
        }
    }
}
