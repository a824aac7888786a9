namespace Dts.Core.Storage;

/// <summary>
/// Durable storage of jobs, users and workers. A write returns only after it is committed, so a
/// caller may acknowledge it to a client at once. Implementations pass the storage contract suite
/// in tests/Dts.Testing.
/// </summary>
public partial interface IJobStore : IAsyncDisposable
{
    /// <summary>For people: the kind of store and where it is (never a password).</summary>
    string Description { get; }

    /// <summary>Creates or upgrades the schema. Safe to call on every start.</summary>
    Task MigrateAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Stores new jobs, in order. A job whose owner, function and unique key match a job that holds
    /// the key is not stored: its result names that job, coalesced, and that job is left as it is.
    /// An automatic key (<see cref="Contracts.UniqueKeys"/>) is held by its job in every state until
    /// the job is deleted; any other key only while its job is unfinished. A job whose id is taken is
    /// an error (<see cref="InvalidOperationException"/>).
    /// </summary>
    Task<IReadOnlyList<JobInsertResult>> JobInsertManyAsync(JobInsertManyParams p, CancellationToken cancellationToken);

    /// <summary>
    /// Returns once every insert committed before the call without a flush
    /// (<see cref="JobInsertManyParams.Durable"/> false) is durable; returns at once when it already
    /// is. Lets a caller acknowledge such jobs only once they are durable. Writes that are never
    /// flushed on their own account (leases, heartbeats, worker registrations, nonces; see
    /// docs/architecture.md) need not be covered, though a flush may cover them too.
    /// <para>
    /// A store's flushes are ordered: a durable commit makes every commit before it durable too.
    /// A worker's report (<see cref="JobReportManyAsync"/>) always commits durably, so a job read in
    /// state succeeded, which only a report sets, proves its insert durable without this call.
    /// </para>
    /// </summary>
    Task FlushAsync(CancellationToken cancellationToken);
    Task<JobRecord?> JobGetAsync(JobGetParams p, CancellationToken cancellationToken);
    Task<IReadOnlyList<JobRecord>> JobLeaseAsync(JobLeaseParams p, CancellationToken cancellationToken);
    /// <summary>Applies progress, completions and failures. Each item is checked against the job's current lease token.</summary>
    Task<IReadOnlyList<JobReportResult>> JobReportManyAsync(JobReportManyParams p, CancellationToken cancellationToken);
    /// <summary>Finished jobs of an owner whose results are not yet acknowledged, oldest finish first.</summary>
    Task<IReadOnlyList<JobRecord>> JobResultsGetAsync(JobResultsGetParams p, CancellationToken cancellationToken);
    /// <summary>Acknowledges results; ids that are not the owner's finished jobs are ignored. Returns how many were acknowledged.</summary>
    Task<int> JobResultsAckAsync(JobResultsAckParams p, CancellationToken cancellationToken);
    Task<JobCancelResult> JobCancelAsync(JobCancelParams p, CancellationToken cancellationToken);
    Task<JobPromoteDueResult> JobPromoteDueAsync(JobPromoteDueParams p, CancellationToken cancellationToken);
    Task<JobRescueExpiredResult> JobRescueExpiredAsync(JobRescueExpiredParams p, CancellationToken cancellationToken);

    Task<UserRecord?> UserGetAsync(string name, CancellationToken cancellationToken);
    /// <summary>Returns false when a user of that name exists already.</summary>
    Task<bool> UserInsertAsync(UserInsertParams p, CancellationToken cancellationToken);
    Task<int> UserCountAsync(CancellationToken cancellationToken);

    /// <summary>
    /// Remembers a used nonce beyond this process's memory. Queued into the next group commit; writes
    /// queued after it by the same caller commit in the same or a later transaction.
    /// </summary>
    Task NonceRecordAsync(NonceRecordParams p, CancellationToken cancellationToken);
    /// <summary>True when the nonce was recorded for the user and has not expired.</summary>
    Task<bool> NonceSeenAsync(NonceSeenParams p, CancellationToken cancellationToken);
    /// <summary>Deletes a batch of expired nonces; returns how many.</summary>
    Task<int> NonceDeleteExpiredAsync(NonceDeleteExpiredParams p, CancellationToken cancellationToken);

    Task WorkerUpsertAsync(WorkerUpsertParams p, CancellationToken cancellationToken);
    Task<WorkerRecord?> WorkerGetAsync(string id, CancellationToken cancellationToken);
    Task<WorkerHeartbeatResult> WorkerHeartbeatAsync(WorkerHeartbeatParams p, CancellationToken cancellationToken);

    // Administration (AdminParams.cs).
    Task<IReadOnlyList<UserSummary>> UserListAsync(UserListParams p, CancellationToken cancellationToken);
    /// <summary>Returns false when there is no such user.</summary>
    Task<bool> UserUpdateAsync(UserUpdateParams p, CancellationToken cancellationToken);
    /// <summary>Returns false when there is no such user.</summary>
    Task<bool> UserSetSecretAsync(UserSetSecretParams p, CancellationToken cancellationToken);
    Task<UserDeleteResult> UserDeleteAsync(UserDeleteParams p, CancellationToken cancellationToken);
    Task<long> JobCountUnfinishedAsync(JobCountUnfinishedParams p, CancellationToken cancellationToken);
    Task<IReadOnlyList<WorkerListItem>> WorkerListAsync(WorkerListParams p, CancellationToken cancellationToken);
    /// <summary>Returns false when there is no such worker.</summary>
    Task<bool> WorkerSetDrainingAsync(WorkerSetDrainingParams p, CancellationToken cancellationToken);
    Task<IReadOnlyList<FunctionStats>> FunctionStatsAsync(FunctionStatsParams p, CancellationToken cancellationToken);
    Task<JobSearchResult> JobSearchAsync(JobSearchParams p, CancellationToken cancellationToken);
    Task<JobRetryResult> JobRetryAsync(JobRetryParams p, CancellationToken cancellationToken);
    /// <summary>Returns how many jobs were deleted.</summary>
    Task<long> JobPurgeAsync(JobPurgeParams p, CancellationToken cancellationToken);
    Task<QueueRecord> QueueSetPausedAsync(QueueSetPausedParams p, CancellationToken cancellationToken);
    /// <summary>Every function with queued jobs or a queue row, by name.</summary>
    Task<IReadOnlyList<QueueRecord>> QueueListAsync(QueueListParams p, CancellationToken cancellationToken);

    // Job logs (LogParams.cs). Deleting a job deletes its log.
    Task<JobLogAppendResult> JobLogAppendAsync(JobLogAppendParams p, CancellationToken cancellationToken);
    Task<IReadOnlyList<JobLogLine>> JobLogReadAsync(JobLogReadParams p, CancellationToken cancellationToken);
}
