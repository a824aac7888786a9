using System.Globalization;
using Dts.Contracts;
using Dts.Server.Notifications;
using Dts.Testing;
using Microsoft.Extensions.Time.Testing;
using MimeKit;

namespace Dts.Server.Tests;

/// <summary>Alert e-mails, received by a real SMTP server in the test process.</summary>
public sealed class AlertMailTests : IAsyncLifetime
{
    private readonly FakeTimeProvider _time = new(DateTimeOffset.UtcNow);
    private TestSmtpServer _smtp = null!;

    public async ValueTask InitializeAsync() => _smtp = await TestSmtpServer.StartAsync();

    public async ValueTask DisposeAsync() => await _smtp.DisposeAsync();

    private Task<TestServer> StartServerAsync(Action<DtsServerOptions>? more = null) => TestServer.StartAsync(_time, o =>
    {
        o.Smtp = new SmtpSettings
        {
            Host = "127.0.0.1",
            Port = _smtp.Port,
            Tls = SmtpTlsMode.None,
            From = "dts@example.com",
            To = ["ops@example.com", "oncall@example.com"],
        };
        more?.Invoke(o);
    });

    private static string Text(MimeMessage m) => m.Subject + "\n" + m.TextBody;

    private static string Body(MimeMessage m) => m.TextBody ?? "";

    private static long Header(MimeMessage m, string name) => long.Parse(m.Headers[name] ?? "0", CultureInfo.InvariantCulture);

    [Fact]
    public async Task LostWorker_SendsAMailNamingTheWorker()
    {
        await using var server = await StartServerAsync();
        var worker = await server.UserAsync("w1", Roles.Worker);
        var body = SignedHttp.Json(new RegisterWorkerRequest { Name = "build-box-7", Functions = ["f"] }, DtsJsonContext.Default.RegisterWorkerRequest);
        await worker.CallAsync(HttpMethod.Post, ApiRoutes.Workers, body, DtsJsonContext.Default.RegisterWorkerResponse);

        // No heartbeat comes; past the lease timeout the watcher finds the worker silent.
        _time.Advance(TimeSpan.FromSeconds(16));
        var mails = await _smtp.WaitForAsync(m => m.Any(x => Text(x).Contains("build-box-7", StringComparison.Ordinal)), _time);

        var mail = mails.First(x => (x.Subject ?? "").Contains("build-box-7", StringComparison.Ordinal));
        Assert.Contains("lost", mail.Subject ?? "", StringComparison.Ordinal);
        Assert.Contains("build-box-7", Body(mail), StringComparison.Ordinal);
        Assert.Equal("dts@example.com", mail.From.Mailboxes.Single().Address);
        Assert.Equal(["ops@example.com", "oncall@example.com"], mail.To.Mailboxes.Select(x => x.Address));
    }

