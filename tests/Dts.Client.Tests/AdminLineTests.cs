using Dts.Cli.Admin;

namespace Dts.Client.Tests;

public sealed class AdminLineTests
{
    [Fact]
    public void Words_SplitOnWhitespace_ModuleAndActionLowercased()
    {
        var line = AdminLine.Parse("  USER   Get\talice name  roles ")!;

        Assert.Equal("user", line.Module);
        Assert.Equal("get", line.Action);
        Assert.Equal(["alice", "name", "roles"], line.Positionals);
        Assert.Empty(line.Options);
    }

    [Fact]
    public void KeyValues_AreOptions_PositionalsKeepTheirOrder()
    {
        var line = AdminLine.Parse("user add bob roles=client,worker max_queued=100 submit_rate=2.5")!;

        Assert.Equal(["bob"], line.Positionals);
        Assert.Equal("client,worker", line.Options["roles"]);
        Assert.Equal("100", line.Options["max_queued"]);
        Assert.Equal("2.5", line.Options["submit_rate"]);
    }

    [Theory]
    [InlineData("user set bob roles=\"client,worker\"", "client,worker")]
    [InlineData("user set bob roles='client, worker'", "client, worker")]
    [InlineData("user set bob roles=\"a \\\"b\\\" c\"", "a \"b\" c")]
    [InlineData("user set bob roles=''", "")]
    [InlineData("user set bob roles=a=b", "a=b")]
    public void QuotedValues_KeepSpacesAndCommas(string text, string expected)
    {
        var line = AdminLine.Parse(text)!;

        Assert.Equal(expected, line.Options["roles"]);
    }

    [Fact]
    public void AnEqualsSignInsideQuotes_DoesNotMakeAnOption()
    {
        var line = AdminLine.Parse("job get 'a=b' state")!;

        Assert.Equal(["a=b", "state"], line.Positionals);
        Assert.Empty(line.Options);
    }

    [Theory]
    [InlineData("")]
    [InlineData("   ")]
    [InlineData("# a comment")]
    public void BlankLinesAndComments_AreNothing(string text) => Assert.Null(AdminLine.Parse(text));

    [Fact]
    public void ModuleAlone_HasNoAction()
    {
        var line = AdminLine.Parse("user")!;

        Assert.Equal("user", line.Module);
        Assert.Null(line.Action);
    }

    [Theory]
    [InlineData("user set bob roles=\"client", "unclosed double quote")]
    [InlineData("user set bob roles='client", "unclosed single quote")]
    [InlineData("user set bob =x", "no key")]
    [InlineData("user set bob max-queued=3", "not a key")]
    [InlineData("user set bob disabled=true disabled=false", "given twice")]
    [InlineData("roles=x user list", "module name first")]
    public void Mistakes_AreUsageErrors(string text, string expected)
    {
        var ex = Assert.Throws<AdminUsageException>(() => AdminLine.Parse(text));

        Assert.Contains(expected, ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void OneShotArguments_AreTakenAsTheShellSplitThem()
    {
        var line = AdminLine.FromArguments(["user", "set", "bob", "roles=client,worker", "it's"])!;

        Assert.Equal("client,worker", line.Options["roles"]);
        Assert.Equal(["bob", "it's"], line.Positionals);
    }

    [Fact]
    public void NextPageCommand_RepeatsTheFilters_AndCanBeParsedBack()
    {
        var line = AdminLine.Parse("job list state=dead tag='big batch' cursor=old id state")!;

        var next = AdminCommands.NextPageCommand(line, "c/2 x");
        var parsed = AdminLine.Parse(next)!;

        Assert.Equal("dead", parsed.Options["state"]);
        Assert.Equal("big batch", parsed.Options["tag"]);
        Assert.Equal("c/2 x", parsed.Options["cursor"]);
        Assert.Equal(["id", "state"], parsed.Positionals);
    }
}
