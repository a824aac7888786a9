using System.Collections.Concurrent;
using System.Globalization;
using System.Text.Json;
using Dts.Contracts;

namespace Dts.Client.Batch;

/// <summary>How <see cref="BatchRunExtensions.RunAsync"/> runs a batch.</summary>
public sealed class BatchRunOptions
{
    /// <summary>Jobs in flight at most (the original's <c>num_max_coroutines</c>).</summary>
    public int Concurrency { get; init; } = 64;
    /// <summary>Skip the first N records (the original's <c>infile_start_position</c>).</summary>
    public long Start { get; init; }
    /// <summary>Write outcomes in record order, holding at most <see cref="Window"/> records back.</summary>
    public bool Ordered { get; init; }
    /// <summary>
    /// How far past the lowest unwritten record submission may run. Bounds the ordering buffer and
    /// the checkpoint's list of written records. Default: 8 x concurrency, at least 1024.
    /// </summary>
    public int? Window { get; init; }
    /// <summary>The checkpoint file; null runs without one (and cannot resume).</summary>
    public string? CheckpointPath { get; init; }
    /// <summary>Continue the run recorded in the checkpoint instead of starting afresh.</summary>
    public bool Resume { get; init; }
    /// <summary>The run's id for a fresh run (default: random). It names the run's tag and unique keys.</summary>
    public string? RunId { get; init; }
    /// <summary>How long one results poll may wait on the server.</summary>
    public TimeSpan ResultPollWait { get; init; } = TimeSpan.FromSeconds(2);
    /// <summary>Cancelled: stop submitting, wait for the jobs in flight, checkpoint, and return unfinished.</summary>
    public CancellationToken StopSubmitting { get; init; }
    /// <summary>Called after every checkpoint, from the run's result loop.</summary>
    public Action<BatchProgress>? Progress { get; init; }
}

public sealed record BatchProgress(string RunId, long Written, long Failed, long Submitted, long InFlight, long Duplicates);

/// <summary>How a run ended. <see cref="Complete"/> is false when it was stopped before the input's end.</summary>
public sealed record BatchRunSummary(string RunId, long Written, long Failed, long Submitted, long Duplicates, bool Complete, bool Resumed);

/// <summary>The checkpoint does not allow the run as asked: one exists without resume, none exists to resume, or it is of another function.</summary>
public sealed class BatchRunStateException : InvalidOperationException
{
    public BatchRunStateException()
    {
    }

    public BatchRunStateException(string message)
        : base(message)
    {
    }

    public BatchRunStateException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

public static class BatchRunExtensions
{
    /// <summary>
    /// Runs <paramref name="function"/> once per record of <paramref name="source"/> and hands every
    /// outcome to <paramref name="sink"/>, like the original <c>DtsClient.run()</c>. With a checkpoint,
    /// a run killed at any moment and resumed writes every record exactly once.
    /// </summary>
    public static Task<BatchRunSummary> RunAsync(this DtsClient client, IJobSource source, string function, IResultSink sink,
        BatchRunOptions options, CancellationToken cancellationToken = default) =>
        new BatchRun(client, source, function, sink, options).RunAsync(cancellationToken);
}

internal sealed class BatchRun
{
    private readonly DtsClient _client;
    private readonly IJobSource _source;
    private readonly string _function;
    private readonly IResultSink _sink;
    private readonly BatchRunOptions _options;
    private readonly int _window;
    private readonly SemaphoreSlim _slots;
    // Guards the sink and the written-records bookkeeping: results and bad records both write.
    private readonly SemaphoreSlim _writeLock = new(1, 1);
    private readonly ConcurrentDictionary<long, byte> _inFlight = new();
    // Records past _contiguous that are written (or, when ordered, held in _buffer).
    private readonly ConcurrentDictionary<long, byte> _held = new();
    private readonly SortedDictionary<long, RecordOutcome> _buffer = [];
    private TaskCompletionSource _advanced = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private string _runId = "";
    private string _tag = "";
    private string _keyPrefix = "";
    private long _contiguous;
    private long _lastRecord = -1;
    private volatile bool _sourceExhausted;
    private volatile bool _submitterDone;
    private bool _dirty;
    private long _written, _failed, _submitted, _duplicates;
    private int _maxBatch = ApiRoutes.MaxBatch;