    [Fact]
    public async Task DeadJob_SendsAMailWithItsIdAndError()
    {
        await using var server = await StartServerAsync();
        var client = await server.UserAsync("alice", Roles.Client);
        var worker = await server.UserAsync("w1", Roles.Worker);
        var s = await Flow.SubmitAsync(client, """{"function":"poison","max_attempts":1}""");
        var workerId = await Flow.RegisterAsync(worker, "poison");
        var job = Assert.Single(await Flow.LeaseAsync(worker, workerId));
        (await Flow.FailAsync(worker, job, "it broke", retry: false)).Dispose();

        var mails = await _smtp.WaitForAsync(m => m.Any(x => (x.Subject ?? "").Contains(s.Id, StringComparison.Ordinal)));
        var mail = mails.First(x => (x.Subject ?? "").Contains(s.Id, StringComparison.Ordinal));
        Assert.Contains("dead", mail.Subject ?? "", StringComparison.Ordinal);
        Assert.Contains("poison", Body(mail), StringComparison.Ordinal);
        Assert.Contains("it broke", Body(mail), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AJobWhoseLastLeaseExpires_SendsADeadJobMail()
    {
        await using var server = await StartServerAsync();
        var client = await server.UserAsync("alice", Roles.Client);
        var worker = await server.UserAsync("w1", Roles.Worker);
        var s = await Flow.SubmitAsync(client, """{"function":"hang","max_attempts":1}""");
        var workerId = await Flow.RegisterAsync(worker, "hang");
        Assert.Single(await Flow.LeaseAsync(worker, workerId));

        // No heartbeat: the lease rescuer ends the only attempt, and the job is dead.
        _time.Advance(TimeSpan.FromSeconds(16));
        // The worker's loss is alerted at about the same time; alerts that arrive together share a mail.
        var mails = await _smtp.WaitForAsync(m => m.Any(x => Body(x).Contains(s.Id, StringComparison.Ordinal)), _time);
        var mail = mails.First(x => Body(x).Contains(s.Id, StringComparison.Ordinal));
        Assert.Contains($"job {s.Id} of hang dead", Body(mail), StringComparison.Ordinal);
        Assert.Contains(Core.JobTransitions.LeaseExpiredErrorCode, Body(mail), StringComparison.Ordinal);
    }

    [Fact]
    public async Task BurstOfDeadJobs_IsRateLimited_AndTheRestArrivesAsACount()
    {
        const int jobs = 150;
        var window = TimeSpan.FromMinutes(10);
        await using var server = await StartServerAsync(o =>
        {
            o.Smtp.MaxMailsPerWindow = 2;
            o.Smtp.RateWindow = window;
            // Only the dead jobs should alert here, not the worker going quiet while the clock moves.
            o.AlertCheckInterval = TimeSpan.FromHours(1);
        });
        var client = await server.UserAsync("alice", Roles.Client);
        var worker = await server.UserAsync("w1", Roles.Worker);
        var submit = new SubmitBatchRequest { Jobs = [.. Enumerable.Range(0, jobs).Select(_ => new SubmitJobRequest { Function = "p", MaxAttempts = 1 })] };
        await client.CallAsync(HttpMethod.Post, ApiRoutes.JobsBatch, SignedHttp.Json(submit, DtsJsonContext.Default.SubmitBatchRequest), DtsJsonContext.Default.SubmitBatchResponse);
        var workerId = await Flow.RegisterAsync(worker, "p");
        var leased = await Flow.LeaseAsync(worker, workerId, max: jobs);
        Assert.Equal(jobs, leased.Count);
        var reports = new ReportBatchRequest
        {
            Reports = [.. leased.Select(j => new JobReport { JobId = j.Id, LeaseToken = j.LeaseToken, Error = new JobError { Code = "boom", Message = "no" }, Retry = false })],
        };
        await worker.CallAsync(HttpMethod.Post, ApiRoutes.WorkerReports(workerId), SignedHttp.Json(reports, DtsJsonContext.Default.ReportBatchRequest), DtsJsonContext.Default.ReportBatchResponse);

        // Every alert is either described in a mail or counted in a later one; moving the clock opens new windows.
        var mails = await _smtp.WaitForAsync(m => m.Sum(x => Header(x, AlertMailer.AlertCountHeader) + Header(x, AlertMailer.SuppressedCountHeader)) >= jobs, _time);

        Assert.Equal(jobs, mails.Sum(x => Header(x, AlertMailer.AlertCountHeader) + Header(x, AlertMailer.SuppressedCountHeader)));
        Assert.Contains(mails, x => Header(x, AlertMailer.SuppressedCountHeader) > 0 && Body(x).Contains("Suppressed:", StringComparison.Ordinal));
        // Never more than the allowed number of mails within one window.
        foreach (var m in mails)
            Assert.True(mails.Count(x => x.Date >= m.Date && x.Date < m.Date + window) <= 2, $"more than 2 mails in the window from {m.Date}");
        Assert.True(mails.Count <= 4, $"{mails.Count} mails for one burst");
    }

    [Fact]
    public async Task Backlog_PastTheThreshold_SendsOneMail()
    {
        await using var server = await StartServerAsync(o => o.BacklogAlertThreshold = 3);
        var client = await server.UserAsync("alice", Roles.Client);
        for (var i = 0; i < 5; i++) await Flow.SubmitFnAsync(client, "resize");

        var mails = await _smtp.WaitForAsync(m => m.Any(x => (x.Subject ?? "").Contains("backlog of resize", StringComparison.Ordinal)), _time);
        var mail = mails.Single(x => (x.Subject ?? "").Contains("backlog of resize", StringComparison.Ordinal));
        Assert.Contains("5 queued", mail.Subject ?? "", StringComparison.Ordinal);
        Assert.Contains("threshold of 3", Body(mail), StringComparison.Ordinal);
    }

    [Fact]
    public async Task AnUnreachableSmtpServer_IsRetriedThenGivenUp_AndTheServerKeepsServing()
    {
        int closedPort;
        using (var probe = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0))
        {
            probe.Start();
            closedPort = ((System.Net.IPEndPoint)probe.LocalEndpoint).Port;
        }
        var log = new System.Collections.Concurrent.ConcurrentQueue<string>();
        await using var server = await TestServer.StartAsync(_time, o =>
        {
            o.Smtp = new SmtpSettings { Host = "127.0.0.1", Port = closedPort, To = ["ops@example.com"], User = "alerts", Password = "not-a-real-password", SendAttempts = 2 };
        }, log: log.Enqueue);
        var client = await server.UserAsync("alice", Roles.Client);
        var worker = await server.UserAsync("w1", Roles.Worker);
        var s = await Flow.SubmitAsync(client, """{"function":"x","max_attempts":1}""");
        var workerId = await Flow.RegisterAsync(worker, "x");
        var job = Assert.Single(await Flow.LeaseAsync(worker, workerId));
        (await Flow.FailAsync(worker, job, "bad", retry: false)).Dispose();

        for (var i = 0; i < 400 && !log.Any(l => l.Contains("Gave up the alert mail", StringComparison.Ordinal)); i++)
        {
            _time.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(25, TestContext.Current.CancellationToken);
        }
        Assert.Contains(log, l => l.Contains("retrying in", StringComparison.Ordinal));
        Assert.Contains(log, l => l.Contains("Gave up the alert mail", StringComparison.Ordinal));
        Assert.DoesNotContain(log, l => l.Contains("not-a-real-password", StringComparison.Ordinal));
        Assert.Equal(JobState.Dead, (await Flow.GetAsync(client, s.Id)).State);
    }
}
