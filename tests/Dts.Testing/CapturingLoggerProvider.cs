using Microsoft.Extensions.Logging;

namespace Dts.Testing;

/// <summary>
/// Hands every log message (with its category, level and any exception text) to a callback, so a
/// test can search everything the server wrote, for example for a secret that must never appear.
/// </summary>
public sealed class CapturingLoggerProvider(Action<string> sink) : ILoggerProvider
{
    public ILogger CreateLogger(string categoryName) => new Logger(categoryName, sink);

    public void Dispose()
    {
    }

    private sealed class Logger(string category, Action<string> sink) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel != LogLevel.None;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            var line = $"{logLevel} {category}[{eventId.Id}] {formatter(state, exception)}";
            // Structured values as well as the rendered text: a secret could hide in either.
            if (state is IEnumerable<KeyValuePair<string, object?>> values)
                line += " {" + string.Join(", ", values.Select(v => $"{v.Key}={v.Value}")) + "}";
            if (exception is not null) line += "\n" + exception;
            sink(line);
        }
    }
}
