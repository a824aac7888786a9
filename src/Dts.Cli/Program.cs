using System.CommandLine;
using Dts.Cli.Commands;

var root = new RootCommand("Dts: a distributed task scheduler. Clients submit jobs to a server, workers run them, results come back.");
root.Subcommands.Add(ServerCommand.Build());
root.Subcommands.Add(WorkerCommand.Build());
root.Subcommands.Add(ClientCommand.Build());
root.Subcommands.Add(DemoCommand.Build());
root.Subcommands.Add(BenchCommand.Build());
return await root.Parse(args).InvokeAsync();
