using Dts.Client;
using Dts.Contracts;

namespace Dts.Cli;

/// <summary>
/// Submits a stream of jobs in batches with a bound on jobs in flight, and collects their results
/// as they come back. Used by <c>dts demo</c> and <c>dts bench</c>.
/// </summary>
internal sealed class JobPump(DtsClient client, int batchSize, int maxInFlight, int parallelBatches = 4)
{
    private long _submitted;
    private long _finished;
    private long _failed;

    public long Submitted => Interlocked.Read(ref _submitted);
    public long Finished => Interlocked.Read(ref _finished);
    public long Failed => Interlocked.Read(ref _failed);

    /// <summary>
    /// Submits every job and returns when <paramref name="total"/> results have come back.
    /// <paramref name="onSubmitted"/> sees each job's id with its index; <paramref name="onResult"/> each finished job.
    /// </summary>
    public async Task RunAsync(IEnumerable<SubmitJobRequest> jobs, long total, Action<int, string> onSubmitted, Action<JobView> onResult, CancellationToken cancellationToken)
    {
        using var inFlight = new SemaphoreSlim(maxInFlight);
        using var batchSlots = new SemaphoreSlim(parallelBatches);
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);

        var reader = Task.Run(async () =>
        {
            if (total == 0) return;
            await foreach (var job in client.ReadResultsAsync(ApiRoutes.MaxBatch, cancellationToken: stop.Token))
            {
                if (job.State != JobState.Succeeded) Interlocked.Increment(ref _failed);
                onResult(job);
                inFlight.Release();
                if (Interlocked.Increment(ref _finished) >= total) return;
            }
        }, stop.Token);

        _stop = stop;
        var pending = new List<Task>();
        var batch = new List<SubmitJobRequest>(batchSize);
        var index = 0;
        try
        {
            foreach (var job in jobs)
            {
                await inFlight.WaitAsync(stop.Token);
                batch.Add(job);
                if (batch.Count == batchSize)
                {
                    pending.Add(await SendAsync(batch, index, batchSlots, onSubmitted, stop.Token));
                    index += batch.Count;
                    batch = new List<SubmitJobRequest>(batchSize);
                }
                if (reader.IsFaulted) break;
            }
            if (batch.Count > 0) pending.Add(await SendAsync(batch, index, batchSlots, onSubmitted, stop.Token));
            await Task.WhenAll(pending);
            await reader;
        }
        catch (OperationCanceledException) when (_failure is not null)
        {
            // A submit failed and stopped the run; report that failure rather than the cancellation.
        }
        finally
        {
            await stop.CancelAsync();
            try
            {
                await reader;
            }
            catch (OperationCanceledException)
            {
            }
        }
        if (_failure is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(_failure);
    }

    private CancellationTokenSource? _stop;
    private Exception? _failure;

    private async Task<Task> SendAsync(List<SubmitJobRequest> batch, int firstIndex, SemaphoreSlim slots, Action<int, string> onSubmitted, CancellationToken cancellationToken)
    {
        await slots.WaitAsync(cancellationToken);
        return Task.Run(async () =>
        {
            try
            {
                var answers = await client.SubmitBatchAsync(batch, cancellationToken);
                for (var i = 0; i < answers.Count; i++) onSubmitted(firstIndex + i, answers[i].Id);
                Interlocked.Add(ref _submitted, answers.Count);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !cancellationToken.IsCancellationRequested)
            {
                Interlocked.CompareExchange(ref _failure, ex, null);
                await _stop!.CancelAsync();
            }
            finally
            {
                slots.Release();
            }
        }, cancellationToken);
    }
}
