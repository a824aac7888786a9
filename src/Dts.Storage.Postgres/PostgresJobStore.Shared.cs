using System.Diagnostics;
using System.Text;
using Dts.Core.Storage;
using Npgsql;

namespace Dts.Storage.Postgres;

// ISharedStore: wake-ups between servers (LISTEN/NOTIFY), leadership (a session advisory lock),
// and the database clock.
public sealed partial class PostgresJobStore
{
    /// <summary>Longest key a signal carries; NOTIFY payloads must stay under 8000 bytes.</summary>
    internal const int MaxSignalKeyBytes = 7000;

    /// <summary>The NOTIFY channel of this schema's servers.</summary>
    internal string Channel => "dts_" + _schema;

    private static char KindLetter(ClusterSignalKind kind) => kind switch
    {
        ClusterSignalKind.JobsReady => 'j',
        ClusterSignalKind.ResultsReady => 'r',
        ClusterSignalKind.Scheduled => 's',
        ClusterSignalKind.LogsAppended => 'l',
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "This kind of signal is not published."),
    };

    /// <summary>
    /// The NOTIFY payload of a signal: the kind's letter, then (only when not the defaults) the count
    /// and <c>@</c> with the origin server's id, then <c>:</c> and the key. "j:resize" is one job of
    /// resize from an unnamed server; "j3@a1b2:resize" is three from server a1b2.
    /// </summary>
    internal static string EncodeSignal(ClusterSignal s)
    {
        var head = new StringBuilder().Append(KindLetter(s.Kind));
        if (s.Count != 1) head.Append(s.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (!string.IsNullOrEmpty(s.Origin)) head.Append('@').Append(s.Origin);
        return head.Append(':').Append(s.Key).ToString();
    }

    /// <summary>
    /// Reads a payload written by <see cref="EncodeSignal"/> (or by an older server, which wrote only
    /// the letter, <c>:</c> and the key). Null for an unknown kind or no <c>:</c>; a count that
    /// does not read as a positive number counts as one.
    /// </summary>
    internal static ClusterSignal? ParseSignal(string payload)
    {
        var colon = payload.IndexOf(':');
        if (colon < 1) return null;
        ClusterSignalKind? kind = payload[0] switch
        {
            'j' => ClusterSignalKind.JobsReady,
            'r' => ClusterSignalKind.ResultsReady,
            's' => ClusterSignalKind.Scheduled,
            'l' => ClusterSignalKind.LogsAppended,
            _ => null,
        };
        if (kind is not { } k) return null;
        var meta = payload.AsSpan(1, colon - 1);
        var at = meta.IndexOf('@');
        var countText = at < 0 ? meta : meta[..at];
        var count = countText.Length == 0 ? 1
            : int.TryParse(countText, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var c) && c > 0 ? c
            : countText.Length > 9 && countText.ContainsAnyExceptInRange('0', '9') is false ? int.MaxValue
            : 1;
        var origin = at < 0 || at == meta.Length - 1 ? null : meta[(at + 1)..].ToString();
        return new ClusterSignal(k, payload[(colon + 1)..], count, origin);
    }

    public async Task PublishAsync(IReadOnlyList<ClusterSignal> signals, CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        var payloads = new List<string>(signals.Count);
        foreach (var s in signals)
        {
            if (s.Kind == ClusterSignalKind.Resync) continue;
            if (Encoding.UTF8.GetByteCount(s.Key) > MaxSignalKeyBytes) continue;
            payloads.Add(EncodeSignal(s));
        }
        if (payloads.Count == 0) return;
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        // One round trip for all of them; outside a transaction block each is delivered at once.
        await using var command = new NpgsqlCommand("SELECT pg_notify(@channel, p) FROM unnest(@payloads::text[]) AS p", connection);
        command.P("channel", Channel).P("payloads", payloads.ToArray());
        await command.ExecuteNonQueryAsync(cancellationToken);
    }

    /// <summary>A connection string for a dedicated, unpooled connection with TCP keepalive.</summary>
    internal string DedicatedConnectionString(int? commandTimeoutSeconds = null)
    {
        var builder = new NpgsqlConnectionStringBuilder(_connectionString)
        {
            Pooling = false,
            KeepAlive = 10,
            TcpKeepAlive = true,
        };
        if (commandTimeoutSeconds is { } t) builder.CommandTimeout = t;
        return builder.ConnectionString;
    }

    public async Task ListenAsync(Action<ClusterSignal> onSignal, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(onSignal);
        var backoff = TimeSpan.FromMilliseconds(100);
        var connectionString = DedicatedConnectionString();
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await using var connection = new NpgsqlConnection(connectionString);
                await connection.OpenAsync(cancellationToken);
                connection.Notification += (_, e) =>
                {
                    if (ParseSignal(e.Payload) is { } signal) onSignal(signal);
                };
                await using (var listen = new NpgsqlCommand($"LISTEN \"{Channel}\"", connection))
                    await listen.ExecuteNonQueryAsync(cancellationToken);
                backoff = TimeSpan.FromMilliseconds(100);
                // Signals sent while no connection listened are lost: every waiter looks again.
                onSignal(new ClusterSignal(ClusterSignalKind.Resync, ""));
                while (true) await connection.WaitAsync(cancellationToken);
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e) when (e is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                // The connection failed (or a handler threw while dispatching): listening must go on, so
                // reconnect after a capped backoff; the Resync on reconnecting covers what was missed.
            }
            try
            {
                await Task.Delay(backoff, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
        }
    }

    public ILeadership CreateLeadership()
    {
        ObjectDisposedException.ThrowIf(_disposed != 0, this);
        return new PostgresLeadership(DedicatedConnectionString(), LockKey("leader"));
    }

    public async Task<TimeSpan> MeasureClockOffsetAsync(CancellationToken cancellationToken)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(cancellationToken);
        await using var command = new NpgsqlCommand("SELECT clock_timestamp()", connection);
        // Prepared and run once first, so the timed round trip is only the query.
        await command.ExecuteScalarAsync(cancellationToken);
        var sentAt = DateTimeOffset.UtcNow;
        var watch = Stopwatch.StartNew();
        var value = await command.ExecuteScalarAsync(cancellationToken);
        var elapsed = watch.Elapsed;
        var db = value switch
        {
            DateTime d => new DateTimeOffset(DateTime.SpecifyKind(d, DateTimeKind.Utc)),
            DateTimeOffset o => o,
            _ => throw new InvalidDataException("clock_timestamp() returned an unexpected type."),
        };
        var midpoint = sentAt + elapsed / 2;
        return db - midpoint;
    }
}

