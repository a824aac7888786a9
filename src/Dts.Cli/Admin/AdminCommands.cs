using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization.Metadata;
using Dts.Client;
using Dts.Contracts;

namespace Dts.Cli.Admin;

/// <summary>One console action: its module and name, how it is written, one line of help, and what it does.</summary>
internal sealed record AdminAction(
    string Module, string Name, string Usage, string Summary,
    Func<AdminCall, Task<AdminOutput>> Run);

/// <summary>What an action runs with: the parsed line, the admin client, the clock for relative times, the command's token.</summary>
internal sealed record AdminCall(AdminLine Line, DtsAdminClient Client, TimeProvider Time, CancellationToken CancellationToken)
{
    private string Command => $"{Line.Module} {Line.Action}";

    /// <summary>The first positional word, which the action needs (a user name, job id, function).</summary>
    public string Id(string what)
    {
        if (Line.Positionals.Count == 0 || Line.Positionals[0].Length == 0)
            throw new AdminUsageException($"{Command} needs {what}; see 'help {Line.Module}'");
        return Line.Positionals[0];
    }

    /// <summary>Refuses positional words beyond the first <paramref name="count"/> for actions that take no field names.</summary>
    public void NoMorePositionals(int count)
    {
        if (Line.Positionals.Count > count)
            throw new AdminUsageException($"{Command} does not take '{Line.Positionals[count]}'; see 'help {Line.Module}'");
    }

    /// <summary>Refuses keys the action does not know, so a typo is not silently ignored.</summary>
    public void OnlyKeys(params string[] keys)
    {
        foreach (var key in Line.Options.Keys)
        {
            if (!keys.Contains(key, StringComparer.Ordinal))
            {
                throw new AdminUsageException(keys.Length == 0
                    ? $"{Command} takes no key=value options ({key}= given)"
                    : $"{Command} does not take {key}=; it takes {string.Join(", ", keys.Select(k => k + "="))}");
            }
        }
    }

    public string? Text(string key) => Line.Options.TryGetValue(key, out var v) ? v : null;

    /// <summary>A comma-separated list; an empty value is an empty list (which clears, where the API allows).</summary>
    public List<string>? List(string key) =>
        Text(key) is { } v ? v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList() : null;

    /// <summary>A whole number of at least 0; <c>none</c> is 0, which the API reads as "no limit".</summary>
    public long? Long(string key)
    {
        if (Text(key) is not { } v) return null;
        if (string.Equals(v, "none", StringComparison.OrdinalIgnoreCase)) return 0;
        if (long.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var n)) return n;
        throw new AdminUsageException($"{key}={v}: expected a whole number of at least 0, or none");
    }

    public double? Double(string key)
    {
        if (Text(key) is not { } v) return null;
        if (string.Equals(v, "none", StringComparison.OrdinalIgnoreCase)) return 0;
        if (double.TryParse(v, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var d) && double.IsFinite(d)) return d;
        throw new AdminUsageException($"{key}={v}: expected a number of at least 0, or none");
    }

    public bool? Bool(string key) => Text(key) switch
    {
        null => null,
        "true" or "yes" or "1" => true,
        "false" or "no" or "0" => false,
        var v => throw new AdminUsageException($"{key}={v}: expected true or false"),
    };

    public int? Int(string key, int min, int max)
    {
        if (Text(key) is not { } v) return null;
        if (int.TryParse(v, NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n >= min && n <= max) return n;
        throw new AdminUsageException($"{key}={v}: expected a whole number from {min} to {max}");
    }

    public JobState? State(string key)
    {
        if (Text(key) is not { } v) return null;
        if (JobStates.TryParse(v, out var state)) return state;
        throw new AdminUsageException($"{key}={v}: expected one of {string.Join(", ", Enum.GetValues<JobState>().Select(s => s.ToWire()))}");
    }

    /// <summary>
    /// An RFC 3339 time (<c>2026-01-31T12:00:00Z</c>, or a date, read as UTC), or an age counted back from now:
    /// a number with <c>s</c>, <c>m</c>, <c>h</c> or <c>d</c> (<c>90m</c>, <c>7d</c>).
    /// </summary>
    public DateTimeOffset? When(string key)
    {
        if (Text(key) is not { } v) return null;
        if (v.Length >= 2 && "smhd".Contains(v[^1], StringComparison.Ordinal)
            && double.TryParse(v[..^1], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var amount) && double.IsFinite(amount))
        {
            var age = v[^1] switch
            {
                's' => TimeSpan.FromSeconds(amount),
                'm' => TimeSpan.FromMinutes(amount),
                'h' => TimeSpan.FromHours(amount),
                _ => TimeSpan.FromDays(amount),
            };
            return Time.GetUtcNow() - age;
        }
        if (DateTimeOffset.TryParse(v, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var at)) return at;
        throw new AdminUsageException($"{key}={v}: expected a time such as 2026-01-31T12:00:00Z, or an age such as 90m or 7d");
    }

    /// <summary>The field names after the first <paramref name="skip"/> positional words, checked against the view's fields.</summary>
    public IReadOnlyList<string> Fields(int skip, IReadOnlyList<string> known)
    {
        var fields = Line.Positionals.Skip(skip).Select(f => f.ToLowerInvariant()).ToList();
        foreach (var f in fields)
        {
            if (!known.Contains(f, StringComparer.Ordinal))
                throw new AdminUsageException($"unknown field '{f}'; fields: {string.Join(", ", known)}");
        }
        return fields;
    }
}

