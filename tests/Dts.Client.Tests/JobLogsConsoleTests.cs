using Dts.Cli.Admin;
using Dts.Contracts;
using Dts.Testing;
using Spectre.Console;

namespace Dts.Client.Tests;

/// <summary><c>job logs ID [follow]</c> in the admin console, against a real server.</summary>
public sealed class JobLogsConsoleTests : IAsyncLifetime
{
    private TestServer _server = null!;
    private SignedHttp _client = null!;
    private SignedHttp _worker = null!;
    private DtsAdminClient _admin = null!;
    private readonly StringWriter _out = new();
    private readonly StringWriter _err = new();

    public async ValueTask InitializeAsync()
    {
        _server = await TestServer.StartAsync();
        _client = await _server.UserAsync("alice", Roles.Client);
        _worker = await _server.UserAsync("w1", Roles.Worker);
        var root = await _server.UserAsync("root", Roles.Administrator);
        _admin = new DtsAdminClient(new DtsConnectionOptions { ServerUrl = _server.Url.ToString(), UserId = root.User, Secret = root.Secret });
    }

    public async ValueTask DisposeAsync()
    {
        _admin.Dispose();
        await _server.DisposeAsync();
    }

    private async Task<(string WorkerId, LeasedJob Job)> RunningJobAsync()
    {
        await _client.CallAsync(HttpMethod.Post, ApiRoutes.Jobs, """{"function":"talk"}""", DtsJsonContext.Default.SubmitJobResponse);
        var reg = await _worker.CallAsync(HttpMethod.Post, ApiRoutes.Workers, """{"name":"box","functions":["talk"]}""", DtsJsonContext.Default.RegisterWorkerResponse);
        var lease = await _worker.CallAsync(HttpMethod.Post, ApiRoutes.WorkerLease(reg.WorkerId), """{"max":1}""", DtsJsonContext.Default.LeaseResponse);
        return (reg.WorkerId, Assert.Single(lease.Jobs));
    }

    private Task LogAsync(string workerId, LeasedJob job, string text) =>
        _worker.CallAsync(HttpMethod.Post, ApiRoutes.WorkerLogs(workerId),
            $$"""{"lines":[{"job_id":"{{job.Id}}","lease_token":"{{job.LeaseToken}}","text":"{{text}}"}]}""", DtsJsonContext.Default.LogBatchResponse);

    private Task<int> Run(string line, bool json = false)
    {
        var ansi = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(_out), Ansi = AnsiSupport.No, Interactive = InteractionSupport.No });
        var console = new AdminConsole(_admin, new AdminRenderer(ansi, _out, json), _err);
        return console.RunAsync(AdminLine.Parse(line)!, "error: ", TestContext.Current.CancellationToken);
    }

    [Fact]
    public async Task JobLogs_PrintsTheLinesThereAreNow()
    {
        var (workerId, job) = await RunningJobAsync();
        await LogAsync(workerId, job, "first");
        await LogAsync(workerId, job, "second");

        Assert.Equal(0, await Run($"job logs {job.Id}"));
        var lines = _out.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, lines.Length);
        Assert.EndsWith("log    first", lines[0].TrimEnd('\r'), StringComparison.Ordinal);
        Assert.EndsWith("log    second", lines[1].TrimEnd('\r'), StringComparison.Ordinal);
        Assert.Equal("", _err.ToString());
    }

    [Fact]
    public async Task JobLogsFollow_PrintsNewLinesUntilTheJobEnds()
    {
        var (workerId, job) = await RunningJobAsync();
        await LogAsync(workerId, job, "before");
        var following = Run($"job logs {job.Id} follow", json: true);

        await LogAsync(workerId, job, "during");
        using (var done = await _worker.PostAsync(ApiRoutes.JobComplete(job.Id), $$"""{"lease_token":"{{job.LeaseToken}}","result":1}"""))
            Assert.True(done.IsSuccessStatusCode);

        Assert.Equal(0, await following);
        var items = _out.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("text").GetString()).ToList();
        Assert.Equal(["before", "during"], items);
    }

    [Fact]
    public async Task JobLogs_OfAnUnknownJob_IsOneErrorLine()
    {
        Assert.NotEqual(0, await Run("job logs 0000000000000000000000000000"));
        Assert.StartsWith("error: ", _err.ToString(), StringComparison.Ordinal);
    }
}
