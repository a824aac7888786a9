using Dts.Contracts;
using Dts.Core;
using Dts.Core.Storage;

namespace Dts.Testing.StorageContract;

/// <summary>The job_logs table: who may append, the per-job cap, reading in order, deletion with the job.</summary>
public abstract class JobLogStoreContract : FreshStoreTest
{
    private static readonly DateTimeOffset T0 = DateTimeOffset.FromUnixTimeMilliseconds(1_800_000_000_000);


    private async Task<JobRecord> LeasedJobAsync(string function, string worker = "w1", int maxAttempts = 3)
    {
        var job = new NewJob
        {
            Id = JobIds.New(T0),
            Function = function,
            Owner = "alice",
            ArgsJson = "[]",
            KwargsJson = "{}",
            Priority = default,
            RunAt = T0,
            MaxAttempts = maxAttempts,
            Retention = TimeSpan.FromDays(1),
        };
        await _store.JobInsertManyAsync(new JobInsertManyParams([job], T0), Ct);
        return Assert.Single(await _store.JobLeaseAsync(new JobLeaseParams(worker, [function], 1, T0, TimeSpan.FromSeconds(15)), Ct));
    }

    private Task<JobLogAppendResult> AppendAsync(JobRecord job, string worker, long maxLines, long maxBytes, params string[] texts) =>
        _store.JobLogAppendAsync(new JobLogAppendParams(worker, [.. texts.Select(t => new NewLogLine(job.Id, job.LeaseToken!, T0, LogStreams.Log, t))], maxLines, maxBytes), Ct);

    private Task<IReadOnlyList<JobLogLine>> ReadAsync(string jobId, long after = 0) =>
        _store.JobLogReadAsync(new JobLogReadParams(jobId, after, 100), Ct);

    [Fact]
    public async Task Append_NumbersLinesPerJob_AcrossCalls()
    {
        var a = await LeasedJobAsync("a");
        var b = await LeasedJobAsync("b");
        await AppendAsync(a, "w1", 100, 1 << 20, "a1", "a2");
        await AppendAsync(b, "w1", 100, 1 << 20, "b1");
        var r = await AppendAsync(a, "w1", 100, 1 << 20, "a3");

        Assert.Equal([a.Id], r.JobsWithNewLines);
        Assert.Equal([(1L, "a1"), (2L, "a2"), (3L, "a3")], (await ReadAsync(a.Id)).Select(l => (l.Seq, l.Text)));
        Assert.Equal(["a3"], (await ReadAsync(a.Id, after: 2)).Select(l => l.Text));
        Assert.Equal(["b1"], (await ReadAsync(b.Id)).Select(l => l.Text));
    }

    [Fact]
    public async Task Append_RefusesAStaleToken_AndAnotherWorkersFinishedJob()
    {
        var job = await LeasedJobAsync("s");
        var stale = await _store.JobLogAppendAsync(new JobLogAppendParams("w1", [new NewLogLine(job.Id, "other-token", T0, LogStreams.Log, "x")], 100, 1 << 20), Ct);
        Assert.Equal([job.Id], stale.RefusedJobs);

        await _store.JobReportManyAsync(new JobReportManyParams([new JobReportItem { JobId = job.Id, LeaseToken = job.LeaseToken!, Kind = JobReportKind.Succeed, ResultJson = "1" }], T0, RetryPolicy.Default), Ct);
        Assert.Equal([job.Id], (await AppendAsync(job, "w2", 100, 1 << 20, "not mine")).RefusedJobs);
        Assert.Equal(1, (await AppendAsync(job, "w1", 100, 1 << 20, "my tail")).Stored);
        Assert.Equal(["my tail"], (await ReadAsync(job.Id)).Select(l => l.Text));
    }

    [Fact]
    public async Task Append_PastTheByteCap_WritesOneNote_ThenDrops()
    {
        var job = await LeasedJobAsync("c");
        var r = await AppendAsync(job, "w1", 100, 10, "12345", "67890", "next");
        Assert.Equal(3, r.Stored);
        Assert.Equal(1, r.Dropped);
        var again = await AppendAsync(job, "w1", 100, 10, "more");
        Assert.Equal(0, again.Stored);
        Assert.Equal(1, again.Dropped);

        var lines = await ReadAsync(job.Id);
        Assert.Equal(["12345", "67890"], lines.Take(2).Select(l => l.Text));
        Assert.Equal(LogStreams.Server, lines[2].Stream);
        Assert.StartsWith("log cut", lines[2].Text, StringComparison.Ordinal);
        Assert.Equal(3, lines.Count);
    }

    [Fact]
    public async Task PurgingAJob_DeletesItsLines()
    {
        var job = await LeasedJobAsync("p");
        await AppendAsync(job, "w1", 100, 1 << 20, "x", "y");
        await _store.JobReportManyAsync(new JobReportManyParams([new JobReportItem { JobId = job.Id, LeaseToken = job.LeaseToken!, Kind = JobReportKind.Succeed, ResultJson = "1" }], T0, RetryPolicy.Default), Ct);
        Assert.Equal(1, await _store.JobPurgeAsync(new JobPurgeParams([JobState.Succeeded], "p", null, null), Ct));
        Assert.Empty(await ReadAsync(job.Id));
    }

    [Fact]
    public async Task Rescue_NamesTheJobsItMadeDead()
    {
        var job = await LeasedJobAsync("d", maxAttempts: 1);
        var result = await _store.JobRescueExpiredAsync(new JobRescueExpiredParams(T0 + TimeSpan.FromMinutes(1), 100), Ct);
        Assert.Equal(1, result.Dead);
        var dead = Assert.Single(result.DeadJobs);
        Assert.Equal((job.Id, "d", "alice"), (dead.Id, dead.Function, dead.Owner));
        Assert.Equal((JobTransitions.LeaseExpiredErrorCode, JobTransitions.LeaseExpiredMessage), (dead.ErrorCode, dead.ErrorMessage));
    }
}
