using Cronos;
using Dts.Contracts;
using Dts.Core;

namespace Dts.Server.Scheduling;

/// <summary>
/// A parsed cron expression in its time zone. Five fields start at the minute; six start at the
/// second. Occurrences follow the zone's wall clock, including its daylight-saving changes (Cronos
/// fires a skipped local time once at the transition and an ambiguous one once).
/// </summary>
public sealed class CronSchedule
{
    public const int MaxExpressionLength = 256;
    private readonly CronExpression _expression;

    private CronSchedule(CronExpression expression, TimeZoneInfo zone)
    {
        _expression = expression;
        Zone = zone;
    }

    public TimeZoneInfo Zone { get; }

    /// <summary>Parses <paramref name="cron"/> in <paramref name="timeZone"/> (IANA id); a mistake is an invalid_field problem.</summary>
    public static CronSchedule Parse(string? cron, string? timeZone)
    {
        if (string.IsNullOrWhiteSpace(cron))
            throw new DtsException(ErrorCodes.MissingField, "'cron' is required: a cron expression such as '0 3 * * *' (5 fields) or '*/10 * * * * *' (6, seconds first).", "cron");
        if (cron.Length > MaxExpressionLength)
            throw new DtsException(ErrorCodes.InvalidField, $"'cron' may be at most {MaxExpressionLength} characters.", "cron");
        var fields = cron.Split(' ', StringSplitOptions.RemoveEmptyEntries).Length;
        var format = fields == 6 ? CronFormat.IncludeSeconds : CronFormat.Standard;
        CronExpression expression;
        try
        {
            expression = CronExpression.Parse(cron.Trim(), format);
        }
        catch (CronFormatException ex)
        {
            throw new DtsException(ErrorCodes.InvalidField, $"'cron' is not a valid cron expression of 5 or 6 fields: {ex.Message}", "cron");
        }
        TimeZoneInfo zone;
        try
        {
            zone = TimeZoneInfo.FindSystemTimeZoneById(string.IsNullOrEmpty(timeZone) ? "UTC" : timeZone);
        }
        catch (Exception ex) when (ex is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            throw new DtsException(ErrorCodes.InvalidField, $"'time_zone' must be an IANA time zone such as 'UTC' or 'Europe/Berlin', not '{timeZone}'.", "time_zone");
        }
        return new CronSchedule(expression, zone);
    }

    /// <summary>The first tick strictly after <paramref name="time"/>, or null when there is none.</summary>
    public DateTimeOffset? NextAfter(DateTimeOffset time) => _expression.GetNextOccurrence(time, Zone, inclusive: false);

    /// <summary>
    /// The latest tick in [<paramref name="from"/>, <paramref name="now"/>]: the one the missed-tick
    /// policy fires after downtime. <paramref name="from"/> is itself a tick, so the answer is never null.
    /// </summary>
    public DateTimeOffset LatestTick(DateTimeOffset from, DateTimeOffset now)
    {
        var latest = from;
        // Walks forward tick by tick; bounded by how long the server was down divided by the period.
        for (var next = NextAfter(latest); next is { } n && n <= now; next = NextAfter(n)) latest = n;
        return latest;
    }
}
