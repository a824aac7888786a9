using System.Buffers.Text;
using System.Globalization;
using System.Text;
using Dts.Contracts;
using Dts.Core;
using Dts.Core.Storage;
using Dts.Server.Http;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Dts.Server.Endpoints;

/// <summary>The admin API (docs/protocol.md, "Administration"): users, workers, functions, jobs and queues; role administrator only.</summary>
internal static class AdminEndpoints
{
    private const int MaxUserName = 64;
    private const int MaxFunctions = 1000;
    private const int MaxTagLength = 64;
    private const long MaxQueuedLimit = 1_000_000_000_000;
    private const double MaxRate = 1_000_000;
    private const int PageSize = 1000;
    private static readonly JobState[] FinishedStates = [JobState.Succeeded, JobState.Dead, JobState.Cancelled];
    private static readonly HashSet<string> SearchParameters =
        new(["state", "function", "owner", "tag", "created_after", "created_before", "limit", "cursor"], StringComparer.Ordinal);

    public static void Map(IEndpointRouteBuilder app, ServerContext s)
    {
        RequestDelegate Admin(Func<HttpContext, Caller, Task> handler) => Api.Signed(s, Roles.Administrator, batch: false, handler);

        app.MapGet(AdminRoutes.Users, Admin((ctx, _) => UserListAsync(s, ctx)));
        app.MapPost(AdminRoutes.Users, Admin((ctx, caller) => UserCreateAsync(s, ctx, caller)));
        app.MapGet("/v1/admin/users/{name}", Admin((ctx, _) => UserGetAsync(s, ctx)));
        app.MapMethods("/v1/admin/users/{name}", [HttpMethods.Patch], Admin((ctx, caller) => UserUpdateAsync(s, ctx, caller)));
        app.MapDelete("/v1/admin/users/{name}", Admin((ctx, caller) => UserDeleteAsync(s, ctx, caller)));
        app.MapPost("/v1/admin/users/{name}/rotate-secret", Admin((ctx, _) => UserRotateAsync(s, ctx)));

        app.MapGet(AdminRoutes.Workers, Admin((ctx, _) => WorkerListAsync(s, ctx)));
        app.MapPost("/v1/admin/workers/{id}/drain", Admin((ctx, _) => WorkerDrainAsync(s, ctx)));

        app.MapGet(AdminRoutes.Functions, Admin((ctx, _) => FunctionListAsync(s, ctx)));

        app.MapGet(AdminRoutes.Jobs, Admin((ctx, _) => JobSearchAsync(s, ctx)));
        app.MapPost(AdminRoutes.JobsPurge, Admin((ctx, caller) => JobPurgeAsync(s, ctx, caller)));
        app.MapGet("/v1/admin/jobs/{id}", Admin((ctx, _) => JobGetAsync(s, ctx)));
        app.MapPost("/v1/admin/jobs/{id}/retry", Admin((ctx, _) => JobRetryAsync(s, ctx)));
        app.MapPost("/v1/admin/jobs/{id}/cancel", Admin((ctx, _) => JobCancelAsync(s, ctx)));

        app.MapGet(AdminRoutes.Queues, Admin((ctx, _) => QueueListAsync(s, ctx)));
        app.MapPost("/v1/admin/queues/{function}/pause", Admin((ctx, _) => QueueSetPausedAsync(s, ctx, paused: true)));
        app.MapPost("/v1/admin/queues/{function}/resume", Admin((ctx, _) => QueueSetPausedAsync(s, ctx, paused: false)));
    }

    // ---- users ----

