using System.Text.Json.Serialization;

namespace Dts.Contracts;

// The admin API (role administrator only). docs/protocol.md, "Administration", describes each route.

/// <summary>The admin API's paths.</summary>
public static class AdminRoutes
{
    /// <summary>GET: <see cref="UserListResponse"/>. POST <see cref="UserCreateRequest"/>: 201 <see cref="UserSecretResponse"/> (the secret is shown only here).</summary>
    public const string Users = "/v1/admin/users";
    /// <summary>GET: <see cref="UserView"/>. PATCH <see cref="UserUpdateRequest"/>: <see cref="UserView"/>. DELETE: <see cref="UserDeleteResponse"/> (the user's unfinished jobs are cancelled).</summary>
    public static string User(string name) => $"/v1/admin/users/{name}";
    /// <summary>POST (no body): a new secret, returned once in <see cref="UserSecretResponse"/>; the old one stops working at once.</summary>
    public static string UserRotateSecret(string name) => $"/v1/admin/users/{name}/rotate-secret";

    /// <summary>GET: <see cref="WorkerListResponse"/>.</summary>
    public const string Workers = "/v1/admin/workers";
    /// <summary>POST (no body): the worker finishes its running jobs and gets no new ones. <see cref="WorkerView"/>.</summary>
    public static string WorkerDrain(string id) => $"/v1/admin/workers/{id}/drain";

    /// <summary>GET: <see cref="FunctionListResponse"/>: counts per state and the workers able to run each function.</summary>
    public const string Functions = "/v1/admin/functions";

    /// <summary>
    /// GET with query <c>state, function, owner, tag, created_after, created_before</c> (RFC 3339), <c>limit</c> (1 to 1000, default 100)
    /// and <c>cursor</c> (from the previous page): <see cref="JobListResponse"/>, newest first.
    /// </summary>
    public const string Jobs = "/v1/admin/jobs";
    /// <summary>GET: <see cref="JobView"/> of any user's job.</summary>
    public static string Job(string id) => $"/v1/admin/jobs/{id}";
    /// <summary>POST (no body): a dead, failed (awaiting retry) or cancelled job is queued again with fresh attempts. <see cref="JobView"/>.</summary>
    public static string JobRetry(string id) => $"/v1/admin/jobs/{id}/retry";
    /// <summary>POST (no body): cancels any user's job, as the owner's cancel does. <see cref="JobView"/>.</summary>
    public static string JobCancel(string id) => $"/v1/admin/jobs/{id}/cancel";
    /// <summary>POST <see cref="JobPurgeRequest"/>: deletes finished jobs. <see cref="JobPurgeResponse"/>.</summary>
    public const string JobsPurge = "/v1/admin/jobs/purge";

    /// <summary>GET: <see cref="QueueListResponse"/>.</summary>
    public const string Queues = "/v1/admin/queues";
    /// <summary>POST (no body): workers stop getting jobs of this function until resumed; submits still queue. <see cref="QueueView"/>.</summary>
    public static string QueuePause(string function) => $"/v1/admin/queues/{function}/pause";
    /// <summary>POST (no body). <see cref="QueueView"/>.</summary>
    public static string QueueResume(string function) => $"/v1/admin/queues/{function}/resume";
}

