using Dts.Contracts;
using Dts.Testing;

namespace Dts.Server.Tests;

/// <summary>Every kind of bad request gets its 4xx code, and none of them stores or changes a job.</summary>
public sealed class BadInputTests : ClientWorkerServerTest
{
    protected override void Configure(DtsServerOptions options) => options.MaxBodyBytes = 4096;

    private async Task<Problem> PostProblemAsync(string path, string body, ErrorCode code, SignedHttp? who = null)
    {
        using var r = await (who ?? _client).PostAsync(path, body);
        return await ResponseAssert.ProblemAsync(r, code);
    }

    [Theory]
    [InlineData("{\"function\":\"f\",", "malformed_json")]
    [InlineData("not json", "malformed_json")]
    [InlineData("{\"function\":42}", "invalid_field")]
    [InlineData("{\"function\":\"f\",\"args\":\"x\"}", "invalid_field")]
    [InlineData("{\"function\":\"f\",\"kwargs\":[1]}", "invalid_field")]
    [InlineData("{\"function\":\"f\",\"priority\":\"urgent\"}", "invalid_field")]
    [InlineData("{\"function\":\"f\",\"priority_value\":\"high\"}", "invalid_field")]
    [InlineData("{\"function\":\"f\",\"priority_value\":5000}", "invalid_field")]
    [InlineData("{\"function\":\"f\",\"max_attempts\":0}", "invalid_field")]
    [InlineData("{\"function\":\"f\",\"timeout_seconds\":-1}", "invalid_field")]
    [InlineData("{\"function\":\"f\",\"delay_seconds\":5,\"run_at\":\"2030-01-01T00:00:00Z\"}", "invalid_field")]
    [InlineData("{\"function\":\"bad name!\"}", "invalid_field")]
    [InlineData("{\"args\":[1]}", "missing_field")]
    [InlineData("{\"function\":\"f\",\"owner\":\"bob\"}", "unknown_field")]
    [InlineData("{\"function\":\"f\",\"state\":\"succeeded\"}", "unknown_field")]
    [InlineData("[]", "invalid_field")]
    [InlineData("null", "invalid_field")]
    public async Task Submit_BadBody_IsRefusedWithItsCode(string body, string code)
    {
        var expected = ErrorCodes.All.Single(e => e.Code == code);
        await PostProblemAsync(ApiRoutes.Jobs, body, expected);
        Assert.Empty((await Flow.ResultsAsync(_client)).Results);
        var workerId = await Flow.RegisterAsync(_worker, "f");
        Assert.Empty(await Flow.LeaseAsync(_worker, workerId));
    }

    [Fact]
    public async Task Submit_UnknownField_NamesTheField()
    {
        var p = await PostProblemAsync(ApiRoutes.Jobs, """{"function":"f","attempts":3}""", ErrorCodes.UnknownField);
        Assert.Equal("attempts", p.Field);
    }

    [Fact]
    public async Task Batch_OneBadJob_RefusesTheWholeBatch_AndNamesIt()
    {
        var p = await PostProblemAsync(ApiRoutes.JobsBatch, """{"jobs":[{"function":"f"},{"function":"f","max_attempts":-3}]}""", ErrorCodes.InvalidField);
        Assert.Equal("jobs[1].max_attempts", p.Field);
        var workerId = await Flow.RegisterAsync(_worker, "f");
        Assert.Empty(await Flow.LeaseAsync(_worker, workerId));
        await PostProblemAsync(ApiRoutes.JobsBatch, """{"jobs":[]}""", ErrorCodes.InvalidField);
        await PostProblemAsync(ApiRoutes.JobsBatch, """{}""", ErrorCodes.MissingField);
    }

    [Fact]
    public async Task Body_OverTheLimit_Is413()
    {
        var big = new string('x', 5000);
        await PostProblemAsync(ApiRoutes.Jobs, $$"""{"function":"f","args":["{{big}}"]}""", ErrorCodes.PayloadTooLarge);
    }

    [Fact]
    public async Task Body_Chunked_IsReadWhole_AndOverTheLimit_Is413()
    {
        using var ok = await _client.PostAsync(ApiRoutes.Jobs, """{"function":"f","args":["chunked"]}""", new SignedHttp.Tweak { Chunked = true });
        Assert.Equal(201, (int)ok.StatusCode);
        Assert.Null(ok.RequestMessage!.Content!.Headers.ContentLength);
        var workerId = await Flow.RegisterAsync(_worker, "f");
        var leased = Assert.Single(await Flow.LeaseAsync(_worker, workerId));
        Assert.Equal("chunked", leased.Args[0].GetString());

        var big = new string('x', 5000);
        using var tooBig = await _client.PostAsync(ApiRoutes.Jobs, $$"""{"function":"f","args":["{{big}}"]}""", new SignedHttp.Tweak { Chunked = true });
        await ResponseAssert.ProblemAsync(tooBig, ErrorCodes.PayloadTooLarge);
        Assert.Empty(await Flow.LeaseAsync(_worker, workerId));
    }

