using System.Text.Json;
using Dts.Contracts;
using Dts.Core;
using Dts.Core.Storage;
using Dts.Server.Http;
using Dts.Server.Scheduling;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Dts.Server.Endpoints;

/// <summary>
/// Recurring schedules: a client creates, lists, pauses, resumes and deletes its own; an
/// administrator does the same across users under /v1/admin/schedules (docs/protocol.md, "Schedules").
/// </summary>
internal static class ScheduleEndpoints
{
    private const int MaxIdLength = 64;
    private const int PageSize = 1000;

    public static void Map(IEndpointRouteBuilder app, ServerContext s)
    {
        RequestDelegate Client(Func<HttpContext, Caller, Task> handler) => Api.Signed(s, Roles.Client, batch: false, handler);
        RequestDelegate Admin(Func<HttpContext, Caller, Task> handler) => Api.Signed(s, Roles.Administrator, batch: false, handler);

        app.MapPost(ScheduleRoutes.Schedules, Client((ctx, caller) => CreateAsync(s, ctx, caller)));
        app.MapGet(ScheduleRoutes.Schedules, Client((ctx, caller) => ListAsync(s, ctx, caller.Name)));
        app.MapGet("/v1/schedules/{id}", Client((ctx, caller) => GetAsync(s, ctx, caller.Name)));
        app.MapDelete("/v1/schedules/{id}", Client((ctx, caller) => DeleteAsync(s, ctx, caller.Name)));
        app.MapPost("/v1/schedules/{id}/pause", Client((ctx, caller) => SetPausedAsync(s, ctx, caller.Name, paused: true)));
        app.MapPost("/v1/schedules/{id}/resume", Client((ctx, caller) => SetPausedAsync(s, ctx, caller.Name, paused: false)));

        app.MapGet("/v1/admin/functions/{function}/defaults", Admin((ctx, _) => DefaultsGetAsync(s, ctx)));
        app.MapPut("/v1/admin/functions/{function}/defaults", Admin((ctx, caller) => DefaultsSetAsync(s, ctx, caller)));

        app.MapGet(ScheduleRoutes.AdminSchedules, Admin((ctx, _) => ListAsync(s, ctx, OwnerQuery(ctx))));
        app.MapGet("/v1/admin/schedules/{id}", Admin((ctx, _) => GetAsync(s, ctx, null)));
        app.MapDelete("/v1/admin/schedules/{id}", Admin((ctx, _) => DeleteAsync(s, ctx, null)));
        app.MapPost("/v1/admin/schedules/{id}/pause", Admin((ctx, _) => SetPausedAsync(s, ctx, null, paused: true)));
        app.MapPost("/v1/admin/schedules/{id}/resume", Admin((ctx, _) => SetPausedAsync(s, ctx, null, paused: false)));
    }

