using Dts.Contracts;
using Dts.Core.Storage;

namespace Dts.Testing.StorageContract;

/// <summary>
/// The administration operations every <see cref="IJobStore"/> must support. It extends the core
/// contract, so a backend subclasses this one class to run both.
/// </summary>
public abstract class JobStoreAdminContract : JobStoreContract
{
    private Task<bool> AddUserAsync(string name, params string[] roles) =>
        Store.UserInsertAsync(new UserInsertParams(name, new string('a', 64), roles.Length == 0 ? [Roles.Client] : roles, T0), Ct);

    private Task RegisterAsync(string id, string owner, params string[] functions) =>
        Store.WorkerUpsertAsync(new WorkerUpsertParams(id, owner, "w", functions, 4, T0), Ct);

    // ---- users ----

    [Fact]
    public async Task UserList_IsByName_AndPages()
    {
        foreach (var n in new[] { "carol", "alice", "bob" }) await AddUserAsync(n);
        var first = await Store.UserListAsync(new UserListParams(null, 2), Ct);
        Assert.Equal(["alice", "bob"], first.Select(u => u.Name));
        var rest = await Store.UserListAsync(new UserListParams("bob", 2), Ct);
        Assert.Equal(["carol"], rest.Select(u => u.Name));
    }

    [Fact]
    public async Task UserUpdate_ChangesOnlyGivenFields_AndZeroClearsLimits()
    {
        await AddUserAsync("alice", Roles.Client);
        Assert.True(await Store.UserUpdateAsync(new UserUpdateParams
        {
            Name = "alice", MaxQueued = 10, SubmitRate = 2.5, SubmitBurst = 5, Functions = ["f1", "f2"],
        }, Ct));
        var u = (await Store.UserGetAsync("alice", Ct))!;
        Assert.Equal(10, u.MaxQueued);
        Assert.Equal(2.5, u.SubmitRate);
        Assert.Equal(5, u.SubmitBurst);
        Assert.Equal(["f1", "f2"], u.Functions!);
        Assert.Equal([Roles.Client], u.Roles);
        Assert.False(u.Disabled);

        Assert.True(await Store.UserUpdateAsync(new UserUpdateParams { Name = "alice", Disabled = true, Roles = [Roles.Worker], MaxQueued = 0 }, Ct));
        u = (await Store.UserGetAsync("alice", Ct))!;
        Assert.True(u.Disabled);
        Assert.Equal([Roles.Worker], u.Roles);
        Assert.Null(u.MaxQueued);
        Assert.Equal(2.5, u.SubmitRate);

        Assert.True(await Store.UserUpdateAsync(new UserUpdateParams { Name = "alice", SubmitRate = 0, SubmitBurst = 0, Functions = [] }, Ct));
        u = (await Store.UserGetAsync("alice", Ct))!;
        Assert.Null(u.SubmitRate);
        Assert.Null(u.SubmitBurst);
        Assert.Null(u.Functions);
        var listed = Assert.Single(await Store.UserListAsync(new UserListParams(null, 10), Ct));
        Assert.True(listed.Disabled);
    }

    [Fact]
    public async Task UserUpdate_And_SetSecret_UnknownUser_ReturnFalse()
    {
        Assert.False(await Store.UserUpdateAsync(new UserUpdateParams { Name = "ghost", Disabled = true }, Ct));
        Assert.False(await Store.UserSetSecretAsync(new UserSetSecretParams("ghost", new string('b', 64), T0), Ct));
    }

    [Fact]
    public async Task UserSetSecret_ReplacesTheSecret()
    {
        await AddUserAsync("alice");
        Assert.True(await Store.UserSetSecretAsync(new UserSetSecretParams("alice", new string('b', 64), T0), Ct));
        Assert.Equal(new string('b', 64), (await Store.UserGetAsync("alice", Ct))!.Secret);
    }

