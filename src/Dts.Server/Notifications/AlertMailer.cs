using System.Globalization;
using System.Text;
using MailKit.Net.Smtp;
using MailKit.Security;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using MimeKit;

namespace Dts.Server.Notifications;

/// <summary>
/// Empties the <see cref="AlertQueue"/>: logs every alert and, when SMTP is configured, mails it.
/// Alerts waiting at the same moment share one mail; at most <see cref="SmtpSettings.MaxMailsPerWindow"/>
/// mails go per <see cref="SmtpSettings.RateWindow"/>, and what is held back meanwhile is summed up
/// in the next mail (sent as soon as the window allows, even if no new alert comes). A failed send
/// is retried with backoff, then given up and logged; nothing here can stop the server.
/// </summary>
public sealed class AlertMailer(ServerContext server) : BackgroundService
{
    /// <summary>Most alerts described in full in one mail; more are counted in its digest.</summary>
    public const int MaxAlertsPerMail = 50;

    public const string AlertCountHeader = "X-Dts-Alert-Count";
    public const string SuppressedCountHeader = "X-Dts-Suppressed-Count";

    private static readonly TimeSpan FirstRetryDelay = TimeSpan.FromSeconds(2);
    private static readonly TimeSpan MaxRetryDelay = TimeSpan.FromSeconds(60);

    private readonly ILogger _logger = server.LoggerFactory.CreateLogger<AlertMailer>();
    private readonly SmtpSettings _smtp = server.Options.Smtp;
    private readonly AlertRateLimit _limit = new(server.Options.Smtp.MaxMailsPerWindow, server.Options.Smtp.RateWindow);
    private long _mailsSent;

    /// <summary>Mails handed to the SMTP server so far; for tests and metrics.</summary>
    public long MailsSent => Interlocked.Read(ref _mailsSent);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var reader = server.Alerts.Reader;
        Task<bool>? pendingRead = null;
        var batch = new List<Alert>();
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                pendingRead ??= reader.WaitToReadAsync(stoppingToken).AsTask();
                if (_limit.Suppressed > 0 && _smtp.IsConfigured)
                {
                    // Held-back alerts must reach a mail when the window opens, even if nothing new comes.
                    var now = server.Time.GetUtcNow();
                    var wait = _limit.NextAllowedAt(now) - now;
                    if (wait > TimeSpan.Zero)
                    {
                        using var delayCts = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
                        var delay = Task.Delay(wait, server.Time, delayCts.Token);
                        await Task.WhenAny(pendingRead, delay);
                        await delayCts.CancelAsync();
                    }
                }
                else
                {
                    await pendingRead;
                }
                if (pendingRead.IsCompleted)
                {
                    if (!await pendingRead) return;
                    pendingRead = null;
                }
                stoppingToken.ThrowIfCancellationRequested();

                batch.Clear();
                while (reader.TryRead(out var alert)) batch.Add(alert);
                foreach (var alert in batch) Log.Alert(_logger, Alert.KindName(alert.Kind), alert.Subject);
                if (!_smtp.IsConfigured) continue;

                _limit.HoldUncounted(server.Alerts.TakeOverflow());
                if (batch.Count == 0 && _limit.Suppressed == 0) continue;
                var at = server.Time.GetUtcNow();
                if (!_limit.TryTake(at))
                {
                    foreach (var alert in batch) _limit.Hold(alert);
                    continue;
                }
                for (var i = MaxAlertsPerMail; i < batch.Count; i++) _limit.Hold(batch[i]);
                var listed = batch.Count > MaxAlertsPerMail ? batch.GetRange(0, MaxAlertsPerMail) : [.. batch];
                var message = Compose(listed, at);
                _limit.ClearHeld();
                await SendWithRetryAsync(message, stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // A bug in composing must not end alerting for the life of the server.
                Log.AlertMailerFailed(_logger, ex);
                pendingRead = null;
            }
        }
    }

    private MimeMessage Compose(IReadOnlyList<Alert> alerts, DateTimeOffset now)
    {
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse(_smtp.ResolvedFrom));
        foreach (var to in _smtp.To) message.To.Add(MailboxAddress.Parse(to));
        var suppressed = _limit.Suppressed;
        message.Subject = alerts.Count switch
        {
            0 => $"[dts] {suppressed} alerts held back",
            1 => $"[dts] {alerts[0].Subject}",
            _ => $"[dts] {alerts.Count} alerts: {alerts[0].Subject}, ...",
        };
        message.Date = now;
        message.Headers.Add(AlertCountHeader, alerts.Count.ToString(CultureInfo.InvariantCulture));
        message.Headers.Add(SuppressedCountHeader, suppressed.ToString(CultureInfo.InvariantCulture));

        var body = new StringBuilder();
        foreach (var a in alerts)
        {
            body.Append(CultureInfo.InvariantCulture, $"{a.At:u} {Alert.KindName(a.Kind)}: {a.Subject}\n");
            body.Append(a.Body).Append("\n\n");
        }
        if (suppressed > 0)
        {
            body.Append(CultureInfo.InvariantCulture,
                $"Suppressed: {suppressed} more alerts were held back since the last mail (at most {_smtp.MaxMailsPerWindow} mails per {_smtp.RateWindow}).\n");
            foreach (var (kind, count) in _limit.SuppressedByKind)
                body.Append(CultureInfo.InvariantCulture, $"  {Alert.KindName(kind)}: {count}\n");
            if (_limit.SuppressedSamples.Count > 0)
            {
                body.Append("The first of them:\n");
                foreach (var s in _limit.SuppressedSamples) body.Append("  ").Append(s).Append('\n');
            }
            body.Append("See the server's log for every alert.\n");
        }
        message.Body = new TextPart("plain") { Text = body.ToString() };
        return message;
    }

    private async Task SendWithRetryAsync(MimeMessage message, CancellationToken stoppingToken)
    {
        var delay = FirstRetryDelay;
        var attempts = Math.Max(1, _smtp.SendAttempts);
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                await SendAsync(message, stoppingToken);
                Interlocked.Increment(ref _mailsSent);
                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                if (attempt >= attempts)
                {
                    Log.AlertMailGivenUp(_logger, ex, message.Subject ?? "", attempts);
                    return;
                }
                Log.AlertMailRetry(_logger, ex, message.Subject ?? "", delay);
                await Task.Delay(delay, server.Time, stoppingToken);
                delay = TimeSpan.FromTicks(Math.Min(delay.Ticks * 2, MaxRetryDelay.Ticks));
            }
        }
    }

    private async Task SendAsync(MimeMessage message, CancellationToken cancellationToken)
    {
        // A connection per mail: mails are few (rate-limited), and a long-idle SMTP connection would be dropped anyway.
        using var client = new SmtpClient();
        client.Timeout = 30_000;
        var secure = _smtp.Tls switch
        {
            SmtpTlsMode.StartTls => SecureSocketOptions.StartTls,
            SmtpTlsMode.Tls => SecureSocketOptions.SslOnConnect,
            _ => SecureSocketOptions.None,
        };
        await client.ConnectAsync(_smtp.Host!, _smtp.Port, secure, cancellationToken);
        if (!string.IsNullOrEmpty(_smtp.User)) await client.AuthenticateAsync(_smtp.User, _smtp.Password ?? "", cancellationToken);
        await client.SendAsync(message, cancellationToken);
        await client.DisconnectAsync(true, cancellationToken);
    }
}
