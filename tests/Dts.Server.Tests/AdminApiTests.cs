using System.Text.Json;
using Dts.Contracts;
using Dts.Testing;

namespace Dts.Server.Tests;

public sealed class AdminApiTests : ClientWorkerServerTest
{
    private SignedHttp _admin = null!;

    public override async ValueTask InitializeAsync()
    {
        await base.InitializeAsync();
        _admin = await _server.UserAsync("root", Roles.Administrator);
    }

    private static HttpMethod Patch => HttpMethod.Patch;

    private async Task ExpectAsync(Task<HttpResponseMessage> send, ErrorCode code, string? field = null)
    {
        using var response = await send;
        var problem = await ResponseAssert.ProblemAsync(response, code);
        if (field is not null) Assert.Equal(field, problem.Field);
    }

    private Task<UserSecretResponse> CreateAsync(string body) =>
        _admin.CallAsync(HttpMethod.Post, AdminRoutes.Users, body, AdminJsonContext.Default.UserSecretResponse);

    private Task<JobListResponse> SearchAsync(string query) =>
        _admin.CallAsync(HttpMethod.Get, AdminRoutes.Jobs + query, null, AdminJsonContext.Default.JobListResponse);

    // ---- users ----

    [Fact]
    public async Task CreateUser_ReturnsSecretOnce_AndTheUserCanWork()
    {
        using var response = await _admin.PostAsync(AdminRoutes.Users, """{"name":"bob.x_1-2","roles":["client","client"],"max_queued":5,"submit_rate":2}""");
        Assert.Equal(201, (int)response.StatusCode);
        Assert.Equal(AdminRoutes.User("bob.x_1-2"), response.Headers.Location?.OriginalString);
        var created = JsonSerializer.Deserialize(await response.Content.ReadAsStringAsync(TestContext.Current.CancellationToken), AdminJsonContext.Default.UserSecretResponse)!;
        Assert.Matches("^[0-9a-f]{64}$", created.Secret);
        Assert.Equal(["client"], created.User.Roles);
        Assert.Equal(5, created.User.MaxQueued);
        Assert.Equal(2, created.User.SubmitRate);
        Assert.Equal(2, created.User.SubmitBurst);

        using var bob = new SignedHttp(_server.Url, "bob.x_1-2", created.Secret, _server.Time);
        Assert.Equal(JobState.Queued, (await Flow.SubmitFnAsync(bob, "f")).State);

        var got = await _admin.CallAsync(HttpMethod.Get, AdminRoutes.User("bob.x_1-2"), null, AdminJsonContext.Default.UserView);
        Assert.Equal(created.User.CreatedAt, got.CreatedAt);
        using var get = await _admin.GetAsync(AdminRoutes.User("bob.x_1-2"));
        Assert.DoesNotContain(created.Secret, await get.Content.ReadAsStringAsync(TestContext.Current.CancellationToken), StringComparison.Ordinal);
    }

