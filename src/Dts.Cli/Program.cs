using System.CommandLine;
using Dts.Cli.Commands;

var root = new RootCommand("Dts: a distributed task scheduler. Clients submit jobs to a server, workers run them, results come back.");
root.Subcommands.Add(ServerCommand.Build());
root.Subcommands.Add(WorkerCommand.Build());
root.Subcommands.Add(ClientCommand.Build());
root.Subcommands.Add(DemoCommand.Build());
root.Subcommands.Add(BenchCommand.Build());
root.Subcommands.Add(AdminCommand.Build());
try
{
    // Commands handle Ctrl-C and SIGTERM themselves (the worker drains), so no forced termination timeout.
    return await root.Parse(args).InvokeAsync(new InvocationConfiguration { ProcessTerminationTimeout = null });
}
catch (Exception ex) when (ex is Dts.Client.DtsApiException or HttpRequestException or TimeoutException or IOException or UnauthorizedAccessException or InvalidOperationException)
{
    // Expected failures (server refused, unreachable, file problems) get one line, not a stack trace.
    Console.Error.WriteLine("dts: " + ex.Message);
    return 1;
}
