using Dts.Contracts;

namespace Dts.Client.Tests;

/// <summary>
/// Lets the first matching request reach a real server and then loses its answer, as when the
/// connection is reset after the server has committed the request. <paramref name="beforeLosing"/>,
/// when given, runs with the answer in hand first (to let the world move on before the resend).
/// </summary>
internal sealed class LoseAnswerHandler(Func<HttpRequestMessage, bool> match, Func<HttpResponseMessage, Task>? beforeLosing = null)
    : DelegatingHandler(new SocketsHttpHandler())
{
    private int _lost;

    /// <summary>Loses the answer of the first single submit.</summary>
    public static LoseAnswerHandler OfSubmits() =>
        new(r => r.Method == HttpMethod.Post && r.RequestUri!.AbsolutePath == ApiRoutes.Jobs);

    /// <summary>Loses the answer of the first batch submit.</summary>
    public static LoseAnswerHandler OfBatches(Func<HttpResponseMessage, Task>? beforeLosing = null) =>
        new(r => r.Method == HttpMethod.Post && r.RequestUri!.AbsolutePath == ApiRoutes.JobsBatch, beforeLosing);

    public int Lost => Volatile.Read(ref _lost);

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        var response = await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
        if (!match(request) || Interlocked.CompareExchange(ref _lost, 1, 0) != 0) return response;
        Assert.True(response.IsSuccessStatusCode, $"the first send should have succeeded, got {(int)response.StatusCode}");
        if (beforeLosing is not null) await beforeLosing(response).ConfigureAwait(false);
        response.Dispose();
        throw new HttpRequestException(HttpRequestError.ResponseEnded, "The response ended prematurely (simulated reset).",
            new IOException("Connection reset by peer (simulated)."));
    }
}
