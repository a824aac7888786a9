using System.Text.Json;
using Dts.Contracts;
using Dts.Core.Storage;

namespace Dts.Core;

/// <summary>Limits and defaults of a job, and the validation of a submit request against them.</summary>
public static class JobRules
{
    public const int MaxFunctionLength = 128;
    public const int MaxUniqueKeyLength = 256;
    public const int MaxTags = 16;
    public const int MaxTagLength = 64;
    /// <summary>Attempts when a submit does not say: the first run and two retries.</summary>
    public const int DefaultMaxAttempts = 3;
    public const int MaxMaxAttempts = 100;
    public static readonly TimeSpan MaxTimeout = TimeSpan.FromDays(7);
    public static readonly TimeSpan MaxDelay = TimeSpan.FromDays(366);
    /// <summary>Results wait 7 days for their client unless a submit says otherwise.</summary>
    public static readonly TimeSpan DefaultRetention = TimeSpan.FromDays(7);
    public static readonly TimeSpan MaxRetention = TimeSpan.FromDays(90);

    public static bool IsValidFunctionName(string? name)
    {
        if (string.IsNullOrEmpty(name) || name.Length > MaxFunctionLength || !char.IsAsciiLetterOrDigit(name[0])) return false;
        foreach (var c in name)
        {
            if (!(char.IsAsciiLetterOrDigit(c) || c is '_' or '-' or '.' or ':')) return false;
        }
        return true;
    }

    /// <summary>Validates a submit and fills in defaults. <paramref name="field"/> prefixes field paths (for batches).</summary>
    public static NewJob Normalize(SubmitJobRequest? r, string owner, DateTimeOffset now, string field = "")
    {
        if (r is null) throw new DtsException(ErrorCodes.InvalidField, "A job must be a JSON object.", Path(field, ""));
        if (r.Function is null) throw new DtsException(ErrorCodes.MissingField, "'function' is required: the name of the function to run.", Path(field, "function"));
        if (!IsValidFunctionName(r.Function))
            throw new DtsException(ErrorCodes.InvalidField, $"'function' must be 1 to {MaxFunctionLength} characters of letters, digits, '_', '-', '.', ':' starting with a letter or digit.", Path(field, "function"));

        var args = "[]";
        if (r.Args is { } a && a.ValueKind != JsonValueKind.Null)
        {
            if (a.ValueKind != JsonValueKind.Array) throw new DtsException(ErrorCodes.InvalidField, "'args' must be a JSON array of positional arguments.", Path(field, "args"));
            args = a.GetRawText();
        }
        var kwargs = "{}";
        if (r.Kwargs is { } k && k.ValueKind != JsonValueKind.Null)
        {
            if (k.ValueKind != JsonValueKind.Object) throw new DtsException(ErrorCodes.InvalidField, "'kwargs' must be a JSON object of keyword arguments.", Path(field, "kwargs"));
            kwargs = k.GetRawText();
        }

        var value = r.PriorityValue ?? Priority.DefaultValue;
        if (value is < Priority.MinValue or > Priority.MaxValue)
            throw new DtsException(ErrorCodes.InvalidField, $"'priority_value' must be from {Priority.MinValue} to {Priority.MaxValue}.", Path(field, "priority_value"));
        var priorityClass = r.Priority ?? PriorityClass.Normal;
        if (!Enum.IsDefined(priorityClass)) throw new DtsException(ErrorCodes.InvalidField, "'priority' must be high, normal or low.", Path(field, "priority"));

        if (r.UniqueKey is { } key && (key.Length == 0 || key.Length > MaxUniqueKeyLength))
            throw new DtsException(ErrorCodes.InvalidField, $"'unique_key' must be 1 to {MaxUniqueKeyLength} characters.", Path(field, "unique_key"));

        if (r.RunAt is not null && r.DelaySeconds is not null)
            throw new DtsException(ErrorCodes.InvalidField, "Give 'run_at' or 'delay_seconds', not both.", Path(field, "delay_seconds"));
        var runAt = now;
        if (r.DelaySeconds is { } delay)
        {
            if (!double.IsFinite(delay) || delay < 0 || delay > MaxDelay.TotalSeconds)
                throw new DtsException(ErrorCodes.InvalidField, $"'delay_seconds' must be from 0 to {MaxDelay.TotalSeconds}.", Path(field, "delay_seconds"));
            runAt = now + TimeSpan.FromSeconds(delay);
        }
        else if (r.RunAt is { } at)
        {
            if (at - now > MaxDelay) throw new DtsException(ErrorCodes.InvalidField, $"'run_at' may be at most {MaxDelay.TotalDays} days ahead.", Path(field, "run_at"));
            runAt = at < now ? now : at;
        }

        var maxAttempts = r.MaxAttempts ?? DefaultMaxAttempts;
        if (maxAttempts is < 1 or > MaxMaxAttempts)
            throw new DtsException(ErrorCodes.InvalidField, $"'max_attempts' must be from 1 to {MaxMaxAttempts}.", Path(field, "max_attempts"));

        TimeSpan? timeout = null;
        if (r.TimeoutSeconds is { } t)
        {
            if (!double.IsFinite(t) || t <= 0 || t > MaxTimeout.TotalSeconds)
                throw new DtsException(ErrorCodes.InvalidField, $"'timeout_seconds' must be more than 0 and at most {MaxTimeout.TotalSeconds}.", Path(field, "timeout_seconds"));
            timeout = TimeSpan.FromSeconds(t);
        }

        var retention = DefaultRetention;
        if (r.RetentionSeconds is { } rs)
        {
            if (!double.IsFinite(rs) || rs < 0 || rs > MaxRetention.TotalSeconds)
                throw new DtsException(ErrorCodes.InvalidField, $"'retention_seconds' must be from 0 to {MaxRetention.TotalSeconds}.", Path(field, "retention_seconds"));
            retention = TimeSpan.FromSeconds(rs);
        }

        string? tags = null;
        if (r.Tags is { } tagList)
        {
            if (tagList.Count > MaxTags) throw new DtsException(ErrorCodes.InvalidField, $"At most {MaxTags} tags.", Path(field, "tags"));
            foreach (var tag in tagList)
            {
                if (string.IsNullOrEmpty(tag) || tag.Length > MaxTagLength)
                    throw new DtsException(ErrorCodes.InvalidField, $"Each tag must be 1 to {MaxTagLength} characters.", Path(field, "tags"));
            }
            tags = JsonSerializer.Serialize(tagList, DtsJsonContext.Default.ListString);
        }

        return new NewJob
        {
            Id = JobIds.New(now),
            Function = r.Function,
            Owner = owner,
            ArgsJson = args,
            KwargsJson = kwargs,
            Priority = new Priority(priorityClass, value),
            UniqueKey = r.UniqueKey,
            TagsJson = tags,
            RunAt = runAt,
            MaxAttempts = maxAttempts,
            Timeout = timeout,
            Retention = retention,
        };
    }

    /// <summary>The state a new job starts in.</summary>
    public static JobState InitialState(NewJob job, DateTimeOffset now) => job.RunAt > now ? JobState.Scheduled : JobState.Queued;

    private static string Path(string prefix, string name) =>
        prefix.Length == 0 ? name : name.Length == 0 ? prefix : $"{prefix}.{name}";
}
