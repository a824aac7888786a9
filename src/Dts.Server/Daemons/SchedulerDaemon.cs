using Dts.Core.Storage;

namespace Dts.Server.Daemons;

/// <summary>
/// Makes scheduled jobs and jobs awaiting a retry queued when their run-at comes. It sleeps until
/// the next due job (at most <see cref="DtsServerOptions.SchedulerMaxSleep"/>) and wakes early when
/// a new job is scheduled.
/// </summary>
public sealed class SchedulerDaemon(ServerContext server) : Daemon(server, "scheduler")
{
    private const int BatchLimit = 1000;

    protected override Task WakeTicket => Server.Signals.ScheduledTicket;

    protected override async Task<TimeSpan> RunOnceAsync(CancellationToken cancellationToken)
    {
        var now = Server.Time.GetUtcNow();
        var result = await Server.Store.JobPromoteDueAsync(new JobPromoteDueParams(now, BatchLimit), cancellationToken);
        // The promoted jobs are not counted per function: every waiter of them looks.
        Server.Signals.JobsReadyAll(result.Functions);
        if (result.Promoted >= BatchLimit) return TimeSpan.Zero;
        var max = Server.Options.SchedulerMaxSleep;
        if (result.NextDueAt is not { } next) return max;
        var untilNext = next - now;
        return untilNext < max ? (untilNext > TimeSpan.Zero ? untilNext : TimeSpan.FromMilliseconds(1)) : max;
    }
}