    [Fact]
    public async Task CreateUser_BadInput_GetsItsCode()
    {
        await ExpectAsync(_admin.PostAsync(AdminRoutes.Users, """{"roles":["client"]}"""), ErrorCodes.MissingField, "name");
        await ExpectAsync(_admin.PostAsync(AdminRoutes.Users, """{"name":"bob"}"""), ErrorCodes.MissingField, "roles");
        await ExpectAsync(_admin.PostAsync(AdminRoutes.Users, """{"name":"bad name","roles":["client"]}"""), ErrorCodes.InvalidField, "name");
        await ExpectAsync(_admin.PostAsync(AdminRoutes.Users, $$"""{"name":"{{new string('x', 65)}}","roles":["client"]}"""), ErrorCodes.InvalidField, "name");
        await ExpectAsync(_admin.PostAsync(AdminRoutes.Users, """{"name":"","roles":["client"]}"""), ErrorCodes.InvalidField, "name");
        await ExpectAsync(_admin.PostAsync(AdminRoutes.Users, """{"name":"bob","roles":["root"]}"""), ErrorCodes.InvalidField, "roles");
        await ExpectAsync(_admin.PostAsync(AdminRoutes.Users, """{"name":"bob","roles":[]}"""), ErrorCodes.InvalidField, "roles");
        await ExpectAsync(_admin.PostAsync(AdminRoutes.Users, """{"name":"bob","roles":["client"],"max_queued":-1}"""), ErrorCodes.InvalidField, "max_queued");
        await ExpectAsync(_admin.PostAsync(AdminRoutes.Users, """{"name":"bob","roles":["client"],"submit_rate":-2}"""), ErrorCodes.InvalidField, "submit_rate");
        await ExpectAsync(_admin.PostAsync(AdminRoutes.Users, """{"name":"bob","roles":["client"],"submit_burst":0.5}"""), ErrorCodes.InvalidField, "submit_burst");
        await ExpectAsync(_admin.PostAsync(AdminRoutes.Users, """{"name":"bob","roles":["worker"],"functions":["bad name"]}"""), ErrorCodes.InvalidField, "functions");
        await ExpectAsync(_admin.PostAsync(AdminRoutes.Users, """{"name":"bob","roles":["client"],"secret":"x"}"""), ErrorCodes.UnknownField, "secret");
        await ExpectAsync(_admin.PostAsync(AdminRoutes.Users, """{"name":"bob","roles":"client"}"""), ErrorCodes.InvalidField, "roles");
        await ExpectAsync(_admin.PostAsync(AdminRoutes.Users, """{"name":"bob","""), ErrorCodes.MalformedJson);
        await ExpectAsync(_admin.PostAsync(AdminRoutes.Users, """{"name":"alice","roles":["client"]}"""), ErrorCodes.UserExists, "name");
    }

    [Fact]
    public async Task GetAndListUsers_ShowNoSecrets()
    {
        var list = await _admin.CallAsync(HttpMethod.Get, AdminRoutes.Users, null, AdminJsonContext.Default.UserListResponse);
        Assert.Equal(["admin", "alice", "root", "w1"], list.Users.Select(u => u.Name));
        using var raw = await _admin.GetAsync(AdminRoutes.Users);
        var text = await raw.Content.ReadAsStringAsync(TestContext.Current.CancellationToken);
        Assert.DoesNotContain(_client.Secret, text, StringComparison.Ordinal);
        Assert.DoesNotContain("secret", text, StringComparison.Ordinal);

        await ExpectAsync(_admin.GetAsync(AdminRoutes.User("nobody")), ErrorCodes.UserNotFound);
        await ExpectAsync(_admin.GetAsync(AdminRoutes.User("bad%20name")), ErrorCodes.UserNotFound);
    }

    [Fact]
    public async Task UpdateUser_RolesAndDisabling_TakeEffectAtOnce()
    {
        Assert.Equal(JobState.Queued, (await Flow.SubmitFnAsync(_client, "f")).State);

        var view = await _admin.CallAsync(Patch, AdminRoutes.User("alice"), """{"roles":["worker"]}""", AdminJsonContext.Default.UserView);
        Assert.Equal(["worker"], view.Roles);
        await ExpectAsync(_client.PostAsync(ApiRoutes.Jobs, """{"function":"f"}"""), ErrorCodes.Forbidden);

        await _admin.CallAsync(Patch, AdminRoutes.User("alice"), """{"roles":["client"],"disabled":true}""", AdminJsonContext.Default.UserView);
        await ExpectAsync(_client.PostAsync(ApiRoutes.Jobs, """{"function":"f"}"""), ErrorCodes.UnknownUser);

        view = await _admin.CallAsync(Patch, AdminRoutes.User("alice"), """{"disabled":false,"max_queued":7,"functions":["a"]}""", AdminJsonContext.Default.UserView);
        Assert.False(view.Disabled);
        Assert.Equal(7, view.MaxQueued);
        Assert.Equal(["a"], view.Functions!);
        Assert.Equal(JobState.Queued, (await Flow.SubmitFnAsync(_client, "f")).State);

        view = await _admin.CallAsync(Patch, AdminRoutes.User("alice"), """{"max_queued":0,"functions":[]}""", AdminJsonContext.Default.UserView);
        Assert.Null(view.MaxQueued);
        Assert.Null(view.Functions);
    }

