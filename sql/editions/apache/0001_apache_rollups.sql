-- apache/0001: the roll-up views on TimescaleDB's Apache edition.
--
-- Applied by `hindsight migrate` (after sql/migrations/) when `SHOW timescaledb.license`
-- says 'apache'. This edition has no continuous aggregates, compression or policy
-- jobs, so Hindsight's scheduler does their work (backend/hindsight/lifecycle/):
--   * it refreshes each *_store table from a watermark, re-reading the last days of
--     source rows so late events are counted, replacing buckets (never adding to them),
--     so an event is never counted twice;
--   * it drops raw events past their retention with drop_chunks.
-- Each view below = the store up to the watermark + the buckets after it computed from
-- the source rows at query time, so the newest hour is always complete. The same view
-- names exist on the timescale edition (sql/editions/timescale/) with the same columns.

CREATE VIEW events_hourly AS
SELECT bucket, account_id, host, event_type, events
FROM events_hourly_store
WHERE bucket < hindsight_rollup_watermark('events_hourly')
UNION ALL
SELECT time_bucket(INTERVAL '1 hour', "timestamp") AS bucket, account_id, host, event_type,
       count(*) AS events
FROM events
WHERE "timestamp" >= hindsight_rollup_watermark('events_hourly')
GROUP BY 1, 2, 3, 4;

CREATE VIEW pages_hourly AS
SELECT bucket, account_id, host, path, page_views, clicks, errors
FROM pages_hourly_store
WHERE bucket < hindsight_rollup_watermark('pages_hourly')
UNION ALL
SELECT time_bucket(INTERVAL '1 hour', "timestamp") AS bucket, account_id, host,
       hindsight_url_path(page_url) AS path,
       count(*) FILTER (WHERE event_type = 'page_view') AS page_views,
       count(*) FILTER (WHERE event_type = 'click') AS clicks,
       count(*) FILTER (WHERE event_type = 'error') AS errors
FROM events
WHERE "timestamp" >= hindsight_rollup_watermark('pages_hourly')
  AND page_url IS NOT NULL AND event_type IN ('page_view', 'click', 'error')
GROUP BY 1, 2, 3, 4;

-- The daily roll-ups are built on the hourly ones.
CREATE VIEW events_daily AS
SELECT bucket, account_id, host, event_type, events
FROM events_daily_store
WHERE bucket < hindsight_rollup_watermark('events_daily')
UNION ALL
SELECT time_bucket(INTERVAL '1 day', bucket) AS bucket, account_id, host, event_type,
       sum(events)::bigint AS events
FROM events_hourly
WHERE bucket >= hindsight_rollup_watermark('events_daily')
GROUP BY 1, 2, 3, 4;

CREATE VIEW pages_daily AS
SELECT bucket, account_id, host, path, page_views, clicks, errors
FROM pages_daily_store
WHERE bucket < hindsight_rollup_watermark('pages_daily')
UNION ALL
SELECT time_bucket(INTERVAL '1 day', bucket) AS bucket, account_id, host, path,
       sum(page_views)::bigint AS page_views, sum(clicks)::bigint AS clicks,
       sum(errors)::bigint AS errors
FROM pages_hourly
WHERE bucket >= hindsight_rollup_watermark('pages_daily')
GROUP BY 1, 2, 3, 4;
