using System.Text.Json.Serialization;

namespace Dts.Contracts;

// Recurring schedules (docs/protocol.md, "Schedules"). A client manages its own; an administrator
// lists, pauses, resumes and deletes everyone's.

/// <summary>The schedule routes.</summary>
public static class ScheduleRoutes
{
    /// <summary>POST a <see cref="ScheduleCreateRequest"/> (role client): 201 <see cref="ScheduleView"/>. GET: the caller's <see cref="ScheduleListResponse"/>.</summary>
    public const string Schedules = "/v1/schedules";
    /// <summary>GET: <see cref="ScheduleView"/>. DELETE: the deleted <see cref="ScheduleView"/>.</summary>
    public static string Schedule(string id) => $"/v1/schedules/{id}";
    /// <summary>POST (no body): <see cref="ScheduleView"/>.</summary>
    public static string SchedulePause(string id) => $"/v1/schedules/{id}/pause";
    /// <summary>POST (no body): <see cref="ScheduleView"/>; ticks that passed while paused are skipped.</summary>
    public static string ScheduleResume(string id) => $"/v1/schedules/{id}/resume";

    /// <summary>GET (administrator): every user's schedules, <c>?owner=</c> to filter.</summary>
    public const string AdminSchedules = "/v1/admin/schedules";
    /// <summary>GET: <see cref="ScheduleView"/>. DELETE: the deleted <see cref="ScheduleView"/>.</summary>
    public static string AdminSchedule(string id) => $"/v1/admin/schedules/{id}";
    public static string AdminSchedulePause(string id) => $"/v1/admin/schedules/{id}/pause";
    public static string AdminScheduleResume(string id) => $"/v1/admin/schedules/{id}/resume";
}

public sealed class ScheduleCreateRequest
{
    /// <summary>Optional id (letters, digits, '_', '-', '.'); the server makes one when absent.</summary>
    public string? Id { get; set; }
    /// <summary>A cron expression: 5 fields (minute first) or 6 (seconds first).</summary>
    public string? Cron { get; set; }
    /// <summary>An IANA time zone such as <c>Europe/Berlin</c>; default <c>UTC</c>.</summary>
    public string? TimeZone { get; set; }
    /// <summary>The job every tick submits; <c>run_at</c> and <c>delay_seconds</c> are not allowed, <c>unique_key</c> is set by the server.</summary>
    public SubmitJobRequest? Job { get; set; }
    /// <summary>Create it paused.</summary>
    public bool? Paused { get; set; }
}

public sealed class ScheduleView
{
    public required string Id { get; set; }
    public required string Owner { get; set; }
    public required string Function { get; set; }
    public required string Cron { get; set; }
    public required string TimeZone { get; set; }
    public bool Paused { get; set; }
    public DateTimeOffset? NextFireAt { get; set; }
    public DateTimeOffset? LastFiredAt { get; set; }
    public string? LastJobId { get; set; }
    public required SubmitJobRequest Job { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
}

public sealed class ScheduleListResponse
{
    public required List<ScheduleView> Schedules { get; set; }
}

[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.SnakeCaseLower,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow)]
[JsonSerializable(typeof(ScheduleCreateRequest))]
[JsonSerializable(typeof(ScheduleView))]
[JsonSerializable(typeof(ScheduleListResponse))]
[JsonSerializable(typeof(SubmitJobRequest))]
public sealed partial class ScheduleJsonContext : JsonSerializerContext;
