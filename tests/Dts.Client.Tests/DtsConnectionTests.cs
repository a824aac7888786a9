using System.Net;
using System.Text.Json;
using Dts.Contracts;

namespace Dts.Client.Tests;

public sealed class DtsConnectionTests
{
    private const string User = "alice";
    private const string Secret = "0123456789abcdef0123456789abcdef";

    private static DtsConnectionOptions Options(TimeProvider? time = null, TimeSpan? snooze = null, int? maxThrottleRetries = null) => new()
    {
        ServerUrl = "http://127.0.0.1:7070",
        UserId = User,
        Secret = Secret,
        TimeProvider = time ?? TimeProvider.System,
        SnoozeInterval = snooze ?? DtsConnectionOptions.DefaultSnoozeInterval,
        MaxThrottleRetries = maxThrottleRetries,
    };

    private static bool SignatureIsValid(CapturedRequest r) =>
        RequestSigning.Verify(Secret,
            RequestSigning.CanonicalRequest(r.Method.Method, r.Uri.AbsolutePath, r.Uri.Query, r.Headers[RequestSigning.UserHeader],
                r.Headers[RequestSigning.TimestampHeader], r.Headers[RequestSigning.NonceHeader], RequestSigning.BodyHash(r.Body)),
            r.Headers[RequestSigning.SignatureHeader]);

    [Fact]
    public async Task SigningHandler_SignsBodyPathAndQuery_SoTheServerCanVerify()
    {
        var time = new ObservedTimeProvider();
        var fake = new FakeHandler((_, _) => Task.FromResult(FakeHandler.Json(HttpStatusCode.OK, """{"id":"j 1","state":"queued","coalesced":false}""")));
        using var connection = new DtsConnection(Options(time), fake);

        await connection.SendAsync(HttpMethod.Post, ApiRoutes.Jobs + "?b=2&a=x%20y", new SubmitJobRequest { Function = "echo" },
            DtsJsonContext.Default.SubmitJobRequest, DtsJsonContext.Default.SubmitJobResponse, cancellationToken: TestContext.Current.CancellationToken);

        var request = Assert.Single(fake.Requests);
        Assert.Equal(User, request.Headers[RequestSigning.UserHeader]);
        Assert.Equal(time.GetUtcNow().ToUnixTimeSeconds().ToString(System.Globalization.CultureInfo.InvariantCulture), request.Headers[RequestSigning.TimestampHeader]);
        Assert.True(RequestSigning.IsValidNonce(request.Headers[RequestSigning.NonceHeader]));
        Assert.Equal("application/json", request.ContentType);
        Assert.Equal("""{"function":"echo"}""", request.BodyText);
        Assert.Equal("?b=2&a=x%20y", request.Uri.Query);
        Assert.True(SignatureIsValid(request));
        Assert.False(RequestSigning.Verify("another-secret", RequestSigning.CanonicalRequest("POST", request.Uri.AbsolutePath, request.Uri.Query,
            User, request.Headers[RequestSigning.TimestampHeader], request.Headers[RequestSigning.NonceHeader], RequestSigning.BodyHash(request.Body)),
            request.Headers[RequestSigning.SignatureHeader]));
    }

    [Fact]
    public async Task SigningHandler_RequestWithoutBody_SignsEmptyBodyHash()
    {
        var fake = new FakeHandler((_, _) => Task.FromResult(FakeHandler.Json(HttpStatusCode.OK, """{"results":[]}""")));
        using var connection = new DtsConnection(Options(), fake);

        await connection.SendAsync(HttpMethod.Get, ApiRoutes.Results + "?max=5&wait_seconds=0", DtsJsonContext.Default.ResultsResponse,
            cancellationToken: TestContext.Current.CancellationToken);

        var request = Assert.Single(fake.Requests);
        Assert.Empty(request.Body);
        Assert.True(RequestSigning.Verify(Secret, RequestSigning.CanonicalRequest("GET", "/v1/results", "?max=5&wait_seconds=0", User,
            request.Headers[RequestSigning.TimestampHeader], request.Headers[RequestSigning.NonceHeader], RequestSigning.EmptyBodyHash),
            request.Headers[RequestSigning.SignatureHeader]));
    }

