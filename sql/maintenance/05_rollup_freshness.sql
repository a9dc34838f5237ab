-- 05_rollup_freshness.sql: how far each roll-up is materialized.
--
--   psql -X -f sql/maintenance/05_rollup_freshness.sql "$HINDSIGHT_DATABASE_URL"
--
-- Read it like this:
--   * materialized_until is the watermark: buckets before it are read from the stored
--     roll-up, buckets after it are computed from raw rows at query time. So the
--     dashboard is always current, and a watermark that lags only makes queries slower.
--   * the visitor roll-ups' daily and weekly stores (visits_*, page_visits_*) also hold
--     today so far and this week so far as one row each (a partial row, replaced by the
--     next refresh): their watermark is inside today, like the hourly ones'. Their views
--     (visits_daily, page_visits_daily) read the store's whole days only, and compute the
--     watermark's day from its hours. So does network_4weekly on the apache edition for the
--     current 28-day block so far (its view reads the block's days after the watermark).
--   * expected lag: hourly roll-ups about 1-2 hours (they leave the last hour to query
--     time), the visitor roll-ups' daily and weekly ones too, the other daily ones 1-2
--     days, network_weekly 1-2 weeks, network_4weekly 1-2 days on the apache edition (it
--     holds the current 28-day block so far, up to the daily watermark) and 0-4 weeks on the
--     timescale one (whole blocks only). Much more than that, or
--     refreshed_at older than a few refresh intervals: the refresh job or policy is not
--     running (04_jobs.sql).
--   * apache edition: every roll-up is refreshed by Hindsight's `refresh_rollups` job.
--     timescale edition: events_*, pages_* and network_* are continuous aggregates (their
--     policies refresh them; an empty materialized_until: nothing materialized yet);
--     sessions_daily is Hindsight's on both.

\echo '== roll-ups refreshed by Hindsight (rollup_watermarks)'
SELECT rollup, materialized_until, now() - materialized_until AS materialized_lag,
       refreshed_at, now() - refreshed_at AS since_refresh
FROM rollup_watermarks
ORDER BY rollup;

SELECT current_setting('timescaledb.license', true) = 'timescale' AS is_tsl \gset
\if :is_tsl
\echo '== continuous aggregates (timescale edition)'
SELECT ca.user_view_name AS continuous_aggregate, w.materialized_until,
       now() - w.materialized_until AS materialized_lag, s.last_successful_finish AS last_refresh
FROM _timescaledb_catalog.continuous_agg ca
CROSS JOIN LATERAL (SELECT _timescaledb_functions.to_timestamp(
                        _timescaledb_functions.cagg_watermark(ca.mat_hypertable_id)) AS t) m
-- Nothing materialized yet: TimescaleDB's watermark is the earliest time there is (shown empty).
CROSS JOIN LATERAL (SELECT CASE WHEN m.t > '0001-01-01' THEN m.t END AS materialized_until) w
LEFT JOIN timescaledb_information.jobs j
       ON j.proc_name = 'policy_refresh_continuous_aggregate'
      AND (j.config->>'mat_hypertable_id')::int = ca.mat_hypertable_id
LEFT JOIN timescaledb_information.job_stats s ON s.job_id = j.job_id
ORDER BY 1;
\endif

\echo '== newest roll-up bucket vs newest raw event'
SELECT (SELECT max(bucket) FROM events_hourly) AS newest_hourly_bucket,
       (SELECT max("timestamp") FROM events) AS newest_event,
       (SELECT max(bucket) FROM sessions_daily) AS newest_sessions_day;
