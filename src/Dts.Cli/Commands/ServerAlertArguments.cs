using System.CommandLine;
using Dts.Server;
using Dts.Server.Notifications;

namespace Dts.Cli.Commands;

/// <summary>The <c>dts server</c> options of the mailer (alerts) and the tracer (job log caps).</summary>
internal sealed class ServerAlertArguments
{
    private readonly Option<string?> _host = new("--smtp-host") { Description = "SMTP server for alert e-mails; without it alerts are only logged.", HelpName = "HOST" };
    private readonly Option<int> _port = new("--smtp-port") { Description = "SMTP port (25; usually 587 with starttls, 465 with tls).", DefaultValueFactory = _ => 25 };
    private readonly Option<string> _tls = new("--smtp-tls") { Description = "none, starttls or tls.", DefaultValueFactory = _ => "none" };
    private readonly Option<string?> _user = new("--smtp-user") { Description = "SMTP user to authenticate as (no authentication without it).", HelpName = "USER" };
    private readonly Option<string?> _passwordFile = new("--smtp-password-file") { Description = "File holding the SMTP password (kept out of the command line and the logs).", HelpName = "FILE" };
    private readonly Option<string?> _to = new("--alert-to") { Description = "Comma-separated recipients of alert e-mails.", HelpName = "a@b,c@d" };
    private readonly Option<string?> _from = new("--alert-from") { Description = "Sender address of alert e-mails (default dts@<host name>).", HelpName = "ADDRESS" };
    private readonly Option<int> _maxMails = new("--alert-max-mails") { Description = "At most this many alert e-mails per --alert-window; the rest are counted in the next one.", DefaultValueFactory = _ => 5 };
    private readonly Option<double> _window = new("--alert-window") { Description = "Seconds of the alert rate window.", DefaultValueFactory = _ => 600 };
    private readonly Option<long?> _backlog = new("--backlog-alert") { Description = "Alert when a function has more queued jobs than this (off by default).", HelpName = "N" };
    private readonly Option<long> _logLines = new("--log-max-lines") { Description = "Most log lines kept per job (the last says the log was cut).", DefaultValueFactory = _ => 10_000 };
    private readonly Option<long> _logBytes = new("--log-max-bytes") { Description = "Most bytes of log text kept per job.", DefaultValueFactory = _ => 1 << 20 };

    public void AddTo(Command command)
    {
        foreach (var o in new Option[] { _host, _port, _tls, _user, _passwordFile, _to, _from, _maxMails, _window, _backlog, _logLines, _logBytes })
            command.Options.Add(o);
    }

    /// <summary>Sets the options' values on <paramref name="options"/>; returns a message saying what to fix, or null.</summary>
    public async Task<string?> ApplyAsync(ParseResult parse, DtsServerOptions options, CancellationToken cancellationToken)
    {
        var tls = parse.GetValue(_tls)!.ToLowerInvariant() switch
        {
            "none" => SmtpTlsMode.None,
            "starttls" => SmtpTlsMode.StartTls,
            "tls" => (SmtpTlsMode?)SmtpTlsMode.Tls,
            _ => null,
        };
        if (tls is null) return "--smtp-tls must be none, starttls or tls.";
        var port = parse.GetValue(_port);
        if (port is < 1 or > 65535) return "--smtp-port must be from 1 to 65535.";
        var maxMails = parse.GetValue(_maxMails);
        if (maxMails < 1) return "--alert-max-mails must be at least 1.";
        var window = parse.GetValue(_window);
        if (!double.IsFinite(window) || window <= 0) return "--alert-window must be a positive number of seconds.";
        var to = (parse.GetValue(_to) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).ToList();
        foreach (var address in to.Append(parse.GetValue(_from) ?? "dts@localhost"))
        {
            if (!MimeKit.MailboxAddress.TryParse(address, out _)) return $"'{address}' is not an e-mail address.";
        }
        var host = parse.GetValue(_host);
        if (host is not null && to.Count == 0) return "--smtp-host needs --alert-to: whom to mail alerts to.";
        string? password = null;
        if (parse.GetValue(_passwordFile) is { } file)
        {
            try
            {
                password = (await File.ReadAllTextAsync(file, cancellationToken)).TrimEnd('\r', '\n');
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                return $"cannot read --smtp-password-file {file}: {ex.Message}";
            }
        }
        var lines = parse.GetValue(_logLines);
        var bytes = parse.GetValue(_logBytes);
        if (lines < 2) return "--log-max-lines must be at least 2 (one line and the note that the log was cut).";
        if (bytes < 1024) return "--log-max-bytes must be at least 1024.";

        options.Smtp = new SmtpSettings
        {
            Host = host,
            Port = port,
            Tls = tls.Value,
            User = parse.GetValue(_user),
            Password = password,
            From = parse.GetValue(_from),
            To = to,
            MaxMailsPerWindow = maxMails,
            RateWindow = TimeSpan.FromSeconds(window),
        };
        options.BacklogAlertThreshold = parse.GetValue(_backlog);
        options.LogMaxLinesPerJob = lines;
        options.LogMaxBytesPerJob = bytes;
        return null;
    }
}