    [Fact]
    public async Task Body_ExactlyAtTheLimit_IsAccepted_AndOneByteOver_Is413()
    {
        // MaxBodyBytes is 4096 here; the padding makes the body exactly that long.
        var frame = """{"function":"f","args":[""]}""";
        var atLimit = frame.Replace("[\"\"]", $"[\"{new string('y', 4096 - frame.Length)}\"]", StringComparison.Ordinal);
        Assert.Equal(4096, atLimit.Length);
        using var ok = await _client.PostAsync(ApiRoutes.Jobs, atLimit);
        Assert.Equal(201, (int)ok.StatusCode);
        var over = atLimit.Replace("[\"y", "[\"yy", StringComparison.Ordinal);
        await PostProblemAsync(ApiRoutes.Jobs, over, ErrorCodes.PayloadTooLarge);
        var workerId = await Flow.RegisterAsync(_worker, "f");
        Assert.Single(await Flow.LeaseAsync(_worker, workerId));
    }

    [Fact]
    public async Task Body_NotJsonContentType_Is415()
    {
        using var r = await _client.PostAsync(ApiRoutes.Jobs, """{"function":"f"}""", new SignedHttp.Tweak { ContentType = "text/plain" });
        await ResponseAssert.ProblemAsync(r, ErrorCodes.UnsupportedMediaType);
    }

    [Fact]
    public async Task UnknownJob_And_MalformedId_Are404()
    {
        using var a = await _client.GetAsync(ApiRoutes.Job("0123456789abcdef0123456789abcdef"));
        await ResponseAssert.ProblemAsync(a, ErrorCodes.JobNotFound);
        using var b = await _client.GetAsync(ApiRoutes.Job("../../etc"));
        Assert.Equal(404, (int)b.StatusCode);
        using var c = await _client.PostAsync(ApiRoutes.JobCancel("0123456789abcdef0123456789abcdef"), null);
        await ResponseAssert.ProblemAsync(c, ErrorCodes.JobNotFound);
    }

    [Fact]
    public async Task OtherUsersJob_LooksLikeNoJob()
    {
        var s = await Flow.SubmitFnAsync(_client, "f");
        var bob = await _server.UserAsync("bob", Roles.Client);
        using var get = await bob.GetAsync(ApiRoutes.Job(s.Id));
        await ResponseAssert.ProblemAsync(get, ErrorCodes.JobNotFound);
        using var cancel = await bob.PostAsync(ApiRoutes.JobCancel(s.Id), null);
        await ResponseAssert.ProblemAsync(cancel, ErrorCodes.JobNotFound);
        var ack = await bob.CallAsync(HttpMethod.Post, ApiRoutes.ResultsAck, $$"""{"ids":["{{s.Id}}"]}""", DtsJsonContext.Default.AckResponse);
        Assert.Equal(0, ack.Acknowledged);
        Assert.Equal(JobState.Queued, (await Flow.GetAsync(_client, s.Id)).State);
    }

    [Fact]
    public async Task WrongRole_Is403()
    {
        await PostProblemAsync(ApiRoutes.Jobs, """{"function":"f"}""", ErrorCodes.Forbidden, _worker);
        await PostProblemAsync(ApiRoutes.Workers, """{"functions":["f"]}""", ErrorCodes.Forbidden, _client);
    }

    [Fact]
    public async Task Signature_Failures_EachHaveTheirCode()
    {
        const string body = """{"function":"f"}""";
        using (var r = await _client.PostAsync(ApiRoutes.Jobs, body, new SignedHttp.Tweak { OmitSignature = true }))
            await ResponseAssert.ProblemAsync(r, ErrorCodes.MissingAuth);
        using (var r = await _client.PostAsync(ApiRoutes.Jobs, body, new SignedHttp.Tweak { Secret = new string('0', 64) }))
            await ResponseAssert.ProblemAsync(r, ErrorCodes.BadSignature);
        using (var r = await _client.PostAsync(ApiRoutes.Jobs, body, new SignedHttp.Tweak { SignedBody = """{"function":"g"}""" }))
            await ResponseAssert.ProblemAsync(r, ErrorCodes.BadSignature);
        using (var r = await _client.PostAsync(ApiRoutes.Jobs, body, new SignedHttp.Tweak { Timestamp = DateTimeOffset.UtcNow.ToUnixTimeSeconds() - 3600 }))
            await ResponseAssert.ProblemAsync(r, ErrorCodes.StaleTimestamp);
        using (var r = await _client.PostAsync(ApiRoutes.Jobs, body, new SignedHttp.Tweak { User = "nobody" }))
            await ResponseAssert.ProblemAsync(r, ErrorCodes.UnknownUser);
        using (var r = await _client.PostAsync(ApiRoutes.Jobs, body, new SignedHttp.Tweak { Nonce = "short" }))
            await ResponseAssert.ProblemAsync(r, ErrorCodes.InvalidAuth);

        const string nonce = "0123456789abcdef0123";
        using (var first = await _client.PostAsync(ApiRoutes.Jobs, body, new SignedHttp.Tweak { Nonce = nonce }))
            Assert.Equal(201, (int)first.StatusCode);
        using (var replay = await _client.PostAsync(ApiRoutes.Jobs, body, new SignedHttp.Tweak { Nonce = nonce }))
            await ResponseAssert.ProblemAsync(replay, ErrorCodes.ReplayedNonce);
        // Only the first, correctly signed request created a job.
        Assert.Single((await Flow.LeaseAsync(_worker, await Flow.RegisterAsync(_worker, "f"))));
    }