    public static bool IsValidUserName(string? name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > MaxUserName) return false;
        foreach (var c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.')) return false;
        }
        return true;
    }

    private static UserView View(UserSummary u) => new()
    {
        Name = u.Name,
        Roles = [.. u.Roles],
        Disabled = u.Disabled,
        MaxQueued = u.MaxQueued,
        SubmitRate = u.SubmitRate,
        // Shown as it applies: an unset burst follows the rate.
        SubmitBurst = u.SubmitRate is { } rate ? Limits.SubmitLimiter.BurstOf(rate, u.SubmitBurst) : u.SubmitBurst,
        Functions = u.Functions is null ? null : [.. u.Functions],
        CreatedAt = u.CreatedAt,
    };

    private static UserView View(UserRecord u) => View(new UserSummary
    {
        Name = u.Name,
        Roles = u.Roles,
        Disabled = u.Disabled,
        MaxQueued = u.MaxQueued,
        SubmitRate = u.SubmitRate,
        SubmitBurst = u.SubmitBurst,
        Functions = u.Functions,
        CreatedAt = u.CreatedAt,
    });

    /// <summary>The user named in the route; a malformed name is simply a user that does not exist.</summary>
    private static string RouteUser(HttpContext ctx)
    {
        var name = ctx.Request.RouteValues["name"] as string;
        if (!IsValidUserName(name)) throw new DtsException(ErrorCodes.UserNotFound, $"No user is named '{name}'.");
        return name!;
    }

    private static async Task<UserRecord> UserOrNotFoundAsync(ServerContext s, string name, CancellationToken cancellationToken) =>
        await s.Store.UserGetAsync(name, cancellationToken) ?? throw new DtsException(ErrorCodes.UserNotFound, $"No user is named '{name}'.");

    private static List<string> CheckRoles(List<string> roles)
    {
        if (roles.Count == 0) throw new DtsException(ErrorCodes.InvalidField, $"'roles' must name at least one of {string.Join(", ", Roles.All)}.", "roles");
        foreach (var role in roles)
        {
            if (role is null || !Roles.IsKnown(role))
                throw new DtsException(ErrorCodes.InvalidField, $"'{role}' is not a role; the roles are {string.Join(", ", Roles.All)}.", "roles");
        }
        return [.. roles.Distinct(StringComparer.Ordinal)];
    }

    /// <summary>Checks the limit fields shared by create and update; 0 (or an empty list) means no limit.</summary>
    private static void CheckLimits(long? maxQueued, double? rate, double? burst, List<string>? functions)
    {
        if (maxQueued is { } mq && (mq < 0 || mq > MaxQueuedLimit))
            throw new DtsException(ErrorCodes.InvalidField, $"'max_queued' must be from 0 (no limit) to {MaxQueuedLimit}.", "max_queued");
        if (rate is { } r && (!double.IsFinite(r) || r < 0 || r > MaxRate))
            throw new DtsException(ErrorCodes.InvalidField, $"'submit_rate' must be jobs per second from 0 (no limit) to {MaxRate}.", "submit_rate");
        if (burst is { } b && (!double.IsFinite(b) || (b != 0 && b < 1) || b > MaxRate * 60))
            throw new DtsException(ErrorCodes.InvalidField, $"'submit_burst' must be 0 (the rate rounded up) or from 1 to {MaxRate * 60}.", "submit_burst");
        if (functions is null) return;
        if (functions.Count > MaxFunctions) throw new DtsException(ErrorCodes.InvalidField, $"At most {MaxFunctions} functions.", "functions");
        foreach (var f in functions)
        {
            if (!JobRules.IsValidFunctionName(f)) throw new DtsException(ErrorCodes.InvalidField, $"'{f}' is not a valid function name.", "functions");
        }
    }

    private static async Task UserListAsync(ServerContext s, HttpContext ctx)
    {
        var users = new List<UserView>();
        string? after = null;
        while (true)
        {
            var page = await s.Store.UserListAsync(new UserListParams(after, PageSize), ctx.RequestAborted);
            foreach (var u in page) users.Add(View(u));
            if (page.Count < PageSize) break;
            after = page[^1].Name;
        }
        await Api.WriteAsync(ctx, 200, new UserListResponse { Users = users }, AdminJsonContext.Default.UserListResponse);
    }

    private static async Task UserCreateAsync(ServerContext s, HttpContext ctx, Caller caller)
    {
        var r = RequestBody.Parse(caller.Body, AdminJsonContext.Default.UserCreateRequest);
        if (r.Name is null) throw new DtsException(ErrorCodes.MissingField, "'name' is required.", "name");
        if (!IsValidUserName(r.Name))
            throw new DtsException(ErrorCodes.InvalidField, $"'name' must be 1 to {MaxUserName} of letters, digits, '_', '-' and '.'.", "name");
        if (r.Roles is null) throw new DtsException(ErrorCodes.MissingField, $"'roles' is required: some of {string.Join(", ", Roles.All)}.", "roles");
        var roles = CheckRoles(r.Roles);
        CheckLimits(r.MaxQueued, r.SubmitRate, r.SubmitBurst, r.Functions);

        var secret = RequestSigning.NewSecret();
        if (!await s.Store.UserInsertAsync(new UserInsertParams(r.Name, secret, roles, s.Time.GetUtcNow()), CancellationToken.None))
            throw new DtsException(ErrorCodes.UserExists, $"A user named '{r.Name}' exists already.", "name");
        if (r.MaxQueued is > 0 || r.SubmitRate is > 0 || r.SubmitBurst is > 0 || r.Functions is { Count: > 0 })
        {
            await s.Store.UserUpdateAsync(new UserUpdateParams
            {
                Name = r.Name,
                MaxQueued = r.MaxQueued,
                SubmitRate = r.SubmitRate,
                SubmitBurst = r.SubmitBurst,
                Functions = r.Functions?.Distinct(StringComparer.Ordinal).ToList(),
            }, CancellationToken.None);
        }
        // A failed lookup of this name may be cached from before it existed.
        s.Users.Forget(r.Name);
        var user = await UserOrNotFoundAsync(s, r.Name, ctx.RequestAborted);
        ctx.Response.Headers.Location = AdminRoutes.User(r.Name);
        await Api.WriteAsync(ctx, 201, new UserSecretResponse { User = View(user), Secret = secret }, AdminJsonContext.Default.UserSecretResponse);
    }

    private static async Task UserGetAsync(ServerContext s, HttpContext ctx)
    {
        var user = await UserOrNotFoundAsync(s, RouteUser(ctx), ctx.RequestAborted);
        await Api.WriteAsync(ctx, 200, View(user), AdminJsonContext.Default.UserView);
    }

    private static async Task UserUpdateAsync(ServerContext s, HttpContext ctx, Caller caller)
    {
        var name = RouteUser(ctx);
        var r = RequestBody.Parse(caller.Body, AdminJsonContext.Default.UserUpdateRequest);
        var roles = r.Roles is null ? null : CheckRoles(r.Roles);
        CheckLimits(r.MaxQueued, r.SubmitRate, r.SubmitBurst, r.Functions);
        // An administrator who locks themself out may leave nobody able to undo it.
        if (name == caller.Name && (r.Disabled == true || (roles is not null && !roles.Contains(Roles.Administrator))))
            throw new DtsException(ErrorCodes.InvalidField, "You cannot disable yourself or take away your own administrator role; ask another administrator.",
                r.Disabled == true ? "disabled" : "roles");
        var found = await s.Store.UserUpdateAsync(new UserUpdateParams
        {
            Name = name,
            Roles = roles,
            Disabled = r.Disabled,
            MaxQueued = r.MaxQueued,
            SubmitRate = r.SubmitRate,
            SubmitBurst = r.SubmitBurst,
            Functions = r.Functions?.Distinct(StringComparer.Ordinal).ToList(),
        }, CancellationToken.None);
        if (!found) throw new DtsException(ErrorCodes.UserNotFound, $"No user is named '{name}'.");
        // Roles, disabling and limits take effect on this server's next request, not after the cache time.
        s.Users.Forget(name);
        s.Limiter.Forget(name);
        var user = await UserOrNotFoundAsync(s, name, ctx.RequestAborted);
        await Api.WriteAsync(ctx, 200, View(user), AdminJsonContext.Default.UserView);
    }

    private static async Task UserDeleteAsync(ServerContext s, HttpContext ctx, Caller caller)
    {
        var name = RouteUser(ctx);
        if (name == caller.Name) throw new DtsException(ErrorCodes.InvalidField, "You cannot delete yourself; ask another administrator.", "name");
        var result = await s.Store.UserDeleteAsync(new UserDeleteParams(name, s.Time.GetUtcNow()), CancellationToken.None);
        if (!result.Found) throw new DtsException(ErrorCodes.UserNotFound, $"No user is named '{name}'.");
        s.Users.Forget(name);
        s.Limiter.Forget(name);
        s.Signals.ResultsReady(name);
        await Api.WriteAsync(ctx, 200, new UserDeleteResponse { Name = name, CancelledJobs = result.CancelledJobs }, AdminJsonContext.Default.UserDeleteResponse);
    }

    private static async Task UserRotateAsync(ServerContext s, HttpContext ctx)
    {
        var name = RouteUser(ctx);
        var secret = RequestSigning.NewSecret();
        if (!await s.Store.UserSetSecretAsync(new UserSetSecretParams(name, secret, s.Time.GetUtcNow()), CancellationToken.None))
            throw new DtsException(ErrorCodes.UserNotFound, $"No user is named '{name}'.");
        // The old secret must stop working at once, not when the cached user expires.
        s.Users.Forget(name);
        var user = await UserOrNotFoundAsync(s, name, ctx.RequestAborted);
        await Api.WriteAsync(ctx, 200, new UserSecretResponse { User = View(user), Secret = secret }, AdminJsonContext.Default.UserSecretResponse);
    }

    // ---- workers and functions ----

    private static WorkerView View(WorkerListItem w, DateTimeOffset aliveSince) => new()
    {
        Id = w.Worker.Id,
        Name = w.Worker.Name,
        Owner = w.Worker.Owner,
        Functions = [.. w.Worker.Functions],
        Concurrency = w.Worker.Concurrency,
        Running = w.Running,
        Draining = w.Worker.Draining,
        Status = w.Worker.LastHeartbeatAt >= aliveSince ? "alive" : "lost",
        RegisteredAt = w.Worker.RegisteredAt,
        LastHeartbeatAt = w.Worker.LastHeartbeatAt,
    };

    private static DateTimeOffset AliveSince(ServerContext s) => s.Time.GetUtcNow() - s.Options.LeaseTimeout;

    private static async Task WorkerListAsync(ServerContext s, HttpContext ctx)
    {
        var aliveSince = AliveSince(s);
        var workers = new List<WorkerView>();
        string? after = null;
        while (true)
        {
            var page = await s.Store.WorkerListAsync(new WorkerListParams(after, PageSize), ctx.RequestAborted);
            foreach (var w in page) workers.Add(View(w, aliveSince));
            if (page.Count < PageSize) break;
            after = page[^1].Worker.Id;
        }
        await Api.WriteAsync(ctx, 200, new WorkerListResponse { Workers = workers }, AdminJsonContext.Default.WorkerListResponse);
    }

    private static async Task WorkerDrainAsync(ServerContext s, HttpContext ctx)
    {
        var id = ctx.Request.RouteValues["id"] as string;
        if (!JobIds.IsWellFormed(id) || !await s.Store.WorkerSetDrainingAsync(new WorkerSetDrainingParams(id!, true), CancellationToken.None))
            throw new DtsException(ErrorCodes.WorkerNotFound, $"No worker has the id '{id}'.");
        var item = (await s.Store.WorkerListAsync(new WorkerListParams(null, 1, id), ctx.RequestAborted)).FirstOrDefault()
            ?? throw new DtsException(ErrorCodes.WorkerNotFound, $"No worker has the id '{id}'.");
        await Api.WriteAsync(ctx, 200, View(item, AliveSince(s)), AdminJsonContext.Default.WorkerView);
    }

    private static async Task FunctionListAsync(ServerContext s, HttpContext ctx)
    {
        var stats = await s.Store.FunctionStatsAsync(new FunctionStatsParams(AliveSince(s)), ctx.RequestAborted);
        var views = new List<FunctionView>(stats.Count);
        foreach (var f in stats)
        {
            long C(JobState state) => f.Counts.TryGetValue(state, out var n) ? n : 0;
            views.Add(new FunctionView
            {
                Function = f.Function,
                Queued = C(JobState.Queued),
                Scheduled = C(JobState.Scheduled),
                Running = C(JobState.Running),
                Succeeded = C(JobState.Succeeded),
                Failed = C(JobState.AwaitingRetry),
                Dead = C(JobState.Dead),
                Cancelled = C(JobState.Cancelled),
                Paused = f.Paused,
                Workers = [.. f.Workers],
            });
        }
        await Api.WriteAsync(ctx, 200, new FunctionListResponse { Functions = views }, AdminJsonContext.Default.FunctionListResponse);
    }

    // ---- jobs ----

    private static string? QueryString(HttpContext ctx, string name)
    {
        var raw = ctx.Request.Query[name];
        if (raw.Count == 0) return null;
        if (raw.Count > 1 || string.IsNullOrEmpty(raw[0])) throw new DtsException(ErrorCodes.InvalidQuery, $"'{name}' must be given once, not empty.", name);
        return raw[0];
    }

    private static DateTimeOffset? QueryTime(HttpContext ctx, string name)
    {
        var raw = QueryString(ctx, name);
        if (raw is null) return null;
        if (!DateTimeOffset.TryParse(raw, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t))
            throw new DtsException(ErrorCodes.InvalidQuery, $"'{name}' must be an RFC 3339 time such as 2026-01-31T12:00:00Z.", name);
        return t;
    }

    /// <summary>The cursor is opaque to clients; it carries the last job's position so that pages never skip or repeat a job.</summary>
    internal static string EncodeCursor(long seq) => Base64Url.EncodeToString(Encoding.ASCII.GetBytes("s" + seq.ToString(CultureInfo.InvariantCulture)));

    private static long DecodeCursor(string cursor)
    {
        try
        {
            var text = Encoding.ASCII.GetString(Base64Url.DecodeFromChars(cursor));
            if (text.Length > 1 && text[0] == 's' && long.TryParse(text.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out var seq) && seq > 0)
                return seq;
        }
        catch (FormatException)
        {
            // Handled below like any other cursor the server did not make.
        }
        throw new DtsException(ErrorCodes.InvalidQuery, "'cursor' is not one this server gave; pass next_cursor from the previous page unchanged.", "cursor");
    }

    private static async Task JobSearchAsync(ServerContext s, HttpContext ctx)
    {
        foreach (var key in ctx.Request.Query.Keys)
        {
            if (!SearchParameters.Contains(key))
                throw new DtsException(ErrorCodes.InvalidQuery, $"'{key}' is not a search parameter; use {string.Join(", ", SearchParameters)}.", key);
        }
        JobState? state = null;
        if (QueryString(ctx, "state") is { } stateText)
        {
            if (!JobStates.TryParse(stateText, out var st))
                throw new DtsException(ErrorCodes.InvalidQuery, $"'{stateText}' is not a job state; the states are {string.Join(", ", Enum.GetValues<JobState>().Select(x => x.ToWire()))}.", "state");
            state = st;
        }
        var function = QueryString(ctx, "function");
        if (function is not null && !JobRules.IsValidFunctionName(function))
            throw new DtsException(ErrorCodes.InvalidQuery, $"'{function}' is not a valid function name.", "function");
        var owner = QueryString(ctx, "owner");
        if (owner is not null && !IsValidUserName(owner))
            throw new DtsException(ErrorCodes.InvalidQuery, $"'{owner}' is not a valid user name.", "owner");
        var tag = QueryString(ctx, "tag");
        if (tag is { Length: > MaxTagLength }) throw new DtsException(ErrorCodes.InvalidQuery, $"'tag' is at most {MaxTagLength} characters.", "tag");
        var after = QueryTime(ctx, "created_after");
        var before = QueryTime(ctx, "created_before");
        var limit = Api.QueryInt(ctx, "limit", 100, 1, 1000);
        var cursor = QueryString(ctx, "cursor") is { } c ? DecodeCursor(c) : (long?)null;

        var page = await s.Store.JobSearchAsync(new JobSearchParams
        {
            State = state,
            Function = function,
            Owner = owner,
            Tag = tag,
            CreatedAfter = after,
            CreatedBefore = before,
            BeforeSeq = cursor,
            Limit = limit,
        }, ctx.RequestAborted);
        var views = new List<JobView>(page.Jobs.Count);
        foreach (var j in page.Jobs) views.Add(j.ToView());
        await Api.WriteAsync(ctx, 200, new JobListResponse
        {
            Jobs = views,
            NextCursor = page.NextBeforeSeq is { } next ? EncodeCursor(next) : null,
        }, AdminJsonContext.Default.JobListResponse);
    }

    private static async Task JobGetAsync(ServerContext s, HttpContext ctx)
    {
        var id = Api.JobId(ctx);
        var job = await s.Store.JobGetAsync(new JobGetParams(id), ctx.RequestAborted)
            ?? throw new DtsException(ErrorCodes.JobNotFound, $"No job has the id '{id}'.");
        await Api.WriteAsync(ctx, 200, job.ToView(), AdminJsonContext.Default.JobView);
    }

    private static async Task JobRetryAsync(ServerContext s, HttpContext ctx)
    {
        var id = Api.JobId(ctx);
        var result = await s.Store.JobRetryAsync(new JobRetryParams(id, s.Time.GetUtcNow()), CancellationToken.None);
        switch (result.Status)
        {
            case JobRetryStatus.NotFound:
                throw new DtsException(ErrorCodes.JobNotFound, $"No job has the id '{id}'.");
            case JobRetryStatus.NotRetryable:
                throw new DtsException(ErrorCodes.JobNotRetryable, $"Job '{id}' is {result.Job!.State.ToWire()}; only dead, cancelled or awaiting_retry jobs can be retried.");
            case JobRetryStatus.UniqueKeyTaken:
                throw new DtsException(ErrorCodes.JobNotRetryable, $"Another unfinished job of '{result.Job!.Owner}' holds the unique key '{result.Job.UniqueKey}'; retry once it has finished.");
        }
        s.Signals.JobsReady(result.Job!.Function);
        await Api.WriteAsync(ctx, 200, result.Job.ToView(), AdminJsonContext.Default.JobView);
    }

    private static async Task JobCancelAsync(ServerContext s, HttpContext ctx) =>
        await Api.WriteAsync(ctx, 200, await ClientEndpoints.CancelJobAsync(s, Api.JobId(ctx), owner: null), AdminJsonContext.Default.JobView);

    private static async Task JobPurgeAsync(ServerContext s, HttpContext ctx, Caller caller)
    {
        var r = RequestBody.Parse(caller.Body, AdminJsonContext.Default.JobPurgeRequest);
        var states = r.States ?? [.. FinishedStates];
        if (states.Count == 0) throw new DtsException(ErrorCodes.InvalidField, "'states' must name at least one of succeeded, dead, cancelled (or be left out for all three).", "states");
        foreach (var st in states)
        {
            if (!st.IsTerminal())
                throw new DtsException(ErrorCodes.InvalidField, $"'{st.ToWire()}' jobs have not finished; only succeeded, dead and cancelled jobs can be purged.", "states");
        }
        if (r.Function is not null && !JobRules.IsValidFunctionName(r.Function))
            throw new DtsException(ErrorCodes.InvalidField, $"'{r.Function}' is not a valid function name.", "function");
        if (r.Owner is not null && !IsValidUserName(r.Owner))
            throw new DtsException(ErrorCodes.InvalidField, $"'{r.Owner}' is not a valid user name.", "owner");
        // Not the request's token: batches already deleted stay deleted, and the count must say so.
        var purged = await s.Store.JobPurgeAsync(
            new JobPurgeParams([.. states.Distinct()], r.Function, r.Owner, r.FinishedBefore), CancellationToken.None);
        await Api.WriteAsync(ctx, 200, new JobPurgeResponse { Purged = purged }, AdminJsonContext.Default.JobPurgeResponse);
    }

    // ---- queues ----

    private static async Task QueueListAsync(ServerContext s, HttpContext ctx)
    {
        var queues = await s.Store.QueueListAsync(new QueueListParams(), ctx.RequestAborted);
        var views = new List<QueueView>(queues.Count);
        foreach (var q in queues) views.Add(new QueueView { Function = q.Function, Paused = q.Paused, Queued = q.Queued });
        await Api.WriteAsync(ctx, 200, new QueueListResponse { Queues = views }, AdminJsonContext.Default.QueueListResponse);
    }

    private static async Task QueueSetPausedAsync(ServerContext s, HttpContext ctx, bool paused)
    {
        var function = ctx.Request.RouteValues["function"] as string;
        if (!JobRules.IsValidFunctionName(function))
            throw new DtsException(ErrorCodes.InvalidField, $"'{function}' is not a valid function name.", "function");
        var q = await s.Store.QueueSetPausedAsync(new QueueSetPausedParams(function!, paused, s.Time.GetUtcNow()), CancellationToken.None);
        // Workers long-polling for this function would otherwise sleep through the resume.
        // The whole queue became leasable at once: every waiter of the function looks.
        if (!paused) s.Signals.JobsReady(function!, JobSignals.All);
        await Api.WriteAsync(ctx, 200, new QueueView { Function = q.Function, Paused = q.Paused, Queued = q.Queued }, AdminJsonContext.Default.QueueView);
    }
}
