-- Rate limits shared by every instance over this database (src/safety/limits.rs): one row per
-- bucket that is not full, holding its theoretical arrival time (GCRA). A write takes a cell
-- with one INSERT … ON CONFLICT DO UPDATE that decides, under the row's lock, whether it is
-- allowed; `refused` says what that statement decided (RETURNING sees only the new row).
--
-- `key` is, for a client, the HMAC of its address (IPv4, or IPv6 /64) under the `hmac` server
-- secret, never the address; for a campaign, its id (8 bytes, big-endian). A row whose `tat` has
-- passed is a full bucket, the same as no row: every instance deletes those every few seconds.
--
-- UNLOGGED: not written to the WAL (a write costs no WAL record), not copied to streaming
-- replicas, left out of `civicmap backup`, and emptied by PostgreSQL after a crash (every
-- client then gets its burst once more). No index but the key: `tat` changes on every write, and
-- leaving it unindexed (with room on each page) keeps those updates HOT.
CREATE UNLOGGED TABLE rate_limits (
    scope   text        NOT NULL CHECK (scope IN ('client', 'campaign')),
    key     bytea       NOT NULL,
    tat     timestamptz NOT NULL,
    refused boolean     NOT NULL,
    PRIMARY KEY (scope, key)
) WITH (fillfactor = 50);
