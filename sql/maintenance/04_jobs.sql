-- 04_jobs.sql: are the lifecycle jobs running, and did they succeed?
--
--   psql -X -f sql/maintenance/04_jobs.sql "$HINDSIGHT_DATABASE_URL"
--
-- Read it like this:
--   * Hindsight's own jobs (both editions), from lifecycle_jobs: `refresh_rollups`
--     (every 5 minutes) and `retention` (hourly). last_status should be success and
--     last_success_at recent; next_run_at is when one of the API processes will run it
--     next. last_error stays visible after later successes (see last_error_at).
--     No rows, or a last_started_at far in the past: no API process is running with
--     HINDSIGHT_LIFECYCLE_JOBS on.
--   * timescale edition: TimescaleDB's policies (compression, retention, continuous
--     aggregate refresh) with their statistics, then their run history of the last 7 days
--     (timescaledb_information.job_history: failed runs always; successful ones only with
--     timescaledb.enable_job_execution_logging = on, shown at the top of that part), then
--     each failed run with its error. A background job can fail where the same call from
--     psql succeeds (permissions, memory, locks), so read last_run_status and the history,
--     not the policy's mere existence. known_cause explains the failures whose cause is
--     known: "cannot drop portal ... while it is being set up" (PostgreSQL 15.20 with
--     TimescaleDB 2.28.3 or older) means the policy did its work and then failed while
--     cleaning up — docs/operations.md, "Failed policy runs", says what to do.

\echo '== Hindsight lifecycle jobs (lifecycle_jobs)'
SELECT job_name, last_status, runs, failures, last_started_at, last_duration_ms,
       last_success_at, next_run_at, last_run_by,
       left(last_error, 100) AS last_error, last_error_at
FROM lifecycle_jobs
ORDER BY job_name;

\echo '== what each job did last time'
SELECT job_name, jsonb_pretty(last_result) AS last_result FROM lifecycle_jobs ORDER BY job_name;

SELECT current_setting('timescaledb.license', true) = 'timescale' AS is_tsl \gset
\if :is_tsl
\echo '== TimescaleDB policies (timescale edition)'
SELECT j.job_id, j.proc_name AS policy, coalesce(ca.view_name, j.hypertable_name) AS relation,
       j.scheduled, j.schedule_interval, j.config, s.last_run_status, s.last_run_started_at,
       s.last_successful_finish, s.next_start, s.total_runs, s.total_failures
FROM timescaledb_information.jobs j
LEFT JOIN timescaledb_information.job_stats s ON s.job_id = j.job_id
LEFT JOIN timescaledb_information.continuous_aggregates ca
       ON ca.materialization_hypertable_schema = j.hypertable_schema
      AND ca.materialization_hypertable_name = j.hypertable_name
WHERE j.proc_name IN ('policy_compression', 'policy_retention', 'policy_refresh_continuous_aggregate')
ORDER BY j.job_id;

\echo '== their run history, last 7 days (successful runs are logged only when this is on:)'
SHOW timescaledb.enable_job_execution_logging;
SELECT h.job_id, h.proc_name AS policy, count(*) FILTER (WHERE h.succeeded) AS succeeded,
       count(*) FILTER (WHERE h.succeeded IS FALSE) AS failed,
       max(h.finish_time) FILTER (WHERE h.succeeded) AS last_success,
       max(h.finish_time) FILTER (WHERE h.succeeded IS FALSE) AS last_failure
FROM timescaledb_information.job_history h
WHERE h.proc_name IN ('policy_compression', 'policy_retention', 'policy_refresh_continuous_aggregate')
  AND h.start_time > now() - INTERVAL '7 days'
GROUP BY h.job_id, h.proc_name
ORDER BY h.job_id;

\echo '== their failed runs, last 7 days, newest first'
SELECT e.job_id, e.proc_name AS policy, e.finish_time, e.sqlerrcode, left(e.err_message, 120) AS error,
       CASE WHEN e.err_message LIKE '%while it is being set up%'
            THEN 'PostgreSQL 15.20 + TimescaleDB <= 2.28.3: the work was done, the clean-up failed '
                 '(docs/operations.md, Failed policy runs)'
       END AS known_cause
FROM timescaledb_information.job_errors e
WHERE e.finish_time > now() - INTERVAL '7 days'
ORDER BY e.finish_time DESC
LIMIT 50;
\else
\echo '== TimescaleDB policies: none on the apache edition (the jobs above do their work)'
\endif
