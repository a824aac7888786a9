namespace Dts.Contracts;

/// <summary>An error the server can answer with: a stable code, its HTTP status and a default message.</summary>
public sealed record ErrorCode(string Code, int Status, string Title);

/// <summary>
/// Every error code the API can return. Codes are stable: clients branch on them, so a code is
/// never renamed or reused. docs/protocol.md lists them all.
/// </summary>
public static class ErrorCodes
{
    // 400: the request itself is wrong.
    public static readonly ErrorCode MalformedJson = new("malformed_json", 400, "The request body is not valid JSON.");
    public static readonly ErrorCode InvalidField = new("invalid_field", 400, "A field has a wrong type or value.");
    public static readonly ErrorCode MissingField = new("missing_field", 400, "A required field is missing.");
    public static readonly ErrorCode UnknownField = new("unknown_field", 400, "The request has a field the server does not accept.");
    public static readonly ErrorCode InvalidQuery = new("invalid_query", 400, "A query parameter has a wrong value.");
    public static readonly ErrorCode UnsupportedMediaType = new("unsupported_media_type", 415, "The request body must be application/json.");
    public static readonly ErrorCode PayloadTooLarge = new("payload_too_large", 413, "The request body is larger than the server accepts.");

    // 401: who is asking cannot be established.
    public static readonly ErrorCode MissingAuth = new("missing_auth", 401, "The request is not signed: the X-Dts-User, X-Dts-Timestamp, X-Dts-Nonce and X-Dts-Signature headers are required.");
    public static readonly ErrorCode UnknownUser = new("unknown_user", 401, "No enabled user has this id.");
    public static readonly ErrorCode BadSignature = new("bad_signature", 401, "The signature does not match the request.");
    public static readonly ErrorCode StaleTimestamp = new("stale_timestamp", 401, "The request timestamp is outside the accepted window; check the clock.");
    public static readonly ErrorCode ReplayedNonce = new("replayed_nonce", 401, "This nonce was already used; every request needs a fresh nonce.");
    public static readonly ErrorCode InvalidAuth = new("invalid_auth", 401, "A signing header is malformed.");

    // 403: known caller, not allowed.
    public static readonly ErrorCode Forbidden = new("forbidden", 403, "The user lacks the role this endpoint needs.");
    public static readonly ErrorCode FunctionNotAllowed = new("function_not_allowed", 403, "The worker is not registered for this function.");

    // 404
    public static readonly ErrorCode JobNotFound = new("job_not_found", 404, "No such job.");
    public static readonly ErrorCode WorkerNotFound = new("worker_not_found", 404, "No such worker; register again.");
    public static readonly ErrorCode UserNotFound = new("user_not_found", 404, "No such user.");
    public static readonly ErrorCode RouteNotFound = new("route_not_found", 404, "No such endpoint.");
    public static readonly ErrorCode ScheduleNotFound = new("schedule_not_found", 404, "No such schedule.");
    public static readonly ErrorCode MethodNotAllowed = new("method_not_allowed", 405, "This endpoint does not accept this method.");

    // 409: the request conflicts with the job's current state.
    public static readonly ErrorCode StaleLease = new("stale_lease", 409, "The lease token is not the job's current one; the job was given to another worker or has finished. Drop it.");
    public static readonly ErrorCode JobFinished = new("job_finished", 409, "The job has already finished.");
    public static readonly ErrorCode JobNotRetryable = new("job_not_retryable", 409, "Only dead, cancelled or awaiting-retry jobs can be retried.");
    public static readonly ErrorCode UserExists = new("user_exists", 409, "A user with this name exists already.");
    public static readonly ErrorCode ScheduleExists = new("schedule_exists", 409, "A schedule with this id exists already.");

    // 429 and 5xx
    public static readonly ErrorCode RateLimited = new("rate_limited", 429, "Too many requests; retry after the Retry-After interval.");
    public static readonly ErrorCode QueueLimit = new("queue_limit", 429, "The user has as many unfinished jobs as allowed; retry after some finish.");
    public static readonly ErrorCode ShuttingDown = new("shutting_down", 503, "The server is shutting down; retry on another server or later.");
    public static readonly ErrorCode Internal = new("internal_error", 500, "The server failed unexpectedly; the request was not applied.");

    public static readonly IReadOnlyList<ErrorCode> All =
    [
        MalformedJson, InvalidField, MissingField, UnknownField, InvalidQuery, UnsupportedMediaType, PayloadTooLarge,
        MissingAuth, UnknownUser, BadSignature, StaleTimestamp, ReplayedNonce, InvalidAuth,
        Forbidden, FunctionNotAllowed,
        JobNotFound, WorkerNotFound, UserNotFound, RouteNotFound, MethodNotAllowed,
        StaleLease, JobFinished, JobNotRetryable, UserExists,
        ScheduleNotFound, ScheduleExists,
        RateLimited, QueueLimit, ShuttingDown, Internal,
    ];
}