/// <summary>
/// The console's command table: every <c>&lt;module&gt; &lt;action&gt;</c>, mapped to an admin client call and
/// to an <see cref="AdminOutput"/>. Field names are the API's JSON names (<c>max_queued</c>, <c>created_at</c>).
/// </summary>
internal static partial class AdminCommands
{
    private static readonly IReadOnlyList<string> UserFields = FieldsOf(AdminJsonContext.Default.UserView);
    private static readonly IReadOnlyList<string> WorkerFields = FieldsOf(AdminJsonContext.Default.WorkerView);
    private static readonly IReadOnlyList<string> FunctionFields = FieldsOf(AdminJsonContext.Default.FunctionView);
    private static readonly IReadOnlyList<string> JobFields = FieldsOf(AdminJsonContext.Default.JobView);
    private static readonly IReadOnlyList<string> QueueFields = FieldsOf(AdminJsonContext.Default.QueueView);

    // Jobs have too many fields for one table row; a list shows these unless fields are named.
    private static readonly IReadOnlyList<string> JobListColumns = ["id", "function", "state", "owner", "attempts", "created_at"];
    private static readonly IReadOnlyList<string> WorkerListColumns = ["id", "name", "owner", "functions", "running", "concurrency", "draining", "status", "last_heartbeat_at"];

    private static readonly JsonElement JsonNull = JsonValues.Parse("null");

    public static IReadOnlyList<string> Modules { get; } = ["user", "worker", "function", "job", "queue", "schedule", "help"];

