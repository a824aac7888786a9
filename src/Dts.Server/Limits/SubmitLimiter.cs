using System.Collections.Concurrent;
using Dts.Contracts;
using Dts.Core;
using Dts.Core.Storage;

namespace Dts.Server.Limits;

/// <summary>Refuses a submit with 429 and tells the client how long to wait before trying again.</summary>
public sealed class LimitExceededException(ErrorCode error, string detail, TimeSpan retryAfter) : Exception(detail)
{
    public ErrorCode Error { get; } = error;
    public TimeSpan RetryAfter { get; } = retryAfter;

    /// <summary>Whole seconds for the Retry-After header: rounded up, at least 1.</summary>
    public int RetryAfterSeconds => Math.Max(1, (int)Math.Ceiling(RetryAfter.TotalSeconds));
}

/// <summary>
/// The per-user submit limits: at most <c>max_queued</c> unfinished jobs, and a token bucket of
/// <c>submit_rate</c> jobs per second holding up to <c>submit_burst</c>. Buckets live in this
/// server's memory: with several servers each grants the rate, which bounds abuse without any
/// coordination between them.
/// </summary>
public sealed class SubmitLimiter(IJobStore store, TimeProvider time)
{
    /// <summary>A full queue drains at the pace of workers, which the server cannot know; this is the hint it gives.</summary>
    public static readonly TimeSpan QueueLimitRetryAfter = TimeSpan.FromSeconds(2);

    private readonly ConcurrentDictionary<string, TokenBucket> _buckets = new(StringComparer.Ordinal);

    /// <summary>The bucket size of a user: the set burst, or the rate rounded up, at least 1.</summary>
    public static double BurstOf(double rate, double? burst) => burst ?? Math.Max(1, Math.Ceiling(rate));

    /// <summary>
    /// Checks both limits for <paramref name="count"/> new jobs and takes their tokens. Throws
    /// <see cref="LimitExceededException"/> (429) when the user must wait, and a 400
    /// <see cref="DtsException"/> when the batch could never pass.
    /// </summary>
    public async Task CheckAsync(UserRecord user, int count, CancellationToken cancellationToken)
    {
        if (user.MaxQueued is { } max)
        {
            if (count > max)
                throw new DtsException(ErrorCodes.InvalidField, $"The batch has {count} jobs but user '{user.Name}' may have at most {max} unfinished jobs; send smaller batches.", "jobs");
            // Checked before the insert, outside the writer: concurrent submits of one user may pass the limit by what they have in flight.
            var unfinished = await store.JobCountUnfinishedAsync(new JobCountUnfinishedParams(user.Name), cancellationToken);
            if (unfinished + count > max)
                throw new LimitExceededException(ErrorCodes.QueueLimit,
                    $"User '{user.Name}' has {unfinished} unfinished jobs; at most {max} are allowed, so {count} more do not fit. Retry after some finish.",
                    QueueLimitRetryAfter);
        }

        if (user.SubmitRate is { } rate)
        {
            var burst = BurstOf(rate, user.SubmitBurst);
            if (count > burst)
                throw new DtsException(ErrorCodes.InvalidField, $"The batch has {count} jobs but user '{user.Name}' may submit at most {burst} at once (submit_burst); send smaller batches.", "jobs");
            var bucket = _buckets.AddOrUpdate(user.Name,
                static (_, a) => new TokenBucket(a.rate, a.burst, a.now),
                static (_, old, a) => old.Rate == a.rate && old.Burst == a.burst ? old : new TokenBucket(a.rate, a.burst, a.now),
                (rate, burst, now: time.GetUtcNow()));
            var wait = bucket.TryTake(count, time.GetUtcNow());
            if (wait > TimeSpan.Zero)
                throw new LimitExceededException(ErrorCodes.RateLimited,
                    $"User '{user.Name}' may submit {rate} jobs per second (burst {burst}); retry after the Retry-After interval.", wait);
        }
    }

    /// <summary>Drops a user's bucket, for example after its limits changed or it was deleted.</summary>
    public void Forget(string name) => _buckets.TryRemove(name, out _);
}

/// <summary>A token bucket: <see cref="Rate"/> tokens per second, holding at most <see cref="Burst"/>, full at first.</summary>
public sealed class TokenBucket(double rate, double burst, DateTimeOffset now)
{
    private readonly Lock _lock = new();
    private double _tokens = burst;
    private DateTimeOffset _last = now;

    public double Rate { get; } = rate;
    public double Burst { get; } = burst;

    /// <summary>Takes <paramref name="count"/> tokens and returns zero, or takes none and returns how long until there are enough.</summary>
    public TimeSpan TryTake(int count, DateTimeOffset now)
    {
        lock (_lock)
        {
            if (now > _last)
            {
                _tokens = Math.Min(Burst, _tokens + (now - _last).TotalSeconds * Rate);
                _last = now;
            }
            if (_tokens >= count)
            {
                _tokens -= count;
                return TimeSpan.Zero;
            }
            return TimeSpan.FromSeconds((count - _tokens) / Rate);
        }
    }
}
