using Dts.Contracts;
using Dts.Testing;

namespace Dts.Server.Tests;

/// <summary>Short-hands for the common request sequences of the API tests.</summary>
internal static class Flow
{
    public static Task<SubmitJobResponse> SubmitAsync(SignedHttp client, string body) =>
        client.CallAsync(HttpMethod.Post, ApiRoutes.Jobs, body, DtsJsonContext.Default.SubmitJobResponse);

    public static Task<SubmitJobResponse> SubmitFnAsync(SignedHttp client, string function, string argsJson = "[]") =>
        SubmitAsync(client, $$"""{"function":"{{function}}","args":{{argsJson}}}""");

    public static async Task<string> RegisterAsync(SignedHttp worker, params string[] functions)
    {
        var body = SignedHttp.Json(new RegisterWorkerRequest { Name = "test", Functions = [.. functions], Concurrency = 4 }, DtsJsonContext.Default.RegisterWorkerRequest);
        var r = await worker.CallAsync(HttpMethod.Post, ApiRoutes.Workers, body, DtsJsonContext.Default.RegisterWorkerResponse);
        return r.WorkerId;
    }

    public static async Task<List<LeasedJob>> LeaseAsync(SignedHttp worker, string workerId, int max = 10, double wait = 0)
    {
        var body = SignedHttp.Json(new LeaseRequest { Max = max, WaitSeconds = wait }, DtsJsonContext.Default.LeaseRequest);
        var r = await worker.CallAsync(HttpMethod.Post, ApiRoutes.WorkerLease(workerId), body, DtsJsonContext.Default.LeaseResponse);
        return r.Jobs;
    }

    public static Task<HttpResponseMessage> CompleteAsync(SignedHttp worker, LeasedJob job, string resultJson) =>
        worker.PostAsync(ApiRoutes.JobComplete(job.Id), $$"""{"lease_token":"{{job.LeaseToken}}","result":{{resultJson}}}""");

    public static Task<HttpResponseMessage> FailAsync(SignedHttp worker, LeasedJob job, string message, bool retry = true) =>
        worker.PostAsync(ApiRoutes.JobFail(job.Id), $$"""{"lease_token":"{{job.LeaseToken}}","error":{"code":"boom","message":"{{message}}"},"retry":{{(retry ? "true" : "false")}}}""");

    public static Task<JobView> GetAsync(SignedHttp client, string id, double wait = 0) =>
        client.CallAsync(HttpMethod.Get, ApiRoutes.Job(id) + (wait > 0 ? $"?wait_seconds={wait}" : ""), null, DtsJsonContext.Default.JobView);

    public static Task<ResultsResponse> ResultsAsync(SignedHttp client, double wait = 0, int max = 100) =>
        client.CallAsync(HttpMethod.Get, $"{ApiRoutes.Results}?max={max}&wait_seconds={wait}", null, DtsJsonContext.Default.ResultsResponse);

    /// <summary>Waits (bounded) for a background daemon to bring a job to a state; fails the test if it never does.</summary>
    /// <remarks>
    /// With a fake <paramref name="clock"/>, each look moves it on a second: a daemon that went to sleep
    /// on the fake clock just after the test moved it would otherwise never wake.
    /// </remarks>
    public static async Task<JobView> EventuallyAsync(SignedHttp client, string id, JobState state, Microsoft.Extensions.Time.Testing.FakeTimeProvider? clock = null)
    {
        JobView? last = null;
        for (var i = 0; i < 200; i++)
        {
            last = await GetAsync(client, id);
            if (last.State == state) return last;
            clock?.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(25, TestContext.Current.CancellationToken);
        }
        throw new Xunit.Sdk.XunitException($"job {id} stayed {last?.State} instead of becoming {state}");
    }
}
