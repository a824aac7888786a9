using Dts.Contracts;
using Dts.Testing;

namespace Dts.Server.Tests;

/// <summary>One server for the whole matrix: the cases only read, or change things no other case depends on.</summary>
public sealed class RoleMatrixFixture : IAsyncLifetime
{
    public TestServer Server { get; private set; } = null!;
    public Dictionary<string, SignedHttp> Callers { get; } = [];

    public async ValueTask InitializeAsync()
    {
        Server = await TestServer.StartAsync();
        Callers[Roles.Client] = await Server.UserAsync("matrix-client", Roles.Client);
        Callers[Roles.Worker] = await Server.UserAsync("matrix-worker", Roles.Worker);
        Callers[Roles.Administrator] = await Server.UserAsync("matrix-admin", Roles.Administrator);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var c in Callers.Values) c.Dispose();
        await Server.DisposeAsync();
    }
}

/// <summary>
/// Every endpoint times every kind of caller: without credentials 401 missing_auth, with a role
/// that is not the endpoint's 403 forbidden, and otherwise an answer that is neither (the request
/// may still be wrong in other ways: an unknown id is fine here).
/// </summary>
public sealed class RoleMatrixTests(RoleMatrixFixture fixture) : IClassFixture<RoleMatrixFixture>
{
    private const string None = "none";
    private static readonly string Id = new('0', 32);
    private const string Report = """{"lease_token":"t","result":1}""";

    /// <summary>(method, path, body, role the endpoint needs); null role is an unsigned endpoint.</summary>
    private static readonly (string Method, string Path, string? Body, string? Role)[] Endpoints =
    [
        ("GET", ApiRoutes.Health, null, null),

        ("POST", ApiRoutes.Jobs, """{"function":"matrix"}""", Roles.Client),
        ("POST", ApiRoutes.JobsBatch, """{"jobs":[{"function":"matrix"}]}""", Roles.Client),
        ("GET", ApiRoutes.Job(Id), null, Roles.Client),
        ("POST", ApiRoutes.JobCancel(Id), null, Roles.Client),
        ("GET", ApiRoutes.Results, null, Roles.Client),
        ("POST", ApiRoutes.ResultsAck, """{"ids":[]}""", Roles.Client),

        ("POST", ApiRoutes.Workers, """{"functions":["matrix"]}""", Roles.Worker),
        ("POST", ApiRoutes.WorkerHeartbeat(Id), "{}", Roles.Worker),
        ("POST", ApiRoutes.WorkerLease(Id), "{}", Roles.Worker),
        ("POST", ApiRoutes.WorkerReports(Id), """{"reports":[]}""", Roles.Worker),
        ("POST", ApiRoutes.JobProgress(Id), """{"lease_token":"t","progress":{"numerator":1,"denominator":2}}""", Roles.Worker),
        ("POST", ApiRoutes.JobComplete(Id), Report, Roles.Worker),
        ("POST", ApiRoutes.JobFail(Id), """{"lease_token":"t","error":{"code":"x","message":"y"}}""", Roles.Worker),

        ("GET", AdminRoutes.Users, null, Roles.Administrator),
        ("POST", AdminRoutes.Users, """{"name":"matrix-new","roles":["client"]}""", Roles.Administrator),
        ("GET", AdminRoutes.User("nobody"), null, Roles.Administrator),
        ("PATCH", AdminRoutes.User("nobody"), """{"disabled":true}""", Roles.Administrator),
        ("DELETE", AdminRoutes.User("nobody"), null, Roles.Administrator),
        ("POST", AdminRoutes.UserRotateSecret("nobody"), null, Roles.Administrator),
        ("GET", AdminRoutes.Workers, null, Roles.Administrator),
        ("POST", AdminRoutes.WorkerDrain(Id), null, Roles.Administrator),
        ("GET", AdminRoutes.Functions, null, Roles.Administrator),
        ("GET", AdminRoutes.Jobs, null, Roles.Administrator),
        ("GET", AdminRoutes.Job(Id), null, Roles.Administrator),
        ("POST", AdminRoutes.JobRetry(Id), null, Roles.Administrator),
        ("POST", AdminRoutes.JobCancel(Id), null, Roles.Administrator),
        ("POST", AdminRoutes.JobsPurge, """{"function":"matrix-nothing"}""", Roles.Administrator),
        ("GET", AdminRoutes.Queues, null, Roles.Administrator),
        ("POST", AdminRoutes.QueuePause("matrix"), null, Roles.Administrator),
        ("POST", AdminRoutes.QueueResume("matrix"), null, Roles.Administrator),
    ];

    public static TheoryData<string, string, string?, string, string> Cases()
    {
        var data = new TheoryData<string, string, string?, string, string>();
        foreach (var (method, path, body, role) in Endpoints)
        {
            foreach (var caller in new[] { None, Roles.Client, Roles.Worker, Roles.Administrator })
                data.Add(method, path, body, role ?? "", caller);
        }
        return data;
    }

    [Fact]
    public void Table_CoversEveryAdminRoute()
    {
        // AdminRoutes has 14 members; with the extra methods on Users and User(name) that is 17 endpoints.
        var admin = Endpoints.Where(e => e.Path.StartsWith("/v1/admin/", StringComparison.Ordinal)).ToList();
        Assert.Equal(17, admin.Count);
        Assert.Equal(admin.Count, admin.Select(e => (e.Method, e.Path)).Distinct().Count());
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task Answer_IsAsDocumented(string method, string path, string? body, string role, string caller)
    {
        using var response = caller == None
            ? await SendUnsignedAsync(method, path, body)
            : await fixture.Callers[caller].SendAsync(new HttpMethod(method), path, body);
        var status = (int)response.StatusCode;
        if (role.Length == 0)
        {
            Assert.Equal(200, status);
        }
        else if (caller == None)
        {
            await ResponseAssert.ProblemAsync(response, ErrorCodes.MissingAuth);
        }
        else if (caller == Roles.Administrator || caller == role)
        {
            var text = await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
            Assert.True(status is not (401 or 403), $"{caller} on {method} {path}: {status} {text}");
            Assert.True(status < 500, $"{caller} on {method} {path}: {status} {text}");
        }
        else
        {
            await ResponseAssert.ProblemAsync(response, ErrorCodes.Forbidden);
        }
    }

    private async Task<HttpResponseMessage> SendUnsignedAsync(string method, string path, string? body)
    {
        using var http = new HttpClient { BaseAddress = fixture.Server.Url };
        var request = new HttpRequestMessage(new HttpMethod(method), path);
        if (body is not null) request.Content = new StringContent(body, System.Text.Encoding.UTF8, "application/json");
        return await http.SendAsync(request, TestContext.Current.CancellationToken);
    }
}