    public BatchRun(DtsClient client, IJobSource source, string function, IResultSink sink, BatchRunOptions options)
    {
        ArgumentException.ThrowIfNullOrEmpty(function);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Concurrency, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(options.Start);
        _client = client;
        _source = source;
        _function = function;
        _sink = sink;
        _options = options;
        _window = options.Window ?? Math.Max(8 * options.Concurrency, 1024);
        _slots = new SemaphoreSlim(options.Concurrency);
    }

    public async Task<BatchRunSummary> RunAsync(CancellationToken cancellationToken)
    {
        RunCheckpoint? checkpoint = null;
        if (_options.CheckpointPath is { } path)
        {
            checkpoint = await RunCheckpoint.LoadAsync(path, cancellationToken).ConfigureAwait(false);
            if (checkpoint is not null && !_options.Resume)
                throw new BatchRunStateException($"A checkpoint of run {checkpoint.RunId} exists at {path}: resume it, or delete it to start afresh.");
            if (checkpoint is null && _options.Resume)
                throw new BatchRunStateException($"Nothing to resume: there is no checkpoint at {path}.");
            if (checkpoint is not null && checkpoint.Function != _function)
                throw new BatchRunStateException($"The checkpoint at {path} is of function '{checkpoint.Function}', not '{_function}'.");
        }
        else if (_options.Resume)
        {
            throw new BatchRunStateException("Resuming needs a checkpoint path.");
        }

        _runId = checkpoint?.RunId ?? _options.RunId ?? Guid.NewGuid().ToString("N")[..12];
        _tag = "run:" + _runId;
        _keyPrefix = KeyPrefix(_runId);
        if (checkpoint is { Complete: true })
            return new BatchRunSummary(_runId, 0, 0, 0, 0, Complete: true, Resumed: true);

        _contiguous = Math.Max(checkpoint?.Contiguous ?? 0, _options.Start);
        foreach (var n in checkpoint?.Written ?? []) if (n > _contiguous) _held[n] = 0;
        AdvanceContiguous();

        await _sink.OpenAsync(checkpoint?.SinkPosition, cancellationToken).ConfigureAwait(false);
        // A checkpoint at once, so that a run killed before its first result still resumes as the same run.
        await CheckpointAsync(complete: false, cancellationToken).ConfigureAwait(false);

        // Results that finished while no client was reading come first: a record whose result is
        // written needs no resubmission.
        if (checkpoint is not null)
        {
            while (true)
            {
                var page = await _client.ReadResultPageAsync(ApiRoutes.MaxBatch, TimeSpan.Zero, _tag, cancellationToken).ConfigureAwait(false);
                if (page.Count == 0) break;
                await ProcessPageAsync(page, cancellationToken).ConfigureAwait(false);
            }
        }

        using var failed = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        var submitter = Task.Run(() => SubmitAllAsync(failed.Token), failed.Token);
        var reader = Task.Run(() => ReadAllAsync(failed.Token), failed.Token);
        var first = await Task.WhenAny(submitter, reader).ConfigureAwait(false);
        if (first.IsFaulted || first.IsCanceled) await failed.CancelAsync().ConfigureAwait(false);
        try
        {
            await Task.WhenAll(submitter, reader).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (first.IsFaulted)
        {
            // The other task was cancelled because the first failed: report the first failure.
            await first.ConfigureAwait(false);
        }

        var complete = Finished && _sourceExhausted;
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await CheckpointAsync(complete, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
        return new BatchRunSummary(_runId, Interlocked.Read(ref _written), Interlocked.Read(ref _failed), Interlocked.Read(ref _submitted),
            Interlocked.Read(ref _duplicates), complete, checkpoint is not null);
    }

    /// <summary>True when nothing more will come: the whole input is written, or submission stopped and nothing is in flight.</summary>
    private bool Finished =>
        _submitterDone && (_sourceExhausted ? Volatile.Read(ref _contiguous) >= _lastRecord : _inFlight.IsEmpty);

    private async Task SubmitAllAsync(CancellationToken cancellationToken)
    {
        var batchSize = Math.Min(_options.Concurrency, ApiRoutes.MaxBatch);
        var batch = new List<(long Number, SubmitJobRequest Job)>(batchSize);
        using var stopOrFail = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _options.StopSubmitting);
        var stopped = false;
        long last = 0;
        try
        {
            await foreach (var record in _source.ReadAsync(cancellationToken).ConfigureAwait(false))
            {
                if (_options.StopSubmitting.IsCancellationRequested)
                {
                    stopped = true;
                    break;
                }
                var n = record.Number;
                last = n;
                if (n <= Volatile.Read(ref _contiguous) || _held.ContainsKey(n)) continue;

                // The window keeps the ordering buffer and the checkpoint small: nothing runs too far ahead of the slowest record.
                while (n > Volatile.Read(ref _contiguous) + _window)
                {
                    var advanced = _advanced.Task;
                    if (n <= Volatile.Read(ref _contiguous) + _window) break;
                    await FlushBatchAsync(batch, cancellationToken).ConfigureAwait(false);
                    await advanced.WaitAsync(stopOrFail.Token).ConfigureAwait(false);
                }

                if (record.IsError)
                {
                    await WriteLockedAsync(new RecordOutcome
                    {
                        Record = n,
                        Line = record.Line,
                        Input = record.Raw is null ? null : JsonValues.String(record.Raw),
                        ErrorCode = record.ErrorCode,
                        ErrorMessage = record.ErrorMessage,
                    }, cancellationToken).ConfigureAwait(false);
                    continue;
                }

                // Send what is gathered before waiting, or the wait could be for slots the batch itself holds.
                if (_slots.CurrentCount == 0) await FlushBatchAsync(batch, cancellationToken).ConfigureAwait(false);
                await _slots.WaitAsync(stopOrFail.Token).ConfigureAwait(false);
                batch.Add((n, new SubmitJobRequest
                {
                    Function = _function,
                    Args = record.Args,
                    Kwargs = record.Kwargs,
                    UniqueKey = UniqueKey(n),
                    Tags = [_tag],
                }));
                if (batch.Count >= batchSize) await FlushBatchAsync(batch, cancellationToken).ConfigureAwait(false);
            }
        }
        catch (OperationCanceledException) when (_options.StopSubmitting.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            stopped = true;
        }
        await FlushBatchAsync(batch, cancellationToken).ConfigureAwait(false);
        Volatile.Write(ref _lastRecord, last);
        _sourceExhausted = !stopped;
        _submitterDone = true;
    }

    /// <summary>
    /// The start of every unique key of run <paramref name="runId"/>: an automatic key
    /// (<see cref="UniqueKeys.AutomaticPrefix"/>), which its job holds in every state until purged, so
    /// that a resend after a lost answer, or a resumed run's resubmission, attaches to the record's job
    /// even when that job has already finished instead of running the record a second time.
    /// </summary>
    internal static string KeyPrefix(string runId) => UniqueKeys.AutomaticPrefix + "run:" + runId + ":";

    private string UniqueKey(long n) => _keyPrefix + n.ToString(CultureInfo.InvariantCulture);

    /// <summary>
    /// The record number in one of this run's unique keys. Runs checkpointed by older clients used
    /// <c>&lt;run id&gt;:&lt;record&gt;</c>; resumed, such a run still recognises the jobs it made then.
    /// </summary>
    private bool TryRecordOf(string? key, out long n)
    {
        n = 0;
        if (key is null) return false;
        var at = key.StartsWith(_keyPrefix, StringComparison.Ordinal) ? _keyPrefix.Length
            : key.Length > _runId.Length && key[_runId.Length] == ':' && key.StartsWith(_runId, StringComparison.Ordinal) ? _runId.Length + 1
            : -1;
        return at > 0 && long.TryParse(key.AsSpan(at), NumberStyles.None, CultureInfo.InvariantCulture, out n);
    }

    private async Task FlushBatchAsync(List<(long Number, SubmitJobRequest Job)> batch, CancellationToken cancellationToken)
    {
        if (batch.Count == 0) return;
        // In flight before the submit: the result can come back before the submit's answer does.
        foreach (var (n, _) in batch) _inFlight[n] = 0;
        // A 429 is waited out by the connection and the batch sent again; the unique keys make a
        // repeat after a lost answer attach to the jobs already made.
        await SubmitSplittingAsync(batch.Select(b => b.Job).ToList(), cancellationToken).ConfigureAwait(false);
        Interlocked.Add(ref _submitted, batch.Count);
        batch.Clear();
    }

    /// <summary>
    /// Submits a batch; one the server refuses as too big for the user's burst limit is sent in halves
    /// (a 400 commits nothing, so nothing is doubled). The batch size found is kept for the rest of the run.
    /// </summary>
    private async Task SubmitSplittingAsync(List<SubmitJobRequest> jobs, CancellationToken cancellationToken)
    {
        for (var at = 0; at < jobs.Count;)
        {
            var size = Math.Min(_maxBatch, jobs.Count - at);
            try
            {
                var sent = jobs.GetRange(at, size);
                var answers = await _client.SubmitBatchAsync(sent, cancellationToken).ConfigureAwait(false);
                await TakeFinishedAsync(sent, answers, cancellationToken).ConfigureAwait(false);
                at += size;
            }
            catch (DtsApiException ex) when (ex.Status == 400 && ex.Field == "jobs" && size > 1)
            {
                _maxBatch = size / 2;
            }
        }
    }

    /// <summary>
    /// Records whose submit attached to a job that has already ended take that job's outcome at once.
    /// Its result may have been acknowledged already (by an earlier run given the same run id, when no
    /// checkpoint says so) and would then never come through the results feed; when it does come, it is
    /// dropped as a duplicate. A job purged between the answer and the fetch has freed its key: its
    /// record is submitted again and makes a new job.
    /// </summary>
    private async Task TakeFinishedAsync(List<SubmitJobRequest> sent, IReadOnlyList<SubmitJobResponse> answers, CancellationToken cancellationToken)
    {
        List<JobView>? ended = null;
        List<SubmitJobRequest>? purged = null;
        for (var i = 0; i < answers.Count; i++)
        {
            if (!answers[i].Coalesced || !answers[i].State.IsTerminal()) continue;
            try
            {
                (ended ??= []).Add(await _client.GetJobAsync(answers[i].Id, cancellationToken).ConfigureAwait(false));
            }
            catch (DtsApiException ex) when (ex.Is(ErrorCodes.JobNotFound))
            {
                (purged ??= []).Add(sent[i]);
            }
        }
        if (ended is not null) await ProcessPageAsync(ended, cancellationToken).ConfigureAwait(false);
        if (purged is not null) await SubmitSplittingAsync(purged, cancellationToken).ConfigureAwait(false);
    }

    private async Task ReadAllAsync(CancellationToken cancellationToken)
    {
        while (!Finished)
        {
            var page = await _client.ReadResultPageAsync(ApiRoutes.MaxBatch, _options.ResultPollWait, _tag, cancellationToken).ConfigureAwait(false);
            await ProcessPageAsync(page, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Writes a page, makes it durable with a checkpoint, and only then acknowledges it.</summary>
    private async Task ProcessPageAsync(IReadOnlyList<JobView> page, CancellationToken cancellationToken)
    {
        var ids = new List<string>(page.Count);
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            foreach (var job in page)
            {
                ids.Add(job.Id);
                if (!TryRecordOf(job.UniqueKey, out var n)) continue;
                if (_inFlight.TryRemove(n, out _)) _slots.Release();
                await AcceptAsync(FromJob(n, job), cancellationToken).ConfigureAwait(false);
            }
            if (_dirty) await CheckpointAsync(complete: false, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
        if (ids.Count > 0) await _client.AckAsync(ids, cancellationToken).ConfigureAwait(false);
    }

    private async Task WriteLockedAsync(RecordOutcome outcome, CancellationToken cancellationToken)
    {
        await _writeLock.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            await AcceptAsync(outcome, cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _writeLock.Release();
        }
    }

    /// <summary>Writes an outcome unless its record is already written (a second job of a resubmitted record).</summary>
    private async Task AcceptAsync(RecordOutcome outcome, CancellationToken cancellationToken)
    {
        var n = outcome.Record;
        if (n <= _contiguous || _held.ContainsKey(n))
        {
            Interlocked.Increment(ref _duplicates);
            return;
        }
        _held[n] = 0;
        _dirty = true;
        if (_options.Ordered)
        {
            _buffer[n] = outcome;
            while (_buffer.Remove(_contiguous + 1, out var next))
            {
                await WriteAsync(next, cancellationToken).ConfigureAwait(false);
                _held.TryRemove(_contiguous + 1, out _);
                Volatile.Write(ref _contiguous, _contiguous + 1);
            }
            Signal();
            return;
        }
        await WriteAsync(outcome, cancellationToken).ConfigureAwait(false);
        AdvanceContiguous();
    }

    private async Task WriteAsync(RecordOutcome outcome, CancellationToken cancellationToken)
    {
        await _sink.WriteAsync(outcome, cancellationToken).ConfigureAwait(false);
        Interlocked.Increment(ref _written);
        if (outcome.IsError) Interlocked.Increment(ref _failed);
    }

    private void AdvanceContiguous()
    {
        var c = _contiguous;
        while (_held.TryRemove(c + 1, out _)) c++;
        if (c == _contiguous) return;
        Volatile.Write(ref _contiguous, c);
        Signal();
    }

    private void Signal() => Interlocked.Exchange(ref _advanced, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();

    /// <summary>Flushes the sink to disk, then records its position; the caller holds the write lock.</summary>
    private async Task CheckpointAsync(bool complete, CancellationToken cancellationToken)
    {
        var position = await _sink.FlushAsync(cancellationToken).ConfigureAwait(false);
        if (_options.CheckpointPath is { } path)
        {
            // Held records buffered for ordering are not written yet, so they are not listed.
            var written = _held.Keys.Where(k => !_buffer.ContainsKey(k)).Order().ToList();
            await new RunCheckpoint
            {
                RunId = _runId,
                Function = _function,
                Contiguous = _contiguous,
                Written = written,
                SinkPosition = position,
                Complete = complete,
            }.SaveAsync(path, cancellationToken).ConfigureAwait(false);
        }
        _dirty = false;
        _options.Progress?.Invoke(new BatchProgress(_runId, Interlocked.Read(ref _written), Interlocked.Read(ref _failed),
            Interlocked.Read(ref _submitted), _inFlight.Count, Interlocked.Read(ref _duplicates)));
    }

    private static RecordOutcome FromJob(long n, JobView job)
    {
        var outcome = new RecordOutcome { Record = n, JobId = job.Id, Input = InputOf(job), Attempts = job.Attempts };
        if (job.State == JobState.Succeeded) return outcome with { Result = job.Result };
        return outcome with
        {
            ErrorCode = job.Error?.Code ?? (job.State == JobState.Cancelled ? "cancelled" : RecordErrors.JobFailed),
            ErrorMessage = job.Error?.Message ?? $"The job ended {job.State.ToWire()}.",
        };
    }

    /// <summary>The record as submitted: a text line or word, a kwargs object, or the explicit args and kwargs.</summary>
    private static JsonElement? InputOf(JobView job)
    {
        var hasArgs = job.Args.ValueKind == JsonValueKind.Array && job.Args.GetArrayLength() > 0;
        var hasKwargs = job.Kwargs.ValueKind == JsonValueKind.Object && job.Kwargs.EnumerateObject().Any();
        if (hasArgs && !hasKwargs && job.Args.GetArrayLength() == 1 && job.Args[0].ValueKind == JsonValueKind.String) return job.Args[0];
        if (!hasArgs && hasKwargs) return job.Kwargs;
        return JsonValues.Build(w =>
        {
            w.WriteStartObject();
            w.WritePropertyName("args");
            if (job.Args.ValueKind == JsonValueKind.Undefined) w.WriteStartArray();
            if (job.Args.ValueKind == JsonValueKind.Undefined) w.WriteEndArray();
            else job.Args.WriteTo(w);
            w.WritePropertyName("kwargs");
            if (job.Kwargs.ValueKind == JsonValueKind.Undefined) { w.WriteStartObject(); w.WriteEndObject(); }
            else job.Kwargs.WriteTo(w);
            w.WriteEndObject();
        });
    }
}
