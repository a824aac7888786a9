using System.Text.Json;
using Dts.Contracts;
using Dts.Testing;

namespace Dts.Server.Tests;

public sealed class JobFlowTests : ClientWorkerServerTest
{

    [Fact]
    public async Task Health_IsUnsigned_AndNamesTheStore()
    {
        using var http = new HttpClient { BaseAddress = _server.Url };
        var h = JsonSerializer.Deserialize(await http.GetStringAsync(ApiRoutes.Health, TestContext.Current.CancellationToken), DtsJsonContext.Default.HealthResponse)!;
        Assert.Equal("ok", h.Status);
        Assert.Contains("sqlite", h.Store, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Submit_Lease_Complete_ResultReachesOwner_AndAckRemovesIt()
    {
        var submitted = await Flow.SubmitAsync(_client, """{"function":"reverse","args":["hello"],"kwargs":{"k":1},"tags":["t1"]}""");
        Assert.Equal(JobState.Queued, submitted.State);

        var view = await Flow.GetAsync(_client, submitted.Id);
        Assert.Equal("reverse", view.Function);
        Assert.Equal("hello", view.Args[0].GetString());
        Assert.Equal(1, view.Kwargs.GetProperty("k").GetInt32());
        Assert.Equal("alice", view.Owner);

        var workerId = await Flow.RegisterAsync(_worker, "reverse");
        var jobs = await Flow.LeaseAsync(_worker, workerId);
        var job = Assert.Single(jobs);
        Assert.Equal(submitted.Id, job.Id);
        Assert.Equal(1, job.Attempt);
        Assert.Equal(JobState.Running, (await Flow.GetAsync(_client, job.Id)).State);

        using (var done = await Flow.CompleteAsync(_worker, job, "\"olleh\""))
            Assert.Equal(200, (int)done.StatusCode);

        var results = await Flow.ResultsAsync(_client);
        var r = Assert.Single(results.Results);
        Assert.Equal(JobState.Succeeded, r.State);
        Assert.Equal("olleh", r.Result!.Value.GetString());

        var ack = await _client.CallAsync(HttpMethod.Post, ApiRoutes.ResultsAck, $$"""{"ids":["{{job.Id}}"]}""", DtsJsonContext.Default.AckResponse);
        Assert.Equal(1, ack.Acknowledged);
        Assert.Empty((await Flow.ResultsAsync(_client)).Results);
        // The job itself stays readable after its result is acknowledged.
        Assert.Equal(JobState.Succeeded, (await Flow.GetAsync(_client, job.Id)).State);
    }

    [Fact]
    public async Task Batch_SubmitsInOrder_AndBatchReportsApplyEach()
    {
        var jobs = string.Join(",", Enumerable.Range(0, 50).Select(i => $$"""{"function":"f","args":[{{i}}]}"""));
        var batch = await _client.CallAsync(HttpMethod.Post, ApiRoutes.JobsBatch, $$"""{"jobs":[{{jobs}}]}""", DtsJsonContext.Default.SubmitBatchResponse);
        Assert.Equal(50, batch.Jobs.Count);
        Assert.Equal(50, batch.Jobs.Select(j => j.Id).Distinct().Count());

        var workerId = await Flow.RegisterAsync(_worker, "f");
        var leased = await Flow.LeaseAsync(_worker, workerId, max: 100);
        Assert.Equal(50, leased.Count);
        Assert.Equal(batch.Jobs.Select(j => j.Id), leased.Select(j => j.Id));

        var reports = leased.Select(j => new JobReport { JobId = j.Id, LeaseToken = j.LeaseToken, Result = JsonDocument.Parse("1").RootElement }).ToList();
        reports[0] = new JobReport { JobId = leased[0].Id, LeaseToken = "not-the-token", Result = JsonDocument.Parse("1").RootElement };
        var body = SignedHttp.Json(new ReportBatchRequest { Reports = reports }, DtsJsonContext.Default.ReportBatchRequest);
        var outcome = await _worker.CallAsync(HttpMethod.Post, ApiRoutes.WorkerReports(workerId), body, DtsJsonContext.Default.ReportBatchResponse);
        Assert.Equal("stale_lease", outcome.Outcomes[0].Status);
        Assert.All(outcome.Outcomes.Skip(1), o => Assert.Equal("ok", o.Status));
        Assert.Equal(49, (await Flow.ResultsAsync(_client, max: 1000)).Results.Count);
        Assert.Equal(JobState.Running, (await Flow.GetAsync(_client, leased[0].Id)).State);
    }

    [Fact]
    public async Task UniqueKey_DuplicateOfQueuedJob_AttachesToIt_UntilItFinishes()
    {
        var first = await Flow.SubmitAsync(_client, """{"function":"f","unique_key":"k1"}""");
        using var second = await _client.PostAsync(ApiRoutes.Jobs, """{"function":"f","unique_key":"k1"}""");
        Assert.Equal(200, (int)second.StatusCode);
        var dup = JsonSerializer.Deserialize(await second.Content.ReadAsStringAsync(TestContext.Current.CancellationToken), DtsJsonContext.Default.SubmitJobResponse)!;
        Assert.True(dup.Coalesced);
        Assert.Equal(first.Id, dup.Id);

        var workerId = await Flow.RegisterAsync(_worker, "f");
        var job = Assert.Single(await Flow.LeaseAsync(_worker, workerId));
        var whileRunning = await Flow.SubmitAsync(_client, """{"function":"f","unique_key":"k1"}""");
        Assert.Equal(first.Id, whileRunning.Id);
        (await Flow.CompleteAsync(_worker, job, "null")).Dispose();

        var after = await Flow.SubmitAsync(_client, """{"function":"f","unique_key":"k1"}""");
        Assert.False(after.Coalesced);
        Assert.NotEqual(first.Id, after.Id);
    }

    [Fact]
    public async Task Lease_TakesHigherPriorityFirst()
    {
        var low = await Flow.SubmitAsync(_client, """{"function":"p","priority":"low"}""");
        var normal = await Flow.SubmitAsync(_client, """{"function":"p"}""");
        var high = await Flow.SubmitAsync(_client, """{"function":"p","priority":"high"}""");
        var highUrgent = await Flow.SubmitAsync(_client, """{"function":"p","priority":"high","priority_value":900}""");
        var workerId = await Flow.RegisterAsync(_worker, "p");
        var order = (await Flow.LeaseAsync(_worker, workerId)).Select(j => j.Id).ToList();
        Assert.Equal([highUrgent.Id, high.Id, normal.Id, low.Id], order);
    }

    [Fact]
    public async Task Lease_LongPoll_WakesWhenAJobIsSubmitted()
    {
        var workerId = await Flow.RegisterAsync(_worker, "later");
        var waiting = Flow.LeaseAsync(_worker, workerId, max: 1, wait: 30);
        await Task.Delay(100, TestContext.Current.CancellationToken);
        Assert.False(waiting.IsCompleted);
        var submitted = await Flow.SubmitFnAsync(_client, "later");
        var job = Assert.Single(await waiting);
        Assert.Equal(submitted.Id, job.Id);
    }

    [Fact]
    public async Task Results_LongPoll_WakesWhenAJobFinishes()
    {
        var submitted = await Flow.SubmitFnAsync(_client, "f");
        var waiting = Flow.ResultsAsync(_client, wait: 30);
        var waitingForJob = Flow.GetAsync(_client, submitted.Id, wait: 30);
        var workerId = await Flow.RegisterAsync(_worker, "f");
        var job = Assert.Single(await Flow.LeaseAsync(_worker, workerId));
        (await Flow.CompleteAsync(_worker, job, "42")).Dispose();
        var r = Assert.Single((await waiting).Results);
        Assert.Equal(42, r.Result!.Value.GetInt32());
        Assert.Equal(JobState.Succeeded, (await waitingForJob).State);
    }

    [Fact]
    public async Task Cancel_QueuedJob_EndsCancelled_AndRunningJob_IsToldThroughHeartbeat()
    {
        var queued = await Flow.SubmitFnAsync(_client, "c");
        var cancelled = await _client.CallAsync(HttpMethod.Post, ApiRoutes.JobCancel(queued.Id), null, DtsJsonContext.Default.JobView);
        Assert.Equal(JobState.Cancelled, cancelled.State);
        Assert.Contains((await Flow.ResultsAsync(_client)).Results, r => r.Id == queued.Id && r.State == JobState.Cancelled);

        var running = await Flow.SubmitFnAsync(_client, "c");
        var workerId = await Flow.RegisterAsync(_worker, "c");
        var job = Assert.Single(await Flow.LeaseAsync(_worker, workerId));
        var requested = await _client.CallAsync(HttpMethod.Post, ApiRoutes.JobCancel(running.Id), null, DtsJsonContext.Default.JobView);
        Assert.True(requested.CancelRequested);
        var beat = await _worker.CallAsync(HttpMethod.Post, ApiRoutes.WorkerHeartbeat(workerId), $$"""{"running":["{{job.Id}}"]}""", DtsJsonContext.Default.HeartbeatResponse);
        Assert.Equal([job.Id], beat.Cancel);

        using var again = await _client.PostAsync(ApiRoutes.JobCancel(queued.Id), null);
        await ResponseAssert.ProblemAsync(again, ErrorCodes.JobFinished);
    }

    [Fact]
    public async Task Fail_WithAttemptsLeft_AwaitsRetry_AndWithoutRetry_IsDead()
    {
        var a = await Flow.SubmitAsync(_client, """{"function":"x","max_attempts":3}""");
        var b = await Flow.SubmitAsync(_client, """{"function":"x","max_attempts":3}""");
        var workerId = await Flow.RegisterAsync(_worker, "x");
        var leased = await Flow.LeaseAsync(_worker, workerId);
        (await Flow.FailAsync(_worker, leased.Single(j => j.Id == a.Id), "try again")).Dispose();
        (await Flow.FailAsync(_worker, leased.Single(j => j.Id == b.Id), "hopeless", retry: false)).Dispose();

        var va = await Flow.GetAsync(_client, a.Id);
        Assert.Equal(JobState.AwaitingRetry, va.State);
        Assert.Equal("try again", va.Error!.Message);
        Assert.True(va.RunAt > DateTimeOffset.UtcNow.AddMilliseconds(-100));
        var vb = await Flow.GetAsync(_client, b.Id);
        Assert.Equal(JobState.Dead, vb.State);
        Assert.Equal("boom", vb.Error!.Code);
    }

    [Fact]
    public async Task Progress_IsVisibleToTheOwner()
    {
        var s = await Flow.SubmitFnAsync(_client, "long");
        var workerId = await Flow.RegisterAsync(_worker, "long");
        var job = Assert.Single(await Flow.LeaseAsync(_worker, workerId));
        using var p = await _worker.PostAsync(ApiRoutes.JobProgress(job.Id), $$$"""{"lease_token":"{{{job.LeaseToken}}}","progress":{"numerator":3,"denominator":10}}""");
        Assert.Equal(200, (int)p.StatusCode);
        var view = await Flow.GetAsync(_client, s.Id);
        Assert.Equal(3, view.Progress!.Numerator);
        Assert.Equal(10, view.Progress.Denominator);
    }

    [Fact]
    public async Task Administrator_SeesOtherUsersJobs()
    {
        var s = await Flow.SubmitFnAsync(_client, "f");
        var admin = await _server.UserAsync("root", Roles.Administrator);
        Assert.Equal("alice", (await Flow.GetAsync(admin, s.Id)).Owner);
    }
}
