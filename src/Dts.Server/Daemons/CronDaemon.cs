using System.Globalization;
using System.Text.Json;
using Dts.Contracts;
using Dts.Core;
using Dts.Core.Storage;
using Dts.Server.Scheduling;
using Microsoft.Extensions.Logging;

namespace Dts.Server.Daemons;

/// <summary>
/// Fires recurring schedules. For each schedule whose next tick has come it inserts one job and
/// moves the schedule to its next tick in one transaction (a compare-and-set on the tick), so a
/// tick is never fired twice, also across restarts. Missed-tick policy: after downtime (or a long
/// pause of this daemon) only the latest missed tick is fired, once, and the schedule continues
/// with the first tick after now; the others are skipped. The job gets the unique key
/// <c>schedule:{id}:{tick in Unix ms}</c>. Counts fired ticks in <see cref="Daemon.Items"/>.
/// </summary>
public sealed class CronDaemon(ServerContext server) : Daemon(server, "cron")
{
    private const int BatchLimit = 100;
    private readonly ILogger _logger = server.LoggerFactory.CreateLogger<CronDaemon>();

    protected override Task WakeTicket => Server.Signals.ScheduledTicket;

    /// <summary>The unique key of a tick's job.</summary>
    public static string TickKey(string scheduleId, DateTimeOffset tick) =>
        "schedule:" + scheduleId + ":" + tick.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture);

    protected override async Task<TimeSpan> RunOnceAsync(CancellationToken cancellationToken)
    {
        var now = Server.Time.GetUtcNow();
        var due = await Server.Store.ScheduleDueAsync(new ScheduleDueParams(now, BatchLimit), cancellationToken);
        foreach (var schedule in due.Due) await FireAsync(schedule, now, cancellationToken);
        if (due.Due.Count >= BatchLimit) return TimeSpan.Zero;
        var max = Server.Options.SchedulerMaxSleep;
        if (due.NextFireAt is not { } next) return max;
        var untilNext = next - now;
        return untilNext < max ? (untilNext > TimeSpan.Zero ? untilNext : TimeSpan.FromMilliseconds(1)) : max;
    }

    private async Task FireAsync(ScheduleRecord schedule, DateTimeOffset now, CancellationToken cancellationToken)
    {
        var expected = schedule.NextFireAt!.Value;
        NewJob job;
        DateTimeOffset tick;
        DateTimeOffset? next;
        try
        {
            var cron = CronSchedule.Parse(schedule.Cron, schedule.TimeZone);
            tick = cron.LatestTick(expected, now);
            next = cron.NextAfter(now);
            var template = JsonSerializer.Deserialize(schedule.TemplateJson, ScheduleJsonContext.Default.SubmitJobRequest)
                ?? throw new DtsException(ErrorCodes.InvalidField, "The schedule's job template is empty.");
            template.UniqueKey = TickKey(schedule.Id, tick);
            template.RunAt = null;
            template.DelaySeconds = null;
            await Server.FunctionDefaults.ApplyAsync(template, cancellationToken);
            job = JobRules.Normalize(template, schedule.Owner, now);
        }
        catch (Exception ex) when (ex is DtsException or JsonException)
        {
            // Validated at creation, so only a changed rule could get here; pausing keeps it from failing every second.
            Log.ScheduleBroken(_logger, ex, schedule.Id);
            await Server.Store.ScheduleSetPausedAsync(new ScheduleSetPausedParams(schedule.Id, null, true, null, now), cancellationToken);
            return;
        }
        var fired = await Server.Store.ScheduleFireAsync(new ScheduleFireParams(schedule.Id, expected, tick, next, job, now), cancellationToken);
        if (!fired.Fired || fired.Job is not { } inserted) return;
        Count(1);
        if (tick != expected) Log.TicksSkipped(_logger, schedule.Id, expected, tick);
        if (!inserted.Coalesced && inserted.State == JobState.Queued) Server.Signals.JobsReady(inserted.Function);
    }
}
