using System.Text.Json;
using Dts.Testing;

namespace Dts.EndToEnd.Tests;

/// <summary><c>dts admin</c> as a real child process against a real <c>dts server</c>, logged in as the first administrator.</summary>
[Trait("Category", "EndToEnd")]
public sealed class AdminConsoleTests : IDisposable
{

    private readonly TempDirectory _dir = new("dts-admin-e2e");

    public void Dispose() => _dir.Dispose();

    private async Task<(DtsProcess Server, string[] Login)> StartAsync()
    {
        var cluster = new Cluster(_dir);
        var (server, url) = await cluster.StartServerAsync();
        // The first start writes the generated administrator's secret here.
        var secretFile = Path.Combine(cluster.DataDirectory, "admin.secret");
        return (server, ["admin", "--server", url, "--user", "admin", "--secret-file", secretFile]);
    }

    [Fact]
    public async Task Prompt_CreatesAUser_ShowsSelectedFields_SurvivesABadCommand_AndExits()
    {
        var (server, login) = await StartAsync();
        await using var _ = server;

        await using var console = await DtsProcess.RunAsync(login, stdin: """
            user add carol roles=client,worker max_queued=50
            user get carol name roles max_queued
            user frobnicate carol
            user get carol disabled
            exit
            user delete carol
            """);

        Assert.True(console.ExitCode == 0, console.Stderr);
        var stdout = console.Stdout;
        Assert.Matches("secret: [0-9a-f]{64}", stdout);
        Assert.Contains("client,worker", stdout, StringComparison.Ordinal);
        Assert.Contains("50", stdout, StringComparison.Ordinal);
        var error = Assert.Single(console.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("unknown action 'user frobnicate'", error, StringComparison.Ordinal);
        // The line after the bad one ran; the one after exit did not (carol still exists).
        Assert.Contains("disabled", stdout, StringComparison.Ordinal);
        await using var check = await DtsProcess.RunAsync([.. login, "user", "get", "carol", "name", "--json"]);
        Assert.True(check.ExitCode == 0, check.Stderr);
    }

    [Fact]
    public async Task OneShot_Json_PrintsOneDocument_AndFailuresExitNonZero()
    {
        var (server, login) = await StartAsync();
        await using var _ = server;

        await using (var add = await DtsProcess.RunAsync([.. login, "user", "add", "dave", "roles=client", "--json"]))
        {
            Assert.True(add.ExitCode == 0, add.Stderr);
            var answer = JsonDocument.Parse(add.Stdout).RootElement;
            Assert.Equal(64, answer.GetProperty("secret").GetString()!.Length);
        }

        await using (var list = await DtsProcess.RunAsync([.. login, "user", "list", "name", "roles", "--json"]))
        {
            Assert.True(list.ExitCode == 0, list.Stderr);
            var users = JsonDocument.Parse(list.Stdout).RootElement.GetProperty("users").EnumerateArray().ToList();
            Assert.Contains(users, u => u.GetProperty("name").GetString() == "dave");
            Assert.All(users, u => Assert.Equal(["name", "roles"], u.EnumerateObject().Select(p => p.Name)));
        }

        await using (var missing = await DtsProcess.RunAsync([.. login, "user", "get", "nobody"]))
        {
            Assert.Equal(1, missing.ExitCode);
            Assert.Contains("user_not_found", missing.Stderr, StringComparison.Ordinal);
        }

        await using (var usage = await DtsProcess.RunAsync([.. login, "user", "frobnicate"]))
            Assert.Equal(2, usage.ExitCode);
    }

    [Fact]
    public async Task Login_IsRefused_ForAUserWithoutTheAdministratorRole()
    {
        var cluster = new Cluster(_dir);
        var (server, url) = await cluster.StartServerAsync();
        await using var _ = server;
        var secret = await cluster.AddUserAsync("erin", "client");

        await using var console = await DtsProcess.RunAsync(["admin", "--server", url, "--user", "erin", "--secret", secret, "user", "list"]);

        Assert.Equal(1, console.ExitCode);
        Assert.Contains("does not hold the administrator role", console.Stderr, StringComparison.Ordinal);
        Assert.DoesNotContain(secret, console.Stderr, StringComparison.Ordinal);
    }
}
