using System.Text.Json.Serialization;
using Dts.Cli.Commands;

namespace Dts.Cli;

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower, WriteIndented = false)]
[JsonSerializable(typeof(string))]
[JsonSerializable(typeof(int))]
[JsonSerializable(typeof(string[]))]
[JsonSerializable(typeof(DemoResultLine))]
[JsonSerializable(typeof(BenchReport))]
internal sealed partial class CliJson : JsonSerializerContext;