    public static IReadOnlyList<AdminAction> Actions { get; } =
    [
        new("user", "add", "user add NAME [roles=a,b] [max_queued=N] [submit_rate=R] [submit_burst=B] [functions=f,g]",
            "Create a user; prints its secret, shown only this once.", UserAddAsync),
        new("user", "get", "user get NAME [field ...]", "Show a user, or only the fields named.", UserGetAsync),
        new("user", "list", "user list [field ...]", "List users.", UserListAsync),
        new("user", "set", "user set NAME key=value ...", "Change roles, disabled, max_queued, submit_rate, submit_burst or functions (none clears a limit).", UserSetAsync),
        new("user", "disable", "user disable NAME", "Refuse the user's requests until enabled.", c => UserSetDisabledAsync(c, true)),
        new("user", "enable", "user enable NAME", "Accept the user's requests again.", c => UserSetDisabledAsync(c, false)),
        new("user", "rotate", "user rotate NAME", "Give the user a new secret (printed once); the old one stops working.", UserRotateAsync),
        new("user", "delete", "user delete NAME", "Delete a user; its unfinished jobs are cancelled.", UserDeleteAsync),
        new("worker", "list", "worker list [field ...]", "List workers with their functions, running jobs and last heartbeat.", WorkerListAsync),
        new("worker", "drain", "worker drain ID", "Let a worker finish its running jobs and give it no new ones.", WorkerDrainAsync),
        new("function", "list", "function list [field ...]", "Jobs per state for each function, and the workers able to run it.", FunctionListAsync),
        new("job", "list", "job list [state=S] [function=F] [owner=U] [tag=T] [since=TIME] [until=TIME] [limit=N] [cursor=C] [field ...]",
            "Search jobs, newest first, one page at a time (TIME: 2026-01-31T12:00:00Z or an age: 90m, 7d).", JobListAsync),
        new("job", "get", "job get ID [field ...]", "Show any user's job, or only the fields named.", JobGetAsync),
        new("job", "retry", "job retry ID", "Queue a dead, failed or cancelled job again with fresh attempts.", JobRetryAsync),
        new("job", "cancel", "job cancel ID", "Cancel any user's job.", JobCancelAsync),
        new("job", "logs", "job logs ID [follow]", "Show a job's log lines; with follow, keep printing new lines until the job ends.", JobLogsAsync),
        new("job", "purge", "job purge [state=a,b] [function=F] [owner=U] [before=TIME]", "Delete finished jobs (succeeded, dead, cancelled) matching every condition.", JobPurgeAsync),
        new("queue", "list", "queue list [field ...]", "Show each function's queue: paused or not, jobs queued.", QueueListAsync),
        new("queue", "pause", "queue pause FUNCTION", "Stop giving this function's jobs to workers; submits still queue.", c => QueueSwitchAsync(c, pause: true)),
        new("queue", "resume", "queue resume FUNCTION", "Give this function's jobs to workers again.", c => QueueSwitchAsync(c, pause: false)),
        .. ScheduleActions,
        new("help", "", "help [module]", "List modules and actions, or one module's actions.", c => Task.FromResult(Help(c.Line))),
    ];

    /// <summary>Finds the action of a line; an unknown module or action is a usage error naming what exists.</summary>
    public static AdminAction Find(AdminLine line)
    {
        if (line.Module == "help") return Actions[^1];
        if (!Modules.Contains(line.Module, StringComparer.Ordinal))
            throw new AdminUsageException($"unknown module '{line.Module}'; modules: {string.Join(", ", Modules)}");
        var names = Actions.Where(a => a.Module == line.Module).Select(a => a.Name).ToList();
        if (line.Action is null)
            throw new AdminUsageException($"{line.Module} needs an action: {string.Join(", ", names)}");
        return Actions.FirstOrDefault(a => a.Module == line.Module && a.Name == line.Action)
            ?? throw new AdminUsageException($"unknown action '{line.Module} {line.Action}'; {line.Module} actions: {string.Join(", ", names)}");
    }

    public static Task<AdminOutput> RunAsync(AdminLine line, DtsAdminClient client, TimeProvider time, CancellationToken cancellationToken) =>
        Find(line).Run(new AdminCall(line, client, time, cancellationToken));