    [Fact]
    public async Task Query_BadValues_Are400()
    {
        using var a = await _client.GetAsync($"{ApiRoutes.Results}?max=0");
        await ResponseAssert.ProblemAsync(a, ErrorCodes.InvalidQuery);
        using var b = await _client.GetAsync($"{ApiRoutes.Results}?wait_seconds=abc");
        await ResponseAssert.ProblemAsync(b, ErrorCodes.InvalidQuery);
        using var c = await _client.GetAsync($"{ApiRoutes.Results}?wait_seconds=1000");
        await ResponseAssert.ProblemAsync(c, ErrorCodes.InvalidQuery);
    }

    [Fact]
    public async Task UnknownRoute_And_WrongMethod_AreProblems()
    {
        using var http = new HttpClient { BaseAddress = _server.Url };
        using var a = await http.GetAsync("/v1/nothing-here", TestContext.Current.CancellationToken);
        await ResponseAssert.ProblemAsync(a, ErrorCodes.RouteNotFound);
        using var b = await _client.SendAsync(HttpMethod.Delete, ApiRoutes.Jobs);
        await ResponseAssert.ProblemAsync(b, ErrorCodes.MethodNotAllowed);
    }

    [Fact]
    public async Task StaleLeaseToken_Is409_AndChangesNothing()
    {
        var s = await Flow.SubmitFnAsync(_client, "f");
        var workerId = await Flow.RegisterAsync(_worker, "f");
        var job = Assert.Single(await Flow.LeaseAsync(_worker, workerId));
        var forged = new LeasedJob { Id = job.Id, Function = job.Function, LeaseToken = "00000000000000000000000000000000" };
        using (var r = await Flow.CompleteAsync(_worker, forged, "1"))
            await ResponseAssert.ProblemAsync(r, ErrorCodes.StaleLease);
        using (var r = await Flow.FailAsync(_worker, forged, "x"))
            await ResponseAssert.ProblemAsync(r, ErrorCodes.StaleLease);
        Assert.Equal(JobState.Running, (await Flow.GetAsync(_client, s.Id)).State);
        using (var ok = await Flow.CompleteAsync(_worker, job, "1"))
            Assert.Equal(200, (int)ok.StatusCode);
        // Once finished, even the right token is stale.
        using (var again = await Flow.CompleteAsync(_worker, job, "2"))
            await ResponseAssert.ProblemAsync(again, ErrorCodes.StaleLease);
        Assert.Equal(1, (await Flow.GetAsync(_client, s.Id)).Result!.Value.GetInt32());
    }

    [Fact]
    public async Task Worker_BadRequests_AreRefused()
    {
        await PostProblemAsync(ApiRoutes.Workers, """{"functions":[]}""", ErrorCodes.MissingField, _worker);
        await PostProblemAsync(ApiRoutes.Workers, """{"functions":["ok","not ok"]}""", ErrorCodes.InvalidField, _worker);
        await PostProblemAsync(ApiRoutes.Workers, """{"functions":["f"],"concurrency":0}""", ErrorCodes.InvalidField, _worker);
        await PostProblemAsync(ApiRoutes.WorkerLease("0123456789abcdef0123456789abcdef"), """{"max":1}""", ErrorCodes.WorkerNotFound, _worker);

        var workerId = await Flow.RegisterAsync(_worker, "f");
        await PostProblemAsync(ApiRoutes.WorkerLease(workerId), """{"max":0}""", ErrorCodes.InvalidField, _worker);
        await PostProblemAsync(ApiRoutes.WorkerLease(workerId), """{"max":1,"functions":["g"]}""", ErrorCodes.FunctionNotAllowed, _worker);
        await PostProblemAsync(ApiRoutes.WorkerReports(workerId), """{"reports":[{"job_id":"x"}]}""", ErrorCodes.MissingField, _worker);

        // Another worker user cannot drive this worker.
        var other = await _server.UserAsync("w2", Roles.Worker);
        await PostProblemAsync(ApiRoutes.WorkerLease(workerId), """{"max":1}""", ErrorCodes.WorkerNotFound, other);
    }
}
