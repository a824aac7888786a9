using System.Buffers;
using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Dts.Client;

namespace Dts.Worker;

/// <summary>What a command gets on stdin.</summary>
public enum StdinMode
{
    /// <summary>The job as one JSON object: <c>{"id","function","args","kwargs","attempt"}</c>.</summary>
    Json,

    /// <summary>Each positional argument on its own line (a string as is, anything else as JSON).</summary>
    Text,
}

/// <summary>How a command's stdout becomes the job's result.</summary>
public enum OutputMode
{
    /// <summary>A JSON string: stdout with one trailing newline removed.</summary>
    Text,

    /// <summary>Stdout parsed as one JSON value; anything else fails with <c>bad_output</c>.</summary>
    Json,
}

public sealed class CommandRunnerOptions
{
    public const long DefaultMaxStdoutBytes = 16 * 1024 * 1024;
    public const int DefaultMaxStderrBytes = 8 * 1024;

    /// <summary>A shell command line, run as <c>/bin/sh -c COMMAND</c>.</summary>
    public required string Command { get; init; }

    public StdinMode Stdin { get; init; } = StdinMode.Json;
    public OutputMode Output { get; init; } = OutputMode.Text;

    /// <summary>A command that writes more than this fails with <c>output_too_large</c> and is killed.</summary>
    public long MaxStdoutBytes { get; init; } = DefaultMaxStdoutBytes;

    /// <summary>How much of stderr goes into a failure's message.</summary>
    public int MaxStderrBytes { get; init; } = DefaultMaxStderrBytes;

    public string Shell { get; init; } = "/bin/sh";

    /// <summary>The child's working directory; the worker's when null.</summary>
    public string? WorkingDirectory { get; init; }
}

