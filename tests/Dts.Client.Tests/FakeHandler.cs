using System.Collections.Concurrent;
using System.Net;
using System.Text;
using Microsoft.Extensions.Time.Testing;

namespace Dts.Client.Tests;

/// <summary>A request as it reached the wire, copied out before the message is disposed.</summary>
internal sealed record CapturedRequest(HttpMethod Method, Uri Uri, Dictionary<string, string> Headers, byte[] Body, string? ContentType)
{
    public string BodyText => Encoding.UTF8.GetString(Body);
}

/// <summary>An inner handler answering with a scripted function, recording every request.</summary>
internal sealed class FakeHandler(Func<CapturedRequest, int, Task<HttpResponseMessage>> answer) : HttpMessageHandler
{
    private int _calls;

    public ConcurrentQueue<CapturedRequest> Requests { get; } = new();

    public int Calls => Volatile.Read(ref _calls);

    public static HttpResponseMessage Json(HttpStatusCode status, string json, string mediaType = "application/json") =>
        new(status) { Content = new StringContent(json, Encoding.UTF8, mediaType) };

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var body = request.Content is null ? [] : await request.Content.ReadAsByteArrayAsync(cancellationToken);
        var headers = request.Headers.ToDictionary(h => h.Key, h => string.Join(",", h.Value), StringComparer.OrdinalIgnoreCase);
        var captured = new CapturedRequest(request.Method, request.RequestUri!, headers, body, request.Content?.Headers.ContentType?.MediaType);
        Requests.Enqueue(captured);
        var call = Interlocked.Increment(ref _calls);
        return await answer(captured, call);
    }
}

/// <summary>A fake clock that also tells which timers were started, so a test advances only after a wait began.</summary>
internal sealed class ObservedTimeProvider : FakeTimeProvider
{
    public ObservedTimeProvider()
        : base(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero))
    {
    }

    public ConcurrentQueue<TimeSpan> Timers { get; } = new();

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        Timers.Enqueue(dueTime);
        return base.CreateTimer(callback, state, dueTime, period);
    }

    public async Task WaitForTimerAsync(TimeSpan dueTime)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (!Timers.Contains(dueTime))
            await Task.Delay(5, cts.Token);
    }
}

internal static class Eventually
{
    /// <summary>Waits (in real time, bounded) for a condition that other threads make true.</summary>
    public static async Task TrueAsync(Func<bool> condition, string what, Action? step = null)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"Timed out waiting for: {what}");
            step?.Invoke();
            await Task.Delay(5);
        }
    }
}
