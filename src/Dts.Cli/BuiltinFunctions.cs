using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Dts.Worker;

namespace Dts.Cli;

/// <summary>The functions <c>dts demo</c> and <c>dts bench</c> run in-process: each takes one text argument.</summary>
internal static class BuiltinFunctions
{
    public static readonly IReadOnlyList<string> Names = ["reverse", "wordcount", "sha256"];

    public static DtsWorker AddTo(DtsWorker worker)
    {
        worker.Handle("reverse", (job, _) => Task.FromResult(JsonSerializer.SerializeToElement(Reverse(Text(job)), CliJson.Default.String)));
        worker.Handle("wordcount", (job, _) => Task.FromResult(JsonSerializer.SerializeToElement(
            Text(job).Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length, CliJson.Default.Int32)));
        worker.Handle("sha256", (job, _) => Task.FromResult(JsonSerializer.SerializeToElement(
            Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(Text(job)))), CliJson.Default.String)));
        return worker;
    }

    private static string Text(WorkerJob job)
    {
        if (job.Args.ValueKind != JsonValueKind.Array || job.Args.GetArrayLength() != 1 || job.Args[0].ValueKind != JsonValueKind.String)
            throw new JobFailedException("bad_args", "expected one text argument: args = [\"text\"]", retry: false);
        return job.Args[0].GetString()!;
    }

    private static string Reverse(string s)
    {
        // Reverse by text elements so that combining marks and surrogate pairs stay whole.
        var elements = new List<string>();
        var e = System.Globalization.StringInfo.GetTextElementEnumerator(s);
        while (e.MoveNext()) elements.Add(e.GetTextElement());
        elements.Reverse();
        return string.Concat(elements);
    }
}
