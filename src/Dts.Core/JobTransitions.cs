using Dts.Contracts;

namespace Dts.Core;

/// <summary>
/// The job state machine (docs/job-lifecycle.md). Stores apply these rules; they do not invent their own.
/// </summary>
public static class JobTransitions
{
    private static readonly Dictionary<JobState, JobState[]> Allowed = new()
    {
        [JobState.Scheduled] = [JobState.Queued, JobState.Cancelled],
        [JobState.Queued] = [JobState.Running, JobState.Cancelled],
        // Running -> Queued: the lease expired and attempts remain.
        [JobState.Running] = [JobState.Succeeded, JobState.AwaitingRetry, JobState.Dead, JobState.Cancelled, JobState.Queued],
        [JobState.AwaitingRetry] = [JobState.Queued, JobState.Cancelled],
        // Terminal, except that an administrator may retry a dead job.
        [JobState.Dead] = [JobState.Queued],
        [JobState.Succeeded] = [],
        [JobState.Cancelled] = [],
    };

    public static bool CanTransition(JobState from, JobState to) => Allowed[from].Contains(to);

    /// <summary>
    /// Where a failed attempt leads: another attempt after a backoff, or dead when the attempts are
    /// used up or the worker said the failure is final.
    /// </summary>
    public static (JobState State, DateTimeOffset RunAt) AfterFailure(int attempts, int maxAttempts, bool retry, DateTimeOffset now, RetryPolicy policy)
    {
        if (!retry || attempts >= maxAttempts) return (JobState.Dead, now);
        return (JobState.AwaitingRetry, now + policy.DelayAfter(attempts));
    }

    /// <summary>Where a job goes when its worker's lease expired: queued at once while attempts remain.</summary>
    public static JobState AfterLeaseExpired(int attempts, int maxAttempts) =>
        attempts >= maxAttempts ? JobState.Dead : JobState.Queued;

    public const string LeaseExpiredErrorCode = "lease_expired";
    public const string LeaseExpiredMessage = "The worker stopped sending heartbeats and its lease expired.";
}
