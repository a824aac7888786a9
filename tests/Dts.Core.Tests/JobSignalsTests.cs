namespace Dts.Core.Tests;

public sealed class JobSignalsTests
{
    [Fact]
    public async Task Ticket_TakenBeforeASignal_Completes()
    {
        var s = new JobSignals();
        var ticket = s.JobsReadyTicket(["a", "b"]);
        Assert.False(ticket.IsCompleted);
        s.JobsReady("c");
        Assert.False(ticket.IsCompleted);
        s.JobsReady("b");
        await ticket.WaitAsync(TimeSpan.FromSeconds(5), TestContext.Current.CancellationToken);
        Assert.True(ticket.IsCompletedSuccessfully);
    }

    [Fact]
    public void Ticket_TakenAfterASignal_WaitsForTheNextOne()
    {
        var s = new JobSignals();
        _ = s.ResultsTicket("alice");
        s.ResultsReady("alice");
        var next = s.ResultsTicket("alice");
        Assert.False(next.IsCompleted);
        s.ResultsReady("bob");
        Assert.False(next.IsCompleted);
        s.ResultsReady("alice");
        Assert.True(next.IsCompleted);
    }
}
