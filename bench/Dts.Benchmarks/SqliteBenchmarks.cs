using BenchmarkDotNet.Attributes;
using Dts.Contracts;
using Dts.Core;
using Dts.Core.Storage;
using Dts.Storage.Sqlite;

namespace Dts.Benchmarks;

/// <summary>A SQLite store in a temporary directory, with a registered worker.</summary>
public abstract class SqliteBenchmarkBase
{
    protected SqliteJobStore Store { get; private set; } = null!;
    private string _dir = "";

    [Params(SqliteSynchronous.Full, SqliteSynchronous.Normal)]
    public SqliteSynchronous Synchronous { get; set; }

    protected async Task OpenAsync()
    {
        _dir = Path.Combine(Path.GetTempPath(), $"dts-benchmarks-{Guid.NewGuid():N}");
        Directory.CreateDirectory(_dir);
        Store = new SqliteJobStore(new SqliteStoreOptions
        {
            Path = Path.Combine(_dir, "dts.db"), Synchronous = Synchronous,
            SecretCipher = new Dts.Core.Security.AesGcmSecretCipher(System.Security.Cryptography.RandomNumberGenerator.GetBytes(32)),
        });
        await Store.MigrateAsync(CancellationToken.None);
        await Store.WorkerUpsertAsync(new WorkerUpsertParams("bench-worker", "bench", "bench", ["bench.noop"], 1000, DateTimeOffset.UtcNow), CancellationToken.None);
    }

    protected static NewJob Job(DateTimeOffset now) => new()
    {
        Id = JobIds.New(now), Function = "bench.noop", Owner = "bench", ArgsJson = "[\"x\"]", KwargsJson = "{}",
        Priority = Priority.Normal, RunAt = now, MaxAttempts = 1, Retention = TimeSpan.FromDays(1),
    };

    protected Task InsertAsync(int count)
    {
        var now = DateTimeOffset.UtcNow;
        return Store.JobInsertManyAsync(new JobInsertManyParams(Enumerable.Range(0, count).Select(_ => Job(now)).ToList(), now), CancellationToken.None);
    }

    [GlobalCleanup]
    public async Task CleanupAsync()
    {
        await Store.DisposeAsync();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>The claim (lease) query and the completion of what it leased, on a queue kept about 100,000 deep.</summary>
[MemoryDiagnoser]
public class SqliteClaimBenchmarks : SqliteBenchmarkBase
{
    private const int QueueDepth = 100_000;

    [Params(1, 100)]
    public int Claim { get; set; }

    [GlobalSetup]
    public async Task SetupAsync()
    {
        await OpenAsync();
        for (var i = 0; i < QueueDepth; i += 500) await InsertAsync(500);
    }

    [Benchmark]
    public async Task<int> LeaseAndComplete()
    {
        var now = DateTimeOffset.UtcNow;
        var leased = await Store.JobLeaseAsync(new JobLeaseParams("bench-worker", ["bench.noop"], Claim, now, TimeSpan.FromMinutes(5)), CancellationToken.None);
        var items = leased.Select(j => new JobReportItem { JobId = j.Id, LeaseToken = j.LeaseToken!, Kind = JobReportKind.Succeed, ResultJson = "0" }).ToList();
        if (items.Count > 0) await Store.JobReportManyAsync(new JobReportManyParams(items, now, RetryPolicy.Default), CancellationToken.None);
        // Put back as many as were taken, in one batch, so the queue stays as deep.
        if (items.Count > 0) await InsertAsync(items.Count);
        return items.Count;
    }
}

/// <summary>
/// Group commit: 64 single-job inserts issued together share commits, against the same 64 issued one
/// after another (each its own commit, so its own fsync with synchronous=Full).
/// </summary>
public class SqliteGroupCommitBenchmarks : SqliteBenchmarkBase
{
    private const int Writers = 64;

    [GlobalSetup]
    public Task SetupAsync() => OpenAsync();

    [Benchmark(OperationsPerInvoke = Writers)]
    public Task Concurrent64() => Task.WhenAll(Enumerable.Range(0, Writers).Select(_ => InsertAsync(1)));

    [Benchmark(Baseline = true, OperationsPerInvoke = Writers)]
    public async Task Sequential64()
    {
        for (var i = 0; i < Writers; i++) await InsertAsync(1);
    }
}
