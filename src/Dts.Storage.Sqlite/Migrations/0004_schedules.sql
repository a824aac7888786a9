-- Daemons: recurring schedules, lost workers, server-side timeouts and result retention.

-- A recurring schedule. next_fire_at is the next tick not yet fired (Unix ms); the scheduler
-- advances it in the same transaction that inserts the tick's job, so a tick fires at most once.
CREATE TABLE schedules (
    id            TEXT    PRIMARY KEY,
    owner         TEXT    NOT NULL,
    function      TEXT    NOT NULL,
    -- The job each tick submits: a submit request (args, kwargs, priority, max_attempts,
    -- timeout, retention, tags) as JSON, validated when the schedule was created.
    template_json TEXT    NOT NULL,
    cron          TEXT    NOT NULL,
    time_zone     TEXT    NOT NULL,
    paused        INTEGER NOT NULL DEFAULT 0,
    next_fire_at  INTEGER,
    last_fired_at INTEGER,
    last_job_id   TEXT,
    created_at    INTEGER NOT NULL,
    updated_at    INTEGER NOT NULL
);

CREATE INDEX schedules_due ON schedules (next_fire_at) WHERE paused = 0 AND next_fire_at IS NOT NULL;
CREATE INDEX schedules_owner ON schedules (owner, id);

-- Set by the stethoscope when a worker's heartbeats stopped; cleared by its next heartbeat.
ALTER TABLE workers ADD COLUMN lost_at INTEGER;

-- What happened to workers (lost, returned), newest last; kept for people and alerts.
CREATE TABLE worker_events (
    seq        INTEGER PRIMARY KEY,
    worker_id  TEXT    NOT NULL,
    kind       TEXT    NOT NULL,
    at         INTEGER NOT NULL,
    detail     TEXT
);

CREATE INDEX worker_events_worker ON worker_events (worker_id, seq);

-- The hard deadline of the current attempt (lease time + timeout), NULL without a timeout.
ALTER TABLE jobs ADD COLUMN deadline_at INTEGER;

CREATE INDEX jobs_deadline ON jobs (deadline_at) WHERE state = 'running' AND deadline_at IS NOT NULL;

-- The porter deletes finished jobs whose result was acknowledged or expired, oldest first.
CREATE INDEX jobs_finished ON jobs (finished_at) WHERE state IN ('succeeded', 'dead', 'cancelled');

-- Per-function job defaults, used when a submit leaves the field out; NULL keeps the global default.
CREATE TABLE function_defaults (
    function      TEXT    PRIMARY KEY,
    max_attempts  INTEGER,
    timeout_ms    INTEGER,
    retention_ms  INTEGER,
    updated_at    INTEGER NOT NULL
);
