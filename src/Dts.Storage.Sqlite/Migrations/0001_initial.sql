-- Times are INTEGER unix milliseconds, durations INTEGER milliseconds, JSON is TEXT.
-- rank folds priority class and value; a smaller rank is leased first.

CREATE TABLE jobs (
    seq               INTEGER PRIMARY KEY,
    id                TEXT    NOT NULL UNIQUE,
    function          TEXT    NOT NULL,
    owner             TEXT    NOT NULL,
    state             TEXT    NOT NULL,
    args_json         TEXT    NOT NULL,
    kwargs_json       TEXT    NOT NULL,
    rank              INTEGER NOT NULL,
    unique_key        TEXT,
    tags_json         TEXT,
    run_at            INTEGER NOT NULL,
    attempts          INTEGER NOT NULL DEFAULT 0,
    max_attempts      INTEGER NOT NULL,
    timeout_ms        INTEGER,
    retention_ms      INTEGER NOT NULL,
    progress_num      INTEGER,
    progress_den      INTEGER,
    result_json       TEXT,
    error_code        TEXT,
    error_message     TEXT,
    lease_token       TEXT,
    lease_expires_at  INTEGER,
    worker_id         TEXT,
    cancel_requested  INTEGER NOT NULL DEFAULT 0,
    result_pending    INTEGER NOT NULL DEFAULT 0,
    created_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    started_at        INTEGER,
    finished_at       INTEGER,
    result_expires_at INTEGER
);

-- Each index below is partial so that it holds only the rows its query can want: at ten
-- million rows most jobs are finished and none of these indexes pays for them.

CREATE INDEX jobs_ready ON jobs (function, rank, seq) WHERE state = 'queued';

CREATE INDEX jobs_due ON jobs (run_at) WHERE state IN ('scheduled', 'awaiting_retry');

CREATE INDEX jobs_lease_expiry ON jobs (lease_expires_at) WHERE state = 'running';

CREATE INDEX jobs_worker_running ON jobs (worker_id) WHERE state = 'running';

CREATE INDEX jobs_results_pending ON jobs (owner, finished_at, seq) WHERE result_pending = 1;

-- Unique keys are scoped per owner: one user can never attach to another user's job.
CREATE UNIQUE INDEX jobs_unique_key ON jobs (owner, function, unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('queued', 'scheduled', 'running', 'awaiting_retry');

CREATE TABLE users (
    name       TEXT    PRIMARY KEY,
    secret     TEXT    NOT NULL,
    roles_json TEXT    NOT NULL,
    disabled   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
);

CREATE TABLE workers (
    id                TEXT    PRIMARY KEY,
    owner             TEXT    NOT NULL,
    name              TEXT    NOT NULL,
    functions_json    TEXT    NOT NULL,
    concurrency       INTEGER NOT NULL,
    registered_at     INTEGER NOT NULL,
    last_heartbeat_at INTEGER NOT NULL
);
