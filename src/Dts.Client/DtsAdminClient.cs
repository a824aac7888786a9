using System.Globalization;
using System.Text;
using Dts.Contracts;

namespace Dts.Client;

/// <summary>The filters of a job search (<see cref="AdminRoutes.Jobs"/>); every one given must match.</summary>
public sealed record JobSearch
{
    public JobState? State { get; init; }
    public string? Function { get; init; }
    public string? Owner { get; init; }
    public string? Tag { get; init; }
    public DateTimeOffset? CreatedAfter { get; init; }
    public DateTimeOffset? CreatedBefore { get; init; }
    /// <summary>1 to 1000; the server's default (100) when null.</summary>
    public int? Limit { get; init; }
    /// <summary>The previous page's <see cref="JobListResponse.NextCursor"/>.</summary>
    public string? Cursor { get; init; }

    /// <summary>The query string (with its leading <c>?</c>, or empty), values escaped.</summary>
    public string ToQueryString()
    {
        var query = new StringBuilder();
        void Add(string name, string? value)
        {
            if (value is null) return;
            query.Append(query.Length == 0 ? '?' : '&').Append(name).Append('=').Append(Uri.EscapeDataString(value));
        }
        Add("state", State?.ToWire());
        Add("function", Function);
        Add("owner", Owner);
        Add("tag", Tag);
        Add("created_after", CreatedAfter?.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
        Add("created_before", CreatedBefore?.ToUniversalTime().ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture));
        Add("limit", Limit?.ToString(CultureInfo.InvariantCulture));
        Add("cursor", Cursor);
        return query.ToString();
    }
}

/// <summary>Why <see cref="DtsAdminClient.LoginAsync"/> refused: the message is one line meant for a person.</summary>
public sealed class DtsAdminLoginException : Exception
{
    public DtsAdminLoginException(string message, bool badCredentials, Exception? innerException = null)
        : base(message, innerException)
    {
        BadCredentials = badCredentials;
    }

    public DtsAdminLoginException()
    {
    }

    public DtsAdminLoginException(string message)
        : base(message)
    {
    }

    public DtsAdminLoginException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    /// <summary>True when the server did not accept the user and secret (401); false when the user is simply not an administrator.</summary>
    public bool BadCredentials { get; }
}

/// <summary>
/// The admin API (<see cref="AdminRoutes"/>) as typed calls. Every call needs a user holding the
/// <c>administrator</c> role; <see cref="LoginAsync"/> checks that once, up front.
/// </summary>
public sealed class DtsAdminClient : IDisposable
{
    private readonly DtsConnection _connection;
    private readonly bool _ownsConnection;

    public DtsAdminClient(DtsConnectionOptions options)
        : this(new DtsConnection(options), ownsConnection: true)
    {
    }

    /// <summary>Uses an existing connection, which the caller keeps ownership of.</summary>
    public DtsAdminClient(DtsConnection connection)
        : this(connection, ownsConnection: false)
    {
    }

    private DtsAdminClient(DtsConnection connection, bool ownsConnection)
    {
        _connection = connection;
        _ownsConnection = ownsConnection;
    }

    public DtsConnection Connection => _connection;

    /// <summary>The user requests are signed as.</summary>
    public string UserId => _connection.Options.UserId;

    /// <summary>
    /// Reads the signing user through the admin API itself: only an administrator may read users, so a 200
    /// proves both the secret and the role. 401 (unknown user, wrong secret) and 403 (no administrator role)
    /// become <see cref="DtsAdminLoginException"/> with a one-line reason; other failures pass through.
    /// </summary>
    public async Task<UserView> LoginAsync(CancellationToken cancellationToken = default)
    {
        UserView self;
        try
        {
            self = await GetUserAsync(UserId, cancellationToken).ConfigureAwait(false);
        }
        catch (DtsApiException ex) when (ex.Status == 401)
        {
            throw new DtsAdminLoginException(
                $"login failed: the server does not accept user '{UserId}' with this secret ({ex.Code ?? "HTTP 401"})", badCredentials: true, ex);
        }
        catch (DtsApiException ex) when (ex.Is(ErrorCodes.RouteNotFound))
        {
            throw new DtsAdminLoginException(
                $"login failed: the server at {_connection.BaseUri} has no admin API (route_not_found); it is older than this client", badCredentials: false, ex);
        }
        catch (DtsApiException ex) when (ex.Status == 403)
        {
            throw new DtsAdminLoginException(
                $"login refused: user '{UserId}' does not hold the {Roles.Administrator} role", badCredentials: false, ex);
        }
        // A server that let a non-administrator read users would be wrong, but the console must still refuse.
        if (!self.Roles.Contains(Roles.Administrator, StringComparer.Ordinal))
            throw new DtsAdminLoginException($"login refused: user '{UserId}' does not hold the {Roles.Administrator} role", badCredentials: false);
        return self;
    }

    // Users.