/// <summary>A user as the admin API shows it. Secrets are never shown after creation or rotation.</summary>
public sealed class UserView
{
    public required string Name { get; set; }
    public required List<string> Roles { get; set; }
    public bool Disabled { get; set; }
    /// <summary>Most unfinished jobs (queued, scheduled, running, awaiting retry) the user may have; null is unlimited.</summary>
    public long? MaxQueued { get; set; }
    /// <summary>Submitted jobs per second allowed on average (token bucket refill); null is unlimited.</summary>
    public double? SubmitRate { get; set; }
    /// <summary>Token bucket size: jobs that may be submitted at once; default the rate rounded up (at least 1).</summary>
    public double? SubmitBurst { get; set; }
    /// <summary>For a worker user: the only functions it may register; null allows any.</summary>
    public List<string>? Functions { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
}

public sealed class UserCreateRequest
{
    public string? Name { get; set; }
    public List<string>? Roles { get; set; }
    public long? MaxQueued { get; set; }
    public double? SubmitRate { get; set; }
    public double? SubmitBurst { get; set; }
    public List<string>? Functions { get; set; }
}

/// <summary>Only the fields present change. To clear a limit, send it as 0 (<c>max_queued</c>, <c>submit_rate</c>) or an empty list (<c>functions</c>).</summary>
public sealed class UserUpdateRequest
{
    public List<string>? Roles { get; set; }
    public bool? Disabled { get; set; }
    public long? MaxQueued { get; set; }
    public double? SubmitRate { get; set; }
    public double? SubmitBurst { get; set; }
    public List<string>? Functions { get; set; }
}

public sealed class UserSecretResponse
{
    public required UserView User { get; set; }
    /// <summary>The new secret: 64 hex characters. Shown only in this answer.</summary>
    public required string Secret { get; set; }
}

public sealed class UserListResponse
{
    public required List<UserView> Users { get; set; }
}

public sealed class UserDeleteResponse
{
    public required string Name { get; set; }
    /// <summary>The user's unfinished jobs, cancelled with the user.</summary>
    public long CancelledJobs { get; set; }
}

public sealed class WorkerView
{
    public required string Id { get; set; }
    public required string Name { get; set; }
    public required string Owner { get; set; }
    public required List<string> Functions { get; set; }
    public int Concurrency { get; set; }
    /// <summary>Jobs leased to the worker now.</summary>
    public int Running { get; set; }
    public bool Draining { get; set; }
    /// <summary><c>alive</c>, or <c>lost</c> when its heartbeats stopped for longer than the lease timeout.</summary>
    public required string Status { get; set; }
    public DateTimeOffset RegisteredAt { get; set; }
    public DateTimeOffset LastHeartbeatAt { get; set; }
}

public sealed class WorkerListResponse
{
    public required List<WorkerView> Workers { get; set; }
}

public sealed class FunctionView
{
    public required string Function { get; set; }
    public long Queued { get; set; }
    public long Scheduled { get; set; }
    public long Running { get; set; }
    public long Succeeded { get; set; }
    /// <summary>Jobs whose last attempt failed and that wait for a retry.</summary>
    public long Failed { get; set; }
    public long Dead { get; set; }
    public long Cancelled { get; set; }
    public bool Paused { get; set; }
    /// <summary>Ids of live workers registered for the function.</summary>
    public required List<string> Workers { get; set; }
}

public sealed class FunctionListResponse
{
    public required List<FunctionView> Functions { get; set; }
}

public sealed class JobListResponse
{
    public required List<JobView> Jobs { get; set; }
    /// <summary>Pass as <c>cursor</c> for the next page; absent on the last page.</summary>
    public string? NextCursor { get; set; }
}

/// <summary>Deletes finished jobs (succeeded, dead, cancelled by default) matching every given condition.</summary>
public sealed class JobPurgeRequest
{
    /// <summary>A subset of succeeded, dead, cancelled.</summary>
    public List<JobState>? States { get; set; }
    public string? Function { get; set; }
    public string? Owner { get; set; }
    /// <summary>Only jobs that finished before this time.</summary>
    public DateTimeOffset? FinishedBefore { get; set; }
}

public sealed class JobPurgeResponse
{
    public long Purged { get; set; }
}

public sealed class QueueView
{
    public required string Function { get; set; }
    public bool Paused { get; set; }
    public long Queued { get; set; }
}

public sealed class QueueListResponse
{
    public required List<QueueView> Queues { get; set; }
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow)]
[JsonSerializable(typeof(UserView))]
[JsonSerializable(typeof(UserCreateRequest))]
[JsonSerializable(typeof(UserUpdateRequest))]
[JsonSerializable(typeof(UserSecretResponse))]
[JsonSerializable(typeof(UserListResponse))]
[JsonSerializable(typeof(UserDeleteResponse))]
[JsonSerializable(typeof(WorkerView))]
[JsonSerializable(typeof(WorkerListResponse))]
[JsonSerializable(typeof(FunctionView))]
[JsonSerializable(typeof(FunctionListResponse))]
[JsonSerializable(typeof(JobListResponse))]
[JsonSerializable(typeof(JobPurgeRequest))]
[JsonSerializable(typeof(JobPurgeResponse))]
[JsonSerializable(typeof(QueueView))]
[JsonSerializable(typeof(QueueListResponse))]
[JsonSerializable(typeof(JobView))]
public sealed partial class AdminJsonContext : JsonSerializerContext;
