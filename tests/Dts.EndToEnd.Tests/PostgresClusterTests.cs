using System.Text.Json;
using Dts.Testing;
using Dts.Testing.Postgres;
using Npgsql;

namespace Dts.EndToEnd.Tests;

/// <summary>
/// Several <c>dts server</c> processes on one PostgreSQL database, with real worker and client
/// processes: every job exactly once, never leased twice at once (checked in the database by a
/// trigger the test installs), nothing acknowledged lost when a server is killed, cron ticks fired
/// once across a leader's death.
/// </summary>
[Trait("Category", "EndToEnd")]
[Trait("Category", "Cluster")]
public sealed class PostgresClusterTests : IAsyncLifetime
{
    private readonly TempDirectory _dir = new("dts-pg-cluster");
    private readonly List<DtsProcess> _processes = [];
    private PostgresTestDatabase? _db;

    private PostgresTestDatabase Db => _db!;
    private static CancellationToken Ct => TestContext.Current.CancellationToken;

    public ValueTask InitializeAsync()
    {
        _db = PostgresTestDatabase.Create();
        return ValueTask.CompletedTask;
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var p in _processes) await p.DisposeAsync();
        if (_db is not null) await _db.DisposeAsync();
        _dir.Dispose();
    }

    private string KeyFile => _dir.File("secrets.key");

    private string[] StoreArgs => ["--store", Db.ConnectionString, "--schema", Db.Schema, "--key-file", KeyFile];

    private async Task<string> AddUserAsync(string name, string roles)
    {
        await using var p = await DtsProcess.RunAsync(["server", "add-user", name, "--roles", roles, "--data-dir", _dir.Path, .. StoreArgs]);
        Assert.True(p.ExitCode == 0, $"add-user failed: {p.Stderr}");
        var secret = p.Stdout.Trim();
        Assert.Equal(64, secret.Length);
        var file = _dir.File(name + ".secret");
        await File.WriteAllTextAsync(file, secret + "\n", Ct);
        return file;
    }

    private sealed record Server(DtsProcess Process, string Url);

    private async Task<Server[]> StartServersAsync(int count)
    {
        var starting = Enumerable.Range(0, count).Select(i =>
        {
            var urlFile = _dir.File($"server-{i}.url");
            var data = _dir.File($"data-{i}");
            var p = DtsProcess.Start(["server", "--url", "http://127.0.0.1:0", "--url-file", urlFile, "--data-dir", data,
                "--heartbeat-interval", "1", "--lease-timeout", "5", .. StoreArgs]);
            _processes.Add(p);
            return (p, urlFile);
        }).ToList();
        var servers = new Server[count];
        for (var i = 0; i < count; i++)
            servers[i] = new Server(starting[i].p, await starting[i].p.WaitForFileAsync(starting[i].urlFile, TimeSpan.FromSeconds(60)));
        return servers;
    }

    /// <summary>The server's URLs starting at <paramref name="first"/>, as one comma-separated --server value.</summary>
    private static string Rotated(Server[] servers, int first) =>
        string.Join(",", Enumerable.Range(0, servers.Length).Select(k => servers[(first + k) % servers.Length].Url));

    /// <summary>The one server whose log says it holds leadership now.</summary>
    private static async Task<int> WaitForLeaderAsync(Server[] servers, IReadOnlySet<int> exclude, TimeSpan limit)
    {
        var until = DateTime.UtcNow + limit;
        while (true)
        {
            for (var i = 0; i < servers.Length; i++)
            {
                if (exclude.Contains(i)) continue;
                var log = servers[i].Process.Stdout + servers[i].Process.Stderr;
                var became = log.LastIndexOf("is now the leader", StringComparison.Ordinal);
                if (became >= 0 && log.LastIndexOf("no longer the leader", StringComparison.Ordinal) < became) return i;
            }
            Assert.True(DateTime.UtcNow < until, "no server became the leader in time");
            await Task.Delay(100, Ct);
        }
    }

    private async Task<long> ScalarAsync(string sql)
    {
        await using var c = await Db.OpenAsync(Ct);
        await using var command = new NpgsqlCommand(sql.Replace("{s}", $"\"{Db.Schema}\"", StringComparison.Ordinal), c) { CommandTimeout = 300 };
        return Convert.ToInt64(await command.ExecuteScalarAsync(Ct), System.Globalization.CultureInfo.InvariantCulture);
    }

    private async Task ExecAsync(string sql)
    {
        await using var c = await Db.OpenAsync(Ct);
        await using var command = new NpgsqlCommand(sql.Replace("{s}", $"\"{Db.Schema}\"", StringComparison.Ordinal), c);
        await command.ExecuteNonQueryAsync(Ct);
    }

    /// <summary>
    /// A test-only trigger: every new lease (a new lease token) is logged with the state the job was in
    /// just before and the lease it replaced, so the test can prove from the database that no job was
    /// ever leased while another worker still held it.
    /// </summary>
    private Task InstallLeaseAuditAsync() => ExecAsync("""
        CREATE TABLE {s}.lease_audit (
            job_id text NOT NULL, lease_token text NOT NULL, worker_id text, at timestamptz NOT NULL,
            old_state text NOT NULL, old_token text, old_expires_at timestamptz);
        CREATE FUNCTION {s}.audit_lease() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF NEW.lease_token IS NOT NULL AND NEW.lease_token IS DISTINCT FROM OLD.lease_token THEN
                INSERT INTO lease_audit VALUES (NEW.id, NEW.lease_token, NEW.worker_id, clock_timestamp(),
                                                OLD.state, OLD.lease_token, OLD.lease_expires_at);
            END IF;
            RETURN NEW;
        END $$;
        ALTER FUNCTION {s}.audit_lease() SET search_path FROM CURRENT;
        CREATE TRIGGER lease_audit AFTER UPDATE ON {s}.jobs FOR EACH ROW EXECUTE FUNCTION {s}.audit_lease();
        """.Replace("INSERT INTO lease_audit", "INSERT INTO {s}.lease_audit", StringComparison.Ordinal));

    [Fact]
    public async Task ThreeServers_EightWorkers_TwoClients_TenThousandJobs_ExactlyOnce_AndKillingTheLeaderLosesNothing()
    {
        const int perClient = 5_000;
        var workerSecret = await AddUserAsync("w", "worker");
        var clientSecrets = new[] { await AddUserAsync("c1", "client"), await AddUserAsync("c2", "client") };
        await InstallLeaseAuditAsync();
        var servers = await StartServersAsync(3);
        var leader = await WaitForLeaderAsync(servers, new HashSet<int>(), TimeSpan.FromSeconds(30));

        // Eight workers spread over the servers: each starts at a different one and lists all three.
        for (var i = 0; i < 8; i++)
        {
            _processes.Add(DtsProcess.Start(["worker", "--server", Rotated(servers, i % 3), "--user", "w", "--secret-file", workerSecret,
                "--concurrency", "4", "--stdin", "text", "--name", $"w{i}", "--function", "up=tr a-z A-Z"]));
        }

        var runs = new List<(DtsProcess Process, string Results, string Errors)>();
        for (var c = 0; c < 2; c++)
        {
            var input = _dir.File($"input-{c}.txt");
            await File.WriteAllLinesAsync(input, Enumerable.Range(1, perClient).Select(n => $"c{c} line {n}"), Ct);
            var results = _dir.File($"results-{c}.jsonl");
            var errors = _dir.File($"errors-{c}.jsonl");
            var p = DtsProcess.Start(["client", "run", "--server", Rotated(servers, c + 1), "--user", $"c{c + 1}", "--secret-file", clientSecrets[c],
                "--function", "up", "--input", input, "--results", results, "--errors", errors, "--concurrency", "64"]);
            _processes.Add(p);
            runs.Add((p, results, errors));
        }

        // Kill the leader (SIGKILL: no goodbye to PostgreSQL or to anyone) about a third of the way in.
        var limit = DateTime.UtcNow + TimeSpan.FromSeconds(300);
        while (await ScalarAsync("SELECT count(*) FROM {s}.jobs WHERE state = 'succeeded'") < 2 * perClient / 3)
        {
            Assert.True(DateTime.UtcNow < limit, "a third of the jobs did not finish in time");
            Assert.DoesNotContain(runs, r => r.Process.HasExited);
            await Task.Delay(100, Ct);
        }
        servers[leader].Process.Kill();
        var newLeader = await WaitForLeaderAsync(servers, new HashSet<int> { leader }, TimeSpan.FromSeconds(30));
        Assert.NotEqual(leader, newLeader);

        foreach (var (process, _, _) in runs)
        {
            await process.WaitForExitAsync(TimeSpan.FromSeconds(400));
            Assert.True(process.ExitCode == 0, $"client run exit {process.ExitCode}: {process.Stderr}");
        }

        // Every record exactly once in the results, with the right result.
        for (var c = 0; c < 2; c++)
        {
            var seen = new HashSet<long>();
            foreach (var line in File.ReadLines(runs[c].Results))
            {
                using var doc = JsonDocument.Parse(line);
                var n = doc.RootElement.GetProperty("record").GetInt64();
                Assert.True(seen.Add(n), $"client {c}: record {n} written twice");
                Assert.Equal($"C{c} LINE {n}", doc.RootElement.GetProperty("result").GetString()!.TrimEnd('\n'));
            }
            Assert.Equal(perClient, seen.Count);
            Assert.Equal(0, File.Exists(runs[c].Errors) ? File.ReadLines(runs[c].Errors).Count() : 0);
        }

        // In the database: exactly one job per record, all succeeded.
        Assert.Equal(2 * perClient, await ScalarAsync("SELECT count(*) FROM {s}.jobs WHERE function = 'up'"));
        Assert.Equal(2 * perClient, await ScalarAsync("SELECT count(*) FROM {s}.jobs WHERE function = 'up' AND state = 'succeeded'"));
        // Never leased twice at once: no lease was ever given to a job that was running under another.
        Assert.Equal(0, await ScalarAsync("SELECT count(*) FROM {s}.lease_audit WHERE old_state = 'running'"));
        // And every attempt the database counted is a lease the trigger saw.
        Assert.Equal(0, await ScalarAsync(
            "SELECT count(*) FROM {s}.jobs j LEFT JOIN (SELECT job_id, count(*) AS leases FROM {s}.lease_audit GROUP BY job_id) a ON a.job_id = j.id " +
            "WHERE j.function = 'up' AND j.attempts <> coalesce(a.leases, 0)"));
        Assert.True(await ScalarAsync("SELECT count(*) FROM {s}.lease_audit") >= 2 * perClient);
        var workersUsed = await ScalarAsync("SELECT count(DISTINCT worker_id) FROM {s}.lease_audit");
        Assert.True(workersUsed >= 6, $"only {workersUsed} workers took jobs");
    }

    [Fact]
    public async Task CronSchedule_OnThreeServers_FiresOncePerTick_AlsoWhenItsLeaderIsKilled()
    {
        var workerSecret = await AddUserAsync("w", "worker");
        var clientSecret = await AddUserAsync("alice", "client");
        var servers = await StartServersAsync(3);
        var leader = await WaitForLeaderAsync(servers, new HashSet<int>(), TimeSpan.FromSeconds(30));

        // Workers finish each tick's job at once, so its unique key is free again: a tick fired twice
        // would then show as two jobs with the same key rather than being merged into one.
        for (var i = 0; i < 2; i++)
        {
            _processes.Add(DtsProcess.Start(["worker", "--server", Rotated(servers, i), "--user", "w", "--secret-file", workerSecret,
                "--concurrency", "2", "--stdin", "text", "--function", "tick=echo tock"]));
        }
        var secret = (await File.ReadAllTextAsync(clientSecret, Ct)).Trim();
        using (var alice = new SignedHttp(new Uri(servers[(leader + 1) % 3].Url), "alice", secret, TimeProvider.System))
        using (var created = await alice.PostAsync("/v1/schedules", """{"id":"every-second","cron":"* * * * * *","job":{"function":"tick"}}"""))
            Assert.Equal(201, (int)created.StatusCode);

        const string ticks = "SELECT count(*) FROM {s}.jobs WHERE function = 'tick'";
        var limit = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        while (await ScalarAsync(ticks) < 5)
        {
            Assert.True(DateTime.UtcNow < limit, "the schedule did not fire 5 times in time");
            await Task.Delay(100, Ct);
        }
        servers[leader].Process.Kill();
        var killedAt = await ScalarAsync("SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint");
        var newLeader = await WaitForLeaderAsync(servers, new HashSet<int> { leader }, TimeSpan.FromSeconds(30));
        Assert.NotEqual(leader, newLeader);

        // Ticks go on under the new leader.
        limit = DateTime.UtcNow + TimeSpan.FromSeconds(60);
        var after = $"SELECT count(*) FROM {{s}}.jobs WHERE function = 'tick' AND created_at > to_timestamp({killedAt} / 1000.0)";
        while (await ScalarAsync(after) < 5)
        {
            Assert.True(DateTime.UtcNow < limit, "the schedule did not fire 5 times after the leader was killed");
            await Task.Delay(100, Ct);
        }

        // Once per tick: no unique key (schedule:<id>:<tick>) appears twice, and every tick's job is its own.
        Assert.Equal(0, await ScalarAsync("SELECT count(*) FROM (SELECT unique_key FROM {s}.jobs WHERE function = 'tick' GROUP BY unique_key HAVING count(*) > 1) d"));
        Assert.Equal(await ScalarAsync(ticks), await ScalarAsync("SELECT count(DISTINCT unique_key) FROM {s}.jobs WHERE function = 'tick'"));
        Assert.Equal(0, await ScalarAsync("SELECT count(*) FROM {s}.jobs WHERE function = 'tick' AND (unique_key IS NULL OR unique_key NOT LIKE 'schedule:every-second:%')"));
        Assert.True(await ScalarAsync("SELECT count(*) FROM {s}.jobs WHERE function = 'tick' AND state = 'succeeded'") >= 8);
    }
}
