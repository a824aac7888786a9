using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text.Json;
using Dts.Contracts;

namespace Dts.Client;

/// <summary>
/// Submits jobs to a Dts server (or several that share one database, see <see cref="DtsConnectionOptions.ServerUrls"/>)
/// and reads their results. Thread-safe; one instance is meant to be shared.
/// </summary>
public sealed class DtsClient : IDisposable, IAsyncDisposable
{
    /// <summary>The long-poll wait of <see cref="WaitAsync"/> and <see cref="ReadResultsAsync"/>.</summary>
    public const int LongPollSeconds = 30;

    private readonly DtsConnection _connection;
    private readonly bool _ownsConnection;

    /// <param name="userId">The user to sign requests as.</param>
    /// <param name="secret">That user's secret.</param>
    /// <param name="serverUrl">The server's base URL, for example <c>http://127.0.0.1:7070</c>.</param>
    /// <param name="maxConcurrency">The requests expected in flight at once; the connection pool holds twice this many.</param>
    /// <param name="snoozeInterval">The wait after a 429 or 503 without Retry-After (default 1 s).</param>
    /// <param name="timeProvider">The clock for timeouts and waits.</param>
    public DtsClient(string userId, string secret, string serverUrl, int maxConcurrency = DtsConnectionOptions.DefaultMaxConcurrency,
        TimeSpan? snoozeInterval = null, TimeProvider? timeProvider = null)
        : this(new DtsConnection(new DtsConnectionOptions
        {
            UserId = userId,
            Secret = secret,
            ServerUrl = serverUrl,
            MaxConcurrency = maxConcurrency,
            SnoozeInterval = snoozeInterval ?? DtsConnectionOptions.DefaultSnoozeInterval,
            TimeProvider = timeProvider ?? TimeProvider.System,
        }), ownsConnection: true)
    {
    }

    public DtsClient(DtsConnectionOptions options)
        : this(new DtsConnection(options), ownsConnection: true)
    {
    }

    /// <summary>Uses an existing connection, which the caller keeps ownership of.</summary>
    public DtsClient(DtsConnection connection)
        : this(connection, ownsConnection: false)
    {
    }

    private DtsClient(DtsConnection connection, bool ownsConnection)
    {
        _connection = connection;
        _ownsConnection = ownsConnection;
    }

    public DtsConnection Connection => _connection;

    public int MaxConcurrency => _connection.Options.MaxConcurrency;

    /// <summary>The start of the unique key the SDK gives a job submitted without one; see <see cref="SubmitAsync(SubmitJobRequest, CancellationToken)"/>.</summary>
    public const string AutoUniqueKeyPrefix = UniqueKeys.AutomaticPrefix;

    /// <summary>
    /// Submits one job. A job without a <see cref="SubmitJobRequest.UniqueKey"/> is sent with a fresh
    /// random one (<see cref="AutoUniqueKeyPrefix"/> and 32 hex digits, time first; the caller's object is not
    /// changed), so that when the connection resends the submit after a failure, possibly to another
    /// server, the copy attaches to the job the first send stored instead of making a second job, even
    /// when that job has already finished (the server holds an automatic key until the job is purged).
    /// The answer then says <c>Coalesced = false</c>, as it is this call's own job.
    /// </summary>
    public Task<SubmitJobResponse> SubmitAsync(SubmitJobRequest job, CancellationToken cancellationToken = default) =>
        SubmitCoreAsync(job, null, cancellationToken);

