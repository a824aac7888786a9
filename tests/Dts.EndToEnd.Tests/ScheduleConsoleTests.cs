using Dts.Testing;

namespace Dts.EndToEnd.Tests;

/// <summary><c>dts admin schedule ...</c> and <c>function set</c> against a real server, on a schedule a client created over the API.</summary>
[Trait("Category", "EndToEnd")]
public sealed class ScheduleConsoleTests : IDisposable
{
    private readonly TempDirectory _dir = new("dts-schedule-e2e");

    public void Dispose() => _dir.Dispose();

    [Fact]
    public async Task AdminConsole_ListsPausesResumesAndDeletesAClientsSchedule()
    {
        var cluster = new Cluster(_dir);
        var (server, url) = await cluster.StartServerAsync();
        await using var _ = server;
        var secret = await cluster.AddUserAsync("alice", "client");
        using (var alice = new SignedHttp(new Uri(url), "alice", secret, TimeProvider.System))
        using (var created = await alice.PostAsync("/v1/schedules", """{"id":"nightly","cron":"0 3 * * *","time_zone":"Europe/Berlin","job":{"function":"report"}}"""))
            Assert.Equal(201, (int)created.StatusCode);

        string[] login = ["admin", "--server", url, "--user", "admin", "--secret-file", Path.Combine(cluster.DataDirectory, "admin.secret")];
        await using var console = await DtsProcess.RunAsync(login, stdin: """
            schedule list owner=alice id owner
            schedule get nightly cron time_zone
            schedule pause nightly
            schedule get nightly paused
            schedule resume nightly
            function set report max_attempts=6
            function defaults report
            schedule delete nightly
            schedule get nightly
            exit
            """);

        Assert.True(console.ExitCode == 0, console.Stderr);
        var stdout = console.Stdout;
        Assert.Contains("alice", stdout, StringComparison.Ordinal);
        Assert.Contains("0 3 * * *", stdout, StringComparison.Ordinal);
        Assert.Contains("Europe/Berlin", stdout, StringComparison.Ordinal);
        Assert.Contains("schedule nightly is paused", stdout, StringComparison.Ordinal);
        Assert.Contains("schedule nightly is active", stdout, StringComparison.Ordinal);
        Assert.Contains("6", stdout, StringComparison.Ordinal);
        Assert.Contains("schedule nightly of alice deleted", stdout, StringComparison.Ordinal);
        Assert.Contains("schedule_not_found", console.Stderr + stdout, StringComparison.Ordinal);
    }
}
