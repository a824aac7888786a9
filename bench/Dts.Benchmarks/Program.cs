using BenchmarkDotNet.Running;

// dotnet run -c Release --project bench/Dts.Benchmarks -- --filter '*'        (all)
// dotnet run -c Release --project bench/Dts.Benchmarks -- --filter '*Signing*' (one class)
BenchmarkSwitcher.FromAssembly(typeof(Dts.Benchmarks.SigningBenchmarks).Assembly).Run(args);
