-- Administration: per-user limits, draining workers, paused queues, and indexes for job search.

-- NULL is unlimited. functions_json is a JSON array of the only functions a worker user may register.
ALTER TABLE users ADD COLUMN max_queued     INTEGER;
ALTER TABLE users ADD COLUMN submit_rate    REAL;
ALTER TABLE users ADD COLUMN submit_burst   REAL;
ALTER TABLE users ADD COLUMN functions_json TEXT;

ALTER TABLE workers ADD COLUMN draining INTEGER NOT NULL DEFAULT 0;

-- A row exists once a queue was paused or resumed; a function without one is not paused.
CREATE TABLE queues (
    function   TEXT    PRIMARY KEY,
    paused     INTEGER NOT NULL DEFAULT 0,
    updated_at INTEGER NOT NULL
);

-- Job search walks newest first within an owner or a function. There is deliberately no
-- (state, seq) index: without statistics SQLite would prefer it to the partial indexes of the
-- hot lease, rescue and promote queries. A search by state alone walks seq instead.
CREATE INDEX jobs_owner_seq ON jobs (owner, seq);
CREATE INDEX jobs_function_seq ON jobs (function, seq);

-- The per-user max_queued check counts a user's unfinished jobs on every submit.
CREATE INDEX jobs_owner_unfinished ON jobs (owner)
    WHERE state IN ('queued', 'scheduled', 'running', 'awaiting_retry');
