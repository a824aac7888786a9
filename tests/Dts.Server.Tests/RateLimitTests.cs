using System.Net;
using Dts.Client;
using Dts.Contracts;
using Dts.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Dts.Server.Tests;

public sealed class RateLimitTests
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    private static async Task<SignedHttp> LimitedUserAsync(TestServer server, SignedHttp admin, string name, string limits)
    {
        var created = await admin.CallAsync(HttpMethod.Post, AdminRoutes.Users, $$"""{"name":"{{name}}","roles":["client"],{{limits}}}""",
            AdminJsonContext.Default.UserSecretResponse);
        return new SignedHttp(server.Url, name, created.Secret, server.Time);
    }

    private static string Batch(int n) => "{\"jobs\":[" + string.Join(",", Enumerable.Repeat("""{"function":"f"}""", n)) + "]}";

    [Fact]
    public async Task TokenBucket_RefusesPastTheBurst_WithRetryAfter_AndRefillsWithTime()
    {
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        await using var server = await TestServer.StartAsync(time);
        using var admin = await server.UserAsync("root", Roles.Administrator);
        using var user = await LimitedUserAsync(server, admin, "limited", "\"submit_rate\":0.5,\"submit_burst\":3");

        for (var i = 0; i < 3; i++) await Flow.SubmitFnAsync(user, "f");
        using (var refused = await user.PostAsync(ApiRoutes.Jobs, """{"function":"f"}"""))
        {
            await ResponseAssert.ProblemAsync(refused, ErrorCodes.RateLimited);
            // One token at 0.5 per second is 2 s away.
            Assert.Equal(TimeSpan.FromSeconds(2), refused.Headers.RetryAfter?.Delta);
        }

        time.Advance(TimeSpan.FromSeconds(1.5));
        using (var still = await user.PostAsync(ApiRoutes.Jobs, """{"function":"f"}"""))
        {
            await ResponseAssert.ProblemAsync(still, ErrorCodes.RateLimited);
            Assert.Equal(TimeSpan.FromSeconds(1), still.Headers.RetryAfter?.Delta);
        }

        time.Advance(TimeSpan.FromSeconds(0.5));
        await Flow.SubmitFnAsync(user, "f");

        // A batch takes a token per job; after 4 s there are 2 tokens, not 3.
        time.Advance(TimeSpan.FromSeconds(4));
        using (var batch = await user.PostAsync(ApiRoutes.JobsBatch, Batch(3)))
        {
            await ResponseAssert.ProblemAsync(batch, ErrorCodes.RateLimited);
            Assert.Equal(TimeSpan.FromSeconds(2), batch.Headers.RetryAfter?.Delta);
        }
        using (var ok = await user.PostAsync(ApiRoutes.JobsBatch, Batch(2)))
            Assert.Equal(HttpStatusCode.OK, ok.StatusCode);

        using var tooBig = await user.PostAsync(ApiRoutes.JobsBatch, Batch(4));
        await ResponseAssert.ProblemAsync(tooBig, ErrorCodes.InvalidField);
        Assert.Null(tooBig.Headers.RetryAfter);

        var jobs = await admin.CallAsync(HttpMethod.Get, AdminRoutes.Jobs + "?owner=limited", null, AdminJsonContext.Default.JobListResponse);
        Assert.Equal(6, jobs.Jobs.Count);
    }

    [Fact]
    public async Task QueueLimit_RefusesWholeBatches_AndFreesUpAsJobsFinish()
    {
        await using var server = await TestServer.StartAsync();
        using var admin = await server.UserAsync("root", Roles.Administrator);
        using var user = await LimitedUserAsync(server, admin, "capped", "\"max_queued\":3");

        await Flow.SubmitFnAsync(user, "f");
        await Flow.SubmitFnAsync(user, "f");
        using (var batch = await user.PostAsync(ApiRoutes.JobsBatch, Batch(2)))
        {
            await ResponseAssert.ProblemAsync(batch, ErrorCodes.QueueLimit);
            Assert.True(batch.Headers.RetryAfter?.Delta >= TimeSpan.FromSeconds(1));
        }
        var third = await Flow.SubmitFnAsync(user, "f");
        using (var single = await user.PostAsync(ApiRoutes.Jobs, """{"function":"f"}"""))
            await ResponseAssert.ProblemAsync(single, ErrorCodes.QueueLimit);
        using (var never = await user.PostAsync(ApiRoutes.JobsBatch, Batch(4)))
            await ResponseAssert.ProblemAsync(never, ErrorCodes.InvalidField);

        await admin.CallAsync(HttpMethod.Post, AdminRoutes.JobCancel(third.Id), null, AdminJsonContext.Default.JobView);
        await Flow.SubmitFnAsync(user, "f");

        var all = await admin.CallAsync(HttpMethod.Get, AdminRoutes.Jobs + "?owner=capped", null, AdminJsonContext.Default.JobListResponse);
        Assert.Equal(4, all.Jobs.Count);
    }

    /// <summary>Counts the 429 answers the SDK sees (and hides by snoozing and retrying).</summary>
    private sealed class ThrottleCounter() : DelegatingHandler(new SocketsHttpHandler())
    {
        public int Throttled;

        protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            var response = await base.SendAsync(request, cancellationToken);
            if (response.StatusCode == HttpStatusCode.TooManyRequests) Interlocked.Increment(ref Throttled);
            return response;
        }
    }

    [Fact]
    public async Task Flood_PastTheRate_ClientSnoozesAndRetries_EveryJobExistsExactlyOnce()
    {
        const int Jobs = 600;
        await using var server = await TestServer.StartAsync();
        using var admin = await server.UserAsync("root", Roles.Administrator);
        var created = await admin.CallAsync(HttpMethod.Post, AdminRoutes.Users,
            """{"name":"flood","roles":["client"],"submit_rate":200,"submit_burst":50}""", AdminJsonContext.Default.UserSecretResponse);

        var counter = new ThrottleCounter();
        var options = new DtsConnectionOptions { ServerUrl = server.Url.ToString(), UserId = "flood", Secret = created.Secret, MaxConcurrency = 32 };
        using var connection = new DtsConnection(options, counter);
        var client = new DtsClient(connection);

        // 32 submitters at once, far faster than 200 jobs/s.
        var next = -1;
        var ids = new string[Jobs];
        await Task.WhenAll(Enumerable.Range(0, 32).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < Jobs)
            {
                var r = await client.SubmitAsync(new SubmitJobRequest { Function = "flood", UniqueKey = $"line-{i}" }, Ct);
                ids[i] = r.Id;
            }
        }));
        Assert.True(counter.Throttled > 0, "the flood never hit the rate limit");

        var found = new List<JobView>();
        string? cursor = null;
        do
        {
            var page = await admin.CallAsync(HttpMethod.Get, $"{AdminRoutes.Jobs}?owner=flood&limit=1000{(cursor is null ? "" : "&cursor=" + cursor)}",
                null, AdminJsonContext.Default.JobListResponse);
            found.AddRange(page.Jobs);
            cursor = page.NextCursor;
        } while (cursor is not null);

        Assert.Equal(Jobs, found.Count);
        Assert.Equal(Enumerable.Range(0, Jobs).Select(i => $"line-{i}").Order(StringComparer.Ordinal),
            found.Select(j => j.UniqueKey!).Order(StringComparer.Ordinal));
        Assert.Equal(ids.Order(StringComparer.Ordinal), found.Select(j => j.Id).Order(StringComparer.Ordinal));
    }
}
