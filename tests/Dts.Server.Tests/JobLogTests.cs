using Dts.Contracts;
using Dts.Core.Storage;
using Dts.Testing;

namespace Dts.Server.Tests;

/// <summary>The tracer: workers send job log lines; owners and administrators read and follow them.</summary>
public sealed class JobLogTests : ClientWorkerServerTest
{
    protected override void Configure(DtsServerOptions options) => options.LogMaxLinesPerJob = 6;

    private async Task<(string WorkerId, LeasedJob Job)> RunningJobAsync(string function)
    {
        await Flow.SubmitFnAsync(_client, function);
        var workerId = await Flow.RegisterAsync(_worker, function);
        return (workerId, Assert.Single(await Flow.LeaseAsync(_worker, workerId)));
    }

    private Task<LogBatchResponse> SendAsync(string workerId, LeasedJob job, params string[] texts) => SendAsync(workerId, job.Id, job.LeaseToken, texts);

    private Task<LogBatchResponse> SendAsync(string workerId, string jobId, string token, params string[] texts)
    {
        var body = new LogBatchRequest { Lines = [.. texts.Select(t => new LogLineRequest { JobId = jobId, LeaseToken = token, Text = t, Stream = t.StartsWith("E:", StringComparison.Ordinal) ? "stderr" : null })] };
        return _worker.CallAsync(HttpMethod.Post, ApiRoutes.WorkerLogs(workerId), SignedHttp.Json(body, DtsJsonContext.Default.LogBatchRequest), DtsJsonContext.Default.LogBatchResponse);
    }

    private static Task<JobLogsResponse> ReadAsync(SignedHttp who, string jobId, long after = 0, double wait = 0) =>
        who.CallAsync(HttpMethod.Get, $"{ApiRoutes.JobLogs(jobId)}?after={after}&wait_seconds={wait}", null, DtsJsonContext.Default.JobLogsResponse);

    [Fact]
    public async Task LinesAreStoredInOrder_AndReadByTheOwnerFromAnyPoint()
    {
        var (workerId, job) = await RunningJobAsync("l1");
        var sent = await SendAsync(workerId, job, "one", "E:two", "three");
        Assert.Equal(3, sent.Stored);
        Assert.Empty(sent.Refused);

        var all = await ReadAsync(_client, job.Id);
        Assert.Equal(["one", "E:two", "three"], all.Lines.Select(l => l.Text));
        Assert.Equal([1L, 2L, 3L], all.Lines.Select(l => l.Seq));
        Assert.Equal(["log", "stderr", "log"], all.Lines.Select(l => l.Stream));
        Assert.Equal(3, all.Next);
        Assert.False(all.Finished);

        var rest = await ReadAsync(_client, job.Id, after: 2);
        Assert.Equal("three", Assert.Single(rest.Lines).Text);
    }

    [Fact]
    public async Task OtherUsers_DoNotSeeTheLog_ButAnAdministratorDoes()
    {
        var (workerId, job) = await RunningJobAsync("l2");
        await SendAsync(workerId, job, "secret line");
        var bob = await _server.UserAsync("bob", Roles.Client);
        using (var r = await bob.GetAsync(ApiRoutes.JobLogs(job.Id)))
            await ResponseAssert.ProblemAsync(r, ErrorCodes.JobNotFound);
        var admin = await _server.UserAsync("root", Roles.Administrator);
        Assert.Equal("secret line", Assert.Single((await ReadAsync(admin, job.Id)).Lines).Text);
    }

    [Fact]
    public async Task LinesWithAStaleToken_AreRefused()
    {
        var (workerId, job) = await RunningJobAsync("l3");
        var sent = await SendAsync(workerId, job.Id, "not-the-token", "forged");
        Assert.Equal(0, sent.Stored);
        Assert.Equal(job.Id, Assert.Single(sent.Refused));
        Assert.Empty((await ReadAsync(_client, job.Id)).Lines);
    }

