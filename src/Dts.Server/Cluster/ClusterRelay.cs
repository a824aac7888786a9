using System.Threading.Channels;
using Dts.Core.Storage;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Dts.Server.Cluster;

/// <summary>
/// Carries wake-ups between servers that share a store: signals raised on this server are
/// gathered and published in batches (one round trip for all that piled up while the last batch
/// was sent), and signals received from the store wake the local long polls and daemons. A lost
/// signal costs latency only: waiters also look in the store every
/// <see cref="DtsServerOptions.ClusterPollInterval"/>.
/// </summary>
public sealed class ClusterRelay : BackgroundService
{
    private const int MaxBatch = 512;
    private readonly ServerContext _server;
    private readonly ISharedStore _shared;
    private readonly ILogger _logger;
    private readonly Channel<ClusterSignal> _outbox = Channel.CreateBounded<ClusterSignal>(
        new BoundedChannelOptions(50_000) { SingleReader = true, FullMode = BoundedChannelFullMode.DropOldest });

    public ClusterRelay(ServerContext server, ISharedStore shared)
    {
        _server = server;
        _shared = shared;
        _logger = server.LoggerFactory.CreateLogger<ClusterRelay>();
        server.Signals.Forward = s => _outbox.Writer.TryWrite(s);
        server.LogSignals.Forward = id => _outbox.Writer.TryWrite(new ClusterSignal(ClusterSignalKind.LogsAppended, id));
    }

    /// <summary>Signals published (after de-duplication within a batch).</summary>
    public long Published => Interlocked.Read(ref _published);
    private long _published;

    /// <summary>Signals received from the store, this server's own echoes included.</summary>
    public long Received => Interlocked.Read(ref _received);
    private long _received;

    /// <summary>How many times the listening connection was (re)established.</summary>
    public long Resyncs => Interlocked.Read(ref _resyncs);
    private long _resyncs;

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(PublishLoopAsync(stoppingToken), ListenLoopAsync(stoppingToken));

    private async Task ListenLoopAsync(CancellationToken stoppingToken)
    {
        try
        {
            await _shared.ListenAsync(OnSignal, stoppingToken);
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }

    private void OnSignal(ClusterSignal signal)
    {
        Interlocked.Increment(ref _received);
        if (signal.Kind == ClusterSignalKind.Resync)
        {
            Interlocked.Increment(ref _resyncs);
            _server.LogSignals.WakeAll();
        }
        if (!_server.Signals.Receive(signal) && signal.Kind == ClusterSignalKind.LogsAppended)
            _server.LogSignals.Wake(signal.Key);
    }

    private async Task PublishLoopAsync(CancellationToken stoppingToken)
    {
        var batch = new HashSet<ClusterSignal>();
        var backoff = TimeSpan.FromMilliseconds(100);
        try
        {
            while (await _outbox.Reader.WaitToReadAsync(stoppingToken))
            {
                batch.Clear();
                while (batch.Count < MaxBatch && _outbox.Reader.TryRead(out var s)) batch.Add(s);
                if (batch.Count == 0) continue;
                try
                {
                    await _shared.PublishAsync([.. batch], stoppingToken);
                    Interlocked.Add(ref _published, batch.Count);
                    backoff = TimeSpan.FromMilliseconds(100);
                }
                catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
                {
                    // Dropped: the other servers' fallback poll finds the work.
                    Log.PublishFailed(_logger, ex, batch.Count);
                    await Task.Delay(backoff, _server.Time, stoppingToken);
                    backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(5).Ticks));
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
    }
}
