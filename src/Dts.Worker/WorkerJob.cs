using System.Text.Json;

namespace Dts.Worker;

/// <summary>One leased job as a handler sees it.</summary>
public sealed class WorkerJob
{
    private readonly Func<long, long, CancellationToken, ValueTask>? _progress;
    private readonly Action<string, string>? _log;

    /// <param name="log">Receives (stream, text) of each log line; the worker buffers them and sends them in batches.</param>
    public WorkerJob(string id, string function, JsonElement args, JsonElement kwargs, int attempt,
        Func<long, long, CancellationToken, ValueTask>? progress = null, Action<string, string>? log = null)
    {
        _log = log;
        Id = id;
        Function = function;
        Args = args;
        Kwargs = kwargs;
        Attempt = attempt;
        _progress = progress;
    }

    public string Id { get; }
    public string Function { get; }

    /// <summary>Positional arguments (a JSON array, or undefined when the job has none).</summary>
    public JsonElement Args { get; }

    /// <summary>Keyword arguments (a JSON object, or undefined when the job has none).</summary>
    public JsonElement Kwargs { get; }

    /// <summary>1 for the first run, counting up on each retry.</summary>
    public int Attempt { get; }

    /// <summary>
    /// Adds a line to the job's log on the server (<c>dts admin job logs ID</c>). Never blocks: lines are
    /// buffered and sent in batches; when the buffer is full (the server is unreachable for long) lines are dropped.
    /// A text with newlines becomes several lines.
    /// </summary>
    public void Log(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        foreach (var line in text.Split('\n')) WriteLog("log", line.TrimEnd('\r'));
    }

    /// <summary>One line on a given stream (<c>log</c>, <c>stdout</c>, <c>stderr</c>).</summary>
    internal void WriteLog(string stream, string line) => _log?.Invoke(stream, line);

    /// <summary>Tells the server how far the job has got; sent with the worker's next batch of reports.</summary>
    public ValueTask ReportProgressAsync(long numerator, long denominator, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(numerator);
        ArgumentOutOfRangeException.ThrowIfNegative(denominator);
        return _progress?.Invoke(numerator, denominator, cancellationToken) ?? ValueTask.CompletedTask;
    }
}

/// <summary>Thrown by a handler to fail the job with its own error code instead of <c>exception</c>.</summary>
public sealed class JobFailedException : Exception
{
    public JobFailedException(string code, string message, bool retry = true)
        : base(message)
    {
        Code = code;
        Retry = retry;
    }

    public JobFailedException()
        : this("failed", "The job failed.")
    {
    }

    public JobFailedException(string message)
        : this("failed", message)
    {
    }

    public JobFailedException(string message, Exception innerException)
        : base(message, innerException)
    {
        Code = "failed";
        Retry = true;
    }

    /// <summary>A short code for the job's error, such as <c>exit_code_2</c> or <c>bad_output</c>.</summary>
    public string Code { get; }

    /// <summary>False makes the job dead at once, whatever attempts remain.</summary>
    public bool Retry { get; }
}
