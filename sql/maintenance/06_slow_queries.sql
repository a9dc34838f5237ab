-- 06_slow_queries.sql: the statements that cost the most time.
--
--   psql -X -f sql/maintenance/06_slow_queries.sql "$HINDSIGHT_DATABASE_URL"
--
-- Needs the pg_stat_statements extension for history (shared_preload_libraries =
-- 'timescaledb,pg_stat_statements', then CREATE EXTENSION pg_stat_statements); without
-- it, only what is running now is shown.
--
-- Read it like this:
--   * total_ms is where the server's time goes; mean_ms is what one call costs. The
--     ingestion INSERT into events should lead by calls with a mean of a few ms; the
--     dashboard's stats queries read roll-ups and should stay well under 100 ms
--     (docs/BENCHMARKS.md). A SELECT on `events` with a large mean and many calls is
--     a query scanning raw events where it should read a roll-up.
--   * reset the statistics with SELECT pg_stat_statements_reset(); after a change.

SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_stat_statements') AS has_pgss \gset
\if :has_pgss
\echo '== top 20 statements by total time (pg_stat_statements)'
SELECT calls, round(total_exec_time::numeric, 1) AS total_ms, round(mean_exec_time::numeric, 2) AS mean_ms,
       round(max_exec_time::numeric, 1) AS max_ms, rows,
       left(regexp_replace(query, '\s+', ' ', 'g'), 140) AS query
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY total_exec_time DESC
LIMIT 20;
\else
\echo '== pg_stat_statements is not installed: statements running now, longest first'
SELECT pid, application_name, now() - query_start AS running_for,
       left(regexp_replace(query, '\s+', ' ', 'g'), 140) AS query
FROM pg_stat_activity
WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()
ORDER BY running_for DESC
LIMIT 20;
\endif