    public Task<UserSecretResponse> CreateUserAsync(UserCreateRequest user, CancellationToken cancellationToken = default) =>
        _connection.SendAsync(HttpMethod.Post, AdminRoutes.Users, user,
            AdminJsonContext.Default.UserCreateRequest, AdminJsonContext.Default.UserSecretResponse, cancellationToken: cancellationToken);

    public Task<UserView> GetUserAsync(string name, CancellationToken cancellationToken = default) =>
        _connection.SendAsync(HttpMethod.Get, AdminRoutes.User(Escape(name)), AdminJsonContext.Default.UserView, cancellationToken: cancellationToken);

    public Task<UserListResponse> ListUsersAsync(CancellationToken cancellationToken = default) =>
        _connection.SendAsync(HttpMethod.Get, AdminRoutes.Users, AdminJsonContext.Default.UserListResponse, cancellationToken: cancellationToken);

    /// <summary>Changes only the fields set in <paramref name="changes"/>.</summary>
    public Task<UserView> UpdateUserAsync(string name, UserUpdateRequest changes, CancellationToken cancellationToken = default) =>
        _connection.SendAsync(HttpMethod.Patch, AdminRoutes.User(Escape(name)), changes,
            AdminJsonContext.Default.UserUpdateRequest, AdminJsonContext.Default.UserView, cancellationToken: cancellationToken);

    /// <summary>Deletes the user; the server cancels its unfinished jobs.</summary>
    public Task<UserDeleteResponse> DeleteUserAsync(string name, CancellationToken cancellationToken = default) =>
        _connection.SendAsync(HttpMethod.Delete, AdminRoutes.User(Escape(name)), AdminJsonContext.Default.UserDeleteResponse, cancellationToken: cancellationToken);

    /// <summary>A new secret for the user, returned only here; the old one stops working at once.</summary>
    public Task<UserSecretResponse> RotateSecretAsync(string name, CancellationToken cancellationToken = default) =>
        _connection.SendAsync(HttpMethod.Post, AdminRoutes.UserRotateSecret(Escape(name)), AdminJsonContext.Default.UserSecretResponse, cancellationToken: cancellationToken);

    // Workers and functions.

    public Task<WorkerListResponse> ListWorkersAsync(CancellationToken cancellationToken = default) =>
        _connection.SendAsync(HttpMethod.Get, AdminRoutes.Workers, AdminJsonContext.Default.WorkerListResponse, cancellationToken: cancellationToken);

    public Task<WorkerView> DrainWorkerAsync(string id, CancellationToken cancellationToken = default) =>
        _connection.SendAsync(HttpMethod.Post, AdminRoutes.WorkerDrain(Escape(id)), AdminJsonContext.Default.WorkerView, cancellationToken: cancellationToken);

    public Task<FunctionListResponse> ListFunctionsAsync(CancellationToken cancellationToken = default) =>
        _connection.SendAsync(HttpMethod.Get, AdminRoutes.Functions, AdminJsonContext.Default.FunctionListResponse, cancellationToken: cancellationToken);

    // Jobs.

    /// <summary>One page of jobs, newest first; pass <see cref="JobListResponse.NextCursor"/> as <see cref="JobSearch.Cursor"/> for the next.</summary>
    public Task<JobListResponse> SearchJobsAsync(JobSearch search, CancellationToken cancellationToken = default) =>
        _connection.SendAsync(HttpMethod.Get, AdminRoutes.Jobs + search.ToQueryString(), AdminJsonContext.Default.JobListResponse, cancellationToken: cancellationToken);

    public Task<JobView> GetJobAsync(string id, CancellationToken cancellationToken = default) =>
        _connection.SendAsync(HttpMethod.Get, AdminRoutes.Job(Escape(id)), AdminJsonContext.Default.JobView, cancellationToken: cancellationToken);

    public Task<JobView> RetryJobAsync(string id, CancellationToken cancellationToken = default) =>
        _connection.SendAsync(HttpMethod.Post, AdminRoutes.JobRetry(Escape(id)), AdminJsonContext.Default.JobView, cancellationToken: cancellationToken);

    public Task<JobView> CancelJobAsync(string id, CancellationToken cancellationToken = default) =>
        _connection.SendAsync(HttpMethod.Post, AdminRoutes.JobCancel(Escape(id)), AdminJsonContext.Default.JobView, cancellationToken: cancellationToken);

    /// <summary>Deletes finished jobs matching every condition given.</summary>
    public Task<JobPurgeResponse> PurgeJobsAsync(JobPurgeRequest filter, CancellationToken cancellationToken = default) =>
        _connection.SendAsync(HttpMethod.Post, AdminRoutes.JobsPurge, filter,
            AdminJsonContext.Default.JobPurgeRequest, AdminJsonContext.Default.JobPurgeResponse, cancellationToken: cancellationToken);

