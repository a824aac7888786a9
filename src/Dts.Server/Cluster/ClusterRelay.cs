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
/// <para>
/// Published signals carry this server's <see cref="ServerId"/>; LISTEN delivers them to every
/// listener, this server included, and this server drops its own (its waiters were woken when the
/// signal was raised). JobsReady signals carry how many jobs became ready, summed per function
/// within a batch, so the receiving servers wake that many of their waiters.
/// </para>
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
        ServerId = Guid.NewGuid().ToString("N");
        _server = server;
        _shared = shared;
        _logger = server.LoggerFactory.CreateLogger<ClusterRelay>();
        server.Signals.Forward = s => _outbox.Writer.TryWrite(s);
        server.LogSignals.Forward = id => _outbox.Writer.TryWrite(new ClusterSignal(ClusterSignalKind.LogsAppended, id));
    }

    /// <summary>Signals published (after de-duplication within a batch).</summary>
    public long Published => Interlocked.Read(ref _published);
    private long _published;

    /// <summary>The id this server puts in the signals it publishes, random per start.</summary>
    public string ServerId { get; }

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
        // This server's own signal, back by LISTEN: its waiters were woken when it was raised.
        if (string.Equals(signal.Origin, ServerId, StringComparison.Ordinal)) return;
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
        // Same kind and key merge; JobsReady counts add up (saturating at "all").
        var batch = new Dictionary<(ClusterSignalKind, string), int>();
        var backoff = TimeSpan.FromMilliseconds(100);
        try
        {
            while (await _outbox.Reader.WaitToReadAsync(stoppingToken))
            {
                batch.Clear();
                while (batch.Count < MaxBatch && _outbox.Reader.TryRead(out var s))
                {
                    var key = (s.Kind, s.Key);
                    var count = Math.Max(1, s.Count);
                    batch[key] = batch.TryGetValue(key, out var had) ? (int)Math.Min((long)had + count, int.MaxValue) : count;
                }
                if (batch.Count == 0) continue;
                var signals = new List<ClusterSignal>(batch.Count);
                foreach (var ((kind, key), count) in batch)
                    signals.Add(new ClusterSignal(kind, key, kind == ClusterSignalKind.JobsReady ? count : 1, ServerId));
                try
                {
                    await _shared.PublishAsync(signals, stoppingToken);
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
