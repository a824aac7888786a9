namespace Dts.Worker;

/// <summary>Exponential backoff with jitter for the worker's retry loops; not thread-safe (one per loop).</summary>
internal sealed class Backoff
{
    private readonly TimeSpan _min;
    private readonly TimeSpan _max;
    private readonly TimeProvider _time;
    private TimeSpan _next;

    public Backoff(TimeSpan min, TimeSpan max, TimeProvider time)
    {
        _min = min;
        _max = max;
        _time = time;
        _next = min;
    }

    public void Reset() => _next = _min;

    public async Task WaitAsync(CancellationToken cancellationToken)
    {
        // Jitter spreads a fleet of workers that all lost the server at the same moment.
        var wait = _next * (0.5 + Random.Shared.NextDouble() / 2);
        _next = _next * 2 > _max ? _max : _next * 2;
        await Task.Delay(wait, _time, cancellationToken).ConfigureAwait(false);
    }
}