    /// <summary>
    /// Lines of a job's log after <paramref name="after"/> (0 for the start). With <paramref name="waitSeconds"/> above 0
    /// the server holds the request until a line comes or the job ends; the answer's <see cref="JobLogsResponse.Next"/>
    /// is the <paramref name="after"/> of the next call, and <see cref="JobLogsResponse.Finished"/> says the log is complete.
    /// </summary>
    public Task<JobLogsResponse> GetJobLogsAsync(string id, long after = 0, double waitSeconds = 0, int max = 1000, CancellationToken cancellationToken = default) =>
        _connection.SendAsync(HttpMethod.Get,
            string.Create(System.Globalization.CultureInfo.InvariantCulture, $"{ApiRoutes.JobLogs(Escape(id))}?after={after}&max={max}&wait_seconds={waitSeconds}"),
            DtsJsonContext.Default.JobLogsResponse, cancellationToken: cancellationToken);

    // Queues.

    public Task<QueueListResponse> ListQueuesAsync(CancellationToken cancellationToken = default) =>
        _connection.SendAsync(HttpMethod.Get, AdminRoutes.Queues, AdminJsonContext.Default.QueueListResponse, cancellationToken: cancellationToken);

    public Task<QueueView> PauseQueueAsync(string function, CancellationToken cancellationToken = default) =>
        _connection.SendAsync(HttpMethod.Post, AdminRoutes.QueuePause(Escape(function)), AdminJsonContext.Default.QueueView, cancellationToken: cancellationToken);

    public Task<QueueView> ResumeQueueAsync(string function, CancellationToken cancellationToken = default) =>
        _connection.SendAsync(HttpMethod.Post, AdminRoutes.QueueResume(Escape(function)), AdminJsonContext.Default.QueueView, cancellationToken: cancellationToken);

    // Schedules (every user's).

    /// <summary>Every user's recurring schedules, or one owner's.</summary>
    public Task<ScheduleListResponse> ListSchedulesAsync(string? owner = null, CancellationToken cancellationToken = default) =>
        _connection.SendAsync(HttpMethod.Get, ScheduleRoutes.AdminSchedules + (owner is null ? "" : "?owner=" + Uri.EscapeDataString(owner)),
            ScheduleJsonContext.Default.ScheduleListResponse, cancellationToken: cancellationToken);

    public Task<ScheduleView> GetScheduleAsync(string id, CancellationToken cancellationToken = default) =>
        _connection.SendAsync(HttpMethod.Get, ScheduleRoutes.AdminSchedule(Escape(id)), ScheduleJsonContext.Default.ScheduleView, cancellationToken: cancellationToken);

    public Task<ScheduleView> PauseScheduleAsync(string id, CancellationToken cancellationToken = default) =>
        _connection.SendAsync(HttpMethod.Post, ScheduleRoutes.AdminSchedulePause(Escape(id)), ScheduleJsonContext.Default.ScheduleView, cancellationToken: cancellationToken);

    /// <summary>Resumes from the next tick after now; ticks that passed while paused are skipped.</summary>
    public Task<ScheduleView> ResumeScheduleAsync(string id, CancellationToken cancellationToken = default) =>
        _connection.SendAsync(HttpMethod.Post, ScheduleRoutes.AdminScheduleResume(Escape(id)), ScheduleJsonContext.Default.ScheduleView, cancellationToken: cancellationToken);

    /// <summary>Deletes a schedule and returns it as it was; jobs it already made are kept.</summary>
    public Task<ScheduleView> DeleteScheduleAsync(string id, CancellationToken cancellationToken = default) =>
        _connection.SendAsync(HttpMethod.Delete, ScheduleRoutes.AdminSchedule(Escape(id)), ScheduleJsonContext.Default.ScheduleView, cancellationToken: cancellationToken);

    // Per-function job defaults.

    public Task<FunctionDefaultsView> GetFunctionDefaultsAsync(string function, CancellationToken cancellationToken = default) =>
        _connection.SendAsync(HttpMethod.Get, FunctionDefaultsRoutes.Defaults(Escape(function)),
            FunctionDefaultsJsonContext.Default.FunctionDefaultsView, cancellationToken: cancellationToken);

    /// <summary>Replaces the function's defaults; a null field falls back to the server-wide default.</summary>
    public Task<FunctionDefaultsView> SetFunctionDefaultsAsync(string function, FunctionDefaultsView defaults, CancellationToken cancellationToken = default) =>
        _connection.SendAsync(HttpMethod.Put, FunctionDefaultsRoutes.Defaults(Escape(function)), defaults,
            FunctionDefaultsJsonContext.Default.FunctionDefaultsView, FunctionDefaultsJsonContext.Default.FunctionDefaultsView, cancellationToken: cancellationToken);

    // A name or id is one path segment: escaping keeps a '/' or '?' in it from changing the route.
    private static string Escape(string segment)
    {
        ArgumentException.ThrowIfNullOrEmpty(segment);
        return Uri.EscapeDataString(segment);
    }

    public void Dispose()
    {
        if (_ownsConnection) _connection.Dispose();
    }
}
