using Dts.Cli.Bench;
using Dts.Testing;
using HdrHistogram;
using Xunit;

namespace Dts.Client.Tests;

public sealed class DiskFlushProbeTests : IDisposable
{
    private readonly TempDirectory _dir = new("dts-flush-probe");

    public void Dispose() => _dir.Dispose();

    [Fact]
    public void Measure_RecordsOneFlushPerSample_AndLeavesNoFileBehind()
    {
        var flushes = DiskFlushProbe.Measure(_dir.Path, 20, TestContext.Current.CancellationToken);

        Assert.Equal(20, flushes.TotalCount);
        Assert.True(flushes.GetMaxValue() > 0);
        Assert.True(Percentiles.Us(flushes.GetValueAtPercentile(50)) <= Percentiles.Us(flushes.GetMaxValue()));
        Assert.Empty(Directory.GetFileSystemEntries(_dir.Path));
    }

    [Fact]
    public void Measure_CreatesAMissingDirectory()
    {
        var nested = System.IO.Path.Combine(_dir.Path, "not", "there", "yet");

        var flushes = DiskFlushProbe.Measure(nested, 3, TestContext.Current.CancellationToken);

        Assert.Equal(3, flushes.TotalCount);
        Assert.Empty(Directory.GetFileSystemEntries(nested));
    }

    [Fact]
    public void Measure_RefusesZeroSamples() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => DiskFlushProbe.Measure(_dir.Path, 0, CancellationToken.None));

    [Fact]
    public void Measure_StopsWhenCancelled_AndStillRemovesItsFile()
    {
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();

        Assert.Throws<OperationCanceledException>(() => DiskFlushProbe.Measure(_dir.Path, 5, cancelled.Token));
        Assert.Empty(Directory.GetFileSystemEntries(_dir.Path));
    }
}
