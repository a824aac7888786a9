-- Log lines that workers ship for their jobs (the tracer). seq counts from 1 within a job, so a
-- follower asks for "after N" and never misses or repeats a line. at is Unix ms (the worker's
-- time of the line); stream is log, stdout, stderr, or dts for lines the server writes itself.
CREATE TABLE job_logs (
    job_id TEXT    NOT NULL,
    seq    INTEGER NOT NULL,
    at     INTEGER NOT NULL,
    stream TEXT    NOT NULL,
    text   TEXT    NOT NULL,
    PRIMARY KEY (job_id, seq)
) WITHOUT ROWID;

-- Running totals per job, so the cap is checked without summing a job's lines on every append.
-- cut = 1 once the cap was reached and the closing note written; later lines are dropped.
CREATE TABLE job_log_totals (
    job_id TEXT    PRIMARY KEY,
    lines  INTEGER NOT NULL,
    bytes  INTEGER NOT NULL,
    cut    INTEGER NOT NULL
) WITHOUT ROWID;

-- Logs go with their job, whichever code deletes it (admin purge, retention purge).
CREATE TRIGGER jobs_delete_logs AFTER DELETE ON jobs
BEGIN
    DELETE FROM job_logs WHERE job_id = old.id;
    DELETE FROM job_log_totals WHERE job_id = old.id;
END;