    [Fact]
    public async Task ProblemAnswer_BecomesDtsApiException_WithCodeDetailAndField()
    {
        // traceId is an extension member a framework may add; the client must still read the problem.
        var fake = new FakeHandler((_, _) => Task.FromResult(FakeHandler.Json(HttpStatusCode.BadRequest,
            """{"type":"about:blank","title":"A field has a wrong type or value.","status":400,"detail":"function must be a non-empty string","code":"invalid_field","field":"$.function","traceId":"abc"}""",
            "application/problem+json")));
        using var client = new DtsClient(new DtsConnection(Options(), fake));

        var ex = await Assert.ThrowsAsync<DtsApiException>(() => client.SubmitAsync(new SubmitJobRequest { Function = "" }, TestContext.Current.CancellationToken));

        Assert.Equal(400, ex.Status);
        Assert.Equal("invalid_field", ex.Code);
        Assert.True(ex.Is(ErrorCodes.InvalidField));
        Assert.Equal("function must be a non-empty string", ex.Detail);
        Assert.Equal("$.function", ex.Field);
        Assert.Contains("invalid_field", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task NonProblemErrorBody_BecomesDtsApiException_WithStatusOnly()
    {
        var fake = new FakeHandler((_, _) => Task.FromResult(FakeHandler.Json(HttpStatusCode.BadGateway, "<html>bad gateway</html>", "text/html")));
        // A proxy's 502 means the server is away: it is retried until the failover budget, here none.
        using var client = new DtsClient(new DtsConnection(new DtsConnectionOptions
        {
            ServerUrl = "http://127.0.0.1:7070",
            UserId = User,
            Secret = Secret,
            FailoverBudget = TimeSpan.Zero,
        }, fake));

        var ex = await Assert.ThrowsAsync<DtsApiException>(() => client.GetJobAsync("j1", TestContext.Current.CancellationToken));

        Assert.Equal(502, ex.Status);
        Assert.Null(ex.Code);
        Assert.Contains("bad gateway", ex.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RateLimited_WithRetryAfter_IsRetriedAfterTheWait_WithAFreshSignature()
    {
        var time = new ObservedTimeProvider();
        var fake = new FakeHandler((_, call) =>
        {
            if (call == 1)
            {
                var limited = FakeHandler.Json(HttpStatusCode.TooManyRequests, """{"status":429,"code":"rate_limited"}""", "application/problem+json");
                limited.Headers.RetryAfter = new System.Net.Http.Headers.RetryConditionHeaderValue(TimeSpan.FromSeconds(5));
                return Task.FromResult(limited);
            }
            return Task.FromResult(FakeHandler.Json(HttpStatusCode.Created, """{"id":"j1","state":"queued"}"""));
        });
        using var client = new DtsClient(new DtsConnection(Options(time), fake));

        var submit = client.SubmitAsync("echo", cancellationToken: TestContext.Current.CancellationToken);
        await time.WaitForTimerAsync(TimeSpan.FromSeconds(5));
        time.Advance(TimeSpan.FromSeconds(4.9));
        Assert.Equal(1, fake.Calls);
        Assert.False(submit.IsCompleted);

        time.Advance(TimeSpan.FromSeconds(0.1));
        var answer = await submit.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken);

        Assert.Equal("j1", answer.Id);
        Assert.Equal(2, fake.Calls);
        var requests = fake.Requests.ToArray();
        Assert.NotEqual(requests[0].Headers[RequestSigning.NonceHeader], requests[1].Headers[RequestSigning.NonceHeader]);
        Assert.All(requests, r => Assert.True(SignatureIsValid(r)));
    }

    [Fact]
    public async Task ShuttingDown_WithoutRetryAfter_WaitsTheSnoozeInterval()
    {
        var time = new ObservedTimeProvider();
        var fake = new FakeHandler((_, call) => Task.FromResult(call == 1
            ? FakeHandler.Json(HttpStatusCode.ServiceUnavailable, """{"status":503,"code":"shutting_down"}""", "application/problem+json")
            : FakeHandler.Json(HttpStatusCode.OK, """{"acknowledged":1}""")));
        using var client = new DtsClient(new DtsConnection(Options(time, snooze: TimeSpan.FromSeconds(3)), fake));

        var ack = client.AckAsync(["j1"], TestContext.Current.CancellationToken);
        await time.WaitForTimerAsync(TimeSpan.FromSeconds(3));
        Assert.False(ack.IsCompleted);
        time.Advance(TimeSpan.FromSeconds(3));

        Assert.Equal(1, await ack.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken));
        Assert.Equal(2, fake.Calls);
    }

    [Fact]
    public async Task RateLimited_BeyondMaxThrottleRetries_Throws_WithRetryAfter()
    {
        var fake = new FakeHandler((_, _) =>
        {
            var limited = FakeHandler.Json(HttpStatusCode.TooManyRequests, """{"status":429,"code":"rate_limited"}""", "application/problem+json");
            limited.Headers.RetryAfter = new System.Net.Http.Headers.RetryConditionHeaderValue(TimeSpan.FromSeconds(7));
            return Task.FromResult(limited);
        });
        using var client = new DtsClient(new DtsConnection(Options(maxThrottleRetries: 0), fake));

        var ex = await Assert.ThrowsAsync<DtsApiException>(() => client.GetJobAsync("j1", TestContext.Current.CancellationToken));

        Assert.True(ex.Is(ErrorCodes.RateLimited));
        Assert.Equal(TimeSpan.FromSeconds(7), ex.RetryAfter);
        Assert.Equal(1, fake.Calls);
    }

    [Fact]
    public async Task SubmitBatch_SplitsIntoChunksOfMaxBatch_KeepingOrder()
    {
        var fake = new FakeHandler((request, _) =>
        {
            var batch = JsonSerializer.Deserialize(request.Body, DtsJsonContext.Default.SubmitBatchRequest)!;
            var answer = new SubmitBatchResponse
            {
                Jobs = [.. batch.Jobs!.Select(j => new SubmitJobResponse { Id = "id-" + j.UniqueKey, State = JobState.Queued })],
            };
            return Task.FromResult(FakeHandler.Json(HttpStatusCode.OK, JsonSerializer.Serialize(answer, DtsJsonContext.Default.SubmitBatchResponse)));
        });
        using var client = new DtsClient(new DtsConnection(Options(), fake));
        var jobs = Enumerable.Range(0, 2500).Select(i => new SubmitJobRequest { Function = "f", UniqueKey = i.ToString(System.Globalization.CultureInfo.InvariantCulture) }).ToList();

        var answers = await client.SubmitBatchAsync(jobs, TestContext.Current.CancellationToken);

        Assert.Equal([1000, 1000, 500], fake.Requests.Select(r => JsonSerializer.Deserialize(r.Body, DtsJsonContext.Default.SubmitBatchRequest)!.Jobs!.Count));
        Assert.All(fake.Requests, r => Assert.Equal(ApiRoutes.JobsBatch, r.Uri.AbsolutePath));
        Assert.Equal(jobs.Select(j => "id-" + j.UniqueKey), answers.Select(a => a.Id));
    }

    [Fact]
    public async Task Wait_LongPollsUntilTheJobIsTerminal()
    {
        var fake = new FakeHandler((_, call) => Task.FromResult(FakeHandler.Json(HttpStatusCode.OK,
            $$"""{"id":"j/1","function":"f","state":"{{(call < 3 ? "running" : "succeeded")}}","owner":"alice","result":"done"}""")));
        using var client = new DtsClient(new DtsConnection(Options(), fake));

        var view = await client.WaitAsync("j/1", cancellationToken: TestContext.Current.CancellationToken);

        Assert.Equal(JobState.Succeeded, view.State);
        Assert.Equal("done", view.Result!.Value.GetString());
        Assert.Equal(3, fake.Calls);
        Assert.All(fake.Requests, r =>
        {
            Assert.Equal("/v1/jobs/j%2F1", r.Uri.AbsolutePath);
            Assert.Equal("?wait_seconds=30", r.Uri.Query);
        });
    }

    [Fact]
    public async Task ReadResults_AcknowledgesAPage_OnlyAfterTheConsumerTookAllItsItems()
    {
        var events = new List<string>();
        var fake = new FakeHandler((request, call) =>
        {
            lock (events)
            {
                if (request.Uri.AbsolutePath == ApiRoutes.ResultsAck)
                {
                    var ack = JsonSerializer.Deserialize(request.Body, DtsJsonContext.Default.AckRequest)!;
                    events.Add("ack " + string.Join(",", ack.Ids!));
                    return Task.FromResult(FakeHandler.Json(HttpStatusCode.OK, """{"acknowledged":2}"""));
                }
                events.Add("get " + request.Uri.Query);
            }
            var page = call == 1
                ? """{"results":[{"id":"a","function":"f","state":"succeeded","owner":"alice"},{"id":"b","function":"f","state":"dead","owner":"alice"}]}"""
                : """{"results":[]}""";
            return Task.FromResult(FakeHandler.Json(HttpStatusCode.OK, page));
        });
        using var client = new DtsClient(new DtsConnection(Options(), fake));

        await foreach (var job in client.ReadResultsAsync(max: 50, stopWhenIdle: true, cancellationToken: TestContext.Current.CancellationToken))
        {
            lock (events) events.Add("took " + job.Id);
        }

        Assert.Equal(["get ?max=50&wait_seconds=30", "took a", "took b", "ack a,b", "get ?max=50&wait_seconds=30"], events);
    }
}