    /// <summary><c>help</c> or <c>help MODULE</c>: one row per action. Needs no server.</summary>
    public static AdminOutput Help(AdminLine line)
    {
        // "help user" parses with "user" as the action word.
        var module = line.Action ?? line.Positionals.FirstOrDefault()?.ToLowerInvariant();
        if (module is not null && !Modules.Contains(module, StringComparer.Ordinal))
            throw new AdminUsageException($"unknown module '{module}'; modules: {string.Join(", ", Modules)}");
        var actions = Actions.Where(a => module is null || a.Module == module).ToList();
        var rows = actions.Select(a => (JsonNode)new JsonObject { ["module"] = a.Module, ["action"] = a.Name, ["usage"] = a.Usage, ["summary"] = a.Summary });
        // Plain lines, not a table: a table wraps long usages over several lines at the terminal's width.
        var width = Math.Min(36, actions.Max(a => a.Usage.Length));
        var lines = actions.Select(a => "  " + a.Usage.PadRight(width) + "  " + a.Summary).ToList();
        if (module is null) lines.Add("Type exit or quit (or Ctrl-D) to leave; Ctrl-C cancels the line or the request running.");
        return new AdminOutput { Json = new JsonArray(rows.ToArray()), Lines = lines };
    }

    // Users.

    private static async Task<AdminOutput> UserAddAsync(AdminCall c)
    {
        var name = c.Id("NAME");
        c.NoMorePositionals(1);
        c.OnlyKeys("roles", "max_queued", "submit_rate", "submit_burst", "functions");
        var request = new UserCreateRequest
        {
            Name = name,
            Roles = c.List("roles"),
            MaxQueued = c.Long("max_queued"),
            SubmitRate = c.Double("submit_rate"),
            SubmitBurst = c.Double("submit_burst"),
            Functions = c.List("functions"),
        };
        var answer = await c.Client.CreateUserAsync(request, c.CancellationToken).ConfigureAwait(false);
        return WithSecret(answer);
    }

    private static async Task<AdminOutput> UserRotateAsync(AdminCall c)
    {
        var name = c.Id("NAME");
        c.NoMorePositionals(1);
        c.OnlyKeys();
        return WithSecret(await c.Client.RotateSecretAsync(name, c.CancellationToken).ConfigureAwait(false));
    }

    /// <summary>The one place a secret is printed: the answer of user add or user rotate.</summary>
    private static AdminOutput WithSecret(UserSecretResponse answer) => new()
    {
        Json = ToObject(answer, AdminJsonContext.Default.UserSecretResponse),
        Record = ToObject(answer.User, AdminJsonContext.Default.UserView),
        Lines = [$"secret: {answer.Secret}", "(shown only now: give it to the user; it cannot be read again)"],
    };

    private static async Task<AdminOutput> UserGetAsync(AdminCall c)
    {
        var name = c.Id("NAME");
        var fields = c.Fields(1, UserFields);
        c.OnlyKeys();
        var user = await c.Client.GetUserAsync(name, c.CancellationToken).ConfigureAwait(false);
        return Single(ToObject(user, AdminJsonContext.Default.UserView), fields);
    }

    private static async Task<AdminOutput> UserListAsync(AdminCall c)
    {
        var fields = c.Fields(0, UserFields);
        c.OnlyKeys();
        var answer = await c.Client.ListUsersAsync(c.CancellationToken).ConfigureAwait(false);
        return Many("users", answer.Users.Select(u => ToObject(u, AdminJsonContext.Default.UserView)), fields, UserFields);
    }

    private static async Task<AdminOutput> UserSetAsync(AdminCall c)
    {
        var name = c.Id("NAME");
        c.NoMorePositionals(1);
        c.OnlyKeys("roles", "disabled", "max_queued", "submit_rate", "submit_burst", "functions");
        if (c.Line.Options.Count == 0)
            throw new AdminUsageException("user set needs at least one key=value: roles, disabled, max_queued, submit_rate, submit_burst, functions");
        var changes = new UserUpdateRequest
        {
            Roles = c.List("roles"),
            Disabled = c.Bool("disabled"),
            MaxQueued = c.Long("max_queued"),
            SubmitRate = c.Double("submit_rate"),
            SubmitBurst = c.Double("submit_burst"),
            Functions = c.List("functions"),
        };
        var user = await c.Client.UpdateUserAsync(name, changes, c.CancellationToken).ConfigureAwait(false);
        return Single(ToObject(user, AdminJsonContext.Default.UserView), []);
    }

