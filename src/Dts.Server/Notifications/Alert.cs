namespace Dts.Server.Notifications;

public enum AlertKind
{
    WorkerLost,
    JobDead,
    Backlog,
}

/// <summary>One thing an operator should hear about. <see cref="Subject"/> is one line; <see cref="Body"/> may be several.</summary>
public sealed record Alert(AlertKind Kind, string Subject, string Body, DateTimeOffset At)
{
    public static string KindName(AlertKind kind) => kind switch
    {
        AlertKind.WorkerLost => "worker lost",
        AlertKind.JobDead => "job dead",
        AlertKind.Backlog => "backlog",
        _ => kind.ToString(),
    };
}