    [Fact]
    public async Task UserDelete_CancelsUnfinishedJobs_RequestsCancelOfRunning_AndDeletesWorkers()
    {
        await AddUserAsync("alice");
        await RegisterAsync("w-alice", "alice", "resize");
        var queued = NewJob();
        var scheduled = NewJob(runAt: T0.AddHours(1));
        var running = NewJob();
        var done = NewJob();
        var bobs = NewJob(owner: "bob");
        await InsertAsync(done);
        var doneLease = await LeaseOneAsync();
        await ReportAsync(Succeed(doneLease));
        await InsertAsync(running);
        await LeaseOneAsync();
        await Store.JobInsertManyAsync(new JobInsertManyParams([queued, scheduled, bobs], T0), Ct);

        var result = await Store.UserDeleteAsync(new UserDeleteParams("alice", T0.AddSeconds(1)), Ct);
        Assert.True(result.Found);
        Assert.Equal(3, result.CancelledJobs);
        Assert.Null(await Store.UserGetAsync("alice", Ct));
        Assert.Null(await Store.WorkerGetAsync("w-alice", Ct));
        Assert.Equal(JobState.Cancelled, (await GetAsync(queued.Id)).State);
        Assert.Equal(JobState.Cancelled, (await GetAsync(scheduled.Id)).State);
        var r = await GetAsync(running.Id);
        Assert.Equal(JobState.Running, r.State);
        Assert.True(r.CancelRequested);
        Assert.Equal(JobState.Succeeded, (await GetAsync(done.Id)).State);
        Assert.Equal(JobState.Queued, (await GetAsync(bobs.Id)).State);

        Assert.False((await Store.UserDeleteAsync(new UserDeleteParams("alice", T0), Ct)).Found);
    }

    [Fact]
    public async Task CountUnfinished_CountsQueuedScheduledRunningAndAwaitingRetry()
    {
        var a = NewJob();
        await InsertAsync(a);
        await ReportAsync(Fail(await LeaseOneAsync()));
        await InsertAsync(NewJob());
        await LeaseOneAsync();
        await InsertAsync(NewJob(runAt: T0.AddHours(1)));
        await InsertAsync(NewJob());
        await InsertAsync(NewJob(owner: "bob"));
        var done = NewJob(function: "other");
        await InsertAsync(done);
        await ReportAsync(Succeed(await LeaseOneAsync("other")));

        Assert.Equal(JobState.AwaitingRetry, (await GetAsync(a.Id)).State);
        Assert.Equal(4, await Store.JobCountUnfinishedAsync(new JobCountUnfinishedParams("alice"), Ct));
        Assert.Equal(1, await Store.JobCountUnfinishedAsync(new JobCountUnfinishedParams("bob"), Ct));
    }

    // ---- workers ----

    [Fact]
    public async Task WorkerList_CountsRunningJobs_AndDrainingStopsLeasing()
    {
        await RegisterAsync("w1", "bob", "resize");
        await RegisterAsync("w2", "bob", "resize");
        await Store.JobInsertManyAsync(new JobInsertManyParams([NewJob(), NewJob(), NewJob()], T0), Ct);
        Assert.Equal(2, (await LeaseAsync(["resize"], 2, "w1")).Count);

        var list = await Store.WorkerListAsync(new WorkerListParams(null, 10), Ct);
        Assert.Equal([("w1", 2), ("w2", 0)], list.Select(w => (w.Worker.Id, w.Running)));
        Assert.Equal(["w2"], (await Store.WorkerListAsync(new WorkerListParams(null, 10, "w2"), Ct)).Select(w => w.Worker.Id));

        Assert.True(await Store.WorkerSetDrainingAsync(new WorkerSetDrainingParams("w2", true), Ct));
        Assert.False(await Store.WorkerSetDrainingAsync(new WorkerSetDrainingParams("ghost", true), Ct));
        Assert.True((await Store.WorkerGetAsync("w2", Ct))!.Draining);
        Assert.Empty(await LeaseAsync(["resize"], 5, "w2"));
        Assert.Single(await LeaseAsync(["resize"], 5, "w1"));
    }

