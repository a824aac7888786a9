using System.Text.Json;
using Dts.Contracts;
using Dts.Core.Storage;

namespace Dts.Core;

public static class JobViews
{
    public static JobView ToView(this JobRecord j) => new()
    {
        Id = j.Id,
        Function = j.Function,
        State = j.State,
        Owner = j.Owner,
        Args = Parse(j.ArgsJson),
        Kwargs = Parse(j.KwargsJson),
        Priority = j.Priority.Class,
        PriorityValue = j.Priority.Value,
        UniqueKey = j.UniqueKey,
        Tags = j.TagsJson is null ? null : JsonSerializer.Deserialize(j.TagsJson, DtsJsonContext.Default.ListString),
        RunAt = j.RunAt,
        Attempts = j.Attempts,
        MaxAttempts = j.MaxAttempts,
        TimeoutSeconds = j.Timeout?.TotalSeconds,
        RetentionSeconds = j.Retention.TotalSeconds,
        Progress = j.ProgressDenominator is null && j.ProgressNumerator is null
            ? null
            : new JobProgress { Numerator = j.ProgressNumerator ?? 0, Denominator = j.ProgressDenominator ?? 0 },
        Result = j.ResultJson is null ? null : Parse(j.ResultJson),
        Error = j.ErrorCode is null && j.ErrorMessage is null ? null : new JobError { Code = j.ErrorCode, Message = j.ErrorMessage },
        CancelRequested = j.CancelRequested,
        CreatedAt = j.CreatedAt,
        UpdatedAt = j.UpdatedAt,
        StartedAt = j.StartedAt,
        FinishedAt = j.FinishedAt,
        LeaseExpiresAt = j.State == JobState.Running ? j.LeaseExpiresAt : null,
        WorkerId = j.State == JobState.Running ? j.WorkerId : null,
    };

    public static LeasedJob ToLeased(this JobRecord j) => new()
    {
        Id = j.Id,
        Function = j.Function,
        Args = Parse(j.ArgsJson),
        Kwargs = Parse(j.KwargsJson),
        LeaseToken = j.LeaseToken ?? throw new InvalidOperationException("A leased job has a lease token."),
        LeaseExpiresAt = j.LeaseExpiresAt ?? default,
        Attempt = j.Attempts,
        MaxAttempts = j.MaxAttempts,
        TimeoutSeconds = j.Timeout?.TotalSeconds,
        Tags = j.TagsJson is null ? null : JsonSerializer.Deserialize(j.TagsJson, DtsJsonContext.Default.ListString),
    };

    // Most jobs have no arguments; these answer them without parsing. Cloned elements are read-only and safe to share.
    private static readonly JsonElement EmptyArray = ParseNew("[]");
    private static readonly JsonElement EmptyObject = ParseNew("{}");
    private static readonly JsonElement JsonNull = ParseNew("null");

    private static JsonElement Parse(string json) => json switch
    {
        "[]" => EmptyArray,
        "{}" => EmptyObject,
        "null" => JsonNull,
        _ => ParseNew(json),
    };

    private static JsonElement ParseNew(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.Clone();
    }
}