    /// <summary>
    /// Submits one job and waits for its result: a foreground job. The submit and the first wait (up to
    /// <see cref="ApiRoutes.MaxWaitSeconds"/>) are one request; if the job has not finished by then, this
    /// goes on with <see cref="WaitAsync"/> until it has or <paramref name="timeout"/> passes (no timeout
    /// waits for ever). Returns the job's last view; after a timeout check <see cref="JobStates.IsTerminal"/>.
    /// A job without a unique key gets one as in <see cref="SubmitAsync(SubmitJobRequest, CancellationToken)"/>,
    /// so a resend after a failure waits for the same job. Cancelling the token stops the wait, not the job.
    /// </summary>
    public async Task<JobView> RunAsync(SubmitJobRequest job, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(job);
        if (timeout < TimeSpan.Zero) throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "The timeout must not be negative.");
        var time = _connection.TimeProvider;
        // Null (no timeout) stays null through the arithmetic below, and compares as never reached.
        var deadline = time.GetUtcNow() + timeout;
        var maxWait = TimeSpan.FromSeconds(ApiRoutes.MaxWaitSeconds);
        var answer = await SubmitCoreAsync(job, timeout < maxWait ? timeout.Value : maxWait, cancellationToken).ConfigureAwait(false);
        // A server without the one-request wait answers without the job: the wait below covers it.
        if (answer.Job is { } view && (view.State.IsTerminal() || time.GetUtcNow() >= deadline)) return view;
        var left = deadline - time.GetUtcNow();
        return await WaitAsync(answer.Id, left < TimeSpan.Zero ? TimeSpan.Zero : left, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>One submit; with <paramref name="wait"/>, the server also waits that long for the job to end.</summary>
    private async Task<SubmitJobResponse> SubmitCoreAsync(SubmitJobRequest job, TimeSpan? wait, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(job);
        var sent = WithIdempotencyKey(job, _connection.TimeProvider.GetUtcNow());
        var path = ApiRoutes.Jobs;
        if (wait is { } w) path += "?wait_seconds=" + w.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture);
        var answer = await _connection.SendAsync(HttpMethod.Post, path, sent,
            DtsJsonContext.Default.SubmitJobRequest, DtsJsonContext.Default.SubmitJobResponse, wait ?? default, cancellationToken).ConfigureAwait(false);
        if (!ReferenceEquals(sent, job)) answer.Coalesced = false;
        return answer;
    }

    /// <summary>
    /// <paramref name="job"/> itself when it has a unique key; otherwise a copy with a new random one.
    /// A caller's own key keeps its meaning (coalescing with the caller's other submits) and already
    /// makes a resend safe.
    /// </summary>
    /// <summary>
    /// The prefix, 12 hex digits of Unix milliseconds, then 80 random bits (20 hex digits). Time first,
    /// so that keys of jobs submitted together sit next to each other in the server's unique-key
    /// index (a queue of millions then appends to it instead of scattering inserts over it); the
    /// random part keeps two clients' keys apart.
    /// </summary>
    private static string NewAutoKey(DateTimeOffset now)
    {
        Span<byte> random = stackalloc byte[10];
        System.Security.Cryptography.RandomNumberGenerator.Fill(random);
        return AutoUniqueKeyPrefix + now.ToUnixTimeMilliseconds().ToString("x12", System.Globalization.CultureInfo.InvariantCulture) + Convert.ToHexStringLower(random);
    }

    private static SubmitJobRequest WithIdempotencyKey(SubmitJobRequest job, DateTimeOffset now)
    {
        if (job.UniqueKey is not null) return job;
        return new SubmitJobRequest
        {
            Function = job.Function,
            Args = job.Args,
            Kwargs = job.Kwargs,
            Priority = job.Priority,
            PriorityValue = job.PriorityValue,
            UniqueKey = NewAutoKey(now),
            RunAt = job.RunAt,
            DelaySeconds = job.DelaySeconds,
            MaxAttempts = job.MaxAttempts,
            TimeoutSeconds = job.TimeoutSeconds,
            Tags = job.Tags,
            RetentionSeconds = job.RetentionSeconds,
        };
    }

    /// <summary>Submits <paramref name="function"/> with positional args (a JSON array) and keyword args (a JSON object).</summary>
    public Task<SubmitJobResponse> SubmitAsync(string function, JsonElement? args = null, JsonElement? kwargs = null, CancellationToken cancellationToken = default) =>
        SubmitAsync(new SubmitJobRequest { Function = function, Args = args, Kwargs = kwargs }, cancellationToken);