/// <summary>
/// Runs one job as one child process (docs/worker.md, "Command contract"). Cancellation kills the
/// whole process tree, so a timed-out job leaves nothing behind.
/// </summary>
public sealed class CommandRunner
{
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: false);

    /// <summary>How long a killed command's pipes may stay open before the runner stops reading them.</summary>
    private static readonly TimeSpan PipeCloseGrace = TimeSpan.FromSeconds(2);

    private readonly CommandRunnerOptions _options;

    public CommandRunner(CommandRunnerOptions options)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(options.Command);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxStdoutBytes, 0);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxStderrBytes, 0);
        _options = options;
    }

    public CommandRunnerOptions Options => _options;

    /// <summary>Suits <see cref="DtsWorker.Handle(string, Func{WorkerJob, CancellationToken, Task{JsonElement}})"/>.</summary>
    public Func<WorkerJob, CancellationToken, Task<JsonElement>> Handler => RunAsync;

    /// <summary>
    /// Runs the command for <paramref name="job"/> and returns its result. A failing command throws
    /// <see cref="JobFailedException"/>; cancellation kills the process tree and throws
    /// <see cref="OperationCanceledException"/>.
    /// </summary>
    public async Task<JsonElement> RunAsync(WorkerJob job, CancellationToken cancellationToken)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var input = BuildStdin(job, _options.Stdin);
        var start = new ProcessStartInfo(_options.Shell)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            WorkingDirectory = _options.WorkingDirectory ?? "",
        };
        start.ArgumentList.Add("-c");
        start.ArgumentList.Add(_options.Command);
        start.Environment["DTS_JOB_ID"] = job.Id;
        start.Environment["DTS_FUNCTION"] = job.Function;
        start.Environment["DTS_ATTEMPT"] = job.Attempt.ToString(CultureInfo.InvariantCulture);

        using var process = new Process { StartInfo = start };
        try
        {
            process.Start();
        }
        catch (Exception ex) when (ex is System.ComponentModel.Win32Exception or InvalidOperationException)
        {
            throw new JobFailedException("start_failed", $"Could not start {_options.Shell}: {ex.Message}", retry: true);
        }

        // A runaway stdout is cut off here rather than by the caller's token, so it fails as output_too_large.
        using var tooLarge = new CancellationTokenSource();
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, tooLarge.Token);
        // Reads normally run to end of file; this only cuts them off when an orphaned background
        // process of a killed command still holds the pipes open.
        using var abandonReads = new CancellationTokenSource();
        var stdinTask = WriteStdinAsync(process, input, linked.Token);
        var stdoutTask = ReadCappedAsync(process.StandardOutput.BaseStream, _options.MaxStdoutBytes, tooLarge, abandonReads.Token);
        // Both output modes take stdout as the result, so only stderr goes to the job's log, line by line as it comes.
        var stderrTask = ReadCappedAsync(process.StandardError.BaseStream, _options.MaxStderrBytes, null, abandonReads.Token,
            new LineSplitter(line => job.WriteLog("stderr", line)));
        try
        {
            await process.WaitForExitAsync(linked.Token).ConfigureAwait(false);
            await Task.WhenAll(stdinTask, stdoutTask, stderrTask).WaitAsync(linked.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (linked.IsCancellationRequested)
        {
            Kill(process);
            // Wait for the exit so no zombie is left; the kill makes this quick.
            await process.WaitForExitAsync(CancellationToken.None).ConfigureAwait(false);
            var io = Task.WhenAll(stdinTask, stdoutTask, stderrTask);
            try
            {
                await io.WaitAsync(PipeCloseGrace, CancellationToken.None).ConfigureAwait(false);
            }
            catch (TimeoutException)
            {
                await abandonReads.CancelAsync().ConfigureAwait(false);
                await io.ConfigureAwait(false);
            }
            if (!cancellationToken.IsCancellationRequested && tooLarge.IsCancellationRequested)
                throw new JobFailedException("output_too_large", $"The command wrote more than {_options.MaxStdoutBytes} bytes to stdout and was stopped.", retry: false);
            throw new OperationCanceledException("The job was cancelled and its process tree killed.", cancellationToken);
        }

        var stdout = (await stdoutTask.ConfigureAwait(false)).Bytes;
        if (process.ExitCode != 0)
        {
            var errors = await stderrTask.ConfigureAwait(false);
            var stderr = Utf8.GetString(errors.Bytes).Trim();
            if (stderr.Length == 0) stderr = $"The command exited with status {process.ExitCode}.";
            else if (errors.Truncated) stderr += " [stderr truncated]";
            throw new JobFailedException($"exit_code_{process.ExitCode.ToString(CultureInfo.InvariantCulture)}", stderr);
        }
        return ToResult(stdout, _options.Output);
    }

    internal static byte[] BuildStdin(WorkerJob job, StdinMode mode)
    {
        var buffer = new ArrayBufferWriter<byte>();
        if (mode == StdinMode.Json)
        {
            using var writer = new Utf8JsonWriter(buffer);
            writer.WriteStartObject();
            writer.WriteString("id", job.Id);
            writer.WriteString("function", job.Function);
            writer.WritePropertyName("args");
            WriteOrDefault(writer, job.Args, array: true);
            writer.WritePropertyName("kwargs");
            WriteOrDefault(writer, job.Kwargs, array: false);
            writer.WriteNumber("attempt", job.Attempt);
            writer.WriteEndObject();
            writer.Flush();
            buffer.Write("\n"u8);
            return buffer.WrittenSpan.ToArray();
        }

        var text = new StringBuilder();
        if (job.Args.ValueKind == JsonValueKind.Array)
        {
            foreach (var arg in job.Args.EnumerateArray())
                text.Append(arg.ValueKind == JsonValueKind.String ? arg.GetString() : arg.GetRawText()).Append('\n');
        }
        else if (job.Args.ValueKind is not JsonValueKind.Undefined and not JsonValueKind.Null)
        {
            text.Append(job.Args.ValueKind == JsonValueKind.String ? job.Args.GetString() : job.Args.GetRawText()).Append('\n');
        }
        return Utf8.GetBytes(text.ToString());
    }

    private static void WriteOrDefault(Utf8JsonWriter writer, JsonElement value, bool array)
    {
        if (value.ValueKind is not JsonValueKind.Undefined and not JsonValueKind.Null)
        {
            value.WriteTo(writer);
        }
        else if (array)
        {
            writer.WriteStartArray();
            writer.WriteEndArray();
        }
        else
        {
            writer.WriteStartObject();
            writer.WriteEndObject();
        }
    }

    internal static JsonElement ToResult(byte[] stdout, OutputMode mode)
    {
        if (mode == OutputMode.Json)
        {
            try
            {
                using var doc = JsonDocument.Parse(stdout);
                return doc.RootElement.Clone();
            }
            catch (JsonException ex)
            {
                var preview = Utf8.GetString(stdout, 0, Math.Min(stdout.Length, 200));
                throw new JobFailedException("bad_output", $"The command's stdout is not one JSON value ({ex.Message}): {preview}", retry: false);
            }
        }

        var text = Utf8.GetString(stdout);
        if (text.EndsWith('\n')) text = text[..^1];
        return JsonValues.String(text);
    }

    private static async Task WriteStdinAsync(Process process, byte[] input, CancellationToken cancellationToken)
    {
        var stdin = process.StandardInput.BaseStream;
        try
        {
            await stdin.WriteAsync(input, cancellationToken).ConfigureAwait(false);
            await stdin.FlushAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (IOException)
        {
            // The command exited or closed stdin without reading it all; that is its right.
        }
        catch (OperationCanceledException)
        {
            // The run is being torn down; the caller reports why.
        }
        finally
        {
            try
            {
                process.StandardInput.Close();
            }
            catch (IOException)
            {
                // Same broken pipe as above.
            }
        }
    }

    /// <summary>Reads a stream to its end keeping at most <paramref name="cap"/> bytes; with <paramref name="overflow"/>, exceeding the cap cancels it.</summary>
    private static async Task<CappedOutput> ReadCappedAsync(Stream stream, long cap, CancellationTokenSource? overflow, CancellationToken abandon,
        LineSplitter? lines = null)
    {
        using var kept = new MemoryStream();
        var buffer = new byte[16 * 1024];
        var truncated = false;
        while (true)
        {
            int read;
            try
            {
                read = await stream.ReadAsync(buffer, abandon).ConfigureAwait(false);
            }
            catch (IOException)
            {
                break;
            }
            catch (OperationCanceledException)
            {
                break;
            }
            if (read == 0) break;
            lines?.Add(buffer.AsSpan(0, read));
            var room = cap - kept.Length;
            if (read > room)
            {
                if (room > 0) kept.Write(buffer, 0, (int)room);
                if (!truncated && overflow is not null) await overflow.CancelAsync().ConfigureAwait(false);
                truncated = true;
                // Keep draining so the child never blocks on a full pipe before it is killed.
                continue;
            }
            kept.Write(buffer, 0, read);
        }
        lines?.Flush();
        return new CappedOutput(kept.ToArray(), truncated);
    }

    private static void Kill(Process process)
    {
        try
        {
            process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // It exited on its own in the meantime.
        }
        catch (System.ComponentModel.Win32Exception)
        {
            // Some process of the tree could not be signalled (already gone); the rest were.
        }
    }

    private sealed record CappedOutput(byte[] Bytes, bool Truncated);

    /// <summary>Cuts a byte stream into UTF-8 lines as they complete; a very long line is passed on in pieces so memory stays bounded.</summary>
    internal sealed class LineSplitter(Action<string> onLine)
    {
        private const int MaxLineBytes = 16 * 1024;
        private readonly MemoryStream _pending = new();

        public void Add(ReadOnlySpan<byte> bytes)
        {
            while (bytes.Length > 0)
            {
                var newline = bytes.IndexOf((byte)'\n');
                var take = newline < 0 ? bytes.Length : newline;
                _pending.Write(bytes[..take]);
                if (newline >= 0)
                {
                    Emit();
                    bytes = bytes[(newline + 1)..];
                }
                else
                {
                    if (_pending.Length >= MaxLineBytes) Emit();
                    bytes = default;
                }
            }
        }

        /// <summary>Passes on a last line that had no newline.</summary>
        public void Flush()
        {
            if (_pending.Length > 0) Emit();
        }

        private void Emit()
        {
            var text = Utf8.GetString(_pending.GetBuffer(), 0, (int)_pending.Length).TrimEnd('\r');
            _pending.SetLength(0);
            onLine(text);
        }
    }
}
