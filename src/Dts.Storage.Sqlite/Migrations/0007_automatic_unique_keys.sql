-- Automatic unique keys (those the client SDK makes: 'dts-auto:' and 32 hex digits) are held by
-- their job in every state until its row is purged, so that a submit resent after its first copy's
-- job has finished attaches to that job instead of running it a second time. Other unique keys
-- keep being held only while their job is unfinished. See UniqueKeys in Dts.Contracts.
--
-- Before this step a finished job's automatic key was free again, so a late resend could store a
-- second job with the same owner, function and key. Such duplicate groups would keep the new
-- unique index from being built. In each group one row keeps the key: the unfinished job if there
-- is one (at most one can be; it is the job a resend attaches to today), otherwise the oldest
-- (lowest seq, the job the first send stored). Every other row of the group is finished; its key
-- becomes 'dup:<seq>:' followed by the old key. That key no longer begins with 'dts-auto:', so it
-- is a caller's key of a finished job, held by no index, and the renamed rows can clash with
-- nothing. Nothing else of any job changes, and no job is removed.
UPDATE jobs SET unique_key = 'dup:' || seq || ':' || unique_key
WHERE seq IN (
    SELECT seq FROM (
        SELECT seq, row_number() OVER (
            PARTITION BY owner, function, unique_key
            ORDER BY CASE WHEN state IN ('queued', 'scheduled', 'running', 'awaiting_retry') THEN 0 ELSE 1 END, seq) AS n
        FROM jobs
        WHERE substr(unique_key, 1, 9) = 'dts-auto:')
    WHERE n > 1);

-- Caller's keys: as before, held only by unfinished jobs. A query that wants this index must
-- repeat its predicate's terms (SQLite proves a partial index usable term by term).
DROP INDEX jobs_unique_key;
CREATE UNIQUE INDEX jobs_unique_key ON jobs (owner, function, unique_key)
    WHERE unique_key IS NOT NULL AND substr(unique_key, 1, 9) <> 'dts-auto:'
      AND state IN ('queued', 'scheduled', 'running', 'awaiting_retry');

-- Automatic keys: held in every state. The predicate does not name state, so a job's state changes
-- (lease, finish) leave this index alone: one entry written at submit, one removed at purge.
CREATE UNIQUE INDEX jobs_auto_key ON jobs (owner, function, unique_key)
    WHERE substr(unique_key, 1, 9) = 'dts-auto:';
