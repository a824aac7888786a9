using System.Buffers;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using MimeKit;
using SmtpServer;
using SmtpServer.Protocol;
using SmtpServer.Storage;

namespace Dts.Server.Tests;

/// <summary>A real SMTP server in the test process, on 127.0.0.1 and a free port, keeping every message it receives.</summary>
internal sealed class TestSmtpServer : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _running;
    private readonly CapturingStore _store = new();

    private TestSmtpServer(int port)
    {
        Port = port;
        var options = new SmtpServerOptionsBuilder()
            .ServerName("localhost")
            .Endpoint(b => b.Endpoint(new IPEndPoint(IPAddress.Loopback, port)))
            .Build();
        var services = new SmtpServer.ComponentModel.ServiceProvider();
        services.Add(_store);
        _running = new SmtpServer.SmtpServer(options, services).StartAsync(_stop.Token);
    }

    public int Port { get; }
    public IReadOnlyList<MimeMessage> Messages => [.. _store.Messages];

    public static async Task<TestSmtpServer> StartAsync()
    {
        // The SMTP library needs a port up front: take a free one from the OS, then listen on it.
        int port;
        using (var probe = new TcpListener(IPAddress.Loopback, 0))
        {
            probe.Start();
            port = ((IPEndPoint)probe.LocalEndpoint).Port;
        }
        var server = new TestSmtpServer(port);
        // Wait until it accepts connections, so the mailer's first attempt does not hit a closed port.
        for (var i = 0; ; i++)
        {
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync(IPAddress.Loopback, port, TestContext.Current.CancellationToken);
                return server;
            }
            catch (SocketException) when (i < 200)
            {
                await Task.Delay(25, TestContext.Current.CancellationToken);
            }
        }
    }

    /// <summary>Waits (bounded) until <paramref name="done"/> holds for the messages; moves <paramref name="clock"/> on a second per look if given.</summary>
    public async Task<IReadOnlyList<MimeMessage>> WaitForAsync(Func<IReadOnlyList<MimeMessage>, bool> done, Microsoft.Extensions.Time.Testing.FakeTimeProvider? clock = null)
    {
        for (var i = 0; i < 800; i++)
        {
            var messages = Messages;
            if (done(messages)) return messages;
            clock?.Advance(TimeSpan.FromSeconds(1));
            await Task.Delay(25, TestContext.Current.CancellationToken);
        }
        throw new Xunit.Sdk.XunitException($"the SMTP server got {Messages.Count} messages, not what the test waited for");
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _running;
        }
        catch (OperationCanceledException)
        {
            // The server ends by cancellation.
        }
        _stop.Dispose();
    }

    private sealed class CapturingStore : MessageStore
    {
        public ConcurrentQueue<MimeMessage> Messages { get; } = new();

        public override async Task<SmtpResponse> SaveAsync(ISessionContext context, IMessageTransaction transaction, ReadOnlySequence<byte> buffer, CancellationToken cancellationToken)
        {
            await using var stream = new MemoryStream(buffer.ToArray());
            Messages.Enqueue(await MimeMessage.LoadAsync(stream, cancellationToken));
            return SmtpResponse.Ok;
        }
    }
}
