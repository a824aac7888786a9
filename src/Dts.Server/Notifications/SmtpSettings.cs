namespace Dts.Server.Notifications;

/// <summary>How the server's SMTP connection is secured.</summary>
public enum SmtpTlsMode
{
    /// <summary>Plain SMTP, no TLS even when the server offers it (a local relay).</summary>
    None,
    /// <summary>Plain connect, then STARTTLS, which must succeed (usually port 587).</summary>
    StartTls,
    /// <summary>TLS from the first byte (usually port 465).</summary>
    Tls,
}

/// <summary>
/// Where alert e-mails go and how they are sent. Alerts are mailed only when <see cref="Host"/> and
/// at least one recipient are set; without them alerts are only logged.
/// </summary>
public sealed class SmtpSettings
{
    public string? Host { get; set; }

    /// <summary>Default 25 (587 is usual with <see cref="SmtpTlsMode.StartTls"/>, 465 with <see cref="SmtpTlsMode.Tls"/>).</summary>
    public int Port { get; set; } = 25;

    public SmtpTlsMode Tls { get; set; } = SmtpTlsMode.None;

    /// <summary>User to authenticate as; null sends without authentication.</summary>
    public string? User { get; set; }

    /// <summary>The password of <see cref="User"/>. Never logged.</summary>
    public string? Password { get; set; }

    /// <summary>The sender address; default <c>dts@</c> and this machine's name.</summary>
    public string? From { get; set; }

    public List<string> To { get; set; } = [];

    /// <summary>At most this many alert mails per <see cref="RateWindow"/>: 5. What is held back is summed up in the next mail.</summary>
    public int MaxMailsPerWindow { get; set; } = 5;

    /// <summary>The window of <see cref="MaxMailsPerWindow"/>: 10 minutes.</summary>
    public TimeSpan RateWindow { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Attempts per mail before it is given up (logged): 5, waiting 2 s, 4 s, 8 s... (at most 60 s) between them.</summary>
    public int SendAttempts { get; set; } = 5;

    public bool IsConfigured => !string.IsNullOrWhiteSpace(Host) && To.Count > 0;

    public string ResolvedFrom => string.IsNullOrWhiteSpace(From) ? $"dts@{Environment.MachineName.ToLowerInvariant()}" : From;
}
