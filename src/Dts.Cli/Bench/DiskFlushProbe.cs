using System.Diagnostics;
using HdrHistogram;

namespace Dts.Cli.Bench;

/// <summary>
/// The floor under every durable answer: how long the data directory's disk takes to make one
/// small write durable. It writes a 4 KB page into a file of its own and flushes it with fsync,
/// as SQLite does for each commit at synchronous=Full (a WAL commit rewrites pages of a file that
/// already exists, so the probe overwrites blocks it wrote before rather than growing the file).
/// </summary>
internal static class DiskFlushProbe
{
    private const int PageSize = 4096;
    private const int Pages = 256;

    /// <summary>Times <paramref name="samples"/> write-and-fsync pairs in <paramref name="directory"/>; the probe file is deleted afterwards.</summary>
    public static LongHistogram Measure(string directory, int samples, CancellationToken cancellationToken)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(samples, 1);
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, $"flush-probe-{Guid.NewGuid():N}.tmp");
        var histogram = new LongHistogram(TimeStamp.Seconds(60), 3);
        try
        {
            using var file = File.OpenHandle(path, FileMode.CreateNew, FileAccess.ReadWrite);
            var page = new byte[PageSize];
            // Lay the file out once, durably, so the timed flushes carry data and no allocation.
            for (var i = 0; i < Pages; i++) RandomAccess.Write(file, page, (long)i * PageSize);
            RandomAccess.FlushToDisk(file);
            for (var i = 0; i < samples; i++)
            {
                cancellationToken.ThrowIfCancellationRequested();
                Random.Shared.NextBytes(page);
                RandomAccess.Write(file, page, (long)(i % Pages) * PageSize);
                var start = Stopwatch.GetTimestamp();
                RandomAccess.FlushToDisk(file);
                histogram.RecordValue(Stopwatch.GetTimestamp() - start);
            }
        }
        finally
        {
            File.Delete(path);
        }
        return histogram;
    }
}

/// <summary>Percentiles in microseconds of a histogram of <see cref="Stopwatch"/> ticks (latencies, flushes).</summary>
internal readonly record struct Percentiles(double P50, double P90, double P99, double Max)
{
    public static Percentiles Of(LongHistogram ticks) => new(
        Us(ticks.GetValueAtPercentile(50)), Us(ticks.GetValueAtPercentile(90)), Us(ticks.GetValueAtPercentile(99)), Us(ticks.GetMaxValue()));

    public static double Us(long ticks) => Stopwatch.GetElapsedTime(0, ticks).TotalMicroseconds;
}