    /// <summary>Submits <paramref name="function"/> with string positional args, as a text input line would.</summary>
    public Task<SubmitJobResponse> SubmitAsync(string function, IReadOnlyList<string> args, CancellationToken cancellationToken = default) =>
        SubmitAsync(new SubmitJobRequest { Function = function, Args = JsonValues.StringArray(args) }, cancellationToken);

    /// <summary>
    /// Submits many jobs, <see cref="ApiRoutes.MaxBatch"/> per request; the answers keep the input order.
    /// Jobs without a unique key get a random one, as in <see cref="SubmitAsync(SubmitJobRequest, CancellationToken)"/>.
    /// </summary>
    public async Task<IReadOnlyList<SubmitJobResponse>> SubmitBatchAsync(IReadOnlyList<SubmitJobRequest> jobs, CancellationToken cancellationToken = default)
    {
        var answers = new List<SubmitJobResponse>(jobs.Count);
        for (var start = 0; start < jobs.Count; start += ApiRoutes.MaxBatch)
        {
            var count = Math.Min(ApiRoutes.MaxBatch, jobs.Count - start);
            var chunk = new List<SubmitJobRequest>(count);
            var now = _connection.TimeProvider.GetUtcNow();
            for (var i = start; i < start + count; i++) chunk.Add(WithIdempotencyKey(jobs[i], now));
            var response = await _connection.SendAsync(HttpMethod.Post, ApiRoutes.JobsBatch, new SubmitBatchRequest { Jobs = chunk },
                DtsJsonContext.Default.SubmitBatchRequest, DtsJsonContext.Default.SubmitBatchResponse, cancellationToken: cancellationToken).ConfigureAwait(false);
            if (response.Jobs.Count != count)
                throw new DtsApiException(200, null, $"The server answered {response.Jobs.Count} jobs to a batch of {count}.");
            for (var i = 0; i < count; i++)
            {
                if (!ReferenceEquals(chunk[i], jobs[start + i])) response.Jobs[i].Coalesced = false;
            }
            answers.AddRange(response.Jobs);
        }
        return answers;
    }

    public Task<JobView> GetJobAsync(string id, CancellationToken cancellationToken = default) =>
        _connection.SendAsync(HttpMethod.Get, ApiRoutes.Job(Escape(id)), DtsJsonContext.Default.JobView, cancellationToken: cancellationToken);

    /// <summary>
    /// Long-polls the job until it is succeeded, dead or cancelled, or <paramref name="timeout"/> passes
    /// (then the last view is returned; check <see cref="JobStates.IsTerminal"/>). No timeout waits for ever.
    /// </summary>
    public async Task<JobView> WaitAsync(string id, TimeSpan? timeout = null, CancellationToken cancellationToken = default)
    {
        var time = _connection.TimeProvider;
        var deadline = timeout is { } t ? time.GetUtcNow() + t : (DateTimeOffset?)null;
        while (true)
        {
            var wait = TimeSpan.FromSeconds(LongPollSeconds);
            if (deadline is { } d)
            {
                var left = d - time.GetUtcNow();
                if (left < wait) wait = left > TimeSpan.Zero ? left : TimeSpan.Zero;
            }
            var seconds = Math.Ceiling(wait.TotalSeconds).ToString(CultureInfo.InvariantCulture);
            var view = await _connection.SendAsync(HttpMethod.Get, $"{ApiRoutes.Job(Escape(id))}?wait_seconds={seconds}",
                DtsJsonContext.Default.JobView, wait, cancellationToken).ConfigureAwait(false);
            if (view.State.IsTerminal()) return view;
            if (deadline is { } end && time.GetUtcNow() >= end) return view;
        }
    }