    [Fact]
    public async Task TheTailOfAFinishedJob_IsStillTakenFromItsWorker()
    {
        var (workerId, job) = await RunningJobAsync("l4");
        (await Flow.CompleteAsync(_worker, job, "1")).Dispose();
        var sent = await SendAsync(workerId, job, "last words");
        Assert.Equal(1, sent.Stored);
        var log = await ReadAsync(_client, job.Id);
        Assert.Equal("last words", Assert.Single(log.Lines).Text);
        Assert.True(log.Finished);
    }

    [Fact]
    public async Task ALogPastItsCap_EndsWithOneNote_AndLaterLinesAreDropped()
    {
        var (workerId, job) = await RunningJobAsync("l5");
        var first = await SendAsync(workerId, job, [.. Enumerable.Range(1, 4).Select(i => $"line {i}")]);
        Assert.Equal(4, first.Stored);
        var second = await SendAsync(workerId, job, [.. Enumerable.Range(5, 6).Select(i => $"line {i}")]);
        Assert.Equal(2, second.Stored);
        Assert.Equal(5, second.Dropped);

        var log = await ReadAsync(_client, job.Id);
        Assert.Equal(6, log.Lines.Count);
        Assert.Equal("line 5", log.Lines[4].Text);
        Assert.Equal("dts", log.Lines[5].Stream);
        Assert.Contains("log cut", log.Lines[5].Text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task AFollower_IsWokenByNewLines_AndToldWhenTheJobEnds()
    {
        var (workerId, job) = await RunningJobAsync("l6");
        var waiting = ReadAsync(_client, job.Id, after: 0, wait: 30);
        await SendAsync(workerId, job, "hello");
        var woken = await waiting;
        Assert.Equal("hello", Assert.Single(woken.Lines).Text);
        Assert.False(woken.Finished);

        var waitingForEnd = ReadAsync(_client, job.Id, after: woken.Next, wait: 30);
        (await Flow.CompleteAsync(_worker, job, "1")).Dispose();
        var end = await waitingForEnd;
        Assert.True(end.Finished);
        Assert.Equal(JobState.Succeeded, end.State);
    }

    [Fact]
    public async Task PurgingAJob_DeletesItsLog()
    {
        var (workerId, job) = await RunningJobAsync("l7");
        await SendAsync(workerId, job, "a", "b");
        (await Flow.CompleteAsync(_worker, job, "1")).Dispose();
        var store = _server.Server.Store;
        Assert.Equal(2, (await store.JobLogReadAsync(new JobLogReadParams(job.Id, 0, 100), CancellationToken.None)).Count);
        Assert.Equal(1, await store.JobPurgeAsync(new JobPurgeParams([JobState.Succeeded], "l7", null, null), CancellationToken.None));
        Assert.Empty(await store.JobLogReadAsync(new JobLogReadParams(job.Id, 0, 100), CancellationToken.None));
    }

    [Fact]
    public async Task BadLogBatches_GetProblems()
    {
        var (workerId, job) = await RunningJobAsync("l8");
        using (var r = await _worker.PostAsync(ApiRoutes.WorkerLogs(workerId), """{"lines":[{"job_id":"x","lease_token":"t"}]}"""))
            await ResponseAssert.ProblemAsync(r, ErrorCodes.MissingField);
        using (var r = await _worker.PostAsync(ApiRoutes.WorkerLogs(workerId), $$"""{"lines":[{"job_id":"{{job.Id}}","lease_token":"{{job.LeaseToken}}","text":"x","stream":"video"}]}"""))
            await ResponseAssert.ProblemAsync(r, ErrorCodes.InvalidField);
        using (var r = await _client.GetAsync(ApiRoutes.JobLogs(job.Id) + "?after=-1"))
            await ResponseAssert.ProblemAsync(r, ErrorCodes.InvalidQuery);
    }
}
