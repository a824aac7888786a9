using System.Text.Json;
using BenchmarkDotNet.Attributes;
using Dts.Contracts;

namespace Dts.Benchmarks;

/// <summary>(De)serialising a 500-job submit batch (the client's request, the server's parse) and one job view.</summary>
[MemoryDiagnoser]
public class JsonBenchmarks
{
    private SubmitBatchRequest _batch = null!;
    private byte[] _batchJson = [];
    private JobView _view = null!;
    private byte[] _viewJson = [];

    [GlobalSetup]
    public void Setup()
    {
        var args = JsonSerializer.SerializeToElement(new List<string> { "argument text of a typical job" }, DtsJsonContext.Default.ListString);
        _batch = new SubmitBatchRequest
        {
            Jobs = Enumerable.Range(0, 500).Select(i => new SubmitJobRequest { Function = "resize", Args = args, MaxAttempts = 3 }).ToList(),
        };
        _batchJson = JsonSerializer.SerializeToUtf8Bytes(_batch, DtsJsonContext.Default.SubmitBatchRequest);
        var now = DateTimeOffset.UtcNow;
        _view = new JobView
        {
            Id = "01JBENCHJOBID0000000000000", Function = "resize", State = JobState.Succeeded, Owner = "bench-client",
            Args = args, Kwargs = JsonSerializer.SerializeToElement(new List<string>(), DtsJsonContext.Default.ListString),
            Result = args, MaxAttempts = 3, Attempts = 1, RetentionSeconds = 86400, CreatedAt = now, UpdatedAt = now, StartedAt = now, FinishedAt = now,
        };
        _viewJson = JsonSerializer.SerializeToUtf8Bytes(_view, DtsJsonContext.Default.JobView);
    }

    [Benchmark]
    public byte[] SerializeBatch500() => JsonSerializer.SerializeToUtf8Bytes(_batch, DtsJsonContext.Default.SubmitBatchRequest);

    [Benchmark]
    public SubmitBatchRequest? DeserializeBatch500() => JsonSerializer.Deserialize(_batchJson, DtsJsonContext.Default.SubmitBatchRequest);

    [Benchmark]
    public byte[] SerializeJobView() => JsonSerializer.SerializeToUtf8Bytes(_view, DtsJsonContext.Default.JobView);

    [Benchmark]
    public JobView? DeserializeJobView() => JsonSerializer.Deserialize(_viewJson, DtsJsonContext.Default.JobView);
}
