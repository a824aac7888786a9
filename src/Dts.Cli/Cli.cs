using System.Runtime.InteropServices;
using Dts.Server;
using Microsoft.Extensions.Logging;

namespace Dts.Cli;

internal static class Cli
{
    /// <summary>Prints one line to stderr and gives the exit status for a usage or input error.</summary>
    /// <summary>The environment variable <paramref name="name"/>, or null when it is unset or empty.</summary>
    public static string? Variable(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? value : null;

    public static int Fail(string message)
    {
        Console.Error.WriteLine("dts: " + message);
        return 2;
    }

    /// <summary>A server inside this process on a free loopback port, logging warnings and errors only (for demo and bench).</summary>
    public static Task<DtsServer> StartQuietServerAsync(string dataDirectory, CancellationToken cancellationToken,
        Dts.Storage.Sqlite.SqliteSynchronous synchronous = Dts.Storage.Sqlite.SqliteSynchronous.Full) =>
        DtsServer.StartAsync(
            new DtsServerOptions { Url = "http://127.0.0.1:0", DataDirectory = dataDirectory, Synchronous = synchronous },
            logging: b => b.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning),
            cancellationToken: cancellationToken);

    /// <summary>
    /// The first Ctrl-C or SIGTERM cancels <paramref name="stop"/> so the command can finish
    /// gracefully; a second one exits at once.
    /// </summary>
    public static IDisposable StopOnSignals(CancellationTokenSource stop, string what)
    {
        var count = 0;
        void OnSignal(PosixSignalContext context)
        {
            context.Cancel = true;
            if (Interlocked.Increment(ref count) == 1)
            {
                Console.Error.WriteLine($"dts: stopping {what} (press Ctrl-C again to exit at once)");
                stop.Cancel();
            }
            else
            {
                Environment.Exit(130);
            }
        }
        var registrations = new[]
        {
            PosixSignalRegistration.Create(PosixSignal.SIGINT, OnSignal),
            PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSignal),
        };
        return new Registrations(registrations);
    }

    private sealed class Registrations(PosixSignalRegistration[] items) : IDisposable
    {
        public void Dispose()
        {
            foreach (var r in items) r.Dispose();
        }
    }
}