    [Fact]
    public async Task FunctionStats_CountsPerState_PausedFlag_AndLiveWorkers()
    {
        await Store.WorkerUpsertAsync(new WorkerUpsertParams("live", "bob", "w", ["resize", "idle"], 1, T0), Ct);
        await Store.WorkerUpsertAsync(new WorkerUpsertParams("old", "bob", "w", ["resize"], 1, T0.AddMinutes(-10)), Ct);
        await Store.JobInsertManyAsync(new JobInsertManyParams([NewJob(), NewJob(), NewJob(function: "mail", runAt: T0.AddHours(1))], T0), Ct);
        await ReportAsync(Succeed(await LeaseOneAsync()));
        await Store.QueueSetPausedAsync(new QueueSetPausedParams("mail", true, T0), Ct);

        var stats = (await Store.FunctionStatsAsync(new FunctionStatsParams(T0.AddMinutes(-1)), Ct)).ToDictionary(f => f.Function);
        Assert.Equal(["idle", "mail", "resize"], stats.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(1, stats["resize"].Counts[JobState.Queued]);
        Assert.Equal(1, stats["resize"].Counts[JobState.Succeeded]);
        Assert.Equal(["live"], stats["resize"].Workers);
        Assert.Equal(1, stats["mail"].Counts[JobState.Scheduled]);
        Assert.True(stats["mail"].Paused);
        Assert.False(stats["resize"].Paused);
        Assert.Empty(stats["idle"].Counts);
    }

    // ---- jobs ----

    [Fact]
    public async Task Search_PagesNewestFirst_AndReturnsEveryJobOnce()
    {
        var jobs = Enumerable.Range(0, 25).Select(i => NewJob(function: i % 2 == 0 ? "even" : "odd")).ToList();
        await Store.JobInsertManyAsync(new JobInsertManyParams(jobs, T0), Ct);
        var seen = new List<string>();
        long? cursor = null;
        var pages = 0;
        do
        {
            var page = await Store.JobSearchAsync(new JobSearchParams { Limit = 10, BeforeSeq = cursor }, Ct);
            seen.AddRange(page.Jobs.Select(j => j.Id));
            cursor = page.NextBeforeSeq;
            pages++;
        } while (cursor is not null);
        Assert.Equal(3, pages);
        Assert.Equal(jobs.Select(j => j.Id).Reverse(), seen);
    }

    [Fact]
    public async Task Search_FiltersCombine()
    {
        var a = NewJob(function: "mail") with { TagsJson = "[\"urgent\"]" };
        var b = NewJob(function: "mail", owner: "bob");
        var c = NewJob(function: "resize");
        await Store.JobInsertManyAsync(new JobInsertManyParams([a], T0), Ct);
        await Store.JobInsertManyAsync(new JobInsertManyParams([b, c], T0.AddMinutes(1)), Ct);
        await ReportAsync(Succeed(await LeaseOneAsync("resize", now: T0.AddMinutes(2))));

        async Task<IEnumerable<string>> Ids(JobSearchParams p) => (await Store.JobSearchAsync(p, Ct)).Jobs.Select(j => j.Id);
        Assert.Equal([b.Id, a.Id], await Ids(new JobSearchParams { Limit = 10, Function = "mail" }));
        Assert.Equal([b.Id], await Ids(new JobSearchParams { Limit = 10, Owner = "bob" }));
        Assert.Equal([a.Id], await Ids(new JobSearchParams { Limit = 10, Tag = "urgent" }));
        Assert.Equal([c.Id], await Ids(new JobSearchParams { Limit = 10, State = JobState.Succeeded }));
        Assert.Equal([a.Id], await Ids(new JobSearchParams { Limit = 10, CreatedBefore = T0.AddMinutes(1) }));
        Assert.Equal([c.Id, b.Id], await Ids(new JobSearchParams { Limit = 10, CreatedAfter = T0.AddMinutes(1) }));
        Assert.Empty(await Ids(new JobSearchParams { Limit = 10, Function = "mail", Owner = "carol" }));
    }

    [Fact]
    public async Task Retry_DeadJob_IsQueuedWithFreshAttempts()
    {
        var job = NewJob(maxAttempts: 1);
        await InsertAsync(job);
        await ReportAsync(Fail(await LeaseOneAsync()));
        Assert.Equal(JobState.Dead, (await GetAsync(job.Id)).State);

        var result = await Store.JobRetryAsync(new JobRetryParams(job.Id, T0.AddMinutes(1)), Ct);
        Assert.Equal(JobRetryStatus.Retried, result.Status);
        var j = await GetAsync(job.Id);
        Assert.Equal(JobState.Queued, j.State);
        Assert.Equal(0, j.Attempts);
        Assert.Null(j.ErrorCode);
        Assert.False(j.ResultPending);
        Assert.Null(j.FinishedAt);
        Assert.Equal(job.Id, (await LeaseOneAsync(now: T0.AddMinutes(1))).Id);
    }

    [Fact]
    public async Task Retry_CancelledAndAwaitingRetry_Work_OthersAreRefused()
    {
        var cancelled = NewJob();
        var queued = NewJob(function: "other");
        await Store.JobInsertManyAsync(new JobInsertManyParams([cancelled, queued], T0), Ct);
        await Store.JobCancelAsync(new JobCancelParams(cancelled.Id, null, T0), Ct);
        Assert.Equal(JobRetryStatus.Retried, (await Store.JobRetryAsync(new JobRetryParams(cancelled.Id, T0), Ct)).Status);
        Assert.Equal(JobRetryStatus.NotRetryable, (await Store.JobRetryAsync(new JobRetryParams(queued.Id, T0), Ct)).Status);
        Assert.Equal(JobRetryStatus.NotFound, (await Store.JobRetryAsync(new JobRetryParams(Core.JobIds.New(T0), T0), Ct)).Status);

        await ReportAsync(Fail(await LeaseOneAsync()));
        Assert.Equal(JobState.AwaitingRetry, (await GetAsync(cancelled.Id)).State);
        Assert.Equal(JobRetryStatus.Retried, (await Store.JobRetryAsync(new JobRetryParams(cancelled.Id, T0), Ct)).Status);
        Assert.Equal(JobState.Queued, (await GetAsync(cancelled.Id)).State);
    }

    [Fact]
    public async Task Retry_WhenAnotherJobHoldsTheUniqueKey_IsRefused()
    {
        var first = NewJob(uniqueKey: "k");
        await InsertAsync(first);
        await Store.JobCancelAsync(new JobCancelParams(first.Id, null, T0), Ct);
        await InsertAsync(NewJob(uniqueKey: "k"));
        Assert.Equal(JobRetryStatus.UniqueKeyTaken, (await Store.JobRetryAsync(new JobRetryParams(first.Id, T0), Ct)).Status);
        Assert.Equal(JobState.Cancelled, (await GetAsync(first.Id)).State);
    }

    [Theory]
    [InlineData(JobState.Dead)]
    [InlineData(JobState.Cancelled)]
    public async Task Retry_JobWithAnAutomaticKey_IsQueuedAndKeepsHoldingItsKey(JobState end)
    {
        var key = AutoKey();
        var job = NewJob(uniqueKey: key);
        await InsertAsync(job);
        await EndAsync(end, job.Id);
        // A resend while it is finished attaches to it ...
        Assert.Equal(new JobInsertResult(job.Id, end, true, "resize"), await InsertAsync(NewJob(uniqueKey: key)));

        var result = await Store.JobRetryAsync(new JobRetryParams(job.Id, T0.AddMinutes(1)), Ct);
        Assert.Equal(JobRetryStatus.Retried, result.Status);
        Assert.Equal(key, result.Job!.UniqueKey);
        Assert.Equal(JobState.Queued, (await GetAsync(job.Id)).State);

        // ... and so does one after the re-queue, and after the job's second end.
        Assert.Equal(new JobInsertResult(job.Id, JobState.Queued, true, "resize"), await InsertAsync(NewJob(uniqueKey: key)));
        await ReportAsync(Succeed(await LeaseOneAsync(now: T0.AddMinutes(1))));
        Assert.Equal(new JobInsertResult(job.Id, JobState.Succeeded, true, "resize"), await InsertAsync(NewJob(uniqueKey: key)));
    }

    [Fact]
    public async Task Purge_FreesAnAutomaticKey()
    {
        var key = AutoKey();
        var job = NewJob(uniqueKey: key);
        await InsertAsync(job);
        await EndAsync(JobState.Cancelled, job.Id);
        Assert.True((await InsertAsync(NewJob(uniqueKey: key))).Coalesced);

        Assert.Equal(1, await Store.JobPurgeAsync(new JobPurgeParams([JobState.Cancelled], null, null, null), Ct));
        var again = NewJob(uniqueKey: key);
        Assert.Equal(new JobInsertResult(again.Id, JobState.Queued, false, "resize"), await InsertAsync(again));
    }

    [Fact]
    public async Task Purge_DeletesOnlyMatchingFinishedJobs_InSmallBatches()
    {
        var finished = Enumerable.Range(0, 7).Select(_ => NewJob()).ToList();
        await Store.JobInsertManyAsync(new JobInsertManyParams(finished, T0), Ct);
        foreach (var j in finished) await Store.JobCancelAsync(new JobCancelParams(j.Id, null, T0), Ct);
        var bobsCancelled = NewJob(owner: "bob");
        var live = NewJob();
        await Store.JobInsertManyAsync(new JobInsertManyParams([bobsCancelled, live], T0), Ct);
        await Store.JobCancelAsync(new JobCancelParams(bobsCancelled.Id, null, T0), Ct);

        Assert.Equal(0, await Store.JobPurgeAsync(new JobPurgeParams([JobState.Succeeded], null, null, null), Ct));
        Assert.Equal(0, await Store.JobPurgeAsync(new JobPurgeParams([JobState.Cancelled], null, null, T0), Ct));
        Assert.Equal(7, await Store.JobPurgeAsync(new JobPurgeParams([JobState.Cancelled], null, "alice", null, BatchSize: 3), Ct));
        foreach (var j in finished) Assert.Null(await Store.JobGetAsync(new JobGetParams(j.Id), Ct));
        Assert.Equal(JobState.Queued, (await GetAsync(live.Id)).State);
        Assert.Equal(JobState.Cancelled, (await GetAsync(bobsCancelled.Id)).State);
        Assert.Equal(1, await Store.JobPurgeAsync(new JobPurgeParams([JobState.Cancelled, JobState.Dead], null, null, T0.AddSeconds(1)), Ct));
    }

    // ---- queues ----

    [Fact]
    public async Task PausedQueue_IsNotLeased_UntilResumed_AndIsListed()
    {
        await Store.JobInsertManyAsync(new JobInsertManyParams([NewJob(), NewJob(function: "mail")], T0), Ct);
        var paused = await Store.QueueSetPausedAsync(new QueueSetPausedParams("resize", true, T0), Ct);
        Assert.Equal(new QueueRecord("resize", true, 1), paused);
        await Store.QueueSetPausedAsync(new QueueSetPausedParams("empty", true, T0), Ct);

        Assert.Equal(["mail"], (await LeaseAsync(["resize", "mail"], 5)).Select(j => j.Function));
        Assert.Equal(
            [new QueueRecord("empty", true, 0), new QueueRecord("resize", true, 1)],
            await Store.QueueListAsync(new QueueListParams(), Ct));

        Assert.False((await Store.QueueSetPausedAsync(new QueueSetPausedParams("resize", false, T0), Ct)).Paused);
        Assert.Single(await LeaseAsync(["resize"], 5));
    }
}
