-- One row that FlushAsync rewrites (flushes + 1) when commits made without an fsync are waiting
-- for one. SQLite writes nothing to the WAL, and so fsyncs nothing, for a transaction that changed
-- no page; this row gives the flush a change of its own that nothing else reads.
CREATE TABLE flush_marker (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    flushes INTEGER NOT NULL
);
