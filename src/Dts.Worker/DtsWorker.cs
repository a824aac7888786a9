using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using System.Threading.Channels;
using Dts.Client;
using Dts.Contracts;

namespace Dts.Worker;

/// <summary>
/// Registers with a Dts server, leases jobs of the functions it has handlers for, runs them up to
/// its concurrency, and reports their outcomes in batches. Call <see cref="Handle(string, Func{WorkerJob, CancellationToken, Task{JsonElement}})"/>
/// for each function, then <see cref="RunAsync"/>.
/// </summary>
public sealed class DtsWorker : IAsyncDisposable, IDisposable
{
    /// <summary>Used until the server says otherwise in its register answer.</summary>
    public static readonly TimeSpan DefaultHeartbeatInterval = TimeSpan.FromSeconds(5);

    /// <summary>After an abort, how long cancelled handlers get to return before the worker stops waiting for them.</summary>
    public static readonly TimeSpan AbortGrace = TimeSpan.FromSeconds(5);

    /// <summary>Most job log lines held while the server is slow or away; beyond this, lines are dropped (and counted).</summary>
    public const int MaxBufferedLogLines = 10_000;

    private readonly DtsConnection _connection;
    private readonly bool _ownsConnection;
    private readonly DtsWorkerOptions _options;
    private readonly TimeProvider _time;
    private readonly Dictionary<string, Func<WorkerJob, CancellationToken, Task<JsonElement>>> _handlers = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, RunningJob> _running = new(StringComparer.Ordinal);
    // Jobs finished here whose final report the server has not yet answered. Heartbeats list them
    // with the running ones, since the server extends only the leases a heartbeat lists: a report
    // held up (a server failing over) must not let the finished job's lease run out and re-run it.
    private readonly ConcurrentDictionary<string, byte> _unreported = new(StringComparer.Ordinal);
    private readonly Channel<JobReport> _reports = Channel.CreateUnbounded<JobReport>(new UnboundedChannelOptions { SingleReader = true });
    /// <summary>Log lines waiting to be sent; bounded so a long outage cannot fill the worker's memory.</summary>
    private readonly Channel<LogLineRequest> _logs = Channel.CreateBounded<LogLineRequest>(new BoundedChannelOptions(MaxBufferedLogLines)
    {
        SingleReader = true,
        FullMode = BoundedChannelFullMode.Wait,
    });
    private long _droppedLogLines;
    private readonly SemaphoreSlim _registerLock = new(1, 1);
    private readonly Lock _tasksLock = new();
    private readonly List<Task> _jobTasks = [];
    private readonly SemaphoreSlim _slots;
    private Registration? _registration;
    private int _started;

    public DtsWorker(DtsWorkerOptions options)
        : this(new DtsConnection(new DtsConnectionOptions
        {
            ServerUrls = options.AllServerUrls(),
            UserId = options.UserId,
            Secret = options.Secret,
            TrustedCaFile = options.TrustedCaFile,
            // Lease, heartbeat and reports may all be in flight at once even with one slot.
            MaxConcurrency = Math.Max(options.Concurrency, 2),
            TimeProvider = options.TimeProvider,
            FailoverBudget = options.FailoverBudget,
            Log = options.Log,
        }), options, ownsConnection: true)
    {
    }

    /// <summary>Uses an existing connection, which the caller keeps ownership of.</summary>
    public DtsWorker(DtsConnection connection, DtsWorkerOptions options)
        : this(connection, options, ownsConnection: false)
    {
    }