    private static async Task<AdminOutput> UserSetDisabledAsync(AdminCall c, bool disabled)
    {
        var name = c.Id("NAME");
        c.NoMorePositionals(1);
        c.OnlyKeys();
        var user = await c.Client.UpdateUserAsync(name, new UserUpdateRequest { Disabled = disabled }, c.CancellationToken).ConfigureAwait(false);
        return Single(ToObject(user, AdminJsonContext.Default.UserView), []);
    }

    private static async Task<AdminOutput> UserDeleteAsync(AdminCall c)
    {
        var name = c.Id("NAME");
        c.NoMorePositionals(1);
        c.OnlyKeys();
        var answer = await c.Client.DeleteUserAsync(name, c.CancellationToken).ConfigureAwait(false);
        return AdminOutput.Message($"deleted user {answer.Name}; {answer.CancelledJobs} unfinished job(s) cancelled",
            ToObject(answer, AdminJsonContext.Default.UserDeleteResponse));
    }

    // Workers and functions.

    private static async Task<AdminOutput> WorkerListAsync(AdminCall c)
    {
        var fields = c.Fields(0, WorkerFields);
        c.OnlyKeys();
        var answer = await c.Client.ListWorkersAsync(c.CancellationToken).ConfigureAwait(false);
        return Many("workers", answer.Workers.Select(w => ToObject(w, AdminJsonContext.Default.WorkerView)), fields, WorkerListColumns);
    }

    private static async Task<AdminOutput> WorkerDrainAsync(AdminCall c)
    {
        var id = c.Id("ID");
        c.NoMorePositionals(1);
        c.OnlyKeys();
        var worker = await c.Client.DrainWorkerAsync(id, c.CancellationToken).ConfigureAwait(false);
        return AdminOutput.Message($"worker {worker.Id} ({worker.Name}) is draining; {worker.Running} job(s) still running",
            ToObject(worker, AdminJsonContext.Default.WorkerView));
    }

    private static async Task<AdminOutput> FunctionListAsync(AdminCall c)
    {
        var fields = c.Fields(0, FunctionFields);
        c.OnlyKeys();
        var answer = await c.Client.ListFunctionsAsync(c.CancellationToken).ConfigureAwait(false);
        return Many("functions", answer.Functions.Select(f => ToObject(f, AdminJsonContext.Default.FunctionView)), fields, FunctionFields);
    }

    // Jobs.

    private static async Task<AdminOutput> JobListAsync(AdminCall c)
    {
        var fields = c.Fields(0, JobFields);
        c.OnlyKeys("state", "function", "owner", "tag", "since", "until", "limit", "cursor");
        var search = new JobSearch
        {
            State = c.State("state"),
            Function = c.Text("function"),
            Owner = c.Text("owner"),
            Tag = c.Text("tag"),
            CreatedAfter = c.When("since"),
            CreatedBefore = c.When("until"),
            Limit = c.Int("limit", 1, 1000),
            Cursor = c.Text("cursor"),
        };
        var page = await c.Client.SearchJobsAsync(search, c.CancellationToken).ConfigureAwait(false);
        var rows = page.Jobs.Select(ToObject).ToList();
        var output = Many("jobs", rows, fields, JobListColumns);
        var json = output.Json.AsObject();
        if (page.NextCursor is not { } cursor)
            return new AdminOutput { Json = json, Rows = output.Rows, Columns = output.Columns, Lines = [$"{rows.Count} job(s); no more pages"] };
        json["next_cursor"] = cursor;
        return new AdminOutput
        {
            Json = json,
            Rows = output.Rows,
            Columns = output.Columns,
            Lines = [$"{rows.Count} job(s) shown; for the next page: {NextPageCommand(c.Line, cursor)}"],
        };
    }

