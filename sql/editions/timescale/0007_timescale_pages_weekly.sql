-- timescale/0007: the weekly page roll-up (sql/migrations/0037) as a continuous aggregate
-- on the daily one (timescale/0001), like network_weekly (timescale/0004): the view
-- `pages_weekly` = continuous aggregate (real-time) + the `pages_weekly_store` archive of
-- what no raw event can recount any more. Same name and columns as sql/editions/apache/0004.
--
-- Its policies are held (paused) by `hindsight migrate` until its first refresh
-- (timescale/0010) has run, so they never race it.

-- Coming from the Apache edition: its view goes, its store becomes the archive (the weekly
-- sums of the hourly archive that timescale/0001 kept).
DROP VIEW IF EXISTS pages_weekly;
DROP FUNCTION IF EXISTS hindsight_pages_weekly_after(timestamptz);
DELETE FROM rollup_watermarks WHERE rollup = 'pages_weekly';
DELETE FROM pages_weekly_store;
INSERT INTO pages_weekly_store (bucket, account_id, host, path, page_views, clicks, errors)
SELECT time_bucket(INTERVAL '7 days', bucket), account_id, host, path,
       sum(page_views), sum(clicks), sum(errors)
FROM pages_hourly_store
GROUP BY 1, 2, 3, 4;

CREATE MATERIALIZED VIEW pages_weekly_cagg
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '7 days', bucket) AS bucket, account_id, host, path,
       sum(page_views) AS page_views, sum(clicks) AS clicks, sum(errors) AS errors
FROM pages_daily_cagg
GROUP BY time_bucket(INTERVAL '7 days', bucket), account_id, host, path
WITH NO DATA;

-- As network_weekly: re-reads the last 3 weeks (the daily one's 4 days, rounded out to
-- whole weeks), every hour; roll-ups are kept 2 years.
SELECT add_continuous_aggregate_policy('pages_weekly_cagg', start_offset => INTERVAL '21 days',
       end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '1 hour', if_not_exists => true);
SELECT add_retention_policy('pages_weekly_cagg', drop_after => INTERVAL '730 days', if_not_exists => true);

-- The continuous aggregate's rows, then the archive's (readers sum by their own keys:
-- timescale/0006).
CREATE VIEW pages_weekly AS
SELECT bucket, account_id, host, path, page_views::bigint AS page_views, clicks::bigint AS clicks,
       errors::bigint AS errors
FROM pages_weekly_cagg
UNION ALL
SELECT bucket, account_id, host, path, page_views, clicks, errors FROM pages_weekly_store;
