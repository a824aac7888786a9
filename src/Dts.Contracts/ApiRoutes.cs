namespace Dts.Contracts;

/// <summary>The HTTP API's paths (docs/protocol.md describes each).</summary>
public static class ApiRoutes
{
    /// <summary>GET, unsigned: liveness and the store in use.</summary>
    public const string Health = "/healthz";

    /// <summary>
    /// POST a <see cref="SubmitJobRequest"/>: 201 with <see cref="SubmitJobResponse"/> (200 when coalesced).
    /// <c>?wait_seconds=N</c> (0 to <see cref="MaxWaitSeconds"/>) stores the job, then waits up to N seconds
    /// for it to finish and adds its <see cref="JobView"/> to the answer (<see cref="SubmitJobResponse.Job"/>).
    /// </summary>
    public const string Jobs = "/v1/jobs";
    /// <summary>POST a <see cref="SubmitBatchRequest"/> of up to <see cref="MaxBatch"/> jobs: 200 with <see cref="SubmitBatchResponse"/>, in order.</summary>
    public const string JobsBatch = "/v1/jobs/batch";
    /// <summary>GET a <see cref="JobView"/>; <c>?wait_seconds=N</c> waits up to N seconds for the job to finish.</summary>
    public static string Job(string id) => $"/v1/jobs/{id}";
    /// <summary>POST (no body): cancels a queued job at once, asks the worker to stop a running one. 200 with <see cref="JobView"/>.</summary>
    public static string JobCancel(string id) => $"/v1/jobs/{id}/cancel";
    /// <summary>POST a <see cref="JobReport"/> (worker): progress. 200 with <see cref="ReportOutcome"/>, 409 stale_lease.</summary>
    public static string JobProgress(string id) => $"/v1/jobs/{id}/progress";
    /// <summary>POST a <see cref="JobReport"/> with a result (worker). 200 with <see cref="ReportOutcome"/>, 409 stale_lease.</summary>
    public static string JobComplete(string id) => $"/v1/jobs/{id}/complete";
    /// <summary>POST a <see cref="JobReport"/> with an error (worker). 200 with <see cref="ReportOutcome"/>, 409 stale_lease.</summary>
    public static string JobFail(string id) => $"/v1/jobs/{id}/fail";

    /// <summary>GET <c>?max=N&amp;wait_seconds=S[&amp;tag=T]</c>: finished jobs of the caller (with tag T) not yet acknowledged (<see cref="ResultsResponse"/>).</summary>
    public const string Results = "/v1/results";
    /// <summary>POST an <see cref="AckRequest"/>: the results are delivered and may be forgotten.</summary>
    public const string ResultsAck = "/v1/results/ack";

    /// <summary>POST a <see cref="RegisterWorkerRequest"/>: 201 with <see cref="RegisterWorkerResponse"/>.</summary>
    public const string Workers = "/v1/workers";
    /// <summary>POST a <see cref="HeartbeatRequest"/>: <see cref="HeartbeatResponse"/>; 404 worker_not_found means register again.</summary>
    public static string WorkerHeartbeat(string workerId) => $"/v1/workers/{workerId}/heartbeat";
    /// <summary>POST a <see cref="LeaseRequest"/>: long-polls for up to max jobs (<see cref="LeaseResponse"/>, possibly empty).</summary>
    public static string WorkerLease(string workerId) => $"/v1/workers/{workerId}/lease";
    /// <summary>POST a <see cref="ReportBatchRequest"/>: progress, completions and failures in one request; an outcome per report.</summary>
    public static string WorkerReports(string workerId) => $"/v1/workers/{workerId}/reports";

    /// <summary>POST a <see cref="LogBatchRequest"/>: log lines of jobs leased to the worker (<see cref="LogBatchResponse"/>).</summary>
    public static string WorkerLogs(string workerId) => $"/v1/workers/{workerId}/logs";
    /// <summary>
    /// GET <c>?after=SEQ&amp;max=N&amp;wait_seconds=S</c> (owner or administrator): the job's log lines after SEQ
    /// (<see cref="JobLogsResponse"/>); with wait_seconds, waits for new lines or the job's end.
    /// </summary>
    public static string JobLogs(string id) => $"/v1/jobs/{id}/logs";
    /// <summary>Most log lines in one request or one answer.</summary>
    public const int MaxLogLines = 5000;

    public const int MaxBatch = 1000;
    public const int MaxLease = 1000;
    public const double MaxWaitSeconds = 60;
}
