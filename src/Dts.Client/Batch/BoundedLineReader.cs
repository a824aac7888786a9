using System.Text;

namespace Dts.Client.Batch;

/// <summary>
/// Reads UTF-8 lines from a stream without ever holding more than the longest allowed line, so an
/// input with a giant line (or no newline at all) cannot exhaust memory. A longer line is reported
/// as too long with its first bytes, and the rest of it is skipped.
/// </summary>
internal sealed class BoundedLineReader(Stream stream, int maxLineBytes)
{
    private readonly byte[] _buffer = new byte[64 * 1024];
    private int _start, _end;
    private bool _eof;
    private readonly MemoryStream _line = new();

    /// <summary>The next line (no newline, no trailing CR), or null at the end; <c>TooLong</c> when it was cut.</summary>
    public async ValueTask<(string Text, bool TooLong)?> ReadLineAsync(CancellationToken cancellationToken)
    {
        _line.SetLength(0);
        var tooLong = false;
        var any = false;
        while (true)
        {
            if (_start == _end)
            {
                if (_eof) break;
                _start = 0;
                _end = await stream.ReadAsync(_buffer, cancellationToken).ConfigureAwait(false);
                if (_end == 0)
                {
                    _eof = true;
                    break;
                }
            }
            any = true;
            var span = _buffer.AsSpan(_start, _end - _start);
            var newline = span.IndexOf((byte)'\n');
            var take = newline < 0 ? span.Length : newline;
            Append(span[..take], ref tooLong);
            _start += newline < 0 ? take : take + 1;
            if (newline >= 0) return Finish(tooLong);
        }
        return any ? Finish(tooLong) : null;
    }

    private void Append(ReadOnlySpan<byte> bytes, ref bool tooLong)
    {
        // Keep one byte more than allowed, so a line of exactly the limit plus a CR is not cut.
        var room = maxLineBytes + 1 - (int)_line.Length;
        if (bytes.Length > room)
        {
            tooLong = true;
            bytes = bytes[..Math.Max(room, 0)];
        }
        _line.Write(bytes);
    }

    private (string, bool) Finish(bool tooLong)
    {
        var bytes = _line.GetBuffer().AsSpan(0, (int)_line.Length);
        if (bytes.Length > 0 && bytes[^1] == (byte)'\r' && !tooLong) bytes = bytes[..^1];
        if (bytes.Length > maxLineBytes) tooLong = true;
        if (tooLong) bytes = bytes[..Math.Min(bytes.Length, 200)];
        return (Encoding.UTF8.GetString(bytes), tooLong);
    }
}
