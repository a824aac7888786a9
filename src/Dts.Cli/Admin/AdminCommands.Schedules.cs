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
        new("function", "defaults", "function defaults FUNCTION", "Show the job defaults of a function (max_attempts, timeout_seconds, retention_seconds).", FunctionDefaultsGetAsync),
        new("function", "set", "function set FUNCTION [max_attempts=N] [timeout_seconds=S] [retention_seconds=S]",
            "Change a function's job defaults, used when a submit leaves them out (none falls back to the server's).", FunctionDefaultsSetAsync),
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

    private static async Task<AdminOutput> FunctionDefaultsGetAsync(AdminCall c)
    {
        var function = c.Id("FUNCTION");
        c.NoMorePositionals(1);
        c.OnlyKeys();
        var defaults = await c.Client.GetFunctionDefaultsAsync(function, c.CancellationToken).ConfigureAwait(false);
        return Single(ToObject(defaults, FunctionDefaultsJsonContext.Default.FunctionDefaultsView), []);
    }

    private static async Task<AdminOutput> FunctionDefaultsSetAsync(AdminCall c)
    {
        var function = c.Id("FUNCTION");
        c.NoMorePositionals(1);
        c.OnlyKeys("max_attempts", "timeout_seconds", "retention_seconds");
        if (c.Line.Options.Count == 0)
            throw new AdminUsageException("function set needs at least one of max_attempts=, timeout_seconds=, retention_seconds=");
        // The API replaces all three; keys not given keep their current value. 0 (or none) clears one.
        var current = await c.Client.GetFunctionDefaultsAsync(function, c.CancellationToken).ConfigureAwait(false);
        var attempts = c.Long("max_attempts");
        var timeout = c.Double("timeout_seconds");
        var retention = c.Double("retention_seconds");
        var changed = new FunctionDefaultsView
        {
            MaxAttempts = attempts is null ? current.MaxAttempts : attempts == 0 ? null : (int)Math.Min(attempts.Value, int.MaxValue),
            TimeoutSeconds = timeout is null ? current.TimeoutSeconds : timeout == 0 ? null : timeout,
            RetentionSeconds = retention is null ? current.RetentionSeconds : retention == 0 ? null : retention,
        };
        var stored = await c.Client.SetFunctionDefaultsAsync(function, changed, c.CancellationToken).ConfigureAwait(false);
        return Single(ToObject(stored, FunctionDefaultsJsonContext.Default.FunctionDefaultsView), []);
    }
}
