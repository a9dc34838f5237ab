-- 01_connections.sql: who is connected, and what is running for long.
--
--   psql -X -f sql/maintenance/01_connections.sql "$HINDSIGHT_DATABASE_URL"
--
-- Read it like this:
--   * connections by application and state: the API shows as `hindsight` (one pool per
--     gunicorn worker: at most HINDSIGHT_WORKERS x HINDSIGHT_POOL_MAX connections), the
--     lifecycle jobs as `hindsight lifecycle <job>`. Many `idle in transaction` rows
--     mean a client holds transactions open: that blocks vacuum and chunk drops.
--   * the second list is every statement running for more than 5 seconds. An API
--     statement is cancelled at HINDSIGHT_STATEMENT_TIMEOUT_MS (15 s); a lifecycle job
--     may run longer (a retention run after a long pause, a first roll-up refresh).
--   * compare the total with max_connections.

\echo '== connections by application and state'
SELECT coalesce(nullif(application_name, ''), '(none)') AS application,
       coalesce(state, '(background)') AS state,
       count(*) AS connections,
       max(now() - state_change) FILTER (WHERE state <> 'active') AS longest_in_state
FROM pg_stat_activity
WHERE datname = current_database()
GROUP BY 1, 2
ORDER BY 3 DESC, 1;

\echo '== connections in use / allowed (whole server)'
SELECT count(*) AS connections, current_setting('max_connections')::int AS max_connections
FROM pg_stat_activity;

\echo '== statements running for more than 5 seconds'
SELECT pid, application_name, now() - query_start AS running_for, wait_event_type, wait_event,
       left(regexp_replace(query, '\s+', ' ', 'g'), 120) AS query
FROM pg_stat_activity
WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()
  AND now() - query_start > INTERVAL '5 seconds'
ORDER BY running_for DESC;
