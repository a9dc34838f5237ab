-- apache/0002: the network roll-up views on TimescaleDB's Apache edition (see 0021 for
-- what they hold and how a percentile is read off them).
--
-- As in apache/0001: each view = its store up to the watermark Hindsight's scheduler
-- moves (`refresh_rollups`, backend/hindsight/lifecycle/rollups.py) + the buckets after it
-- computed from the raw rows at query time, so the newest hour is always complete. The
-- daily one is built on the hourly one, the weekly one on the daily one. The same names and columns exist on the timescale
-- edition (sql/editions/timescale/0004).

CREATE VIEW network_hourly AS
SELECT bucket, account_id, host, method, url, duration_bucket, requests, failures, min_ms, max_ms
FROM network_hourly_store
WHERE bucket < hindsight_rollup_watermark('network_hourly')
UNION ALL
SELECT time_bucket(INTERVAL '1 hour', "timestamp") AS bucket, account_id, host,
       hindsight_network_method(event_data) AS method, hindsight_network_url(event_data) AS url,
       hindsight_duration_bucket(hindsight_network_duration(event_data)) AS duration_bucket,
       count(*) AS requests, count(*) FILTER (WHERE hindsight_network_failed(event_data)) AS failures,
       min(hindsight_network_duration(event_data)) AS min_ms,
       max(hindsight_network_duration(event_data)) AS max_ms
FROM events
WHERE "timestamp" >= hindsight_rollup_watermark('network_hourly')
  AND event_type = 'network' AND hindsight_network_duration(event_data) IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6;

CREATE VIEW network_daily AS
SELECT bucket, account_id, host, method, url, duration_bucket, requests, failures, min_ms, max_ms
FROM network_daily_store
WHERE bucket < hindsight_rollup_watermark('network_daily')
UNION ALL
SELECT time_bucket(INTERVAL '1 day', bucket) AS bucket, account_id, host, method, url, duration_bucket,
       sum(requests)::bigint AS requests, sum(failures)::bigint AS failures,
       min(min_ms) AS min_ms, max(max_ms) AS max_ms
FROM network_hourly
WHERE bucket >= hindsight_rollup_watermark('network_daily')
GROUP BY 1, 2, 3, 4, 5, 6;

CREATE VIEW network_weekly AS
SELECT bucket, account_id, host, method, url, duration_bucket, requests, failures, min_ms, max_ms
FROM network_weekly_store
WHERE bucket < hindsight_rollup_watermark('network_weekly')
UNION ALL
SELECT time_bucket(INTERVAL '7 days', bucket) AS bucket, account_id, host, method, url, duration_bucket,
       sum(requests)::bigint AS requests, sum(failures)::bigint AS failures,
       min(min_ms) AS min_ms, max(max_ms) AS max_ms
FROM network_daily
WHERE bucket >= hindsight_rollup_watermark('network_weekly')
GROUP BY 1, 2, 3, 4, 5, 6;