    public Task<JobView> CancelAsync(string id, CancellationToken cancellationToken = default) =>
        _connection.SendAsync(HttpMethod.Post, ApiRoutes.JobCancel(Escape(id)), DtsJsonContext.Default.JobView, cancellationToken: cancellationToken);

    /// <summary>
    /// Streams the caller's finished jobs. Each page is acknowledged once the consumer has taken all
    /// of its items, so a consumer that stops mid-page sees the rest of that page again next time
    /// (results are delivered at least once to the reader; write them idempotently).
    /// </summary>
    /// <param name="max">Results per page (1 to <see cref="ApiRoutes.MaxBatch"/>).</param>
    /// <param name="stopWhenIdle">End when a long poll comes back empty, instead of polling until cancelled.</param>
    public IAsyncEnumerable<JobView> ReadResultsAsync(int max = 100, bool stopWhenIdle = false, CancellationToken cancellationToken = default) =>
        ReadResultsAsync(null, max, stopWhenIdle, cancellationToken);

    /// <summary>As <see cref="ReadResultsAsync(int, bool, CancellationToken)"/>, only jobs carrying <paramref name="tag"/>.</summary>
    /// <param name="tag">For example one batch run's <c>run:&lt;id&gt;</c>; null reads all.</param>
    public async IAsyncEnumerable<JobView> ReadResultsAsync(string? tag, int max = 100, bool stopWhenIdle = false,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        while (true)
        {
            var page = await ReadResultPageAsync(max, TimeSpan.FromSeconds(LongPollSeconds), tag, cancellationToken).ConfigureAwait(false);
            if (page.Count == 0)
            {
                if (stopWhenIdle) yield break;
                continue;
            }
            foreach (var job in page) yield return job;
            await AckAsync(page.Select(j => j.Id).ToList(), cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>
    /// One page of pending results, without acknowledging them: for a reader that acknowledges only
    /// after it has stored them durably (see <see cref="AckAsync"/>).
    /// </summary>
    /// <param name="wait">How long the server may wait for a result when none is pending (0 to 60 s).</param>
    public async Task<IReadOnlyList<JobView>> ReadResultPageAsync(int max, TimeSpan wait, string? tag = null, CancellationToken cancellationToken = default)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(max, ApiRoutes.MaxBatch);
        var seconds = Math.Ceiling(Math.Clamp(wait.TotalSeconds, 0, ApiRoutes.MaxWaitSeconds)).ToString(CultureInfo.InvariantCulture);
        var path = $"{ApiRoutes.Results}?max={max.ToString(CultureInfo.InvariantCulture)}&wait_seconds={seconds}";
        if (tag is not null) path += "&tag=" + Uri.EscapeDataString(tag);
        var page = await _connection.SendAsync(HttpMethod.Get, path, DtsJsonContext.Default.ResultsResponse,
            wait, cancellationToken).ConfigureAwait(false);
        return page.Results;
    }

    /// <summary>Marks results as delivered so the server may forget them; returns how many it acknowledged.</summary>
    public async Task<int> AckAsync(IReadOnlyCollection<string> ids, CancellationToken cancellationToken = default)
    {
        var total = 0;
        foreach (var chunk in ids.Chunk(ApiRoutes.MaxBatch))
        {
            var answer = await _connection.SendAsync(HttpMethod.Post, ApiRoutes.ResultsAck, new AckRequest { Ids = [.. chunk] },
                DtsJsonContext.Default.AckRequest, DtsJsonContext.Default.AckResponse, cancellationToken: cancellationToken).ConfigureAwait(false);
            total += answer.Acknowledged;
        }
        return total;
    }

    private static string Escape(string id)
    {
        ArgumentException.ThrowIfNullOrEmpty(id);
        return Uri.EscapeDataString(id);
    }

    public void Dispose()
    {
        if (_ownsConnection) _connection.Dispose();
    }

    public ValueTask DisposeAsync()
    {
        Dispose();
        return ValueTask.CompletedTask;
    }
}