    [Fact]
    public async Task UpdateUser_BadInput_GetsItsCode()
    {
        await ExpectAsync(_admin.SendAsync(Patch, AdminRoutes.User("nobody"), """{"disabled":true}"""), ErrorCodes.UserNotFound);
        await ExpectAsync(_admin.SendAsync(Patch, AdminRoutes.User("alice"), """{"roles":["boss"]}"""), ErrorCodes.InvalidField, "roles");
        await ExpectAsync(_admin.SendAsync(Patch, AdminRoutes.User("alice"), """{"disabled":"yes"}"""), ErrorCodes.InvalidField, "disabled");
        await ExpectAsync(_admin.SendAsync(Patch, AdminRoutes.User("alice"), """{"name":"bob"}"""), ErrorCodes.UnknownField, "name");
        await ExpectAsync(_admin.SendAsync(Patch, AdminRoutes.User("alice"), """{"submit_rate":"fast"}"""), ErrorCodes.InvalidField, "submit_rate");
        await ExpectAsync(_admin.SendAsync(Patch, AdminRoutes.User("root"), """{"disabled":true}"""), ErrorCodes.InvalidField, "disabled");
        await ExpectAsync(_admin.SendAsync(Patch, AdminRoutes.User("root"), """{"roles":["client"]}"""), ErrorCodes.InvalidField, "roles");
        await ExpectAsync(_admin.SendAsync(Patch, AdminRoutes.User("alice")), ErrorCodes.MalformedJson);
    }

    [Fact]
    public async Task RotateSecret_OldSecretFailsAtOnce_NewOneWorks()
    {
        Assert.Equal(JobState.Queued, (await Flow.SubmitFnAsync(_client, "f")).State);
        var rotated = await _admin.CallAsync(HttpMethod.Post, AdminRoutes.UserRotateSecret("alice"), null, AdminJsonContext.Default.UserSecretResponse);
        Assert.NotEqual(_client.Secret, rotated.Secret);
        Assert.Matches("^[0-9a-f]{64}$", rotated.Secret);
        Assert.Equal("alice", rotated.User.Name);

        await ExpectAsync(_client.PostAsync(ApiRoutes.Jobs, """{"function":"f"}"""), ErrorCodes.BadSignature);
        using var fresh = new SignedHttp(_server.Url, "alice", rotated.Secret, _server.Time);
        Assert.Equal(JobState.Queued, (await Flow.SubmitFnAsync(fresh, "f")).State);

        await ExpectAsync(_admin.PostAsync(AdminRoutes.UserRotateSecret("nobody"), null), ErrorCodes.UserNotFound);
    }

    [Fact]
    public async Task DeleteUser_CancelsQueuedJobs_AndTheUserIsGone()
    {
        var a = await Flow.SubmitFnAsync(_client, "f");
        var b = await Flow.SubmitFnAsync(_client, "g");
        var deleted = await _admin.CallAsync(HttpMethod.Delete, AdminRoutes.User("alice"), null, AdminJsonContext.Default.UserDeleteResponse);
        Assert.Equal("alice", deleted.Name);
        Assert.Equal(2, deleted.CancelledJobs);
        foreach (var id in new[] { a.Id, b.Id })
            Assert.Equal(JobState.Cancelled, (await _admin.CallAsync(HttpMethod.Get, AdminRoutes.Job(id), null, AdminJsonContext.Default.JobView)).State);
        await ExpectAsync(_client.GetAsync(ApiRoutes.Job(a.Id)), ErrorCodes.UnknownUser);
        await ExpectAsync(_admin.SendAsync(HttpMethod.Delete, AdminRoutes.User("alice")), ErrorCodes.UserNotFound);
        await ExpectAsync(_admin.SendAsync(HttpMethod.Delete, AdminRoutes.User("root")), ErrorCodes.InvalidField);
    }