    /// <summary>The same search with the new cursor, written so that it can be typed back as is.</summary>
    internal static string NextPageCommand(AdminLine line, string cursor)
    {
        var words = new List<string> { "job", "list" };
        words.AddRange(line.Options.Where(o => o.Key != "cursor").Select(o => o.Key + "=" + Quote(o.Value)));
        words.Add("cursor=" + Quote(cursor));
        words.AddRange(line.Positionals.Select(Quote));
        return string.Join(' ', words);
    }

    private static string Quote(string value) =>
        value.Length > 0 && value.All(ch => !char.IsWhiteSpace(ch) && ch is not ('"' or '\'' or '#' or '\\'))
            ? value
            : "\"" + value.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";

    private static async Task<AdminOutput> JobGetAsync(AdminCall c)
    {
        var id = c.Id("ID");
        var fields = c.Fields(1, JobFields);
        c.OnlyKeys();
        var job = await c.Client.GetJobAsync(id, c.CancellationToken).ConfigureAwait(false);
        return Single(ToObject(job), fields);
    }

    /// <summary>How long one follow request waits on the server; well under the client's request timeout.</summary>
    private const double FollowWaitSeconds = 25;

    private static Task<AdminOutput> JobLogsAsync(AdminCall c)
    {
        var id = c.Id("ID");
        var follow = c.Line.Positionals.Count > 1 && string.Equals(c.Line.Positionals[1], "follow", StringComparison.OrdinalIgnoreCase);
        c.NoMorePositionals(follow ? 2 : 1);
        c.OnlyKeys();
        return Task.FromResult(new AdminOutput
        {
            Json = new JsonObject(),
            Stream = async (line, item, cancellationToken) =>
            {
                long after = 0;
                while (true)
                {
                    var page = await c.Client.GetJobLogsAsync(id, after, follow ? FollowWaitSeconds : 0, cancellationToken: cancellationToken).ConfigureAwait(false);
                    foreach (var l in page.Lines)
                    {
                        await line(FormatLogLine(l)).ConfigureAwait(false);
                        await item(ToObject(l, DtsJsonContext.Default.LogLineView)).ConfigureAwait(false);
                    }
                    after = page.Next;
                    if (page.Finished)
                    {
                        await line($"job {id} ended {page.State.ToWire()}").ConfigureAwait(false);
                        return;
                    }
                    // Without follow: read on only while full pages come back, then stop at the end of what is there.
                    if (!follow && page.Lines.Count == 0) return;
                }
            },
        });
    }

    internal static string FormatLogLine(LogLineView l) =>
        string.Create(CultureInfo.InvariantCulture, $"{l.At.ToLocalTime():HH:mm:ss.fff} {l.Stream,-6} {l.Text}");

    private static async Task<AdminOutput> JobRetryAsync(AdminCall c)
    {
        var id = c.Id("ID");
        c.NoMorePositionals(1);
        c.OnlyKeys();
        var job = await c.Client.RetryJobAsync(id, c.CancellationToken).ConfigureAwait(false);
        return AdminOutput.Message($"job {job.Id} is {job.State.ToWire()} again", ToObject(job));
    }

    private static async Task<AdminOutput> JobCancelAsync(AdminCall c)
    {
        var id = c.Id("ID");
        c.NoMorePositionals(1);
        c.OnlyKeys();
        var job = await c.Client.CancelJobAsync(id, c.CancellationToken).ConfigureAwait(false);
        var text = job.State == JobState.Cancelled
            ? $"job {job.Id} is cancelled"
            : $"job {job.Id} is {job.State.ToWire()}; cancellation requested from its worker";
        return AdminOutput.Message(text, ToObject(job));
    }

