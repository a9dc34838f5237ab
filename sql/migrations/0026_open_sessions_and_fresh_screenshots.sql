-- migrate: no-transaction
-- 0026: two lookups that were scans.
--
-- 1. Ending sessions. `sessions.ended_at` is set by the lifecycle job `close_sessions`
--    (hindsight/lifecycle/jobs.py) to the session's last activity once it has been idle
--    for 30 minutes, the tracker's own session timeout. The job reads the open sessions
--    that went quiet; this partial index holds only open sessions (those of the last half
--    hour, plus any the job has not reached yet), so it stays small whatever the table's size.
--    The per-batch counter UPDATE moves last_activity_at and so writes an entry here too,
--    as it already does for sessions_account_duration_idx (0018).
-- 2. "Does the account hold a fresh screenshot of this page?" (GET
--    /api/v1/track/screenshot/wanted, asked by tracker.js before it takes one): the
--    account's screenshots of the freshness period, newest first.
--
-- Built CONCURRENTLY so `hindsight migrate` is safe under traffic; an interrupted build
-- leaves an INVALID index behind, which the DROPs clear before the file is run again.
DROP INDEX CONCURRENTLY IF EXISTS sessions_open_idx;
CREATE INDEX CONCURRENTLY sessions_open_idx ON sessions (last_activity_at) WHERE ended_at IS NULL;
DROP INDEX CONCURRENTLY IF EXISTS screenshots_account_time_idx;
CREATE INDEX CONCURRENTLY screenshots_account_time_idx ON screenshots (account_id, "timestamp" DESC);