    // ---- workers, functions ----

    [Fact]
    public async Task Workers_ListShowsRunningJobs_AndDrainStopsLeasing()
    {
        var workerId = await Flow.RegisterAsync(_worker, "f");
        await Flow.SubmitFnAsync(_client, "f");
        await Flow.SubmitFnAsync(_client, "f");
        Assert.Single(await Flow.LeaseAsync(_worker, workerId, max: 1));

        var list = await _admin.CallAsync(HttpMethod.Get, AdminRoutes.Workers, null, AdminJsonContext.Default.WorkerListResponse);
        var w = Assert.Single(list.Workers);
        Assert.Equal((workerId, "w1", 1, "alive", false), (w.Id, w.Owner, w.Running, w.Status, w.Draining));
        Assert.Equal(["f"], w.Functions);

        var drained = await _admin.CallAsync(HttpMethod.Post, AdminRoutes.WorkerDrain(workerId), null, AdminJsonContext.Default.WorkerView);
        Assert.True(drained.Draining);
        Assert.Equal(1, drained.Running);
        Assert.Empty(await Flow.LeaseAsync(_worker, workerId));

        await ExpectAsync(_admin.PostAsync(AdminRoutes.WorkerDrain(new string('0', 32)), null), ErrorCodes.WorkerNotFound);
        await ExpectAsync(_admin.PostAsync(AdminRoutes.WorkerDrain("nope"), null), ErrorCodes.WorkerNotFound);
    }

    [Fact]
    public async Task RegisterOutsideAllowedFunctions_IsRefused()
    {
        await _admin.CallAsync(Patch, AdminRoutes.User("w1"), """{"functions":["f"]}""", AdminJsonContext.Default.UserView);
        Assert.False(string.IsNullOrEmpty(await Flow.RegisterAsync(_worker, "f")));
        var body = SignedHttp.Json(new RegisterWorkerRequest { Name = "x", Functions = ["f", "g"] }, DtsJsonContext.Default.RegisterWorkerRequest);
        await ExpectAsync(_worker.PostAsync(ApiRoutes.Workers, body), ErrorCodes.FunctionNotAllowed, "functions");
    }

    [Fact]
    public async Task Functions_CountJobsPerState_AndNameLiveWorkers()
    {
        var workerId = await Flow.RegisterAsync(_worker, "f", "idle");
        await Flow.SubmitFnAsync(_client, "f");
        await Flow.SubmitFnAsync(_client, "f");
        var job = Assert.Single(await Flow.LeaseAsync(_worker, workerId, max: 1));
        using (await Flow.FailAsync(_worker, job, "no", retry: false)) { }

        var list = await _admin.CallAsync(HttpMethod.Get, AdminRoutes.Functions, null, AdminJsonContext.Default.FunctionListResponse);
        var f = Assert.Single(list.Functions, x => x.Function == "f");
        Assert.Equal((1L, 0L, 1L, false), (f.Queued, f.Running, f.Dead, f.Paused));
        Assert.Equal([workerId], f.Workers);
        Assert.Equal([workerId], Assert.Single(list.Functions, x => x.Function == "idle").Workers);
    }

    // ---- jobs ----

    [Fact]
    public async Task Search_PagesReturnEveryJobOnce_NewestFirst()
    {
        var submitted = new List<string>();
        for (var i = 0; i < 23; i++) submitted.Add((await Flow.SubmitFnAsync(_client, i % 2 == 0 ? "even" : "odd")).Id);
        var seen = new List<string>();
        string? cursor = null;
        var pages = 0;
        do
        {
            var page = await SearchAsync("?limit=5" + (cursor is null ? "" : "&cursor=" + cursor));
            seen.AddRange(page.Jobs.Select(j => j.Id));
            cursor = page.NextCursor;
            pages++;
        } while (cursor is not null);
        Assert.Equal(5, pages);
        Assert.Equal(Enumerable.Reverse(submitted), seen);

        var odd = await SearchAsync("?function=odd&owner=alice&state=queued");
        Assert.Equal(11, odd.Jobs.Count);
        Assert.Null(odd.NextCursor);
        Assert.Empty((await SearchAsync("?owner=nobody")).Jobs);
        Assert.Equal(23, (await SearchAsync("?created_after=2000-01-01T00:00:00Z&created_before=2999-01-01T00:00:00Z")).Jobs.Count);
    }