    public static bool IsValidId(string? id)
    {
        if (string.IsNullOrEmpty(id) || id.Length > MaxIdLength || !char.IsAsciiLetterOrDigit(id[0])) return false;
        foreach (var c in id)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.')) return false;
        }
        return true;
    }

    private static string? OwnerQuery(HttpContext ctx)
    {
        var raw = ctx.Request.Query["owner"];
        return raw.Count == 0 || string.IsNullOrEmpty(raw[0]) ? null : raw[0];
    }

    private static string RouteId(HttpContext ctx)
    {
        var id = ctx.Request.RouteValues["id"] as string;
        if (!IsValidId(id)) throw new DtsException(ErrorCodes.ScheduleNotFound, $"No schedule has the id '{id}'.");
        return id!;
    }

    internal static ScheduleView View(ScheduleRecord r) => new()
    {
        Id = r.Id,
        Owner = r.Owner,
        Function = r.Function,
        Cron = r.Cron,
        TimeZone = r.TimeZone,
        Paused = r.Paused,
        NextFireAt = r.NextFireAt,
        LastFiredAt = r.LastFiredAt,
        LastJobId = r.LastJobId,
        Job = JsonSerializer.Deserialize(r.TemplateJson, ScheduleJsonContext.Default.SubmitJobRequest)!,
        CreatedAt = r.CreatedAt,
    };

    private static async Task CreateAsync(ServerContext s, HttpContext ctx, Caller caller)
    {
        var request = RequestBody.Parse(caller.Body, ScheduleJsonContext.Default.ScheduleCreateRequest);
        var id = request.Id ?? "s" + JobIds.NewLeaseToken()[..16];
        if (!IsValidId(id))
            throw new DtsException(ErrorCodes.InvalidField, $"'id' must be 1 to {MaxIdLength} letters, digits, '_', '-' or '.', starting with a letter or digit.", "id");
        var cron = CronSchedule.Parse(request.Cron, request.TimeZone);
        if (request.Job is null) throw new DtsException(ErrorCodes.MissingField, "'job' is required: the job each tick submits, as for POST /v1/jobs.", "job");
        if (request.Job.RunAt is not null || request.Job.DelaySeconds is not null)
            throw new DtsException(ErrorCodes.InvalidField, "A schedule's job runs at its ticks: leave out 'run_at' and 'delay_seconds'.", "job");
        if (request.Job.UniqueKey is not null)
            throw new DtsException(ErrorCodes.InvalidField, "A schedule's job gets its unique key from the schedule and tick: leave out 'unique_key'.", "job.unique_key");
        var now = s.Time.GetUtcNow();
        // Validates the template with the same rules a submit meets, so every tick's job is acceptable.
        var probe = JobRules.Normalize(request.Job, caller.Name, now, "job");
        var record = new ScheduleRecord
        {
            Id = id,
            Owner = caller.Name,
            Function = probe.Function,
            TemplateJson = JsonSerializer.Serialize(request.Job, ScheduleJsonContext.Default.SubmitJobRequest),
            Cron = request.Cron!.Trim(),
            TimeZone = cron.Zone.Id,
            Paused = request.Paused ?? false,
            NextFireAt = cron.NextAfter(now),
            CreatedAt = now,
            UpdatedAt = now,
        };
        if (!await s.Store.ScheduleInsertAsync(record, CancellationToken.None))
            throw new DtsException(ErrorCodes.ScheduleExists, $"A schedule with the id '{id}' exists already; delete it first or choose another id.", "id");
        // Wakes the cron daemon, which may be sleeping longer than until this schedule's first tick.
        s.Signals.Scheduled();
        ctx.Response.Headers.Location = ScheduleRoutes.Schedule(id);
        await Api.WriteAsync(ctx, 201, View(record), ScheduleJsonContext.Default.ScheduleView);
    }

    private static async Task ListAsync(ServerContext s, HttpContext ctx, string? owner)
    {
        var all = new List<ScheduleView>();
        string? after = null;
        while (true)
        {
            var page = await s.Store.ScheduleListAsync(new ScheduleListParams(owner, after, PageSize), ctx.RequestAborted);
            all.AddRange(page.Select(View));
            if (page.Count < PageSize) break;
            after = page[^1].Id;
        }
        await Api.WriteAsync(ctx, 200, new ScheduleListResponse { Schedules = all }, ScheduleJsonContext.Default.ScheduleListResponse);
    }

    private static async Task GetAsync(ServerContext s, HttpContext ctx, string? owner)
    {
        var id = RouteId(ctx);
        var schedule = await s.Store.ScheduleGetAsync(new ScheduleGetParams(id, owner), ctx.RequestAborted)
            ?? throw new DtsException(ErrorCodes.ScheduleNotFound, $"No schedule has the id '{id}'.");
        await Api.WriteAsync(ctx, 200, View(schedule), ScheduleJsonContext.Default.ScheduleView);
    }

    private static async Task DeleteAsync(ServerContext s, HttpContext ctx, string? owner)
    {
        var id = RouteId(ctx);
        // Answers with the schedule as it was, so a script sees what it deleted.
        var schedule = await s.Store.ScheduleGetAsync(new ScheduleGetParams(id, owner), ctx.RequestAborted);
        if (schedule is null || !await s.Store.ScheduleDeleteAsync(new ScheduleDeleteParams(id, owner), CancellationToken.None))
            throw new DtsException(ErrorCodes.ScheduleNotFound, $"No schedule has the id '{id}'.");
        await Api.WriteAsync(ctx, 200, View(schedule), ScheduleJsonContext.Default.ScheduleView);
    }

    private static async Task SetPausedAsync(ServerContext s, HttpContext ctx, string? owner, bool paused)
    {
        var id = RouteId(ctx);
        var now = s.Time.GetUtcNow();
        DateTimeOffset? next = null;
        if (!paused)
        {
            var current = await s.Store.ScheduleGetAsync(new ScheduleGetParams(id, owner), ctx.RequestAborted)
                ?? throw new DtsException(ErrorCodes.ScheduleNotFound, $"No schedule has the id '{id}'.");
            next = CronSchedule.Parse(current.Cron, current.TimeZone).NextAfter(now);
        }
        var updated = await s.Store.ScheduleSetPausedAsync(new ScheduleSetPausedParams(id, owner, paused, next, now), CancellationToken.None)
            ?? throw new DtsException(ErrorCodes.ScheduleNotFound, $"No schedule has the id '{id}'.");
        if (!paused) s.Signals.Scheduled();
        await Api.WriteAsync(ctx, 200, View(updated), ScheduleJsonContext.Default.ScheduleView);
    }

    // Per-function job defaults: here because schedules' jobs use them as submits do.

    private static string RouteFunction(HttpContext ctx)
    {
        var function = ctx.Request.RouteValues["function"] as string;
        if (!JobRules.IsValidFunctionName(function))
            throw new DtsException(ErrorCodes.InvalidField, $"'{function}' is not a valid function name.", "function");
        return function!;
    }

    private static FunctionDefaultsView View(string function, FunctionDefaults? d) => new()
    {
        Function = function,
        MaxAttempts = d?.MaxAttempts,
        TimeoutSeconds = d?.Timeout?.TotalSeconds,
        RetentionSeconds = d?.Retention?.TotalSeconds,
    };

    private static async Task DefaultsGetAsync(ServerContext s, HttpContext ctx)
    {
        var function = RouteFunction(ctx);
        var defaults = await s.Store.FunctionDefaultsGetAsync(function, ctx.RequestAborted);
        await Api.WriteAsync(ctx, 200, View(function, defaults), FunctionDefaultsJsonContext.Default.FunctionDefaultsView);
    }

    private static async Task DefaultsSetAsync(ServerContext s, HttpContext ctx, Caller caller)
    {
        var function = RouteFunction(ctx);
        var r = RequestBody.Parse(caller.Body, FunctionDefaultsJsonContext.Default.FunctionDefaultsView);
        if (r.Function is not null && r.Function != function)
            throw new DtsException(ErrorCodes.InvalidField, $"'function' is '{r.Function}' but the path names '{function}'; leave it out.", "function");
        // The same limits a submit meets, checked by the submit rules on a probe job.
        JobRules.Normalize(new SubmitJobRequest
        {
            Function = function, MaxAttempts = r.MaxAttempts, TimeoutSeconds = r.TimeoutSeconds, RetentionSeconds = r.RetentionSeconds,
        }, caller.Name, s.Time.GetUtcNow());
        var defaults = new FunctionDefaults(function, r.MaxAttempts,
            r.TimeoutSeconds is { } t ? TimeSpan.FromSeconds(t) : null,
            r.RetentionSeconds is { } ret ? TimeSpan.FromSeconds(ret) : null);
        await s.Store.FunctionDefaultsSetAsync(new FunctionDefaultsSetParams(defaults, s.Time.GetUtcNow()), CancellationToken.None);
        s.FunctionDefaults.Forget(function);
        await Api.WriteAsync(ctx, 200, View(function, defaults.MaxAttempts is null && defaults.Timeout is null && defaults.Retention is null ? null : defaults),
            FunctionDefaultsJsonContext.Default.FunctionDefaultsView);
    }
}
