namespace Dts.Server.Notifications;

/// <summary>
/// At most <c>max</c> mails in any <c>window</c> (a sliding window), and the tally of what was held
/// back meanwhile. Pure logic on the times it is given; used by one thread (the mailer).
/// </summary>
public sealed class AlertRateLimit(int max, TimeSpan window)
{
    /// <summary>How many held-back alerts are named in a digest; the rest are only counted.</summary>
    public const int MaxSamples = 20;

    private readonly Queue<DateTimeOffset> _sent = new();
    private readonly Dictionary<AlertKind, long> _suppressedByKind = [];
    private readonly List<string> _samples = [];

    public long Suppressed { get; private set; }
    public IReadOnlyDictionary<AlertKind, long> SuppressedByKind => _suppressedByKind;
    public IReadOnlyList<string> SuppressedSamples => _samples;

    /// <summary>True, and counts a mail, when one may go at <paramref name="now"/>.</summary>
    public bool TryTake(DateTimeOffset now)
    {
        Prune(now);
        if (_sent.Count >= Math.Max(1, max)) return false;
        _sent.Enqueue(now);
        return true;
    }

    /// <summary>When the next mail may go: <paramref name="now"/> if at once.</summary>
    public DateTimeOffset NextAllowedAt(DateTimeOffset now)
    {
        Prune(now);
        return _sent.Count < Math.Max(1, max) ? now : _sent.Peek() + window;
    }

    public void Hold(Alert alert)
    {
        Suppressed++;
        _suppressedByKind[alert.Kind] = _suppressedByKind.GetValueOrDefault(alert.Kind) + 1;
        if (_samples.Count < MaxSamples) _samples.Add($"{alert.At:u} {Alert.KindName(alert.Kind)}: {alert.Subject}");
    }

    /// <summary>Alerts lost before they reached the mailer (its queue was full); counted, kind unknown.</summary>
    public void HoldUncounted(long count) => Suppressed += count;

    public void ClearHeld()
    {
        Suppressed = 0;
        _suppressedByKind.Clear();
        _samples.Clear();
    }

    private void Prune(DateTimeOffset now)
    {
        while (_sent.Count > 0 && _sent.Peek() + window <= now) _sent.Dequeue();
    }
}