    private static async Task<AdminOutput> JobPurgeAsync(AdminCall c)
    {
        c.NoMorePositionals(0);
        c.OnlyKeys("state", "function", "owner", "before");
        List<JobState>? states = null;
        if (c.List("state") is { } names)
        {
            states = [];
            foreach (var n in names)
            {
                if (!JobStates.TryParse(n, out var s) || !s.IsTerminal())
                    throw new AdminUsageException($"state={c.Text("state")}: purge takes finished states only: succeeded, dead, cancelled");
                states.Add(s);
            }
        }
        var filter = new JobPurgeRequest { States = states, Function = c.Text("function"), Owner = c.Text("owner"), FinishedBefore = c.When("before") };
        var answer = await c.Client.PurgeJobsAsync(filter, c.CancellationToken).ConfigureAwait(false);
        return AdminOutput.Message($"purged {answer.Purged} job(s)", ToObject(answer, AdminJsonContext.Default.JobPurgeResponse));
    }

    // Queues.

    private static async Task<AdminOutput> QueueListAsync(AdminCall c)
    {
        var fields = c.Fields(0, QueueFields);
        c.OnlyKeys();
        var answer = await c.Client.ListQueuesAsync(c.CancellationToken).ConfigureAwait(false);
        return Many("queues", answer.Queues.Select(q => ToObject(q, AdminJsonContext.Default.QueueView)), fields, QueueFields);
    }

    private static async Task<AdminOutput> QueueSwitchAsync(AdminCall c, bool pause)
    {
        var function = c.Id("FUNCTION");
        c.NoMorePositionals(1);
        c.OnlyKeys();
        var queue = pause
            ? await c.Client.PauseQueueAsync(function, c.CancellationToken).ConfigureAwait(false)
            : await c.Client.ResumeQueueAsync(function, c.CancellationToken).ConfigureAwait(false);
        return AdminOutput.Message($"queue {queue.Function} is {(queue.Paused ? "paused" : "running")}; {queue.Queued} job(s) queued",
            ToObject(queue, AdminJsonContext.Default.QueueView));
    }

    // Shaping.

    private static AdminOutput Single(JsonObject item, IReadOnlyList<string> fields)
    {
        var shown = Select(item, fields);
        return new AdminOutput { Json = shown, Record = (JsonObject)shown.DeepClone() };
    }

    /// <summary>A list: the JSON keeps the API's shape (<c>{"users": [...]}</c>); the table shows the named fields or the defaults.</summary>
    private static AdminOutput Many(string key, IEnumerable<JsonObject> items, IReadOnlyList<string> fields, IReadOnlyList<string> defaultColumns)
    {
        var rows = items.Select(i => Select(i, fields)).ToList();
        var array = new JsonArray(rows.Select(r => (JsonNode)r.DeepClone()).ToArray());
        return new AdminOutput
        {
            Json = new JsonObject { [key] = array },
            Rows = rows,
            Columns = fields.Count > 0 ? fields : defaultColumns,
        };
    }

    /// <summary>Only the named fields, in the order named (a field the answer left out is null); all when none are named.</summary>
    internal static JsonObject Select(JsonObject item, IReadOnlyList<string> fields)
    {
        if (fields.Count == 0) return item;
        var selected = new JsonObject();
        foreach (var f in fields)
            selected[f] = item.TryGetPropertyValue(f, out var value) ? value?.DeepClone() : null;
        return selected;
    }

    private static JsonObject ToObject<T>(T value, JsonTypeInfo<T> type) =>
        JsonSerializer.SerializeToNode(value, type)?.AsObject() ?? new JsonObject();

    private static JsonObject ToObject(JobView job)
    {
        // An answer without args or kwargs reads them as undefined elements, which cannot be written back.
        if (job.Args.ValueKind == JsonValueKind.Undefined) job.Args = JsonNull;
        if (job.Kwargs.ValueKind == JsonValueKind.Undefined) job.Kwargs = JsonNull;
        return ToObject(job, AdminJsonContext.Default.JobView);
    }

    private static IReadOnlyList<string> FieldsOf<T>(JsonTypeInfo<T> type) => type.Properties.Select(p => p.Name).ToList();
}
