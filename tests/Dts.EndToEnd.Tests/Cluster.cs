using Dts.Testing;

namespace Dts.EndToEnd.Tests;

/// <summary>Starts real <c>dts server</c> processes on a data directory and creates users with <c>dts server add-user</c>.</summary>
internal sealed class Cluster(TempDirectory dir)
{
    public string DataDirectory => dir.Path;

    public async Task<(DtsProcess Process, string Url)> StartServerAsync()
    {
        var urlFile = dir.File($"url-{Guid.NewGuid():N}.txt");
        var server = DtsProcess.Start(["server", "--url", "http://127.0.0.1:0", "--data-dir", dir.Path, "--url-file", urlFile]);
        var url = await server.WaitForFileAsync(urlFile, TimeSpan.FromSeconds(60));
        return (server, url);
    }

    public async Task<string> AddUserAsync(string name, string roles)
    {
        await using var p = await DtsProcess.RunAsync(["server", "add-user", name, "--roles", roles, "--data-dir", dir.Path]);
        Assert.True(p.ExitCode == 0, $"add-user failed: {p.Stderr}");
        var secret = p.Stdout.Trim();
        Assert.Equal(64, secret.Length);
        return secret;
    }
}