    private DtsWorker(DtsConnection connection, DtsWorkerOptions options, bool ownsConnection)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Concurrency, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.Concurrency, ApiRoutes.MaxLease);
        ArgumentOutOfRangeException.ThrowIfNegative(options.LeaseWaitSeconds);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.LeaseWaitSeconds, ApiRoutes.MaxWaitSeconds);
        _connection = connection;
        _ownsConnection = ownsConnection;
        _options = options;
        _time = options.TimeProvider;
        _slots = new SemaphoreSlim(options.Concurrency, options.Concurrency);
    }

    /// <summary>The id the server gave at the last registration; null before the first.</summary>
    public string? WorkerId => Volatile.Read(ref _registration)?.WorkerId;

    public IReadOnlyCollection<string> Functions => _handlers.Keys;

    /// <summary>Ids of the jobs running now.</summary>
    public IReadOnlyCollection<string> RunningJobs => [.. _running.Keys];

    /// <summary>Runs <paramref name="handler"/> for jobs of <paramref name="function"/>; its return value is the job's result.</summary>
    public DtsWorker Handle(string function, Func<WorkerJob, CancellationToken, Task<JsonElement>> handler)
    {
        ArgumentException.ThrowIfNullOrEmpty(function);
        ArgumentNullException.ThrowIfNull(handler);
        if (Volatile.Read(ref _started) != 0) throw new InvalidOperationException("Handlers must be added before RunAsync.");
        if (!_handlers.TryAdd(function, handler)) throw new ArgumentException($"A handler for '{function}' is already registered.", nameof(function));
        return this;
    }

    /// <summary>Runs <paramref name="handler"/> for jobs of <paramref name="function"/>; its string becomes a JSON string result.</summary>
    public DtsWorker Handle(string function, Func<WorkerJob, CancellationToken, Task<string>> handler)
    {
        ArgumentNullException.ThrowIfNull(handler);
        return Handle(function, async (job, ct) => JsonValues.String(await handler(job, ct).ConfigureAwait(false)));
    }

    /// <summary>
    /// Works until <paramref name="stoppingToken"/> is cancelled, then stops leasing, lets running jobs
    /// finish, sends every queued report and returns. <paramref name="abortToken"/> (or
    /// <see cref="DtsWorkerOptions.DrainTimeout"/>) cuts the wait for running jobs short: their handlers
    /// are cancelled and they are reported as failed with code <c>worker_stopped</c> so the server retries them.
    /// Throws only when the first registration is refused (bad credentials, missing role).
    /// </summary>
    public async Task RunAsync(CancellationToken stoppingToken, CancellationToken abortToken = default)
    {
        if (_handlers.Count == 0) throw new InvalidOperationException("Add at least one handler with Handle before RunAsync.");
        if (Interlocked.Exchange(ref _started, 1) != 0) throw new InvalidOperationException("RunAsync can run only once per worker.");

        if (!await RegisterFirstAsync(stoppingToken).ConfigureAwait(false)) return;

        using var heartbeatCts = CancellationTokenSource.CreateLinkedTokenSource(abortToken);
        var heartbeat = Task.Run(() => HeartbeatLoopAsync(heartbeatCts.Token), CancellationToken.None);
        // An abort still gets a short chance to send the failures of the jobs it stopped, so the server
        // re-queues them at once instead of after the lease times out.
        using var reporterCts = new CancellationTokenSource(Timeout.InfiniteTimeSpan, _time);
        using var abortRegistration = abortToken.Register(() => reporterCts.CancelAfter(AbortGrace));
        var reporter = Task.Run(() => ReportLoopAsync(reporterCts.Token), CancellationToken.None);
        var logShipper = Task.Run(() => LogLoopAsync(reporterCts.Token), CancellationToken.None);

        using var leaseStop = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, abortToken);
        await LeaseLoopAsync(leaseStop.Token).ConfigureAwait(false);

        await DrainAsync(abortToken).ConfigureAwait(false);
        _logs.Writer.TryComplete();
        _reports.Writer.TryComplete();
        await logShipper.ConfigureAwait(false);
        await reporter.ConfigureAwait(false);
        await heartbeatCts.CancelAsync().ConfigureAwait(false);
        await heartbeat.ConfigureAwait(false);
    }

    private async Task<bool> RegisterFirstAsync(CancellationToken stoppingToken)
    {
        var backoff = NewBackoff();
        while (true)
        {
            try
            {
                await EnsureRegisteredAsync(stoppingToken).ConfigureAwait(false);
                return true;
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return false;
            }
            catch (DtsApiException ex) when (ex.Status is >= 400 and < 500 and not 408 and not 429)
            {
                throw;
            }
            catch (Exception ex)
            {
                Log($"register at {_connection.CurrentServer} failed, retrying: {ex.Message}");
            }
            try
            {
                await backoff.WaitAsync(stoppingToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return false;
            }
        }
    }

    private async Task<Registration> EnsureRegisteredAsync(CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _registration) is { } current) return current;
        await _registerLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            if (Volatile.Read(ref _registration) is { } again) return again;
            var request = new RegisterWorkerRequest { Name = _options.Name, Functions = [.. _handlers.Keys], Concurrency = _options.Concurrency };
            var answer = await _connection.SendAsync(HttpMethod.Post, ApiRoutes.Workers, request,
                DtsJsonContext.Default.RegisterWorkerRequest, DtsJsonContext.Default.RegisterWorkerResponse,
                cancellationToken: cancellationToken).ConfigureAwait(false);
            var interval = answer.HeartbeatIntervalSeconds > 0 ? TimeSpan.FromSeconds(answer.HeartbeatIntervalSeconds) : DefaultHeartbeatInterval;
            var registration = new Registration(answer.WorkerId, interval);
            Volatile.Write(ref _registration, registration);
            return registration;
        }
        finally
        {
            _registerLock.Release();
        }
    }

    /// <summary>Drops a registration the server no longer knows; the next call registers again.</summary>
    private void Forget(Registration registration)
    {
        if (Interlocked.CompareExchange(ref _registration, null, registration) == registration)
            Log($"worker {registration.WorkerId} is unknown to the server; registering again");
    }

    private async Task LeaseLoopAsync(CancellationToken stop)
    {
        var backoff = NewBackoff();
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await _slots.WaitAsync(stop).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }

            var free = 1;
            while (free < ApiRoutes.MaxLease && _slots.Wait(0, CancellationToken.None)) free++;
            var used = 0;
            Registration? registration = null;
            try
            {
                registration = await EnsureRegisteredAsync(stop).ConfigureAwait(false);
                var wait = _options.LeaseWaitSeconds;
                var answer = await _connection.SendAsync(HttpMethod.Post, ApiRoutes.WorkerLease(Uri.EscapeDataString(registration.WorkerId)),
                    new LeaseRequest { Max = free, WaitSeconds = wait },
                    DtsJsonContext.Default.LeaseRequest, DtsJsonContext.Default.LeaseResponse,
                    TimeSpan.FromSeconds(wait), stop).ConfigureAwait(false);
                backoff.Reset();
                foreach (var leased in answer.Jobs)
                {
                    // A server that hands out more than asked must not push the worker past its slots.
                    var ownsSlot = used < free || _slots.Wait(0, CancellationToken.None);
                    if (used < free) used++;
                    Start(leased, ownsSlot);
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (DtsApiException ex) when (ex.Is(ErrorCodes.WorkerNotFound) && registration is not null)
            {
                Forget(registration);
                // A server that keeps forgetting the worker must not be hammered with register-lease pairs.
                if (!await TryBackoffAsync(backoff, stop).ConfigureAwait(false)) return;
            }
            catch (Exception ex)
            {
                Log($"lease failed, backing off: {ex.Message}");
                if (!await TryBackoffAsync(backoff, stop).ConfigureAwait(false)) return;
            }
            finally
            {
                if (free - used > 0) _slots.Release(free - used);
            }
        }
    }

    private void Start(LeasedJob leased, bool ownsSlot)
    {
        var state = new RunningJob(leased);
        if (!_running.TryAdd(leased.Id, state))
        {
            // The same job twice means the server re-leased it to us; the first run's report wins or is refused.
            Log($"job {leased.Id} was leased again while still running here; ignoring the second lease");
            state.Dispose();
            if (ownsSlot) _slots.Release();
            return;
        }
        var task = Task.Run(() => RunJobAsync(state, ownsSlot), CancellationToken.None);
        lock (_tasksLock)
        {
            _jobTasks.RemoveAll(t => t.IsCompleted);
            _jobTasks.Add(task);
        }
    }

    private async Task RunJobAsync(RunningJob state, bool ownsSlot)
    {
        var leased = state.Leased;
        try
        {
            var report = await ExecuteAsync(state).ConfigureAwait(false);
            if (report is not null && !state.Dropped)
            {
                _unreported[leased.Id] = 0;
                if (!_reports.Writer.TryWrite(report)) _unreported.TryRemove(leased.Id, out _);
            }
        }
        finally
        {
            _running.TryRemove(new KeyValuePair<string, RunningJob>(leased.Id, state));
            state.Dispose();
            if (ownsSlot) _slots.Release();
        }
    }

    private async Task<JobReport?> ExecuteAsync(RunningJob state)
    {
        var leased = state.Leased;
        if (!_handlers.TryGetValue(leased.Function, out var handler))
            return Failure(leased, "no_handler", $"This worker has no handler for '{leased.Function}'.", retry: true);

        var timeout = leased.TimeoutSeconds is > 0 and var seconds ? TimeSpan.FromSeconds(seconds) : Timeout.InfiniteTimeSpan;
        using var timeoutCts = new CancellationTokenSource(timeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(state.Cancel.Token, timeoutCts.Token);
        var job = new WorkerJob(leased.Id, leased.Function, leased.Args, leased.Kwargs, leased.Attempt,
            (numerator, denominator, _) =>
            {
                if (!state.Dropped)
                {
                    _reports.Writer.TryWrite(new JobReport
                    {
                        JobId = leased.Id,
                        LeaseToken = leased.LeaseToken,
                        Progress = new JobProgress { Numerator = numerator, Denominator = denominator },
                    });
                }
                return ValueTask.CompletedTask;
            },
            (stream, text) =>
            {
                if (state.Dropped) return;
                var line = new LogLineRequest { JobId = leased.Id, LeaseToken = leased.LeaseToken, At = _time.GetUtcNow(), Stream = stream, Text = text };
                if (!_logs.Writer.TryWrite(line)) Interlocked.Increment(ref _droppedLogLines);
            });
        try
        {
            var result = await handler(job, linked.Token).ConfigureAwait(false);
            return new JobReport { JobId = leased.Id, LeaseToken = leased.LeaseToken, Result = result };
        }
        catch (Exception) when (state.Dropped)
        {
            return null;
        }
        catch (Exception) when (timeoutCts.IsCancellationRequested && !state.Cancel.IsCancellationRequested)
        {
            return Failure(leased, "timeout",
                $"The job ran longer than its timeout of {timeout.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)} s and was stopped.", retry: true);
        }
        catch (OperationCanceledException) when (state.Cancel.IsCancellationRequested)
        {
            return Failure(leased, "worker_stopped", "The worker shut down before the job finished.", retry: true);
        }
        catch (JobFailedException ex)
        {
            return Failure(leased, ex.Code, ex.Message, ex.Retry);
        }
        catch (Exception ex)
        {
            return Failure(leased, "exception", ex.Message, retry: true);
        }
    }

    private static JobReport Failure(LeasedJob leased, string code, string message, bool retry) => new()
    {
        JobId = leased.Id,
        LeaseToken = leased.LeaseToken,
        Error = new JobError { Code = code, Message = message },
        Retry = retry,
    };

    private async Task ReportLoopAsync(CancellationToken abort)
    {
        var reader = _reports.Reader;
        var batch = new List<JobReport>();
        var backoff = NewBackoff();
        try
        {
            while (await reader.WaitToReadAsync(abort).ConfigureAwait(false))
            {
                while (batch.Count < ApiRoutes.MaxBatch && reader.TryRead(out var report)) batch.Add(report);
                await SendReportsAsync(batch, backoff, abort).ConfigureAwait(false);
                foreach (var report in batch)
                {
                    if (report.Progress is null && report.JobId is { } id) _unreported.TryRemove(id, out _);
                }
                batch.Clear();
            }
        }
        catch (OperationCanceledException) when (abort.IsCancellationRequested)
        {
            var unsent = batch.Count;
            while (reader.TryRead(out _)) unsent++;
            if (unsent > 0) Log($"aborted with {unsent} reports unsent; the server re-runs those jobs when their leases expire");
        }
    }

    private async Task SendReportsAsync(List<JobReport> batch, Backoff backoff, CancellationToken abort)
    {
        while (true)
        {
            Registration? registration = null;
            try
            {
                registration = await EnsureRegisteredAsync(abort).ConfigureAwait(false);
                var answer = await _connection.SendAsync(HttpMethod.Post, ApiRoutes.WorkerReports(Uri.EscapeDataString(registration.WorkerId)),
                    new ReportBatchRequest { Reports = batch },
                    DtsJsonContext.Default.ReportBatchRequest, DtsJsonContext.Default.ReportBatchResponse,
                    cancellationToken: abort).ConfigureAwait(false);
                backoff.Reset();
                foreach (var outcome in answer.Outcomes)
                {
                    // A stale lease is expected after a heartbeat cancel or a re-lease elsewhere; anything else is worth a line.
                    if (outcome.Status != "ok" && outcome.Status != ErrorCodes.StaleLease.Code)
                        Log($"report for job {outcome.JobId} not applied: {outcome.Status}");
                }
                return;
            }
            catch (DtsApiException ex) when (ex.Is(ErrorCodes.WorkerNotFound) && registration is not null)
            {
                Forget(registration);
            }
            catch (DtsApiException ex) when (ex.Status is >= 400 and < 500 and not 401 and not 408 and not 429)
            {
                // The server refuses this batch as it is; sending it again would loop for ever.
                Log($"{batch.Count} reports refused, dropping them: {ex.Message}");
                return;
            }
            catch (OperationCanceledException) when (abort.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception ex)
            {
                Log($"sending {batch.Count} reports failed, retrying: {ex.Message}");
                await backoff.WaitAsync(abort).ConfigureAwait(false);
            }
        }
    }

    /// <summary>Sends job log lines in batches: whatever has gathered while the previous batch was on its way.</summary>
    private async Task LogLoopAsync(CancellationToken abort)
    {
        var reader = _logs.Reader;
        var batch = new List<LogLineRequest>();
        var backoff = NewBackoff();
        try
        {
            while (await reader.WaitToReadAsync(abort).ConfigureAwait(false))
            {
                while (batch.Count < ApiRoutes.MaxLogLines && reader.TryRead(out var line)) batch.Add(line);
                await SendLogsAsync(batch, backoff, abort).ConfigureAwait(false);
                batch.Clear();
                var dropped = Interlocked.Exchange(ref _droppedLogLines, 0);
                if (dropped > 0) Log($"{dropped} job log lines dropped: the log buffer was full");
            }
        }
        catch (OperationCanceledException) when (abort.IsCancellationRequested)
        {
            // Logs are best effort: an aborted worker does not hold its exit for them.
        }
    }

    private async Task SendLogsAsync(List<LogLineRequest> batch, Backoff backoff, CancellationToken abort)
    {
        while (true)
        {
            Registration? registration = null;
            try
            {
                registration = await EnsureRegisteredAsync(abort).ConfigureAwait(false);
                await _connection.SendAsync(HttpMethod.Post, ApiRoutes.WorkerLogs(Uri.EscapeDataString(registration.WorkerId)),
                    new LogBatchRequest { Lines = batch },
                    DtsJsonContext.Default.LogBatchRequest, DtsJsonContext.Default.LogBatchResponse,
                    cancellationToken: abort).ConfigureAwait(false);
                // Lines of jobs no longer ours are refused by the server; there is nothing to do about them here.
                backoff.Reset();
                return;
            }
            catch (DtsApiException ex) when (ex.Is(ErrorCodes.WorkerNotFound) && registration is not null)
            {
                Forget(registration);
            }
            catch (DtsApiException ex) when (ex.Status is >= 400 and < 500 and not 401 and not 408 and not 429)
            {
                // A server without the log route (an older version) answers 404: drop the lines rather than loop.
                Log($"{batch.Count} job log lines refused, dropping them: {ex.Message}");
                return;
            }
            catch (OperationCanceledException) when (abort.IsCancellationRequested)
            {
                throw;
            }
            catch (Exception ex)
            {
                Log($"sending {batch.Count} job log lines failed, retrying: {ex.Message}");
                await backoff.WaitAsync(abort).ConfigureAwait(false);
            }
        }
    }

    /// <summary>The jobs whose leases this worker still needs: running here, or finished with the report not yet answered.</summary>
    private List<string> HeartbeatList()
    {
        var list = new List<string>(_running.Count + _unreported.Count);
        list.AddRange(_running.Keys);
        foreach (var id in _unreported.Keys)
        {
            if (!_running.ContainsKey(id)) list.Add(id);
        }
        return list;
    }

    private async Task HeartbeatLoopAsync(CancellationToken stop)
    {
        while (!stop.IsCancellationRequested)
        {
            var interval = Volatile.Read(ref _registration)?.HeartbeatInterval ?? DefaultHeartbeatInterval;
            Registration? registration = null;
            try
            {
                await Task.Delay(interval, _time, stop).ConfigureAwait(false);
                registration = await EnsureRegisteredAsync(stop).ConfigureAwait(false);
                var answer = await _connection.SendAsync(HttpMethod.Post, ApiRoutes.WorkerHeartbeat(Uri.EscapeDataString(registration.WorkerId)),
                    new HeartbeatRequest { Running = HeartbeatList() },
                    DtsJsonContext.Default.HeartbeatRequest, DtsJsonContext.Default.HeartbeatResponse,
                    cancellationToken: stop).ConfigureAwait(false);
                foreach (var id in answer.Cancel)
                {
                    if (_running.TryGetValue(id, out var state)) await state.DropAsync().ConfigureAwait(false);
                }
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (DtsApiException ex) when (ex.Is(ErrorCodes.WorkerNotFound) && registration is not null)
            {
                Forget(registration);
            }
            catch (Exception ex)
            {
                Log($"heartbeat failed: {ex.Message}");
            }
        }
    }

    private async Task DrainAsync(CancellationToken abort)
    {
        Task[] jobs;
        lock (_tasksLock) jobs = [.. _jobTasks];
        if (jobs.Length == 0) return;
        var all = Task.WhenAll(jobs);
        using var drainCts = new CancellationTokenSource(_options.DrainTimeout ?? Timeout.InfiniteTimeSpan, _time);
        using var cut = CancellationTokenSource.CreateLinkedTokenSource(abort, drainCts.Token);
        try
        {
            await all.WaitAsync(cut.Token).ConfigureAwait(false);
            return;
        }
        catch (OperationCanceledException)
        {
            Log($"stopping {_running.Count} running jobs");
        }
        foreach (var state in _running.Values) await state.Cancel.CancelAsync().ConfigureAwait(false);
        try
        {
            await all.WaitAsync(AbortGrace, _time, CancellationToken.None).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            Log($"{_running.Count} handlers ignored cancellation; leaving them behind");
        }
    }

    private Backoff NewBackoff() => new(_options.MinBackoff, DtsWorkerOptions.MaxBackoff, _time);

    private static async Task<bool> TryBackoffAsync(Backoff backoff, CancellationToken stop)
    {
        try
        {
            await backoff.WaitAsync(stop).ConfigureAwait(false);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private void Log(string line)
    {
        try
        {
            _options.Log?.Invoke(line);
        }
        catch (Exception)
        {
            // A broken log sink must not stop the worker.
        }
    }

    public void Dispose()
    {
        if (_ownsConnection) _connection.Dispose();
        _registerLock.Dispose();
        _slots.Dispose();
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }

    private sealed record Registration(string WorkerId, TimeSpan HeartbeatInterval);

    private sealed class RunningJob(LeasedJob leased) : IDisposable
    {
        private int _dropped;

        public LeasedJob Leased { get; } = leased;

        /// <summary>Cancelled when the worker stops the job (abort, or the server's cancel list).</summary>
        public CancellationTokenSource Cancel { get; } = new();

        /// <summary>The server asked to stop it: its outcome is no longer wanted.</summary>
        public bool Dropped => Volatile.Read(ref _dropped) != 0;

        public async Task DropAsync()
        {
            Interlocked.Exchange(ref _dropped, 1);
            try
            {
                await Cancel.CancelAsync().ConfigureAwait(false);
            }
            catch (ObjectDisposedException)
            {
                // The job finished in the meantime.
            }
        }

        public void Dispose() => Cancel.Dispose();
    }
}
