-- The whole schema of the PostgreSQL store. {schema} is replaced by the configured schema's
-- quoted name; the migrator runs this file in one transaction under an advisory lock.
--
-- Times are timestamptz (kept at millisecond precision by the store, as callers pass them),
-- durations bigint milliseconds. Job arguments, results and tags are kept as the exact JSON text
-- the caller gave (text, not jsonb, so that they read back byte for byte); the few queries that
-- look inside tags cast to jsonb. Roles and function lists are text[]. Keys that listings page
-- through (user names, worker and schedule ids) use the "C" collation: byte order, as in SQLite.

CREATE TABLE {schema}.jobs (
    seq               bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id                text        NOT NULL UNIQUE,
    function          text        NOT NULL,
    owner             text        NOT NULL,
    state             text        NOT NULL CHECK (state IN ('queued', 'scheduled', 'running', 'succeeded', 'awaiting_retry', 'dead', 'cancelled')),
    args_json         text        NOT NULL,
    kwargs_json       text        NOT NULL,
    -- Folds priority class and value; a smaller rank is leased first.
    rank              integer     NOT NULL,
    unique_key        text,
    tags_json         text,
    run_at            timestamptz NOT NULL,
    attempts          integer     NOT NULL DEFAULT 0,
    max_attempts      integer     NOT NULL,
    timeout_ms        bigint,
    retention_ms      bigint      NOT NULL,
    progress_num      bigint,
    progress_den      bigint,
    result_json       text,
    error_code        text,
    error_message     text,
    lease_token       text,
    lease_expires_at  timestamptz,
    worker_id         text,
    cancel_requested  boolean     NOT NULL DEFAULT false,
    result_pending    boolean     NOT NULL DEFAULT false,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    started_at        timestamptz,
    finished_at       timestamptz,
    result_expires_at timestamptz,
    -- The hard deadline of the current attempt (lease time + timeout), NULL without a timeout.
    deadline_at       timestamptz
);

-- The claim (lease) query. At ten million rows nearly every job is finished, and the few
-- thousand queued ones are what a worker's lease wants. The claim asks, per function the worker
-- serves, for the best queued jobs: WHERE function = $f AND state = 'queued' ORDER BY rank, seq
-- LIMIT n FOR UPDATE SKIP LOCKED. This partial index holds only queued rows, so:
--   * its size follows the queue's length, not the table's: finished jobs never enter it and a
--     lease or a finish removes the row from it (a HOT update is impossible anyway, as state changes);
--   * (function, rank, seq) matches the equality and the ORDER BY exactly, so the scan walks the
--     index in order and stops after n unlocked rows: no sort, no heap visits for other functions;
--   * SKIP LOCKED lets concurrent leasers (several servers) pass rows another transaction holds
--     instead of queueing behind it.
-- The lease statement runs this scan once per function (LATERAL) and merges the candidates by
-- (rank, seq), which gives the same global order as the SQLite store.
CREATE INDEX jobs_ready ON {schema}.jobs (function, rank, seq) WHERE state = 'queued';

-- Every other index is partial too, for the same reason: each holds only the rows its query wants.
CREATE INDEX jobs_due ON {schema}.jobs (run_at) WHERE state IN ('scheduled', 'awaiting_retry');
CREATE INDEX jobs_lease_expiry ON {schema}.jobs (lease_expires_at) WHERE state = 'running';
CREATE INDEX jobs_worker_running ON {schema}.jobs (worker_id) WHERE state = 'running';
CREATE INDEX jobs_deadline ON {schema}.jobs (deadline_at) WHERE state = 'running' AND deadline_at IS NOT NULL;
CREATE INDEX jobs_results_pending ON {schema}.jobs (owner, finished_at, seq) WHERE result_pending;
-- The porter deletes finished jobs whose result was acknowledged or expired, oldest first.
CREATE INDEX jobs_finished ON {schema}.jobs (finished_at) WHERE state IN ('succeeded', 'dead', 'cancelled');
-- The per-user max_queued check counts a user's unfinished jobs on every submit.
CREATE INDEX jobs_owner_unfinished ON {schema}.jobs (owner)
    WHERE state IN ('queued', 'scheduled', 'running', 'awaiting_retry');
-- Job search walks newest first within an owner or a function; by state alone it walks seq.
CREATE INDEX jobs_owner_seq ON {schema}.jobs (owner, seq);
CREATE INDEX jobs_function_seq ON {schema}.jobs (function, seq);
CREATE INDEX jobs_state_seq ON {schema}.jobs (state, seq);

