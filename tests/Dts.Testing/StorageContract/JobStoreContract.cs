using Dts.Contracts;
using Dts.Core;
using Dts.Core.Storage;

namespace Dts.Testing.StorageContract;

/// <summary>
/// The behaviour every <see cref="IJobStore"/> must have. A backend's test project subclasses this
/// and supplies a fresh, empty store; the tests never sleep: time is passed in as <c>now</c>.
/// </summary>
public abstract class JobStoreContract : IAsyncLifetime
{
    /// <summary>A whole millisecond, since stores may keep times at millisecond precision.</summary>
    protected static readonly DateTimeOffset T0 = DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000);
    protected static readonly TimeSpan LeaseTime = TimeSpan.FromSeconds(30);

    private IJobStore? _store;

    protected IJobStore Store => _store ?? throw new InvalidOperationException("The store is not created yet.");

    protected static CancellationToken Ct => TestContext.Current.CancellationToken;

    /// <summary>A new store on empty storage, not yet migrated.</summary>
    protected abstract Task<IJobStore> CreateStoreAsync();

    /// <summary>
    /// A new store on the same storage as the last one, which the suite has disposed; null when the
    /// backend cannot do that, and the durability tests are then skipped.
    /// </summary>
    protected virtual Task<IJobStore>? ReopenStoreAsync() => null;

    /// <summary>Runs after the store is disposed, to remove its storage.</summary>
    protected virtual ValueTask CleanupAsync() => ValueTask.CompletedTask;

    public virtual async ValueTask InitializeAsync()
    {
        _store = await CreateStoreAsync();
        await _store.MigrateAsync(Ct);
    }

    public async ValueTask DisposeAsync()
    {
        if (_store is not null) await _store.DisposeAsync();
        _store = null;
        await CleanupAsync();
        GC.SuppressFinalize(this);
    }

    protected static NewJob NewJob(
        string function = "resize",
        string owner = "alice",
        Priority? priority = null,
        string? uniqueKey = null,
        DateTimeOffset? runAt = null,
        int maxAttempts = 3,
        TimeSpan? retention = null) => new()
        {
            Id = JobIds.New(T0),
            Function = function,
            Owner = owner,
            ArgsJson = "[1,\"two\"]",
            KwargsJson = "{\"size\":3}",
            Priority = priority ?? Priority.Normal,
            UniqueKey = uniqueKey,
            TagsJson = "[\"a\",\"b\"]",
            RunAt = runAt ?? T0,
            MaxAttempts = maxAttempts,
            Timeout = TimeSpan.FromSeconds(90),
            Retention = retention ?? TimeSpan.FromDays(1),
        };

    protected async Task<JobInsertResult> InsertAsync(NewJob job, DateTimeOffset? now = null) =>
        (await Store.JobInsertManyAsync(new JobInsertManyParams([job], now ?? T0), Ct)).Single();

    protected async Task<JobRecord> GetAsync(string id) =>
        await Store.JobGetAsync(new JobGetParams(id), Ct) ?? throw new InvalidOperationException($"Job {id} is missing.");

    protected Task<IReadOnlyList<JobRecord>> LeaseAsync(
        string[] functions, int max, string worker = "worker-1", DateTimeOffset? now = null) =>
        Store.JobLeaseAsync(new JobLeaseParams(worker, functions, max, now ?? T0, LeaseTime), Ct);

    protected async Task<JobRecord> LeaseOneAsync(string function = "resize", string worker = "worker-1", DateTimeOffset? now = null) =>
        (await LeaseAsync([function], 1, worker, now)).Single();

    protected async Task<JobReportResult> ReportAsync(JobReportItem item, DateTimeOffset? now = null, RetryPolicy? policy = null) =>
        (await Store.JobReportManyAsync(new JobReportManyParams([item], now ?? T0, policy ?? FixedPolicy), Ct)).Single();

    /// <summary>Base delay 10 s and jitter fixed at the middle: the first retry waits exactly 7.5 s.</summary>
    protected static RetryPolicy FixedPolicy { get; } = new(TimeSpan.FromSeconds(10), TimeSpan.FromMinutes(10), () => 0.5);

    protected static JobReportItem Succeed(JobRecord job, string result = "{\"ok\":true}") =>
        new() { JobId = job.Id, LeaseToken = job.LeaseToken!, Kind = JobReportKind.Succeed, ResultJson = result };

    protected static JobReportItem Fail(JobRecord job, bool retry = true) => new()
    {
        JobId = job.Id,
        LeaseToken = job.LeaseToken!,
        Kind = JobReportKind.Fail,
        ErrorCode = "boom",
        ErrorMessage = "It broke.",
        Retry = retry,
    };

    private static IEnumerable<string> Ids(IEnumerable<JobRecord> jobs) => jobs.Select(j => j.Id);

    // ---- insert and get ----

    [Fact]
    public async Task Insert_ReadyJob_IsQueuedWithEveryFieldStored()
    {
        var job = NewJob(priority: new Priority(PriorityClass.High, 7), uniqueKey: "k1");
        var inserted = await InsertAsync(job);

        Assert.Equal(new JobInsertResult(job.Id, JobState.Queued, false, "resize"), inserted);
        var stored = await GetAsync(job.Id);
        Assert.Equal(job.Id, stored.Id);
        Assert.Equal("resize", stored.Function);
        Assert.Equal("alice", stored.Owner);
        Assert.Equal(JobState.Queued, stored.State);
        Assert.Equal(job.ArgsJson, stored.ArgsJson);
        Assert.Equal(job.KwargsJson, stored.KwargsJson);
        Assert.Equal(new Priority(PriorityClass.High, 7), stored.Priority);
        Assert.Equal("k1", stored.UniqueKey);
        Assert.Equal(job.TagsJson, stored.TagsJson);
        Assert.Equal(T0, stored.RunAt);
        Assert.Equal(0, stored.Attempts);
        Assert.Equal(3, stored.MaxAttempts);
        Assert.Equal(TimeSpan.FromSeconds(90), stored.Timeout);
        Assert.Equal(TimeSpan.FromDays(1), stored.Retention);
        Assert.Equal(T0, stored.CreatedAt);
        Assert.Equal(T0, stored.UpdatedAt);
        Assert.Null(stored.StartedAt);
        Assert.Null(stored.FinishedAt);
        Assert.Null(stored.LeaseToken);
        Assert.Null(stored.WorkerId);
        Assert.False(stored.ResultPending);
        Assert.False(stored.CancelRequested);
    }

    [Fact]
    public async Task Insert_OptionalFieldsAbsent_AreStoredAsNull()
    {
        var job = NewJob() with { TagsJson = null, Timeout = null, UniqueKey = null };
        await InsertAsync(job);
        var stored = await GetAsync(job.Id);
        Assert.Null(stored.TagsJson);
        Assert.Null(stored.Timeout);
        Assert.Null(stored.UniqueKey);
    }

    [Fact]
    public async Task Insert_RunAtInFuture_IsScheduled()
    {
        var job = NewJob(runAt: T0.AddMinutes(5));
        Assert.Equal(JobState.Scheduled, (await InsertAsync(job)).State);
        Assert.Equal(JobState.Scheduled, (await GetAsync(job.Id)).State);
    }

    [Fact]
    public async Task Get_UnknownId_ReturnsNull()
    {
        Assert.Null(await Store.JobGetAsync(new JobGetParams(JobIds.New(T0)), Ct));
    }

    [Fact]
    public async Task InsertMany_ReturnsResultsInInputOrder()
    {
        var jobs = Enumerable.Range(0, 50).Select(i => NewJob(function: $"f{i % 3}")).ToList();
        var results = await Store.JobInsertManyAsync(new JobInsertManyParams(jobs, T0), Ct);
        Assert.Equal(jobs.Select(j => (j.Id, j.Function)), results.Select(r => (r.Id, r.Function)));
        Assert.All(results, r => Assert.False(r.Coalesced));
    }

    // ---- lease order ----

    [Fact]
    public async Task Lease_HighBeforeNormalBeforeLow()
    {
        var low = NewJob(priority: new Priority(PriorityClass.Low, 999));
        var normal = NewJob(priority: new Priority(PriorityClass.Normal, 0));
        var high = NewJob(priority: new Priority(PriorityClass.High, 0));
        await Store.JobInsertManyAsync(new JobInsertManyParams([low, normal, high], T0), Ct);

        var leased = await LeaseAsync(["resize"], 3);
        Assert.Equal([high.Id, normal.Id, low.Id], Ids(leased));
    }

    [Fact]
    public async Task Lease_LargerPriorityValueFirstWithinClass()
    {
        var five = NewJob(priority: new Priority(PriorityClass.Normal, 5));
        var fifty = NewJob(priority: new Priority(PriorityClass.Normal, 50));
        var one = NewJob(priority: new Priority(PriorityClass.Normal, 1));
        await Store.JobInsertManyAsync(new JobInsertManyParams([five, fifty, one], T0), Ct);

        Assert.Equal([fifty.Id, five.Id, one.Id], Ids(await LeaseAsync(["resize"], 3)));
    }

    [Fact]
    public async Task Lease_EqualPriority_IsFifo()
    {
        var jobs = Enumerable.Range(0, 20).Select(_ => NewJob()).ToList();
        foreach (var job in jobs) await InsertAsync(job);

        var first = await LeaseAsync(["resize"], 7);
        var rest = await LeaseAsync(["resize"], 100);
        Assert.Equal(jobs.Select(j => j.Id), Ids(first).Concat(Ids(rest)));
    }

    [Fact]
    public async Task Lease_AcrossFunctions_PicksTheGloballyBest()
    {
        var a1 = NewJob(function: "a");
        var b1 = NewJob(function: "b", priority: new Priority(PriorityClass.High, 0));
        var a2 = NewJob(function: "a", priority: new Priority(PriorityClass.High, 10));
        var c1 = NewJob(function: "c", priority: new Priority(PriorityClass.High, 500));
        var b2 = NewJob(function: "b", priority: new Priority(PriorityClass.Low, 0));
        var a3 = NewJob(function: "a");
        await Store.JobInsertManyAsync(new JobInsertManyParams([a1, b1, a2, c1, b2, a3], T0), Ct);

        var leased = await LeaseAsync(["a", "b"], 4);
        Assert.Equal([a2.Id, b1.Id, a1.Id, a3.Id], Ids(leased));
        Assert.Equal(JobState.Queued, (await GetAsync(c1.Id)).State);
        Assert.Equal(JobState.Queued, (await GetAsync(b2.Id)).State);
    }

    [Fact]
    public async Task Lease_OnlyTakesTheGivenFunctions()
    {
        await InsertAsync(NewJob(function: "other"));
        Assert.Empty(await LeaseAsync(["resize"], 10));
    }

    [Fact]
    public async Task Lease_SetsRunningStateTokenWorkerAndAttempt()
    {
        var jobs = new[] { NewJob(), NewJob() };
        await Store.JobInsertManyAsync(new JobInsertManyParams(jobs, T0), Ct);
        var now = T0.AddSeconds(3);

        var leased = await LeaseAsync(["resize"], 5, "worker-7", now);

        Assert.Equal(2, leased.Count);
        Assert.NotEqual(leased[0].LeaseToken, leased[1].LeaseToken);
        foreach (var job in leased)
        {
            Assert.Equal(JobState.Running, job.State);
            Assert.False(string.IsNullOrEmpty(job.LeaseToken));
            Assert.Equal(now + LeaseTime, job.LeaseExpiresAt);
            Assert.Equal("worker-7", job.WorkerId);
            Assert.Equal(1, job.Attempts);
            Assert.Equal(now, job.StartedAt);
            Assert.Equal(now, job.UpdatedAt);
            Assert.Equal(job, await GetAsync(job.Id));
        }
    }

    [Fact]
    public async Task Lease_RespectsMax_AndNeverReturnsALeasedJobAgain()
    {
        var jobs = Enumerable.Range(0, 5).Select(_ => NewJob()).ToList();
        await Store.JobInsertManyAsync(new JobInsertManyParams(jobs, T0), Ct);

        var first = await LeaseAsync(["resize"], 3);
        var second = await LeaseAsync(["resize"], 3);
        var third = await LeaseAsync(["resize"], 3);

        Assert.Equal(3, first.Count);
        Assert.Equal(2, second.Count);
        Assert.Empty(third);
        Assert.Empty(Ids(first).Intersect(Ids(second)));
    }

    [Fact]
    public async Task Lease_ConcurrentCalls_NeverLeaseAJobTwice()
    {
        var jobs = Enumerable.Range(0, 300).Select(i => NewJob(function: $"f{i % 3}")).ToList();
        await Store.JobInsertManyAsync(new JobInsertManyParams(jobs, T0), Ct);

        var calls = Enumerable.Range(0, 40)
            .Select(i => Task.Run(() => LeaseAsync(["f0", "f1", "f2"], 10, $"worker-{i}"), Ct));
        var leased = (await Task.WhenAll(calls)).SelectMany(l => l).ToList();

        Assert.Equal(300, leased.Count);
        Assert.Equal(300, leased.Select(j => j.Id).Distinct().Count());
    }

    // ---- unique keys ----

    [Fact]
    public async Task UniqueKey_SameOwnerAndFunction_CoalescesWithTheExistingJob()
    {
        var first = NewJob(uniqueKey: "report-42");
        await InsertAsync(first);
        var running = await LeaseOneAsync();

        var second = await InsertAsync(NewJob(uniqueKey: "report-42"));

        Assert.True(second.Coalesced);
        Assert.Equal(first.Id, second.Id);
        Assert.Equal(JobState.Running, second.State);
        Assert.Equal(first.Id, running.Id);
    }

    [Fact]
    public async Task UniqueKey_DifferentOwner_CreatesANewJob()
    {
        var mine = NewJob(owner: "alice", uniqueKey: "k");
        var theirs = NewJob(owner: "bob", uniqueKey: "k");
        await InsertAsync(mine);
        var result = await InsertAsync(theirs);
        Assert.False(result.Coalesced);
        Assert.Equal(theirs.Id, result.Id);
    }

    [Fact]
    public async Task UniqueKey_DifferentFunction_CreatesANewJob()
    {
        await InsertAsync(NewJob(function: "a", uniqueKey: "k"));
        var other = NewJob(function: "b", uniqueKey: "k");
        Assert.False((await InsertAsync(other)).Coalesced);
    }

    [Fact]
    public async Task UniqueKey_AfterTheFirstFinished_CreatesANewJob()
    {
        await InsertAsync(NewJob(uniqueKey: "k"));
        var leased = await LeaseOneAsync();
        await ReportAsync(Succeed(leased));

        var again = NewJob(uniqueKey: "k");
        var result = await InsertAsync(again);

        Assert.False(result.Coalesced);
        Assert.Equal(again.Id, result.Id);
        Assert.Equal(JobState.Queued, result.State);
    }

    [Fact]
    public async Task UniqueKey_ScheduledAndAwaitingRetry_Coalesce()
    {
        var scheduled = NewJob(function: "later", uniqueKey: "k", runAt: T0.AddHours(1));
        await InsertAsync(scheduled);
        Assert.Equal(scheduled.Id, (await InsertAsync(NewJob(function: "later", uniqueKey: "k"))).Id);

        var retried = NewJob(uniqueKey: "k");
        await InsertAsync(retried);
        await ReportAsync(Fail(await LeaseOneAsync()));
        var result = await InsertAsync(NewJob(uniqueKey: "k"));
        Assert.Equal(new JobInsertResult(retried.Id, JobState.AwaitingRetry, true, "resize"), result);
    }

    [Fact]
    public async Task UniqueKey_TwiceInOneBatch_SecondCoalescesWithFirst()
    {
        var first = NewJob(uniqueKey: "k");
        var second = NewJob(uniqueKey: "k");
        var plain = NewJob();

        var results = await Store.JobInsertManyAsync(new JobInsertManyParams([first, second, plain], T0), Ct);

        Assert.Equal(new JobInsertResult(first.Id, JobState.Queued, false, "resize"), results[0]);
        Assert.Equal(new JobInsertResult(first.Id, JobState.Queued, true, "resize"), results[1]);
        Assert.False(results[2].Coalesced);
        Assert.Null(await Store.JobGetAsync(new JobGetParams(second.Id), Ct));
    }

    // ---- automatic unique keys: held in every state until the row is purged ----

    /// <summary>An automatic key as the client SDK makes it.</summary>
    protected static string AutoKey() => UniqueKeys.AutomaticPrefix + Guid.NewGuid().ToString("N");

    /// <summary>Ends the only queued <c>resize</c> job the given way.</summary>
    protected async Task EndAsync(JobState end, string id)
    {
        switch (end)
        {
            case JobState.Succeeded:
                await ReportAsync(Succeed(await LeaseOneAsync()));
                break;
            case JobState.Dead:
                await ReportAsync(Fail(await LeaseOneAsync(), retry: false));
                break;
            case JobState.Cancelled:
                await Store.JobCancelAsync(new JobCancelParams(id, null, T0), Ct);
                break;
            default:
                throw new ArgumentOutOfRangeException(nameof(end), end, "Not an end.");
        }
        Assert.Equal(end, (await GetAsync(id)).State);
    }

    [Theory]
    [InlineData(JobState.Succeeded)]
    [InlineData(JobState.Dead)]
    [InlineData(JobState.Cancelled)]
    public async Task AutoKey_AfterTheFirstFinished_AttachesToItAndChangesNothing(JobState end)
    {
        var key = AutoKey();
        var first = NewJob(uniqueKey: key);
        await InsertAsync(first);
        await EndAsync(end, first.Id);
        var before = await GetAsync(first.Id);

        var resend = NewJob(uniqueKey: key);
        var result = await InsertAsync(resend, T0.AddMinutes(5));

        Assert.Equal(new JobInsertResult(first.Id, end, true, "resize"), result);
        Assert.Null(await Store.JobGetAsync(new JobGetParams(resend.Id), Ct));
        Assert.Equal(before, await GetAsync(first.Id));
        Assert.Empty(await LeaseAsync(["resize"], 10, now: T0.AddMinutes(5)));
    }

    [Fact]
    public async Task AutoKey_WhileUnfinished_AttachesAsAnyKeyDoes()
    {
        var key = AutoKey();
        var first = NewJob(uniqueKey: key);
        await InsertAsync(first);
        Assert.Equal(new JobInsertResult(first.Id, JobState.Queued, true, "resize"), await InsertAsync(NewJob(uniqueKey: key)));
        await LeaseOneAsync();
        Assert.Equal(new JobInsertResult(first.Id, JobState.Running, true, "resize"), await InsertAsync(NewJob(uniqueKey: key)));
    }

    [Theory]
    [InlineData(JobState.Succeeded)]
    [InlineData(JobState.Dead)]
    [InlineData(JobState.Cancelled)]
    public async Task CallersKey_AfterTheFirstFinished_MakesANewJob(JobState end)
    {
        var first = NewJob(uniqueKey: "report-7");
        await InsertAsync(first);
        await EndAsync(end, first.Id);

        var again = NewJob(uniqueKey: "report-7");
        Assert.Equal(new JobInsertResult(again.Id, JobState.Queued, false, "resize"), await InsertAsync(again));
        Assert.Equal(end, (await GetAsync(first.Id)).State);
    }

    [Theory]
    // Only the exact, case-sensitive prefix makes a key automatic.
    [InlineData("DTS-AUTO:0123456789abcdef")]
    [InlineData("dts-auto0123456789abcdef")]
    [InlineData("xdts-auto:0123456789abcdef")]
    [InlineData("dts-auto")]
    public async Task KeyLikeButNotAutomatic_IsFreeAgainAfterFinish(string key)
    {
        var first = NewJob(uniqueKey: key);
        await InsertAsync(first);
        Assert.True((await InsertAsync(NewJob(uniqueKey: key))).Coalesced);
        await EndAsync(JobState.Succeeded, first.Id);

        var again = NewJob(uniqueKey: key);
        Assert.False((await InsertAsync(again)).Coalesced);
        Assert.Equal(JobState.Queued, (await GetAsync(again.Id)).State);
    }

    [Fact]
    public async Task AutoKey_TwiceInOneBatch_MakesOneJob()
    {
        var key = AutoKey();
        var first = NewJob(uniqueKey: key);
        var second = NewJob(uniqueKey: key);

        var results = await Store.JobInsertManyAsync(new JobInsertManyParams([first, second], T0), Ct);

        Assert.Equal(new JobInsertResult(first.Id, JobState.Queued, false, "resize"), results[0]);
        Assert.Equal(new JobInsertResult(first.Id, JobState.Queued, true, "resize"), results[1]);
        Assert.Null(await Store.JobGetAsync(new JobGetParams(second.Id), Ct));
        Assert.Single(await LeaseAsync(["resize"], 10));
    }

    [Fact]
    public async Task AutoKey_InABatchBesideNewJobs_AttachesToTheFinishedJob()
    {
        var key = AutoKey();
        var first = NewJob(uniqueKey: key);
        await InsertAsync(first);
        await EndAsync(JobState.Succeeded, first.Id);

        var fresh = NewJob(uniqueKey: AutoKey());
        var resend = NewJob(uniqueKey: key);
        var plain = NewJob();
        var results = await Store.JobInsertManyAsync(new JobInsertManyParams([fresh, resend, plain], T0), Ct);

        Assert.Equal(new JobInsertResult(fresh.Id, JobState.Queued, false, "resize"), results[0]);
        Assert.Equal(new JobInsertResult(first.Id, JobState.Succeeded, true, "resize"), results[1]);
        Assert.Equal(new JobInsertResult(plain.Id, JobState.Queued, false, "resize"), results[2]);
        Assert.Null(await Store.JobGetAsync(new JobGetParams(resend.Id), Ct));
    }

    [Fact]
    public async Task AutoKey_OtherOwnerOrFunction_MakesItsOwnJob_EvenAfterTheFirstFinished()
    {
        var key = AutoKey();
        var mine = NewJob(owner: "alice", uniqueKey: key);
        await InsertAsync(mine);
        await EndAsync(JobState.Succeeded, mine.Id);

        var theirs = NewJob(owner: "bob", uniqueKey: key);
        Assert.Equal(new JobInsertResult(theirs.Id, JobState.Queued, false, "resize"), await InsertAsync(theirs));
        var other = NewJob(function: "mail", uniqueKey: key);
        Assert.Equal(new JobInsertResult(other.Id, JobState.Queued, false, "mail"), await InsertAsync(other));
        Assert.Equal(JobState.Succeeded, (await GetAsync(mine.Id)).State);
    }

    [Fact]
    public async Task Insert_IdTaken_IsRefusedWhateverTheKey_AndStoresNothing()
    {
        var first = NewJob();
        await InsertAsync(first);
        foreach (var key in new[] { null, "callers", AutoKey() })
        {
            var clash = NewJob(function: "mail", uniqueKey: key) with { Id = first.Id };
            var e = await Assert.ThrowsAsync<InvalidOperationException>(() => InsertAsync(clash));
            Assert.Contains("exists already", e.Message, StringComparison.Ordinal);
        }
        Assert.Equal("resize", (await GetAsync(first.Id)).Function);
        Assert.Empty(await LeaseAsync(["mail"], 10));
    }

    // ---- scheduling ----

    [Fact]
    public async Task Scheduled_IsNotLeasedUntilPromoted()
    {
        var job = NewJob(runAt: T0.AddSeconds(10));
        await InsertAsync(job);

        Assert.Empty(await LeaseAsync(["resize"], 10, now: T0.AddSeconds(20)));

        var early = await Store.JobPromoteDueAsync(new JobPromoteDueParams(T0.AddSeconds(9), 100), Ct);
        Assert.Equal(0, early.Promoted);
        Assert.Equal(T0.AddSeconds(10), early.NextDueAt);
        Assert.Empty(await LeaseAsync(["resize"], 10, now: T0.AddSeconds(20)));

        var due = await Store.JobPromoteDueAsync(new JobPromoteDueParams(T0.AddSeconds(10), 100), Ct);
        Assert.Equal(1, due.Promoted);
        Assert.Equal(["resize"], due.Functions);
        Assert.Null(due.NextDueAt);
        Assert.Equal(job.Id, (await LeaseOneAsync(now: T0.AddSeconds(10))).Id);
    }

    [Fact]
    public async Task PromoteDue_ReportsDistinctFunctionsAndTheNextFutureRunAt()
    {
        await InsertAsync(NewJob(function: "a", runAt: T0.AddSeconds(1)));
        await InsertAsync(NewJob(function: "a", runAt: T0.AddSeconds(2)));
        await InsertAsync(NewJob(function: "b", runAt: T0.AddSeconds(3)));
        await InsertAsync(NewJob(function: "c", runAt: T0.AddSeconds(60)));
        await InsertAsync(NewJob(function: "c", runAt: T0.AddSeconds(30)));

        var result = await Store.JobPromoteDueAsync(new JobPromoteDueParams(T0.AddSeconds(5), 100), Ct);

        Assert.Equal(3, result.Promoted);
        Assert.Equal(["a", "b"], result.Functions.Order());
        Assert.Equal(T0.AddSeconds(30), result.NextDueAt);
    }

    [Fact]
    public async Task PromoteDue_PromotesAtMostLimit_EarliestFirst()
    {
        var jobs = Enumerable.Range(1, 5).Select(i => NewJob(runAt: T0.AddSeconds(6 - i))).ToList();
        foreach (var job in jobs) await InsertAsync(job);

        var result = await Store.JobPromoteDueAsync(new JobPromoteDueParams(T0.AddSeconds(10), 2), Ct);

        Assert.Equal(2, result.Promoted);
        Assert.Equal(JobState.Queued, (await GetAsync(jobs[4].Id)).State);
        Assert.Equal(JobState.Queued, (await GetAsync(jobs[3].Id)).State);
        Assert.Equal(JobState.Scheduled, (await GetAsync(jobs[0].Id)).State);
    }

    [Fact]
    public async Task PromoteDue_NothingScheduled_ReturnsNoNextDue()
    {
        var result = await Store.JobPromoteDueAsync(new JobPromoteDueParams(T0, 100), Ct);
        Assert.Equal(0, result.Promoted);
        Assert.Empty(result.Functions);
        Assert.Null(result.NextDueAt);
    }

    // ---- reports ----

    [Fact]
    public async Task Report_StaleToken_IsRefusedAndChangesNothing()
    {
        await InsertAsync(NewJob());
        var leased = await LeaseOneAsync();
        var wrong = leased.LeaseToken + "x";

        foreach (var kind in Enum.GetValues<JobReportKind>())
        {
            var result = await ReportAsync(new JobReportItem
            {
                JobId = leased.Id, LeaseToken = wrong, Kind = kind, ResultJson = "1", ErrorCode = "e", ProgressNumerator = 1,
            }, T0.AddSeconds(1));
            Assert.Equal(JobReportStatus.StaleLease, result.Status);
        }
        Assert.Equal(leased, await GetAsync(leased.Id));
    }

    [Fact]
    public async Task Report_TokenOfAnEarlierLease_IsRefused()
    {
        await InsertAsync(NewJob());
        var first = await LeaseOneAsync();
        await Store.JobRescueExpiredAsync(new JobRescueExpiredParams(T0 + LeaseTime + TimeSpan.FromSeconds(1), 100), Ct);
        var second = await LeaseOneAsync(worker: "worker-2", now: T0.AddMinutes(1));

        Assert.Equal(JobReportStatus.StaleLease, (await ReportAsync(Succeed(first))).Status);
        Assert.Equal(JobReportStatus.Ok, (await ReportAsync(Succeed(second))).Status);
    }

    [Fact]
    public async Task Report_FinishedJob_IsStale()
    {
        await InsertAsync(NewJob());
        var leased = await LeaseOneAsync();
        await ReportAsync(Succeed(leased));
        var again = await ReportAsync(Fail(leased));
        Assert.Equal(JobReportStatus.StaleLease, again.Status);
        Assert.Equal(JobState.Succeeded, (await GetAsync(leased.Id)).State);
    }

    [Fact]
    public async Task Report_UnknownJob_IsNotFound()
    {
        var result = await ReportAsync(new JobReportItem { JobId = JobIds.New(T0), LeaseToken = "t", Kind = JobReportKind.Succeed });
        Assert.Equal(JobReportStatus.NotFound, result.Status);
    }

    [Fact]
    public async Task Report_Progress_IsStoredAndJobKeepsRunning()
    {
        await InsertAsync(NewJob());
        var leased = await LeaseOneAsync();

        var result = await ReportAsync(new JobReportItem
        {
            JobId = leased.Id, LeaseToken = leased.LeaseToken!, Kind = JobReportKind.Progress,
            ProgressNumerator = 3, ProgressDenominator = 10,
        }, T0.AddSeconds(2));

        Assert.Equal(new JobReportResult(leased.Id, JobReportStatus.Ok, JobState.Running, "alice", "resize"), result);
        var stored = await GetAsync(leased.Id);
        Assert.Equal(3, stored.ProgressNumerator);
        Assert.Equal(10, stored.ProgressDenominator);
        Assert.Equal(JobState.Running, stored.State);
        Assert.Equal(leased.LeaseToken, stored.LeaseToken);
        Assert.Equal(T0.AddSeconds(2), stored.UpdatedAt);
    }

    [Fact]
    public async Task Report_ManyItems_EachGetsItsOwnOutcome()
    {
        await Store.JobInsertManyAsync(new JobInsertManyParams([NewJob(), NewJob()], T0), Ct);
        var leased = await LeaseAsync(["resize"], 2);

        var results = await Store.JobReportManyAsync(new JobReportManyParams(
            [Succeed(leased[0]), Succeed(leased[1]) with { LeaseToken = "stale" }, Succeed(leased[0])], T0, FixedPolicy), Ct);

        Assert.Equal([JobReportStatus.Ok, JobReportStatus.StaleLease, JobReportStatus.StaleLease], results.Select(r => r.Status));
        Assert.Equal(JobState.Succeeded, (await GetAsync(leased[0].Id)).State);
        Assert.Equal(JobState.Running, (await GetAsync(leased[1].Id)).State);
    }

    [Fact]
    public async Task Succeed_StoresResultAndMakesItPending()
    {
        await InsertAsync(NewJob(retention: TimeSpan.FromHours(2)));
        var leased = await LeaseOneAsync();
        var now = T0.AddSeconds(4);

        var result = await ReportAsync(Succeed(leased, "{\"answer\":42}"), now);

        Assert.Equal(new JobReportResult(leased.Id, JobReportStatus.Ok, JobState.Succeeded, "alice", "resize"), result);
        var stored = await GetAsync(leased.Id);
        Assert.Equal(JobState.Succeeded, stored.State);
        Assert.Equal("{\"answer\":42}", stored.ResultJson);
        Assert.Equal(now, stored.FinishedAt);
        Assert.True(stored.ResultPending);
        Assert.Null(stored.LeaseToken);
        Assert.Null(stored.LeaseExpiresAt);
    }

    [Fact]
    public async Task Results_VisibleToOwnerOnly_AndAckRemovesThem()
    {
        var mine = NewJob(owner: "alice");
        var theirs = NewJob(owner: "bob");
        await Store.JobInsertManyAsync(new JobInsertManyParams([mine, theirs], T0), Ct);
        foreach (var job in await LeaseAsync(["resize"], 2)) await ReportAsync(Succeed(job));

        var alice = await Store.JobResultsGetAsync(new JobResultsGetParams("alice", 100), Ct);
        Assert.Equal([mine.Id], Ids(alice));
        Assert.Equal([theirs.Id], Ids(await Store.JobResultsGetAsync(new JobResultsGetParams("bob", 100), Ct)));
        Assert.Empty(await Store.JobResultsGetAsync(new JobResultsGetParams("carol", 100), Ct));

        Assert.Equal(0, await Store.JobResultsAckAsync(new JobResultsAckParams("alice", [theirs.Id, JobIds.New(T0)]), Ct));
        Assert.Equal([theirs.Id], Ids(await Store.JobResultsGetAsync(new JobResultsGetParams("bob", 100), Ct)));

        Assert.Equal(1, await Store.JobResultsAckAsync(new JobResultsAckParams("alice", [mine.Id]), Ct));
        Assert.Empty(await Store.JobResultsGetAsync(new JobResultsGetParams("alice", 100), Ct));
        Assert.False((await GetAsync(mine.Id)).ResultPending);
        Assert.Equal(0, await Store.JobResultsAckAsync(new JobResultsAckParams("alice", [mine.Id]), Ct));
    }

    [Fact]
    public async Task Results_OldestFinishFirst_AtMostMax()
    {
        var jobs = Enumerable.Range(0, 4).Select(_ => NewJob()).ToList();
        await Store.JobInsertManyAsync(new JobInsertManyParams(jobs, T0), Ct);
        var leased = await LeaseAsync(["resize"], 4);
        // Finish in reverse insertion order, so finish time and insertion order disagree.
        for (var i = 3; i >= 0; i--) await ReportAsync(Succeed(leased[i]), T0.AddSeconds(10 - i));

        var results = await Store.JobResultsGetAsync(new JobResultsGetParams("alice", 3), Ct);

        Assert.Equal([jobs[3].Id, jobs[2].Id, jobs[1].Id], Ids(results));
    }

    [Fact]
    public async Task Fail_WithAttemptsLeft_AwaitsRetryWithinThePolicyWindow()
    {
        await InsertAsync(NewJob(maxAttempts: 3));
        var leased = await LeaseOneAsync();
        var now = T0.AddSeconds(5);

        var result = await ReportAsync(Fail(leased), now);

        Assert.Equal(new JobReportResult(leased.Id, JobReportStatus.Ok, JobState.AwaitingRetry, "alice", "resize"), result);
        var stored = await GetAsync(leased.Id);
        Assert.Equal(JobState.AwaitingRetry, stored.State);
        // Attempt 1 with a 10 s base waits between 5 s and 10 s; the fixed jitter puts it at 7.5 s.
        Assert.Equal(now.AddSeconds(7.5), stored.RunAt);
        Assert.InRange(stored.RunAt, now.AddSeconds(5), now.AddSeconds(10));
        Assert.Equal("boom", stored.ErrorCode);
        Assert.Equal("It broke.", stored.ErrorMessage);
        Assert.Null(stored.LeaseToken);
        Assert.Null(stored.LeaseExpiresAt);
        Assert.False(stored.ResultPending);
        Assert.Null(stored.FinishedAt);
    }

    [Fact]
    public async Task Fail_ThenPromoted_IsLeasedAgainWithTheNextAttempt()
    {
        await InsertAsync(NewJob(maxAttempts: 3));
        var first = await LeaseOneAsync();
        await ReportAsync(Fail(first), T0);

        Assert.Empty(await LeaseAsync(["resize"], 1, now: T0.AddSeconds(7)));
        var promoted = await Store.JobPromoteDueAsync(new JobPromoteDueParams(T0.AddSeconds(7.5), 10), Ct);
        Assert.Equal(1, promoted.Promoted);

        var second = await LeaseOneAsync(now: T0.AddSeconds(8));
        Assert.Equal(first.Id, second.Id);
        Assert.Equal(2, second.Attempts);
        Assert.NotEqual(first.LeaseToken, second.LeaseToken);
        Assert.Equal(first.StartedAt, second.StartedAt);
    }

    [Fact]
    public async Task Fail_LastAttempt_IsDeadWithResultPending()
    {
        await InsertAsync(NewJob(maxAttempts: 1));
        var leased = await LeaseOneAsync();
        var now = T0.AddSeconds(3);

        var result = await ReportAsync(Fail(leased), now);

        Assert.Equal(JobState.Dead, result.State);
        Assert.Equal("alice", result.Owner);
        var stored = await GetAsync(leased.Id);
        Assert.Equal(JobState.Dead, stored.State);
        Assert.Equal(now, stored.FinishedAt);
        Assert.True(stored.ResultPending);
        Assert.Equal("boom", stored.ErrorCode);
        Assert.Equal("It broke.", stored.ErrorMessage);
        Assert.Null(stored.LeaseToken);
        Assert.Equal([leased.Id], Ids(await Store.JobResultsGetAsync(new JobResultsGetParams("alice", 10), Ct)));
    }

    [Fact]
    public async Task Fail_RetryFalse_IsDeadWhateverAttemptsRemain()
    {
        await InsertAsync(NewJob(maxAttempts: 10));
        var leased = await LeaseOneAsync();

        var result = await ReportAsync(Fail(leased, retry: false));

        Assert.Equal(JobState.Dead, result.State);
        Assert.Equal(JobState.Dead, (await GetAsync(leased.Id)).State);
    }

    // ---- cancel ----

    [Fact]
    public async Task Cancel_Queued_IsCancelledAndResultPending()
    {
        var job = NewJob();
        await InsertAsync(job);
        var now = T0.AddSeconds(1);

        var result = await Store.JobCancelAsync(new JobCancelParams(job.Id, "alice", now), Ct);

        Assert.Equal(JobCancelStatus.Cancelled, result.Status);
        Assert.Equal(JobState.Cancelled, result.Job!.State);
        var stored = await GetAsync(job.Id);
        Assert.Equal(JobState.Cancelled, stored.State);
        Assert.Equal(now, stored.FinishedAt);
        Assert.True(stored.ResultPending);
        Assert.Empty(await LeaseAsync(["resize"], 10));
    }

    [Fact]
    public async Task Cancel_ScheduledAndAwaitingRetry_AreCancelled()
    {
        var scheduled = NewJob(function: "later", runAt: T0.AddHours(1));
        await InsertAsync(scheduled);
        var retrying = NewJob();
        await InsertAsync(retrying);
        await ReportAsync(Fail(await LeaseOneAsync()));

        Assert.Equal(JobCancelStatus.Cancelled, (await Store.JobCancelAsync(new JobCancelParams(scheduled.Id, "alice", T0), Ct)).Status);
        Assert.Equal(JobCancelStatus.Cancelled, (await Store.JobCancelAsync(new JobCancelParams(retrying.Id, "alice", T0), Ct)).Status);
        var promoted = await Store.JobPromoteDueAsync(new JobPromoteDueParams(T0.AddDays(1), 100), Ct);
        Assert.Equal(0, promoted.Promoted);
    }

    [Fact]
    public async Task Cancel_Running_RequestsCancellationAndKeepsItRunning()
    {
        await InsertAsync(NewJob());
        var leased = await LeaseOneAsync();

        var result = await Store.JobCancelAsync(new JobCancelParams(leased.Id, "alice", T0.AddSeconds(1)), Ct);

        Assert.Equal(JobCancelStatus.CancelRequested, result.Status);
        var stored = await GetAsync(leased.Id);
        Assert.Equal(JobState.Running, stored.State);
        Assert.True(stored.CancelRequested);
        Assert.Equal(leased.LeaseToken, stored.LeaseToken);
    }

    [Fact]
    public async Task Cancel_RunningThenWorkerFails_EndsCancelledNotRetried()
    {
        await InsertAsync(NewJob(maxAttempts: 5));
        var leased = await LeaseOneAsync();
        await Store.JobCancelAsync(new JobCancelParams(leased.Id, null, T0), Ct);

        var result = await ReportAsync(Fail(leased), T0.AddSeconds(1));

        Assert.Equal(JobState.Cancelled, result.State);
        var stored = await GetAsync(leased.Id);
        Assert.Equal(JobState.Cancelled, stored.State);
        Assert.True(stored.ResultPending);
        Assert.Equal(T0.AddSeconds(1), stored.FinishedAt);
    }

    [Fact]
    public async Task Cancel_Finished_IsAlreadyFinished()
    {
        await InsertAsync(NewJob());
        var leased = await LeaseOneAsync();
        await ReportAsync(Succeed(leased));

        var result = await Store.JobCancelAsync(new JobCancelParams(leased.Id, "alice", T0), Ct);

        Assert.Equal(JobCancelStatus.AlreadyFinished, result.Status);
        Assert.Equal(JobState.Succeeded, (await GetAsync(leased.Id)).State);
    }

    [Fact]
    public async Task Cancel_OtherOwnersJob_IsNotFoundAndUntouched()
    {
        var job = NewJob(owner: "bob");
        await InsertAsync(job);

        var result = await Store.JobCancelAsync(new JobCancelParams(job.Id, "alice", T0), Ct);

        Assert.Equal(JobCancelStatus.NotFound, result.Status);
        Assert.Null(result.Job);
        Assert.Equal(JobState.Queued, (await GetAsync(job.Id)).State);
    }

    [Fact]
    public async Task Cancel_WithoutOwner_CancelsAnyonesJob()
    {
        var job = NewJob(owner: "bob");
        await InsertAsync(job);
        Assert.Equal(JobCancelStatus.Cancelled, (await Store.JobCancelAsync(new JobCancelParams(job.Id, null, T0), Ct)).Status);
    }

    [Fact]
    public async Task Cancel_UnknownJob_IsNotFound()
    {
        var result = await Store.JobCancelAsync(new JobCancelParams(JobIds.New(T0), null, T0), Ct);
        Assert.Equal(JobCancelStatus.NotFound, result.Status);
    }

    // ---- expired leases ----

    [Fact]
    public async Task RescueExpired_WithAttemptsLeft_RequeuesAndClearsTheLease()
    {
        await InsertAsync(NewJob(function: "a", maxAttempts: 2));
        await InsertAsync(NewJob(function: "b", maxAttempts: 2));
        var expiring = await LeaseOneAsync("a", now: T0);
        var fresh = await LeaseOneAsync("b", now: T0.AddSeconds(20));

        var result = await Store.JobRescueExpiredAsync(new JobRescueExpiredParams(T0 + LeaseTime + TimeSpan.FromSeconds(1), 100), Ct);

        Assert.Equal(1, result.Requeued);
        Assert.Equal(0, result.Dead);
        Assert.Equal(["a"], result.Functions);
        Assert.Empty(result.OwnersWithResults);
        var stored = await GetAsync(expiring.Id);
        Assert.Equal(JobState.Queued, stored.State);
        Assert.Null(stored.LeaseToken);
        Assert.Null(stored.LeaseExpiresAt);
        Assert.Null(stored.WorkerId);
        Assert.Equal(JobState.Running, (await GetAsync(fresh.Id)).State);
    }

    [Fact]
    public async Task RescueExpired_LeaseEndingExactlyNow_IsNotYetExpired()
    {
        await InsertAsync(NewJob());
        var leased = await LeaseOneAsync();
        var result = await Store.JobRescueExpiredAsync(new JobRescueExpiredParams(leased.LeaseExpiresAt!.Value, 100), Ct);
        Assert.Equal(0, result.Requeued + result.Dead);
    }

    [Fact]
    public async Task RescueExpired_LastAttempt_IsDeadWithLeaseExpiredError()
    {
        await InsertAsync(NewJob(owner: "carol", maxAttempts: 1));
        var leased = await LeaseOneAsync();
        var now = T0.AddMinutes(5);

        var result = await Store.JobRescueExpiredAsync(new JobRescueExpiredParams(now, 100), Ct);

        Assert.Equal(0, result.Requeued);
        Assert.Equal(1, result.Dead);
        Assert.Empty(result.Functions);
        Assert.Equal(["carol"], result.OwnersWithResults);
        var stored = await GetAsync(leased.Id);
        Assert.Equal(JobState.Dead, stored.State);
        Assert.Equal(JobTransitions.LeaseExpiredErrorCode, stored.ErrorCode);
        Assert.Equal(JobTransitions.LeaseExpiredMessage, stored.ErrorMessage);
        Assert.Equal(now, stored.FinishedAt);
        Assert.True(stored.ResultPending);
    }

    [Fact]
    public async Task RescueExpired_TakesAtMostLimit()
    {
        await Store.JobInsertManyAsync(new JobInsertManyParams(Enumerable.Range(0, 5).Select(_ => NewJob()).ToList(), T0), Ct);
        await LeaseAsync(["resize"], 5);

        var first = await Store.JobRescueExpiredAsync(new JobRescueExpiredParams(T0.AddHours(1), 3), Ct);
        var second = await Store.JobRescueExpiredAsync(new JobRescueExpiredParams(T0.AddHours(1), 3), Ct);

        Assert.Equal(3, first.Requeued);
        Assert.Equal(2, second.Requeued);
    }

    // ---- workers and heartbeats ----

    [Fact]
    public async Task Heartbeat_UnknownWorker_IsNotFound()
    {
        var result = await Store.WorkerHeartbeatAsync(new WorkerHeartbeatParams("nobody", ["x"], T0, T0.AddMinutes(1)), Ct);
        Assert.False(result.Found);
    }

    [Fact]
    public async Task Heartbeat_ExtendsTheWorkersLeasesOnly()
    {
        await RegisterAsync("worker-1");
        await RegisterAsync("worker-2");
        await Store.JobInsertManyAsync(new JobInsertManyParams([NewJob(), NewJob(), NewJob()], T0), Ct);
        var mine = await LeaseAsync(["resize"], 2, "worker-1");
        var theirs = await LeaseOneAsync(worker: "worker-2");
        var now = T0.AddSeconds(20);

        var result = await Store.WorkerHeartbeatAsync(
            new WorkerHeartbeatParams("worker-1", [.. Ids(mine)], now, now + LeaseTime), Ct);

        Assert.True(result.Found);
        Assert.Empty(result.Cancel);
        foreach (var job in mine) Assert.Equal(now + LeaseTime, (await GetAsync(job.Id)).LeaseExpiresAt);
        Assert.Equal(theirs.LeaseExpiresAt, (await GetAsync(theirs.Id)).LeaseExpiresAt);
        Assert.Equal(now, (await Store.WorkerGetAsync("worker-1", Ct))!.LastHeartbeatAt);

        var rescued = await Store.JobRescueExpiredAsync(new JobRescueExpiredParams(T0 + LeaseTime + TimeSpan.FromSeconds(1), 100), Ct);
        Assert.Equal(1, rescued.Requeued);
        Assert.Equal(JobState.Queued, (await GetAsync(theirs.Id)).State);
    }

    [Fact]
    public async Task Heartbeat_DoesNotExtendALeaseTheWorkerDoesNotList_SoItsLostLeaseAnswerExpires()
    {
        // A lease whose answer never reached the worker (a server died after the commit): the worker
        // does not know the job, so its heartbeats must not keep the job leased for ever.
        await RegisterAsync("worker-1");
        await Store.JobInsertManyAsync(new JobInsertManyParams([NewJob(), NewJob()], T0), Ct);
        var known = await LeaseOneAsync(worker: "worker-1");
        var orphan = await LeaseOneAsync(worker: "worker-1");
        var now = T0.AddSeconds(20);

        var result = await Store.WorkerHeartbeatAsync(new WorkerHeartbeatParams("worker-1", [known.Id], now, now + LeaseTime), Ct);

        Assert.True(result.Found);
        Assert.Empty(result.Cancel);
        Assert.Equal(now + LeaseTime, (await GetAsync(known.Id)).LeaseExpiresAt);
        Assert.Equal(orphan.LeaseExpiresAt, (await GetAsync(orphan.Id)).LeaseExpiresAt);
        var rescued = await Store.JobRescueExpiredAsync(new JobRescueExpiredParams(orphan.LeaseExpiresAt!.Value + TimeSpan.FromSeconds(1), 100), Ct);
        Assert.Equal(1, rescued.Requeued);
        Assert.Equal(JobState.Queued, (await GetAsync(orphan.Id)).State);
        Assert.Equal(JobState.Running, (await GetAsync(known.Id)).State);
    }

    [Fact]
    public async Task Heartbeat_ReturnsCancelForCancelledAndForeignJobs()
    {
        await RegisterAsync("worker-1");
        await RegisterAsync("worker-2");
        await Store.JobInsertManyAsync(new JobInsertManyParams([NewJob(), NewJob(), NewJob()], T0), Ct);
        var mine = await LeaseAsync(["resize"], 2, "worker-1");
        var (keep, cancelled) = (mine[0], mine[1]);
        var foreign = await LeaseOneAsync(worker: "worker-2");
        await Store.JobCancelAsync(new JobCancelParams(cancelled.Id, "alice", T0), Ct);
        var unknown = JobIds.New(T0);
        var now = T0.AddSeconds(10);

        var result = await Store.WorkerHeartbeatAsync(
            new WorkerHeartbeatParams("worker-1", [keep.Id, cancelled.Id, foreign.Id, unknown], now, now + LeaseTime), Ct);

        Assert.True(result.Found);
        Assert.Equal(new[] { cancelled.Id, foreign.Id, unknown }.Order(), result.Cancel.Order());
        // The foreign job's lease belongs to worker-2 and must not move.
        Assert.Equal(foreign.LeaseExpiresAt, (await GetAsync(foreign.Id)).LeaseExpiresAt);
        Assert.Equal(now + LeaseTime, (await GetAsync(cancelled.Id)).LeaseExpiresAt);
    }

    [Fact]
    public async Task Heartbeat_CancelRequestedJobIsListedEvenWhenTheWorkerForgotIt()
    {
        await RegisterAsync("worker-1");
        await InsertAsync(NewJob());
        var leased = await LeaseOneAsync(worker: "worker-1");
        await Store.JobCancelAsync(new JobCancelParams(leased.Id, null, T0), Ct);

        var result = await Store.WorkerHeartbeatAsync(new WorkerHeartbeatParams("worker-1", [], T0, T0 + LeaseTime), Ct);

        Assert.Equal([leased.Id], result.Cancel);
    }

    private Task RegisterAsync(string id) =>
        Store.WorkerUpsertAsync(new WorkerUpsertParams(id, "alice", $"{id}-host", ["resize"], 4, T0), Ct);

    [Fact]
    public async Task Worker_UpsertThenGet_RoundTripsAndReplaces()
    {
        Assert.Null(await Store.WorkerGetAsync("w", Ct));
        await Store.WorkerUpsertAsync(new WorkerUpsertParams("w", "alice", "host-a", ["resize", "crop"], 4, T0), Ct);

        var stored = await Store.WorkerGetAsync("w", Ct);
        Assert.NotNull(stored);
        Assert.Equal("alice", stored.Owner);
        Assert.Equal("host-a", stored.Name);
        Assert.Equal(["resize", "crop"], stored.Functions);
        Assert.Equal(4, stored.Concurrency);
        Assert.Equal(T0, stored.RegisteredAt);
        Assert.Equal(T0, stored.LastHeartbeatAt);

        await Store.WorkerUpsertAsync(new WorkerUpsertParams("w", "alice", "host-b", ["crop"], 8, T0.AddMinutes(1)), Ct);
        var replaced = await Store.WorkerGetAsync("w", Ct);
        Assert.Equal("host-b", replaced!.Name);
        Assert.Equal(["crop"], replaced.Functions);
        Assert.Equal(8, replaced.Concurrency);
        Assert.Equal(T0.AddMinutes(1), replaced.LastHeartbeatAt);
    }

    // ---- users ----

    [Fact]
    public async Task User_InsertGetCount_AndDuplicateNameIsRefused()
    {
        Assert.Equal(0, await Store.UserCountAsync(Ct));
        Assert.Null(await Store.UserGetAsync("alice", Ct));

        Assert.True(await Store.UserInsertAsync(new UserInsertParams("alice", "s3cret", [Roles.Client, Roles.Worker], T0), Ct));
        Assert.False(await Store.UserInsertAsync(new UserInsertParams("alice", "other", [Roles.Administrator], T0), Ct));
        Assert.True(await Store.UserInsertAsync(new UserInsertParams("bob", "pw", [], T0), Ct));

        var alice = await Store.UserGetAsync("alice", Ct);
        Assert.NotNull(alice);
        Assert.Equal("s3cret", alice.Secret);
        Assert.Equal([Roles.Client, Roles.Worker], alice.Roles);
        Assert.False(alice.Disabled);
        Assert.Equal(T0, alice.CreatedAt);
        Assert.Empty((await Store.UserGetAsync("bob", Ct))!.Roles);
        Assert.Equal(2, await Store.UserCountAsync(Ct));
    }

    // ---- durability and schema ----

    [Fact]
    public async Task Migrate_Twice_IsHarmless()
    {
        await InsertAsync(NewJob());
        await Store.MigrateAsync(Ct);
        Assert.Single(await LeaseAsync(["resize"], 10));
    }

    [Fact]
    public async Task Insert_Committed_SurvivesDisposeAndReopen()
    {
        var job = NewJob();
        await InsertAsync(job);
        await Store.JobCancelAsync(new JobCancelParams(job.Id, "alice", T0.AddSeconds(1)), Ct);
        await Store.UserInsertAsync(new UserInsertParams("alice", "pw", [Roles.Client], T0), Ct);

        await Store.DisposeAsync();
        var reopen = ReopenStoreAsync();
        if (reopen is null)
        {
            _store = null;
            Assert.Skip("This store cannot be reopened on the same storage.");
        }
        _store = await reopen;
        await Store.MigrateAsync(Ct);

        var stored = await GetAsync(job.Id);
        Assert.Equal(JobState.Cancelled, stored.State);
        Assert.Equal(job.ArgsJson, stored.ArgsJson);
        Assert.NotNull(await Store.UserGetAsync("alice", Ct));
    }

    [Fact]
    public async Task InsertNotDurable_IsReadableAtOnce_AndAfterFlushSurvivesDisposeAndReopen()
    {
        var job = NewJob();
        var inserted = Assert.Single(await Store.JobInsertManyAsync(new JobInsertManyParams([job], T0) { Durable = false }, Ct));
        Assert.Equal(job.Id, inserted.Id);
        Assert.Equal(JobState.Queued, (await GetAsync(job.Id)).State);

        await Store.FlushAsync(Ct);
        // A second flush with nothing new to flush returns too.
        await Store.FlushAsync(Ct);
        Assert.Equal(JobState.Queued, (await GetAsync(job.Id)).State);

        await Store.DisposeAsync();
        var reopen = ReopenStoreAsync();
        if (reopen is null)
        {
            _store = null;
            Assert.Skip("This store cannot be reopened on the same storage.");
        }
        _store = await reopen;
        await Store.MigrateAsync(Ct);
        Assert.Equal(job.ArgsJson, (await GetAsync(job.Id)).ArgsJson);
    }
}
