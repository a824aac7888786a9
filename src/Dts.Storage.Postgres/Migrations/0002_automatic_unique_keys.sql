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
--
-- Older servers cannot run beside this schema: their submits name the old jobs_unique_key in
-- ON CONFLICT and PostgreSQL no longer finds it. Stop them before migrating (docs/operations.md).
-- The lock keeps any writer out from the renaming to the new indexes, which the DROP INDEX needs
-- anyway; the migrator's one transaction holds it until everything is in place.
LOCK TABLE {schema}.jobs IN ACCESS EXCLUSIVE MODE;

UPDATE {schema}.jobs SET unique_key = 'dup:' || seq || ':' || unique_key
WHERE seq IN (
    SELECT seq FROM (
        SELECT seq, row_number() OVER (
            PARTITION BY owner, function, unique_key
            ORDER BY CASE WHEN state IN ('queued', 'scheduled', 'running', 'awaiting_retry') THEN 0 ELSE 1 END, seq) AS n
        FROM {schema}.jobs
        WHERE substr(unique_key, 1, 9) = 'dts-auto:') AS numbered
    WHERE n > 1);

-- Caller's keys: as before, held only by unfinished jobs.
DROP INDEX {schema}.jobs_unique_key;
CREATE UNIQUE INDEX jobs_unique_key ON {schema}.jobs (owner, function, unique_key)
    WHERE unique_key IS NOT NULL AND substr(unique_key, 1, 9) <> 'dts-auto:'
      AND state IN ('queued', 'scheduled', 'running', 'awaiting_retry');

-- Automatic keys: held in every state. Inserts use a target-less ON CONFLICT DO NOTHING, which
-- arbitrates on both indexes (and on id, which the store checks for itself).
CREATE UNIQUE INDEX jobs_auto_key ON {schema}.jobs (owner, function, unique_key)
    WHERE substr(unique_key, 1, 9) = 'dts-auto:';
