using System.Collections.Concurrent;
using System.Text.Json;
using Dts.Client;
using Dts.Contracts;
using Dts.Testing;

namespace Dts.EndToEnd.Tests;

[Trait("Category", "EndToEnd")]
public sealed class EndToEndTests : IDisposable
{
    private readonly TempDirectory _dir = new("dts-e2e");

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task ServerWorkerAndClient_AsProcesses_RunJobsToTheirResults()
    {
        var cluster = new Cluster(_dir);
        var (server, url) = await cluster.StartServerAsync();
        await using var _ = server;
        var clientSecret = await cluster.AddUserAsync("alice", "client");
        var workerSecret = await cluster.AddUserAsync("w", "worker");

        await using var worker = DtsProcess.Start(["worker", "--server", url, "--user", "w", "--secret", workerSecret, "--concurrency", "4",
            "--stdin", "text", "--function", "reverse=rev", "--function", "fail=echo oops >&2; exit 3"]);

        var conn = new[] { "--server", url, "--user", "alice", "--secret", clientSecret };
        await using (var submit = await DtsProcess.RunAsync(["client", "submit", .. conn, "--function", "reverse", "--arg", "hello", "--wait"]))
        {
            Assert.True(submit.ExitCode == 0, submit.Stderr);
            Assert.Contains("olleh", submit.Stdout, StringComparison.Ordinal);
        }
        await using (var failing = await DtsProcess.RunAsync(["client", "submit", .. conn, "--function", "fail", "--max-attempts", "1", "--wait"]))
        {
            Assert.NotEqual(0, failing.ExitCode);
            Assert.Contains("oops", failing.Stderr, StringComparison.Ordinal);
        }

        // Many jobs through the SDK: every one comes back once, reversed by the worker's child processes.
        await using var client = new DtsClient("alice", clientSecret, url);
        var lines = Enumerable.Range(0, 300).Select(i => $"line {i:D4}").ToList();
        var submitted = await client.SubmitBatchAsync(lines.Select(l => new SubmitJobRequest
        {
            Function = "reverse", Args = JsonValues.StringArray([l]),
        }).ToList(), TestContext.Current.CancellationToken);
        var expected = submitted.Select((s, i) => (s.Id, Text: new string(lines[i].Reverse().ToArray()))).ToDictionary(x => x.Id, x => x.Text);
        var seen = new Dictionary<string, string>();
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await foreach (var job in client.ReadResultsAsync(cancellationToken: limit.Token))
        {
            if (!expected.ContainsKey(job.Id)) continue;
            Assert.Equal(JobState.Succeeded, job.State);
            Assert.True(seen.TryAdd(job.Id, job.Result!.Value.GetString()!), $"result of {job.Id} delivered twice");
            if (seen.Count == expected.Count) break;
        }
        Assert.Equal(expected, seen);

        // SIGTERM drains the worker and it exits cleanly.
        worker.Terminate();
        await worker.WaitForExitAsync(TimeSpan.FromSeconds(30));
        Assert.True(worker.ExitCode == 0, worker.Stderr);
    }

    [Fact]
    public async Task Server_KilledWithSigkill_KeepsEveryAcknowledgedJob()
    {
        var cluster = new Cluster(_dir);
        var (server, url) = await cluster.StartServerAsync();
        var secret = await cluster.AddUserAsync("alice", "client");
        var workerSecret = await cluster.AddUserAsync("w", "worker");
        var acknowledged = new ConcurrentBag<string>();

        await using (server)
        await using (var client = new DtsClient("alice", secret, url, snoozeInterval: TimeSpan.FromMilliseconds(50)))
        {
            using var stop = new CancellationTokenSource();
            var submitters = Enumerable.Range(0, 4).Select(s => Task.Run(async () =>
            {
                for (var round = 0; !stop.IsCancellationRequested; round++)
                {
                    try
                    {
                        var batch = Enumerable.Range(0, 25).Select(i => new SubmitJobRequest
                        {
                            Function = "echo", Args = JsonValues.StringArray([$"{s}-{round}-{i}"]),
                        }).ToList();
                        foreach (var r in await client.SubmitBatchAsync(batch, CancellationToken.None)) acknowledged.Add(r.Id);
                    }
                    catch (Exception ex) when (ex is HttpRequestException or DtsApiException or TimeoutException or IOException)
                    {
                        // The server died mid-request: this batch was never acknowledged.
                        return;
                    }
                }
            })).ToList();

            var deadline = DateTime.UtcNow.AddSeconds(120);
            while (acknowledged.Count < 1000 && DateTime.UtcNow < deadline && !submitters.All(t => t.IsCompleted))
                await Task.Delay(10, TestContext.Current.CancellationToken);
            // A submitter that failed for any other reason fails the test here rather than hanging it.
            foreach (var t in submitters.Where(t => t.IsFaulted)) await t;
            server.Kill();
            await stop.CancelAsync();
            await Task.WhenAll(submitters);
        }

        var ids = acknowledged.ToHashSet();
        Assert.True(ids.Count >= 1000);

        var (restarted, url2) = await cluster.StartServerAsync();
        await using var _ = restarted;
        await using var after = new DtsClient("alice", secret, url2);
        foreach (var id in ids)
        {
            var job = await after.GetJobAsync(id, TestContext.Current.CancellationToken);
            Assert.Equal(JobState.Queued, job.State);
        }

        // And they all still run: a worker drains them, each result arrives once.
        await using var worker = DtsProcess.Start(["worker", "--server", url2, "--user", "w", "--secret", workerSecret, "--concurrency", "8",
            "--stdin", "text", "--function", "echo=cat"]);
        var done = new HashSet<string>();
        using var limit = new CancellationTokenSource(TimeSpan.FromSeconds(240));
        await foreach (var job in after.ReadResultsAsync(max: 1000, cancellationToken: limit.Token))
        {
            Assert.Equal(JobState.Succeeded, job.State);
            done.Add(job.Id);
            if (ids.IsSubsetOf(done)) break;
        }
        Assert.Subset(done, ids);
    }

    [Fact]
    public async Task Demo_WritesOneResultPerInputLine()
    {
        await using var demo = await DtsProcess.RunAsync(["demo", "--dir", _dir.Path], TimeSpan.FromMinutes(3));
        Assert.True(demo.ExitCode == 0, demo.Stdout + demo.Stderr);
        var results = await File.ReadAllLinesAsync(Path.Combine(_dir.Path, "results.jsonl"), TestContext.Current.CancellationToken);
        Assert.Equal(12_000, results.Length);
        using var first = JsonDocument.Parse(results[0]);
        Assert.Equal("succeeded", first.RootElement.GetProperty("state").GetString());
        var input = first.RootElement.GetProperty("input").GetString()!;
        Assert.Equal(new string(input.Reverse().ToArray()), first.RootElement.GetProperty("result").GetString());
    }
}
