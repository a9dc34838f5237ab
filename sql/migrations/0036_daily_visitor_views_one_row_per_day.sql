-- 0036: the daily visitor views hold one row per day and key again.
--
-- Since the visitor roll-ups keep today so far as a partial row (0031 and
-- hindsight.lifecycle.rollups: `partial`), `visits_daily_store` and
-- `page_visits_daily_store` hold a row for today while their watermark is inside today
-- (e.g. 14:00). The views of 0023 took the store below the watermark (today's partial row
-- too) and computed the buckets from the watermark on (today from 14:00), so a DBA's query
-- of `visits_daily` saw today twice for each key, each with part of its visitors. Now the
-- store gives the whole days before the watermark's day, and that day is computed from its
-- start (the hourly view holds its hours). Hindsight's own readers read the stores with
-- the watermarks as values (hindsight.queries.rollup_rows) and are not affected.
--
-- For a DBA: the same columns as before, one row per (bucket, key):
--   SELECT bucket, hll_cardinality(visitors) FROM visits_daily
--   WHERE account_id = '...' AND dimension = 'all' ORDER BY bucket DESC LIMIT 7;

CREATE OR REPLACE VIEW visits_daily AS
SELECT bucket, account_id, host, dimension, value, sessions, visitors, bounces, duration_s, page_views
FROM visits_daily_store
WHERE bucket < time_bucket(INTERVAL '1 day', hindsight_rollup_watermark('visits_daily'))
UNION ALL
SELECT time_bucket(INTERVAL '1 day', bucket), account_id, host, dimension, value, sum(sessions)::bigint,
       hll_union_agg(visitors), sum(bounces)::bigint, sum(duration_s), sum(page_views)::bigint
FROM visits_hourly
WHERE bucket >= time_bucket(INTERVAL '1 day', hindsight_rollup_watermark('visits_daily'))
GROUP BY 1, 2, 3, 4, 5;

CREATE OR REPLACE VIEW page_visits_daily AS
SELECT bucket, account_id, host, path, page_views, visitors, exits, time_on_page_s
FROM page_visits_daily_store
WHERE bucket < time_bucket(INTERVAL '1 day', hindsight_rollup_watermark('page_visits_daily'))
UNION ALL
SELECT time_bucket(INTERVAL '1 day', bucket), account_id, host, path, sum(page_views)::bigint,
       hll_union_agg(visitors), sum(exits)::bigint, sum(time_on_page_s)
FROM page_visits_hourly
WHERE bucket >= time_bucket(INTERVAL '1 day', hindsight_rollup_watermark('page_visits_daily'))
GROUP BY 1, 2, 3, 4;
