using System.Net;
using Dts.Contracts;

namespace Dts.Client.Tests;

public sealed class DtsAdminClientTests
{
    // The client owns nothing here; the connection lives as long as the test process, which is short.
    private static DtsAdminClient Client(FakeHandler fake) => new(new DtsConnection(new DtsConnectionOptions
    {
        ServerUrl = "http://127.0.0.1:7070",
        UserId = "root",
        Secret = "0123456789abcdef0123456789abcdef",
    }, fake));

    private static FakeHandler Answering(HttpStatusCode status, string json) =>
        new((_, _) => Task.FromResult(FakeHandler.Json(status, json, status == HttpStatusCode.OK ? "application/json" : "application/problem+json")));

    [Fact]
    public async Task Login_AsAdministrator_ReadsItsOwnUser()
    {
        var fake = Answering(HttpStatusCode.OK, """{"name":"root","roles":["administrator","client"],"created_at":"2026-01-01T00:00:00Z"}""");
        using var client = Client(fake);

        var self = await client.LoginAsync(TestContext.Current.CancellationToken);

        Assert.Equal("root", self.Name);
        var request = Assert.Single(fake.Requests);
        Assert.Equal(HttpMethod.Get, request.Method);
        Assert.Equal("/v1/admin/users/root", request.Uri.AbsolutePath);
    }

    [Fact]
    public async Task Login_Forbidden_SaysTheRoleIsMissing()
    {
        using var client = Client(Answering(HttpStatusCode.Forbidden, """{"code":"forbidden","title":"The user lacks the role this endpoint needs.","status":403}"""));

        var ex = await Assert.ThrowsAsync<DtsAdminLoginException>(() => client.LoginAsync(TestContext.Current.CancellationToken));

        Assert.Equal("login refused: user 'root' does not hold the administrator role", ex.Message);
        Assert.False(ex.BadCredentials);
    }

    [Fact]
    public async Task Login_Unauthorized_SaysTheSecretIsNotAccepted()
    {
        using var client = Client(Answering(HttpStatusCode.Unauthorized, """{"code":"bad_signature","title":"The signature does not match the request.","status":401}"""));

        var ex = await Assert.ThrowsAsync<DtsAdminLoginException>(() => client.LoginAsync(TestContext.Current.CancellationToken));

        Assert.Equal("login failed: the server does not accept user 'root' with this secret (bad_signature)", ex.Message);
        Assert.True(ex.BadCredentials);
        Assert.DoesNotContain("0123456789abcdef", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Login_AnswerWithoutTheRole_IsRefusedAnyway()
    {
        using var client = Client(Answering(HttpStatusCode.OK, """{"name":"root","roles":["client"],"created_at":"2026-01-01T00:00:00Z"}"""));

        var ex = await Assert.ThrowsAsync<DtsAdminLoginException>(() => client.LoginAsync(TestContext.Current.CancellationToken));

        Assert.Contains("does not hold the administrator role", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Login_ServerWithoutAdminApi_SaysSo()
    {
        using var client = Client(Answering(HttpStatusCode.NotFound, """{"code":"route_not_found","title":"No such endpoint.","status":404}"""));

        var ex = await Assert.ThrowsAsync<DtsAdminLoginException>(() => client.LoginAsync(TestContext.Current.CancellationToken));

        Assert.Contains("has no admin API", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Answers_WithFieldsThisClientDoesNotKnow_AreStillRead()
    {
        using var client = Client(Answering(HttpStatusCode.OK, """{"queues":[{"function":"echo","paused":true,"queued":3,"added_later":{"x":1}}],"also_new":1}"""));

        var answer = await client.ListQueuesAsync(TestContext.Current.CancellationToken);

        var queue = Assert.Single(answer.Queues);
        Assert.Equal("echo", queue.Function);
        Assert.True(queue.Paused);
        Assert.Equal(3, queue.Queued);
    }

    [Fact]
    public void JobSearch_QueryString_EscapesValues_AndOmitsWhatIsNotSet()
    {
        Assert.Equal("", new JobSearch().ToQueryString());
        var search = new JobSearch
        {
            State = JobState.AwaitingRetry,
            Tag = "a&b c",
            CreatedAfter = new DateTimeOffset(2026, 1, 2, 4, 5, 6, TimeSpan.FromHours(1)),
            Limit = 5,
            Cursor = "x=y",
        };

        Assert.Equal("?state=awaiting_retry&tag=a%26b%20c&created_after=2026-01-02T03%3A05%3A06.000Z&limit=5&cursor=x%3Dy", search.ToQueryString());
    }
}
