-- timescale/0004: the network roll-ups (sql/migrations/0021) as continuous aggregates on
-- TimescaleDB's timescale edition, like the event and page roll-ups of timescale/0001:
-- views `network_hourly`, `network_daily`, `network_weekly` = continuous aggregate
-- (real-time) + the *_store archive of what no raw event can recount any more. Same names
-- and columns as sql/editions/apache/0002.
--
-- The refresh and retention policies added here are held (paused) by `hindsight migrate`
-- until the first refresh (timescale/0005) has run, so they never race it.

-- Coming from the Apache edition: its views go, its stores become the archive.
DROP VIEW IF EXISTS network_weekly, network_daily, network_hourly;
DELETE FROM rollup_watermarks WHERE rollup IN ('network_hourly', 'network_daily', 'network_weekly');

-- An hour that still has raw network events is recounted by the aggregates below.
DELETE FROM network_hourly_store s
USING (SELECT DISTINCT account_id, host, time_bucket(INTERVAL '1 hour', "timestamp") AS bucket
       FROM events WHERE event_type = 'network') AS r
WHERE s.account_id = r.account_id AND s.host = r.host AND s.bucket = r.bucket;

DELETE FROM network_daily_store;
INSERT INTO network_daily_store (bucket, account_id, host, method, url, duration_bucket, requests,
                                 failures, min_ms, max_ms)
SELECT time_bucket(INTERVAL '1 day', bucket), account_id, host, method, url, duration_bucket,
       sum(requests), sum(failures), min(min_ms), max(max_ms)
FROM network_hourly_store
GROUP BY 1, 2, 3, 4, 5, 6;

DELETE FROM network_weekly_store;
INSERT INTO network_weekly_store (bucket, account_id, host, method, url, duration_bucket, requests,
                                  failures, min_ms, max_ms)
SELECT time_bucket(INTERVAL '7 days', bucket), account_id, host, method, url, duration_bucket,
       sum(requests), sum(failures), min(min_ms), max(max_ms)
FROM network_hourly_store
GROUP BY 1, 2, 3, 4, 5, 6;

CREATE MATERIALIZED VIEW network_hourly_cagg
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', "timestamp") AS bucket, account_id, host,
       hindsight_network_method(event_data) AS method, hindsight_network_url(event_data) AS url,
       hindsight_duration_bucket(hindsight_network_duration(event_data)) AS duration_bucket,
       count(*) AS requests, count(*) FILTER (WHERE hindsight_network_failed(event_data)) AS failures,
       min(hindsight_network_duration(event_data)) AS min_ms,
       max(hindsight_network_duration(event_data)) AS max_ms
FROM events
WHERE event_type = 'network' AND hindsight_network_duration(event_data) IS NOT NULL
GROUP BY time_bucket(INTERVAL '1 hour', "timestamp"), account_id, host, hindsight_network_method(event_data),
         hindsight_network_url(event_data), hindsight_duration_bucket(hindsight_network_duration(event_data))
WITH NO DATA;

CREATE MATERIALIZED VIEW network_daily_cagg
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 day', bucket) AS bucket, account_id, host, method, url, duration_bucket,
       sum(requests) AS requests, sum(failures) AS failures, min(min_ms) AS min_ms, max(max_ms) AS max_ms
FROM network_hourly_cagg
GROUP BY time_bucket(INTERVAL '1 day', bucket), account_id, host, method, url, duration_bucket
WITH NO DATA;

CREATE MATERIALIZED VIEW network_weekly_cagg
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '7 days', bucket) AS bucket, account_id, host, method, url, duration_bucket,
       sum(requests) AS requests, sum(failures) AS failures, min(min_ms) AS min_ms, max(max_ms) AS max_ms
FROM network_daily_cagg
GROUP BY time_bucket(INTERVAL '7 days', bucket), account_id, host, method, url, duration_bucket
WITH NO DATA;

-- The same offsets and schedules as the other roll-ups (timescale/0001); the weekly one
-- re-reads the last 3 weeks (the daily one's 4 days, rounded out to whole weeks).
SELECT add_continuous_aggregate_policy('network_hourly_cagg', start_offset => INTERVAL '2 days',
       end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '5 minutes', if_not_exists => true);
SELECT add_continuous_aggregate_policy('network_daily_cagg', start_offset => INTERVAL '4 days',
       end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '1 hour', if_not_exists => true);
SELECT add_continuous_aggregate_policy('network_weekly_cagg', start_offset => INTERVAL '21 days',
       end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '1 hour', if_not_exists => true);
SELECT add_retention_policy('network_hourly_cagg', drop_after => INTERVAL '730 days', if_not_exists => true);
SELECT add_retention_policy('network_daily_cagg', drop_after => INTERVAL '730 days', if_not_exists => true);
SELECT add_retention_policy('network_weekly_cagg', drop_after => INTERVAL '730 days', if_not_exists => true);

-- The views the dashboard reads: the continuous aggregate's rows, then the archive's. A key
-- can appear in both (an hour or day that retention cut in an apache past); readers sum by
-- their own keys, as every query in hindsight/queries/traffic.py does (timescale/0006 says why
-- the views do not group themselves).
CREATE VIEW network_hourly AS
SELECT bucket, account_id, host, method, url, duration_bucket, requests, failures, min_ms, max_ms
FROM network_hourly_cagg
UNION ALL
SELECT bucket, account_id, host, method, url, duration_bucket, requests, failures, min_ms, max_ms
FROM network_hourly_store;

CREATE VIEW network_daily AS
SELECT bucket, account_id, host, method, url, duration_bucket, requests::bigint AS requests,
       failures::bigint AS failures, min_ms, max_ms
FROM network_daily_cagg
UNION ALL
SELECT bucket, account_id, host, method, url, duration_bucket, requests, failures, min_ms, max_ms
FROM network_daily_store;

CREATE VIEW network_weekly AS
SELECT bucket, account_id, host, method, url, duration_bucket, requests::bigint AS requests,
       failures::bigint AS failures, min_ms, max_ms
FROM network_weekly_cagg
UNION ALL
SELECT bucket, account_id, host, method, url, duration_bucket, requests, failures, min_ms, max_ms
FROM network_weekly_store;
