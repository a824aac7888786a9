using Microsoft.Extensions.Configuration;

namespace Dts.Server.Tests;

public sealed class HostBuilderTests
{
    [Fact]
    public void TheHost_WatchesNoConfigurationFile()
    {
        var builder = DtsServer.CreateHostBuilder();

        // A file source that reloads on change keeps a watcher on its directory tree, which would see
        // every write to a data directory below it.
        var files = ((IConfigurationBuilder)builder.Configuration).Sources.OfType<FileConfigurationSource>().ToList();
        Assert.All(files, f => Assert.False(f.ReloadOnChange, $"{f.Path} reloads on change"));
    }
}