-- Unique keys are scoped per owner and function, and held only by unfinished jobs. Inserts use
-- ON CONFLICT on this index, so two servers submitting the same key at once coalesce too.
CREATE UNIQUE INDEX jobs_unique_key ON {schema}.jobs (owner, function, unique_key)
    WHERE unique_key IS NOT NULL AND state IN ('queued', 'scheduled', 'running', 'awaiting_retry');

CREATE TABLE {schema}.users (
    name         text COLLATE "C" PRIMARY KEY,
    -- Always the cipher's protected form (ISecretCipher), never plaintext.
    secret       text             NOT NULL,
    roles        text[]           NOT NULL,
    disabled     boolean          NOT NULL DEFAULT false,
    created_at   timestamptz      NOT NULL,
    -- NULL is unlimited; functions NULL allows any function.
    max_queued   bigint,
    submit_rate  double precision,
    submit_burst double precision,
    functions    text[]
);

CREATE TABLE {schema}.workers (
    id                text COLLATE "C" PRIMARY KEY,
    owner             text        NOT NULL,
    name              text        NOT NULL,
    functions         text[]      NOT NULL,
    concurrency       integer     NOT NULL,
    registered_at     timestamptz NOT NULL,
    last_heartbeat_at timestamptz NOT NULL,
    draining          boolean     NOT NULL DEFAULT false,
    -- Set by the stethoscope when a worker's heartbeats stopped; cleared by its next heartbeat.
    lost_at           timestamptz
);

CREATE INDEX workers_owner ON {schema}.workers (owner);
CREATE INDEX workers_heartbeat ON {schema}.workers (last_heartbeat_at) WHERE lost_at IS NULL;

-- A row exists once a queue was paused or resumed; a function without one is not paused.
CREATE TABLE {schema}.queues (
    function   text COLLATE "C" PRIMARY KEY,
    paused     boolean     NOT NULL DEFAULT false,
    updated_at timestamptz NOT NULL
);

-- Nonces of accepted signed requests, so that a replay is refused also after a restart.
CREATE TABLE {schema}.nonces (
    user_name  text        NOT NULL,
    nonce_hash bytea       NOT NULL,
    expires_at timestamptz NOT NULL,
    PRIMARY KEY (user_name, nonce_hash)
);

CREATE INDEX nonces_expires ON {schema}.nonces (expires_at);

-- A recurring schedule. next_fire_at is the next tick not yet fired; the scheduler advances it in
-- the same transaction that inserts the tick's job (compare-and-set), so a tick fires at most once
-- even when two servers race for it.
CREATE TABLE {schema}.schedules (
    id            text COLLATE "C" PRIMARY KEY,
    owner         text        NOT NULL,
    function      text        NOT NULL,
    template_json text        NOT NULL,
    cron          text        NOT NULL,
    time_zone     text        NOT NULL,
    paused        boolean     NOT NULL DEFAULT false,
    next_fire_at  timestamptz,
    last_fired_at timestamptz,
    last_job_id   text,
    created_at    timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL
);

CREATE INDEX schedules_due ON {schema}.schedules (next_fire_at) WHERE NOT paused AND next_fire_at IS NOT NULL;
CREATE INDEX schedules_owner ON {schema}.schedules (owner, id);

-- What happened to workers (lost), newest last; kept for people and alerts.
CREATE TABLE {schema}.worker_events (
    seq       bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    worker_id text        NOT NULL,
    kind      text        NOT NULL,
    at        timestamptz NOT NULL,
    detail    text
);

CREATE INDEX worker_events_worker ON {schema}.worker_events (worker_id, seq);

-- Per-function job defaults, used when a submit leaves the field out; NULL keeps the global default.
CREATE TABLE {schema}.function_defaults (
    function     text        PRIMARY KEY,
    max_attempts integer,
    timeout_ms   bigint,
    retention_ms bigint,
    updated_at   timestamptz NOT NULL
);

-- Log lines that workers ship for their jobs. seq counts from 1 within a job. Lines and totals go
-- with their job whichever code deletes it (ON DELETE CASCADE through the primary keys' job_id).
CREATE TABLE {schema}.job_logs (
    job_id text        NOT NULL REFERENCES {schema}.jobs (id) ON DELETE CASCADE,
    seq    bigint      NOT NULL,
    at     timestamptz NOT NULL,
    stream text        NOT NULL,
    text   text        NOT NULL,
    PRIMARY KEY (job_id, seq)
);

-- Running totals per job, so the cap is checked without summing a job's lines on every append.
-- The row is also the lock that serialises appends to one job from several servers.
CREATE TABLE {schema}.job_log_totals (
    job_id text    PRIMARY KEY REFERENCES {schema}.jobs (id) ON DELETE CASCADE,
    lines  bigint  NOT NULL,
    bytes  bigint  NOT NULL,
    cut    boolean NOT NULL
);
