using Dts.Cli.Commands;

namespace Dts.Client.Tests;

public sealed class ClientRunCommandTests
{
    [Theory]
    [InlineData("250ms", 250)]
    [InlineData("2s", 2000)]
    [InlineData("1.5m", 90000)]
    [InlineData("3", 3000)]
    public void Snooze_ReadsMillisecondsSecondsMinutesOrAPlainNumber(string text, double milliseconds) =>
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), ClientRunCommand.ParseDuration(text, "--snooze"));

    [Theory]
    [InlineData("soon")]
    [InlineData("-1s")]
    [InlineData("")]
    public void Snooze_RefusesWhatIsNotADuration(string text)
    {
        var ex = Assert.Throws<UsageException>(() => ClientRunCommand.ParseDuration(text, "--snooze"));
        Assert.Contains("--snooze", ex.Message, StringComparison.Ordinal);
    }
}