/// <summary>
/// A leadership candidate: a session-level advisory lock held on a dedicated connection. Session
/// locks stack, so the lock is only asked for while this candidate is not leader; while it is, the
/// connection is checked to be alive. Losing the connection loses the lock (the server ends the
/// session), so any connection error means not leader until a later call takes the lock again.
/// </summary>
internal sealed class PostgresLeadership(string connectionString, long key) : ILeadership
{
    private static readonly int CheckTimeoutSeconds = 5;
    private readonly SemaphoreSlim _gate = new(1, 1);
    private NpgsqlConnection? _connection;
    private volatile bool _isLeader;
    private bool _disposed;

    public bool IsLeader => _isLeader;

    public async Task<bool> TryAcquireAsync(CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken);
        try
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            try
            {
                if (_connection is null)
                {
                    var connection = new NpgsqlConnection(connectionString);
                    try
                    {
                        await connection.OpenAsync(cancellationToken);
                    }
                    catch
                    {
                        await connection.DisposeAsync();
                        throw;
                    }
                    _connection = connection;
                    _isLeader = false;
                }
                if (_isLeader)
                {
                    await using var check = new NpgsqlCommand("SELECT 1", _connection) { CommandTimeout = CheckTimeoutSeconds };
                    await check.ExecuteScalarAsync(cancellationToken);
                    return true;
                }
                await using var take = new NpgsqlCommand("SELECT pg_try_advisory_lock(@key)", _connection) { CommandTimeout = CheckTimeoutSeconds };
                take.Parameters.AddWithValue("key", key);
                _isLeader = await take.ExecuteScalarAsync(cancellationToken) is true;
                return _isLeader;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                // The connection may be mid-command; start afresh next time.
                await DropConnectionAsync();
                throw;
            }
            catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException or System.Net.Sockets.SocketException
                                          or InvalidOperationException or OperationCanceledException)
            {
                await DropConnectionAsync();
                return false;
            }
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task DropConnectionAsync()
    {
        _isLeader = false;
        var connection = _connection;
        _connection = null;
        if (connection is null) return;
        try
        {
            await connection.DisposeAsync();
        }
        catch (Exception e) when (e is NpgsqlException or IOException or System.Net.Sockets.SocketException)
        {
            // A broken connection may fail to close cleanly; it is gone either way.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _gate.WaitAsync();
        try
        {
            if (_disposed) return;
            _disposed = true;
            // Closing the unpooled connection ends the session, which frees the lock, but the server
            // does that only once the backend has exited; unlocking first hands over at once.
            if (_isLeader && _connection is { } connection)
            {
                try
                {
                    await using var unlock = new NpgsqlCommand("SELECT pg_advisory_unlock(@key)", connection) { CommandTimeout = CheckTimeoutSeconds };
                    unlock.Parameters.AddWithValue("key", key);
                    await unlock.ExecuteScalarAsync();
                }
                catch (Exception e) when (e is NpgsqlException or IOException or TimeoutException or System.Net.Sockets.SocketException or InvalidOperationException)
                {
                    // The connection is broken: the session, and the lock with it, is gone or going.
                }
            }
            await DropConnectionAsync();
        }
        finally
        {
            _gate.Release();
        }
        _gate.Dispose();
    }
}
