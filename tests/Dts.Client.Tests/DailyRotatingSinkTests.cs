using Dts.Client.Batch;
using Dts.Testing;
using Microsoft.Extensions.Time.Testing;

namespace Dts.Client.Tests;

public sealed class DailyRotatingSinkTests : IDisposable
{
    private static CancellationToken Ct => TestContext.Current.CancellationToken;
    private readonly TempDirectory _dir = new("dts-rotate");

    public void Dispose() => _dir.Dispose();

    private static RecordOutcome Result(long n) => new() { Record = n, Input = JsonValues.String($"r{n}"), JobId = $"j{n}", Result = JsonValues.String("ok") };

    [Fact]
    public async Task Results_SwitchToTheNextDaysFile_AtMidnightInTheChosenTimeZone()
    {
        // 14:59:58 UTC is 23:59:58 in Tokyo (UTC+9, no daylight saving): midnight there comes in 2 s.
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 27, 14, 59, 58, TimeSpan.Zero));
        var tokyo = TimeZoneInfo.FindSystemTimeZoneById("Asia/Tokyo");
        var outDir = Path.Combine(_dir.Path, "out");
        await using (var sink = new DailyRotatingResultSink(outDir, _dir.File("errors.jsonl"), tokyo, time))
        {
            await sink.OpenAsync(null, Ct);
            await sink.WriteAsync(Result(1), Ct);
            time.Advance(TimeSpan.FromSeconds(1));
            await sink.WriteAsync(Result(2), Ct);
            Assert.Equal(Path.Combine("2026/11/27", "results.jsonl"), sink.CurrentFile);
            time.Advance(TimeSpan.FromSeconds(1));
            await sink.WriteAsync(Result(3), Ct);
            Assert.Equal(Path.Combine("2026/11/28", "results.jsonl"), sink.CurrentFile);
            await sink.WriteAsync(Result(4) with { Result = null, ErrorCode = "boom", ErrorMessage = "failed" }, Ct);
            await sink.FlushAsync(Ct);
        }

        Assert.Equal(2, File.ReadAllLines(Path.Combine(outDir, "2026", "11", "27", "results.jsonl")).Length);
        Assert.Contains("\"record\":3", Assert.Single(File.ReadAllLines(Path.Combine(outDir, "2026", "11", "28", "results.jsonl"))), StringComparison.Ordinal);
        Assert.Contains("\"boom\"", Assert.Single(File.ReadAllLines(_dir.File("errors.jsonl"))), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Resume_CutsTheCheckpointedDayBack_AndDropsDaysBegunAfterIt()
    {
        var time = new FakeTimeProvider(new DateTimeOffset(2026, 11, 27, 23, 59, 59, TimeSpan.Zero));
        var outDir = Path.Combine(_dir.Path, "out");
        string position;
        await using (var sink = new DailyRotatingResultSink(outDir, _dir.File("errors.jsonl"), TimeZoneInfo.Utc, time))
        {
            await sink.OpenAsync(null, Ct);
            await sink.WriteAsync(Result(1), Ct);
            position = (await sink.FlushAsync(Ct))!;
            // Written after the checkpoint: lost work that the resumed run writes again.
            await sink.WriteAsync(Result(2), Ct);
            time.Advance(TimeSpan.FromSeconds(2));
            await sink.WriteAsync(Result(3), Ct);
            await sink.FlushAsync(Ct);
        }

        await using (var resumed = new DailyRotatingResultSink(outDir, _dir.File("errors.jsonl"), TimeZoneInfo.Utc, time))
        {
            await resumed.OpenAsync(position, Ct);
            await resumed.FlushAsync(Ct);
        }
        Assert.Contains("\"record\":1", Assert.Single(File.ReadAllLines(Path.Combine(outDir, "2026", "11", "27", "results.jsonl"))), StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(outDir, "2026", "11", "28", "results.jsonl")));
    }
}
