using Microsoft.Extensions.Logging;

namespace Dts.Server;

internal static partial class Log
{
    [LoggerMessage(1, LogLevel.Information, "Dts server listening on {Url}, store {Store}")]
    public static partial void Listening(ILogger logger, string url, string store);

    [LoggerMessage(2, LogLevel.Warning, "Created the first administrator '{User}'; its secret is in {SecretFile} (readable by this user only)")]
    public static partial void AdminCreated(ILogger logger, string user, string secretFile);

    [LoggerMessage(3, LogLevel.Error, "Unhandled error on {Method} {Path}")]
    public static partial void Unhandled(ILogger logger, Exception exception, string method, string path);

    [LoggerMessage(4, LogLevel.Error, "Daemon {Daemon} failed; retrying in {Delay}")]
    public static partial void DaemonFailed(ILogger logger, Exception exception, string daemon, TimeSpan delay);

    [LoggerMessage(5, LogLevel.Information, "Rescued expired leases: {Requeued} queued again, {Dead} dead")]
    public static partial void Rescued(ILogger logger, int requeued, int dead);

    [LoggerMessage(6, LogLevel.Information, "Worker {WorkerId} ({Name}) registered by {User} for {Functions}")]
    public static partial void WorkerRegistered(ILogger logger, string workerId, string name, string user, string functions);

    [LoggerMessage(7, LogLevel.Error, "Could not remember a used nonce in the store; a replay of that request after a restart would not be caught")]
    public static partial void NonceWriteFailed(ILogger logger, Exception exception);

    [LoggerMessage(8, LogLevel.Warning, "Alert ({Kind}): {Subject}")]
    public static partial void Alert(ILogger logger, string kind, string subject);

    [LoggerMessage(9, LogLevel.Warning, "Could not send the alert mail '{Subject}'; retrying in {Delay}")]
    public static partial void AlertMailRetry(ILogger logger, Exception exception, string subject, TimeSpan delay);

    [LoggerMessage(10, LogLevel.Error, "Gave up the alert mail '{Subject}' after {Attempts} attempts; its alerts are in this log")]
    public static partial void AlertMailGivenUp(ILogger logger, Exception exception, string subject, int attempts);

    [LoggerMessage(11, LogLevel.Error, "The alert mailer failed; it carries on with the next alerts")]
    public static partial void AlertMailerFailed(ILogger logger, Exception exception);

    [LoggerMessage(20, LogLevel.Warning, "Worker {WorkerId} ({Name}, user {User}) is lost: no heartbeat since {LastHeartbeat:O}; {Released} job(s) released")]
    public static partial void WorkerLost(ILogger logger, string workerId, string name, string user, DateTimeOffset lastHeartbeat, int released);

    [LoggerMessage(21, LogLevel.Information, "Timed out running jobs: {Retried} to be retried, {Dead} dead")]
    public static partial void TimedOut(ILogger logger, int retried, int dead);

    [LoggerMessage(22, LogLevel.Debug, "Porter deleted {Count} finished jobs")]
    public static partial void Purged(ILogger logger, int count);

    [LoggerMessage(23, LogLevel.Error, "Schedule {ScheduleId} cannot make its job and was paused")]
    public static partial void ScheduleBroken(ILogger logger, Exception exception, string scheduleId);

    [LoggerMessage(24, LogLevel.Information, "Schedule {ScheduleId} missed ticks from {Missed:O}; fired the latest, {Tick:O}, once")]
    public static partial void TicksSkipped(ILogger logger, string scheduleId, DateTimeOffset missed, DateTimeOffset tick);

    [LoggerMessage(25, LogLevel.Warning, "Could not publish {Count} wake-up signals to the other servers; they will find the work by polling")]
    public static partial void PublishFailed(ILogger logger, Exception exception, int count);

    [LoggerMessage(26, LogLevel.Warning, "Leadership check failed")]
    public static partial void LeadershipCheckFailed(ILogger logger, Exception exception);

    [LoggerMessage(27, LogLevel.Information, "This server is now the leader: it runs the scheduler, lease rescue, stethoscope, timeouts, cron and porter")]
    public static partial void BecameLeader(ILogger logger);

    [LoggerMessage(28, LogLevel.Warning, "This server is no longer the leader")]
    public static partial void LostLeadership(ILogger logger);

    [LoggerMessage(29, LogLevel.Warning, "Could not measure the database clock; keeping the last offset")]
    public static partial void ClockMeasureFailed(ILogger logger, Exception exception);

    [LoggerMessage(30, LogLevel.Information, "Shared store: clock offset to the database {OffsetMs} ms")]
    public static partial void ClockOffset(ILogger logger, double offsetMs);
}
