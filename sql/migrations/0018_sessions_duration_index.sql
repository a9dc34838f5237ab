-- migrate: no-transaction
-- 0018: sorting the session list by duration reads an index instead of every session.
--
-- At a million sessions the sort was a scan of the whole table (450-660 ms); with this
-- index it is a short index scan (about 1 ms). The price: the per-batch counter UPDATE
-- (hindsight/queries/events.py) moves last_activity_at, so each update also writes an
-- entry into this index (about 30 us per 50-event batch, measured; docs/DECISIONS.md).
-- session_id is the list's tie-break, so the index gives the whole order both ways.
--
-- Built CONCURRENTLY: writes to sessions go on while it builds, so `hindsight migrate`
-- stays safe to run under traffic. A build that was interrupted leaves an INVALID index
-- behind; the DROP below clears it before the file is run again.
DROP INDEX CONCURRENTLY IF EXISTS sessions_account_duration_idx;
CREATE INDEX CONCURRENTLY sessions_account_duration_idx
    ON sessions (account_id, (last_activity_at - started_at), session_id);
