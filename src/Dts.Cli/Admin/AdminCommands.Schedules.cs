using Dts.Contracts;

namespace Dts.Cli.Admin;

// The "schedule" module: every user's recurring schedules (clients create them through the API).
internal static partial class AdminCommands
{
    private static readonly IReadOnlyList<string> ScheduleFields = FieldsOf(ScheduleJsonContext.Default.ScheduleView);
    private static readonly IReadOnlyList<string> ScheduleListColumns = ["id", "owner", "function", "cron", "time_zone", "paused", "next_fire_at", "last_fired_at"];

    // Computed on use: a static initialiser here could run after the one of Actions in the other file.
    private static IReadOnlyList<AdminAction> ScheduleActions =>
    [
        new("schedule", "list", "schedule list [owner=U] [field ...]", "List recurring schedules of every user (or one owner).", ScheduleListAsync),
        new("schedule", "get", "schedule get ID [field ...]", "Show a schedule, or only the fields named.", ScheduleGetAsync),
        new("schedule", "pause", "schedule pause ID", "Stop a schedule from firing; its ticks are skipped while paused.", c => ScheduleSwitchAsync(c, pause: true)),
        new("schedule", "resume", "schedule resume ID", "Fire again from the next tick after now.", c => ScheduleSwitchAsync(c, pause: false)),
        new("schedule", "delete", "schedule delete ID", "Delete a schedule; jobs it already made are kept.", ScheduleDeleteAsync),
    ];

    private static async Task<AdminOutput> ScheduleListAsync(AdminCall c)
    {
        var fields = c.Fields(0, ScheduleFields);
        c.OnlyKeys("owner");
        var answer = await c.Client.ListSchedulesAsync(c.Text("owner"), c.CancellationToken).ConfigureAwait(false);
        return Many("schedules", answer.Schedules.Select(s => ToObject(s, ScheduleJsonContext.Default.ScheduleView)), fields, ScheduleListColumns);
    }

    private static async Task<AdminOutput> ScheduleGetAsync(AdminCall c)
    {
        var id = c.Id("a schedule ID");
        var fields = c.Fields(1, ScheduleFields);
        c.OnlyKeys();
        var schedule = await c.Client.GetScheduleAsync(id, c.CancellationToken).ConfigureAwait(false);
        return Single(ToObject(schedule, ScheduleJsonContext.Default.ScheduleView), fields);
    }

    private static async Task<AdminOutput> ScheduleSwitchAsync(AdminCall c, bool pause)
    {
        var id = c.Id("a schedule ID");
        c.NoMorePositionals(1);
        c.OnlyKeys();
        var schedule = pause
            ? await c.Client.PauseScheduleAsync(id, c.CancellationToken).ConfigureAwait(false)
            : await c.Client.ResumeScheduleAsync(id, c.CancellationToken).ConfigureAwait(false);
        var next = schedule.NextFireAt is { } at ? $"; next tick {at:O}" : "";
        return AdminOutput.Message($"schedule {schedule.Id} is {(schedule.Paused ? "paused" : "active")}{(schedule.Paused ? "" : next)}",
            ToObject(schedule, ScheduleJsonContext.Default.ScheduleView));
    }

    private static async Task<AdminOutput> ScheduleDeleteAsync(AdminCall c)
    {
        var id = c.Id("a schedule ID");
        c.NoMorePositionals(1);
        c.OnlyKeys();
        var schedule = await c.Client.DeleteScheduleAsync(id, c.CancellationToken).ConfigureAwait(false);
        return AdminOutput.Message($"schedule {schedule.Id} of {schedule.Owner} deleted", ToObject(schedule, ScheduleJsonContext.Default.ScheduleView));
    }
}
