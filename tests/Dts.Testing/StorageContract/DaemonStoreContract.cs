using Dts.Contracts;
using Dts.Core;
using Dts.Core.Storage;

namespace Dts.Testing.StorageContract;

/// <summary>The daemons' store operations: cron firing, lost workers, timeouts, the porter.</summary>
public abstract class DaemonStoreContract : FreshStoreTest
{
    private static readonly DateTimeOffset T0 = DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000);
    private static readonly TimeSpan Lease = TimeSpan.FromSeconds(15);


    private static NewJob Job(string function = "f", string? key = null, TimeSpan? timeout = null, TimeSpan? retention = null, int maxAttempts = 3) =>
        TestJobs.New(T0, function, key, timeout, retention, maxAttempts);

    private async Task<JobRecord> LeaseAsync(string worker, DateTimeOffset at) =>
        Assert.Single(await _store.JobLeaseAsync(new JobLeaseParams(worker, ["f"], 1, at, Lease), Ct));

    [Fact]
    public async Task ScheduleFire_IsACompareAndSet_SoATickFiresOnce()
    {
        var tick = T0 + TimeSpan.FromMinutes(1);
        Assert.True(await _store.ScheduleInsertAsync(new ScheduleRecord
        {
            Id = "s1", Owner = "alice", Function = "f", TemplateJson = """{"function":"f"}""", Cron = "* * * * *", TimeZone = "UTC",
            NextFireAt = tick, CreatedAt = T0, UpdatedAt = T0,
        }, Ct));
        var fire = new ScheduleFireParams("s1", tick, tick, tick + TimeSpan.FromMinutes(1), Job(key: "schedule:s1:1"), tick);

        var first = await _store.ScheduleFireAsync(fire, Ct);
        var again = await _store.ScheduleFireAsync(fire with { Job = Job(key: "schedule:s1:1") }, Ct);

        Assert.True(first.Fired);
        Assert.False(again.Fired);
        var schedule = await _store.ScheduleGetAsync(new ScheduleGetParams("s1", "alice"), Ct);
        Assert.Equal(tick + TimeSpan.FromMinutes(1), schedule!.NextFireAt);
        Assert.Equal(first.Job!.Id, schedule.LastJobId);
        Assert.Null(await _store.ScheduleGetAsync(new ScheduleGetParams("s1", "bob"), Ct));
        Assert.Empty((await _store.ScheduleDueAsync(new ScheduleDueParams(tick, 10), Ct)).Due);
    }

    [Fact]
    public async Task WorkerMarkLost_ReleasesItsJobsOnce_AndRecordsAnEvent()
    {
        await _store.WorkerUpsertAsync(new WorkerUpsertParams("w1", "w", "host/1", ["f"], 2, T0), Ct);
        await _store.JobInsertManyAsync(new JobInsertManyParams([Job(), Job(maxAttempts: 1)], T0), Ct);
        await _store.JobLeaseAsync(new JobLeaseParams("w1", ["f"], 2, T0, Lease), Ct);

        var now = T0 + TimeSpan.FromSeconds(16);
        var lost = await _store.WorkerMarkLostAsync(new WorkerMarkLostParams(now - Lease, now, 10), Ct);
        var twice = await _store.WorkerMarkLostAsync(new WorkerMarkLostParams(now - Lease, now, 10), Ct);

        Assert.Equal("w1", Assert.Single(lost.Lost).Id);
        Assert.Equal((1, 1), (lost.Requeued, lost.Dead));
        Assert.Empty(twice.Lost);
        Assert.Equal("lost", Assert.Single(await _store.WorkerEventListAsync(new WorkerEventListParams("w1", 10), Ct)).Kind);
    }

    [Fact]
    public async Task WorkerMarkLost_NamesTheReleasedJobsThatBecameDead()
    {
        await _store.WorkerUpsertAsync(new WorkerUpsertParams("w1", "w", "host/1", ["f"], 2, T0), Ct);
        var last = Job(maxAttempts: 1);
        await _store.JobInsertManyAsync(new JobInsertManyParams([Job(), last], T0), Ct);
        await _store.JobLeaseAsync(new JobLeaseParams("w1", ["f"], 2, T0, Lease), Ct);

        var now = T0 + TimeSpan.FromSeconds(16);
        var lost = await _store.WorkerMarkLostAsync(new WorkerMarkLostParams(now - Lease, now, 10), Ct);

        // Only the job with no attempt left is named; the other one went back to the queue.
        var dead = Assert.Single(lost.DeadJobs);
        Assert.Equal((last.Id, "f", "alice"), (dead.Id, dead.Function, dead.Owner));
        Assert.Equal((JobTransitions.LeaseExpiredErrorCode, JobTransitions.LeaseExpiredMessage), (dead.ErrorCode, dead.ErrorMessage));
        Assert.Equal(JobState.Dead, (await _store.JobGetAsync(new JobGetParams(last.Id), Ct))!.State);
    }

    [Fact]
    public async Task TimeoutExpired_NamesTheJobsItMadeDead()
    {
        var last = Job(timeout: TimeSpan.FromSeconds(10), maxAttempts: 1);
        await _store.JobInsertManyAsync(new JobInsertManyParams([last], T0), Ct);
        await LeaseAsync("w1", T0);

        var result = await _store.JobTimeoutExpiredAsync(new JobTimeoutExpiredParams(T0 + TimeSpan.FromSeconds(16), TimeSpan.FromSeconds(5), 10, RetryPolicy.Default), Ct);

        Assert.Equal(1, result.Dead);
        var dead = Assert.Single(result.DeadJobs);
        Assert.Equal((last.Id, "f", "alice", "timeout"), (dead.Id, dead.Function, dead.Owner, dead.ErrorCode));
        Assert.Equal(JobState.Dead, (await _store.JobGetAsync(new JobGetParams(last.Id), Ct))!.State);
    }

    [Fact]
    public async Task TimeoutExpired_FailsOnlyJobsPastTheirDeadlinePlusGrace()
    {
        await _store.JobInsertManyAsync(new JobInsertManyParams([Job(timeout: TimeSpan.FromSeconds(10))], T0), Ct);
        var job = await LeaseAsync("w1", T0);
        var grace = TimeSpan.FromSeconds(5);

        var early = await _store.JobTimeoutExpiredAsync(new JobTimeoutExpiredParams(T0 + TimeSpan.FromSeconds(14), grace, 10, RetryPolicy.Default), Ct);
        var late = await _store.JobTimeoutExpiredAsync(new JobTimeoutExpiredParams(T0 + TimeSpan.FromSeconds(16), grace, 10, RetryPolicy.Default), Ct);

        Assert.Equal(0, early.Requeued);
        Assert.Equal(1, late.Requeued);
        var after = await _store.JobGetAsync(new JobGetParams(job.Id), Ct);
        Assert.Equal(JobState.AwaitingRetry, after!.State);
        Assert.Equal("timeout", after.ErrorCode);
        Assert.Null(after.LeaseToken);
    }

    [Fact]
    public async Task PorterPurge_DeletesInBatches_ExpiredAndAcknowledgedOnly()
    {
        var jobs = Enumerable.Range(0, 5).Select(_ => Job(retention: TimeSpan.FromSeconds(60))).Append(Job(retention: TimeSpan.FromDays(1))).ToList();
        await _store.JobInsertManyAsync(new JobInsertManyParams(jobs, T0), Ct);
        var leased = await _store.JobLeaseAsync(new JobLeaseParams("w1", ["f"], 10, T0, Lease), Ct);
        await _store.JobReportManyAsync(new JobReportManyParams(
            [.. leased.Select(j => new JobReportItem { JobId = j.Id, LeaseToken = j.LeaseToken!, Kind = JobReportKind.Succeed, ResultJson = "1" })], T0, RetryPolicy.Default), Ct);

        var later = T0 + TimeSpan.FromSeconds(61);
        var grace = TimeSpan.FromHours(1);
        Assert.Equal(2, await _store.JobPorterPurgeAsync(new JobPorterPurgeParams(later, grace, 2), Ct));
        Assert.Equal(2, await _store.JobPorterPurgeAsync(new JobPorterPurgeParams(later, grace, 2), Ct));
        Assert.Equal(1, await _store.JobPorterPurgeAsync(new JobPorterPurgeParams(later, grace, 2), Ct));
        // The long-retention result waits for its owner ...
        Assert.Equal(0, await _store.JobPorterPurgeAsync(new JobPorterPurgeParams(later, grace, 2), Ct));
        // ... and goes an hour after it is acknowledged.
        await _store.JobResultsAckAsync(new JobResultsAckParams("alice", [jobs[^1].Id]), Ct);
        Assert.Equal(1, await _store.JobPorterPurgeAsync(new JobPorterPurgeParams(T0 + grace + TimeSpan.FromSeconds(1), grace, 2), Ct));
    }

    [Fact]
    public async Task PorterPurge_FreesTheAutomaticKeyOfThePurgedJob_AndOnlyThen()
    {
        var key = UniqueKeys.AutomaticPrefix + "00000000000000000000000000000abc";
        var first = Job(key: key, retention: TimeSpan.FromSeconds(60));
        await _store.JobInsertManyAsync(new JobInsertManyParams([first], T0), Ct);
        var leased = await LeaseAsync("w1", T0);
        await _store.JobReportManyAsync(new JobReportManyParams(
            [new JobReportItem { JobId = leased.Id, LeaseToken = leased.LeaseToken!, Kind = JobReportKind.Succeed, ResultJson = "1" }], T0, RetryPolicy.Default), Ct);

        // Finished, within its retention: a resend attaches to it.
        var early = await _store.JobInsertManyAsync(new JobInsertManyParams([Job(key: key)], T0 + TimeSpan.FromSeconds(30)), Ct);
        Assert.Equal(new JobInsertResult(first.Id, JobState.Succeeded, true, "f"), early.Single());

        Assert.Equal(1, await _store.JobPorterPurgeAsync(new JobPorterPurgeParams(T0 + TimeSpan.FromSeconds(61), TimeSpan.FromHours(1), 10), Ct));
        var late = Job(key: key);
        var result = await _store.JobInsertManyAsync(new JobInsertManyParams([late], T0 + TimeSpan.FromSeconds(62)), Ct);
        Assert.Equal(new JobInsertResult(late.Id, JobState.Queued, false, "f"), result.Single());
    }
}