    [Fact]
    public async Task Search_BadQuery_IsInvalidQuery()
    {
        foreach (var (query, field) in new[]
                 {
                     ("?state=lost", "state"), ("?limit=0", "limit"), ("?limit=1001", "limit"), ("?cursor=zzz", "cursor"),
                     ("?cursor=" + Uri.EscapeDataString("s1"), "cursor"), ("?created_after=yesterday", "created_after"),
                     ("?function=bad%20name", "function"), ("?owner=a%20b", "owner"), ("?sort=asc", "sort"), ("?state=queued&state=dead", "state"),
                 })
        {
            await ExpectAsync(_admin.GetAsync(AdminRoutes.Jobs + query), ErrorCodes.InvalidQuery, field);
        }
    }

    [Fact]
    public async Task GetJob_ShowsAnyUsersJob()
    {
        var job = await Flow.SubmitFnAsync(_client, "f", """["x"]""");
        var view = await _admin.CallAsync(HttpMethod.Get, AdminRoutes.Job(job.Id), null, AdminJsonContext.Default.JobView);
        Assert.Equal(("alice", "x"), (view.Owner, view.Args[0].GetString()));
        await ExpectAsync(_admin.GetAsync(AdminRoutes.Job(new string('0', 32))), ErrorCodes.JobNotFound);
        await ExpectAsync(_admin.GetAsync(AdminRoutes.Job("nope")), ErrorCodes.JobNotFound);
    }

    [Fact]
    public async Task Retry_DeadJob_RunsAgain_ButALiveJobIsNotRetryable()
    {
        var workerId = await Flow.RegisterAsync(_worker, "f");
        var job = await Flow.SubmitAsync(_client, """{"function":"f","max_attempts":1}""");
        var leased = Assert.Single(await Flow.LeaseAsync(_worker, workerId));
        using (await Flow.FailAsync(_worker, leased, "broke")) { }
        Assert.Equal(JobState.Dead, (await Flow.GetAsync(_client, job.Id)).State);

        var retried = await _admin.CallAsync(HttpMethod.Post, AdminRoutes.JobRetry(job.Id), null, AdminJsonContext.Default.JobView);
        Assert.Equal((JobState.Queued, 0), (retried.State, retried.Attempts));
        Assert.Null(retried.Error);
        await ExpectAsync(_admin.PostAsync(AdminRoutes.JobRetry(job.Id), null), ErrorCodes.JobNotRetryable);

        var again = Assert.Single(await Flow.LeaseAsync(_worker, workerId));
        Assert.Equal((job.Id, 1), (again.Id, again.Attempt));
        using (await Flow.CompleteAsync(_worker, again, "42")) { }
        Assert.Equal(JobState.Succeeded, (await Flow.GetAsync(_client, job.Id)).State);

        await ExpectAsync(_admin.PostAsync(AdminRoutes.JobRetry(new string('0', 32)), null), ErrorCodes.JobNotFound);
    }

    [Fact]
    public async Task Cancel_AnyUsersJob_ButNotAFinishedOne()
    {
        var job = await Flow.SubmitFnAsync(_client, "f");
        var view = await _admin.CallAsync(HttpMethod.Post, AdminRoutes.JobCancel(job.Id), null, AdminJsonContext.Default.JobView);
        Assert.Equal(JobState.Cancelled, view.State);
        await ExpectAsync(_admin.PostAsync(AdminRoutes.JobCancel(job.Id), null), ErrorCodes.JobFinished);
        await ExpectAsync(_admin.PostAsync(AdminRoutes.JobCancel(new string('0', 32)), null), ErrorCodes.JobNotFound);
    }

