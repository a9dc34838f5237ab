-- timescale/0008: the 28-day network roll-up (sql/migrations/0038) as a continuous aggregate
-- on the weekly one (timescale/0004), like network_weekly on network_daily: the view
-- `network_4weekly` = continuous aggregate (real-time) + the `network_4weekly_store` archive
-- of what no raw event can recount any more. Same name and columns as
-- sql/editions/apache/0005.
--
-- Its policies are held (paused) by `hindsight migrate` until its first refresh
-- (timescale/0009) has run, so they never race it.

-- Coming from the Apache edition: its view and the function it read weeks through go, its
-- store becomes the archive (the 28-day sums of the hourly archive, as the weekly archive
-- is: timescale/0004).
DROP VIEW IF EXISTS network_4weekly;
DROP FUNCTION IF EXISTS hindsight_network_days_since(timestamptz);
DELETE FROM rollup_watermarks WHERE rollup = 'network_4weekly';
DELETE FROM network_4weekly_store;
INSERT INTO network_4weekly_store (bucket, account_id, host, method, url, duration_bucket, requests,
                                   failures, min_ms, max_ms)
SELECT time_bucket(INTERVAL '28 days', bucket), account_id, host, method, url, duration_bucket,
       sum(requests), sum(failures), min(min_ms), max(max_ms)
FROM network_hourly_store
GROUP BY 1, 2, 3, 4, 5, 6;

CREATE MATERIALIZED VIEW network_4weekly_cagg
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '28 days', bucket) AS bucket, account_id, host, method, url, duration_bucket,
       sum(requests) AS requests, sum(failures) AS failures, min(min_ms) AS min_ms, max(max_ms) AS max_ms
FROM network_weekly_cagg
GROUP BY time_bucket(INTERVAL '28 days', bucket), account_id, host, method, url, duration_bucket
WITH NO DATA;

-- Re-reads the last 63 days every hour: the weekly aggregate re-reads its last 3 weeks, so a
-- block's weeks may change until 3 weeks after it ends (49 days after it starts); a policy's
-- window must also hold two whole buckets. Roll-ups are kept 2 years.
SELECT add_continuous_aggregate_policy('network_4weekly_cagg', start_offset => INTERVAL '63 days',
       end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '1 hour', if_not_exists => true);
SELECT add_retention_policy('network_4weekly_cagg', drop_after => INTERVAL '730 days', if_not_exists => true);

-- The continuous aggregate's rows, then the archive's (readers sum by their own keys:
-- timescale/0006).
CREATE VIEW network_4weekly AS
SELECT bucket, account_id, host, method, url, duration_bucket, requests::bigint AS requests,
       failures::bigint AS failures, min_ms, max_ms
FROM network_4weekly_cagg
UNION ALL
SELECT bucket, account_id, host, method, url, duration_bucket, requests, failures, min_ms, max_ms
FROM network_4weekly_store;
