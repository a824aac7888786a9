using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using System.Threading.Channels;
using Dts.Contracts;

namespace Dts.Client.Tests;

/// <summary>
/// The worker half of the API in memory: register, a lease long poll fed by <see cref="Enqueue"/>,
/// reports and heartbeats recorded. Enough to drive DtsWorker's loops without a real server.
/// </summary>
internal sealed class FakeWorkerServer : HttpMessageHandler
{
    private readonly Channel<LeasedJob> _queue = Channel.CreateUnbounded<LeasedJob>();
    private int _registrations;
    private int _heartbeats;

    public ConcurrentQueue<JobReport> Reports { get; } = new();
    public ConcurrentQueue<RegisterWorkerRequest> Registrations { get; } = new();
    public ConcurrentQueue<HeartbeatRequest> Heartbeats { get; } = new();
    public ConcurrentQueue<LogLineRequest> LogLines { get; } = new();

    /// <summary>Job ids the next heartbeat answers with in its cancel list.</summary>
    public ConcurrentQueue<string> CancelOnNextHeartbeat { get; } = new();

    /// <summary>When set, the next heartbeat answers 404 worker_not_found.</summary>
    public volatile bool ForgetWorkerOnNextHeartbeat;

    /// <summary>The max of every lease request, in order.</summary>
    public ConcurrentQueue<int> LeaseMaxes { get; } = new();

    /// <summary>How many of the next lease requests answer 500.</summary>
    public int FailingLeases;

    public int RegistrationCount => Volatile.Read(ref _registrations);
    public int HeartbeatCount => Volatile.Read(ref _heartbeats);

    public void Enqueue(string id, string function, string args = "[]", double? timeoutSeconds = null) =>
        _queue.Writer.TryWrite(new LeasedJob
        {
            Id = id,
            Function = function,
            Args = JsonValues.Parse(args),
            Kwargs = JsonValues.Parse("{}"),
            LeaseToken = "token-" + id,
            Attempt = 1,
            MaxAttempts = 3,
            TimeoutSeconds = timeoutSeconds,
        });

    public JobReport? Final(string id) => Reports.LastOrDefault(r => r.JobId == id && (r.Result is not null || r.Error is not null));

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var body = request.Content is null ? [] : await request.Content.ReadAsByteArrayAsync(cancellationToken);
        var path = request.RequestUri!.AbsolutePath;
        if (path == ApiRoutes.Workers)
        {
            Registrations.Enqueue(JsonSerializer.Deserialize(body, DtsJsonContext.Default.RegisterWorkerRequest)!);
            var n = Interlocked.Increment(ref _registrations);
            return Answer(new RegisterWorkerResponse { WorkerId = $"w{n}", HeartbeatIntervalSeconds = 1, LeaseTimeoutSeconds = 10 }, DtsJsonContext.Default.RegisterWorkerResponse);
        }
        if (path.EndsWith("/lease", StringComparison.Ordinal))
        {
            var lease = JsonSerializer.Deserialize(body, DtsJsonContext.Default.LeaseRequest)!;
            LeaseMaxes.Enqueue(lease.Max!.Value);
            if (Interlocked.Decrement(ref FailingLeases) >= 0)
                return FakeHandler.Json(HttpStatusCode.InternalServerError, """{"status":500,"code":"internal_error"}""", "application/problem+json");
            var jobs = new List<LeasedJob> { await _queue.Reader.ReadAsync(cancellationToken) };
            while (jobs.Count < lease.Max && _queue.Reader.TryRead(out var more)) jobs.Add(more);
            return Answer(new LeaseResponse { Jobs = jobs }, DtsJsonContext.Default.LeaseResponse);
        }
        if (path.EndsWith("/reports", StringComparison.Ordinal))
        {
            var reports = JsonSerializer.Deserialize(body, DtsJsonContext.Default.ReportBatchRequest)!.Reports!;
            foreach (var r in reports) Reports.Enqueue(r);
            return Answer(new ReportBatchResponse { Outcomes = [.. reports.Select(r => new ReportOutcome { JobId = r.JobId!, Status = "ok" })] },
                DtsJsonContext.Default.ReportBatchResponse);
        }
        if (path.EndsWith("/logs", StringComparison.Ordinal))
        {
            var lines = JsonSerializer.Deserialize(body, DtsJsonContext.Default.LogBatchRequest)!.Lines!;
            foreach (var l in lines) LogLines.Enqueue(l);
            return Answer(new LogBatchResponse { Stored = lines.Count }, DtsJsonContext.Default.LogBatchResponse);
        }
        if (path.EndsWith("/heartbeat", StringComparison.Ordinal))
        {
            Heartbeats.Enqueue(JsonSerializer.Deserialize(body, DtsJsonContext.Default.HeartbeatRequest)!);
            Interlocked.Increment(ref _heartbeats);
            if (ForgetWorkerOnNextHeartbeat)
            {
                ForgetWorkerOnNextHeartbeat = false;
                return FakeHandler.Json(HttpStatusCode.NotFound, """{"status":404,"code":"worker_not_found"}""", "application/problem+json");
            }
            var cancel = new List<string>();
            while (CancelOnNextHeartbeat.TryDequeue(out var id)) cancel.Add(id);
            return Answer(new HeartbeatResponse { Cancel = cancel }, DtsJsonContext.Default.HeartbeatResponse);
        }
        return FakeHandler.Json(HttpStatusCode.NotFound, """{"status":404,"code":"route_not_found"}""", "application/problem+json");
    }

    private static HttpResponseMessage Answer<T>(T value, System.Text.Json.Serialization.Metadata.JsonTypeInfo<T> type) =>
        FakeHandler.Json(HttpStatusCode.OK, JsonSerializer.Serialize(value, type));
}