    [Fact]
    public async Task Purge_RemovesFinishedJobsOnly()
    {
        var keep = await Flow.SubmitFnAsync(_client, "f");
        var gone = new List<string>();
        for (var i = 0; i < 3; i++)
        {
            var j = await Flow.SubmitFnAsync(_client, "f");
            await _admin.CallAsync(HttpMethod.Post, AdminRoutes.JobCancel(j.Id), null, AdminJsonContext.Default.JobView);
            gone.Add(j.Id);
        }
        var none = await _admin.CallAsync(HttpMethod.Post, AdminRoutes.JobsPurge, """{"states":["dead"]}""", AdminJsonContext.Default.JobPurgeResponse);
        Assert.Equal(0, none.Purged);
        var purged = await _admin.CallAsync(HttpMethod.Post, AdminRoutes.JobsPurge, """{"owner":"alice","function":"f"}""", AdminJsonContext.Default.JobPurgeResponse);
        Assert.Equal(3, purged.Purged);
        foreach (var id in gone) await ExpectAsync(_admin.GetAsync(AdminRoutes.Job(id)), ErrorCodes.JobNotFound);
        Assert.Equal(JobState.Queued, (await Flow.GetAsync(_client, keep.Id)).State);

        await ExpectAsync(_admin.PostAsync(AdminRoutes.JobsPurge, """{"states":["queued"]}"""), ErrorCodes.InvalidField, "states");
        await ExpectAsync(_admin.PostAsync(AdminRoutes.JobsPurge, """{"states":[]}"""), ErrorCodes.InvalidField, "states");
        await ExpectAsync(_admin.PostAsync(AdminRoutes.JobsPurge, """{"states":["lost"]}"""), ErrorCodes.InvalidField);
        await ExpectAsync(_admin.PostAsync(AdminRoutes.JobsPurge, """{"owner":"a b"}"""), ErrorCodes.InvalidField, "owner");
        await ExpectAsync(_admin.PostAsync(AdminRoutes.JobsPurge, """{"older":1}"""), ErrorCodes.UnknownField, "older");
        await ExpectAsync(_admin.PostAsync(AdminRoutes.JobsPurge, null), ErrorCodes.MalformedJson);
    }

    // ---- queues ----

    [Fact]
    public async Task Pause_StopsLeasing_AndResumeWakesAWaitingLease()
    {
        var workerId = await Flow.RegisterAsync(_worker, "f");
        var paused = await _admin.CallAsync(HttpMethod.Post, AdminRoutes.QueuePause("f"), null, AdminJsonContext.Default.QueueView);
        Assert.True(paused.Paused);
        var job = await Flow.SubmitFnAsync(_client, "f");
        Assert.Empty(await Flow.LeaseAsync(_worker, workerId));

        var queues = await _admin.CallAsync(HttpMethod.Get, AdminRoutes.Queues, null, AdminJsonContext.Default.QueueListResponse);
        var q = Assert.Single(queues.Queues);
        Assert.Equal(("f", true, 1L), (q.Function, q.Paused, q.Queued));

        // The long poll must be asleep before the resume, or the test would not show the wake-up.
        var started = DateTime.UtcNow;
        var waiting = Flow.LeaseAsync(_worker, workerId, wait: 30);
        await Task.Delay(300, TestContext.Current.CancellationToken);
        Assert.False(waiting.IsCompleted);
        var resumed = await _admin.CallAsync(HttpMethod.Post, AdminRoutes.QueueResume("f"), null, AdminJsonContext.Default.QueueView);
        Assert.False(resumed.Paused);
        var leased = Assert.Single(await waiting.WaitAsync(TimeSpan.FromSeconds(10), TestContext.Current.CancellationToken));
        Assert.Equal(job.Id, leased.Id);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(10));

        await ExpectAsync(_admin.PostAsync(AdminRoutes.QueuePause("bad%20name"), null), ErrorCodes.InvalidField, "function");
    }
}
