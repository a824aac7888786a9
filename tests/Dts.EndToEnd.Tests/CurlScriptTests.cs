using System.Diagnostics;
using System.Text.Json;
using Dts.Contracts;
using Dts.Testing;

namespace Dts.EndToEnd.Tests;

/// <summary>The curl and openssl recipe of docs/protocol.md (scripts/dts-curl) works against a real server.</summary>
[Trait("Category", "EndToEnd")]
public sealed class CurlScriptTests
{
    private static async Task<(int Code, string Out, string Err)> CurlAsync(TestServer server, SignedHttp user, params string[] args)
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Dts.slnx"))) dir = dir.Parent;
        var info = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(Path.Combine(dir!.FullName, "scripts", "dts-curl"));
        foreach (var a in args) info.ArgumentList.Add(a);
        info.Environment["DTS_URL"] = server.Url.ToString().TrimEnd('/');
        info.Environment["DTS_USER"] = user.User;
        info.Environment["DTS_SECRET"] = user.Secret;
        using var p = Process.Start(info)!;
        var stdout = p.StandardOutput.ReadToEndAsync(TestContext.Current.CancellationToken);
        var stderr = p.StandardError.ReadToEndAsync(TestContext.Current.CancellationToken);
        await p.WaitForExitAsync(TestContext.Current.CancellationToken);
        return (p.ExitCode, await stdout, await stderr);
    }

    [Fact]
    public async Task DocumentedCurlScript_SubmitsAndReadsJobs()
    {
        await using var server = await TestServer.StartAsync();
        var alice = await server.UserAsync("alice", Roles.Client);

        var (code, output, err) = await CurlAsync(server, alice, "POST", "/v1/jobs", """{"function":"reverse","args":["hello world"]}""");
        Assert.True(code == 0, err);
        var submitted = JsonSerializer.Deserialize(output, DtsJsonContext.Default.SubmitJobResponse)!;
        Assert.Equal(JobState.Queued, submitted.State);

        // A query string, signed in sorted order, on a GET without a body.
        (code, output, err) = await CurlAsync(server, alice, "GET", $"/v1/jobs/{submitted.Id}?wait_seconds=0");
        Assert.True(code == 0, err);
        var view = JsonSerializer.Deserialize(output, DtsJsonContext.Default.JobView)!;
        Assert.Equal("hello world", view.Args[0].GetString());

        (code, output, _) = await CurlAsync(server, alice, "GET", "/v1/results?wait_seconds=0&max=5");
        Assert.Equal(0, code);
        Assert.Empty(JsonSerializer.Deserialize(output, DtsJsonContext.Default.ResultsResponse)!.Results);
    }
}
