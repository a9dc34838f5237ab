-- timescale/0001: compression, continuous aggregates and policies on TimescaleDB's
-- timescale (TSL) edition — what the official timescale/timescaledb image runs.
--
-- Applied by `hindsight migrate` (after sql/migrations/) when `SHOW timescaledb.license`
-- says 'timescale': on a new database, and on a database that ran the Apache edition
-- until now (its views are replaced here; the history in its *_store tables is kept).
-- The view names and columns are those of sql/editions/apache/.
--
-- The offsets below are the ones the Apache edition's scheduler uses
-- (backend/hindsight/lifecycle/rollups.py): hourly roll-ups re-read the last 2 days of
-- events, daily ones the last 4 days; buckets not over an hour ago (the current hour,
-- today) are computed at query time.
-- The retention policies' drop_after is set to the HINDSIGHT_*_RETENTION_DAYS settings
-- by the lifecycle job (backend/hindsight/lifecycle/retention.py); these are defaults.

-- Compression: events chunks older than 7 days, one segment per session (a replay
-- reads one session), ordered by time within it.
ALTER TABLE events SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'session_id',
    timescaledb.compress_orderby = '"timestamp", seq'
);
SELECT add_compression_policy('events', compress_after => INTERVAL '7 days', if_not_exists => true);

-- Raw events: 30 days by default.
SELECT add_retention_policy('events', drop_after => INTERVAL '30 days', if_not_exists => true);

-- Coming from the Apache edition: its views go, and its stores become the archive
-- of what no raw event can recount any more.
DROP VIEW IF EXISTS events_daily, pages_daily, events_hourly, pages_hourly;
DELETE FROM rollup_watermarks
WHERE rollup IN ('events_hourly', 'pages_hourly', 'events_daily', 'pages_daily');

-- An hour that still has raw events is recounted by the continuous aggregates below:
-- take it out of the archive so nothing is counted twice. (Retention deletes whole
-- hours, so an hour's raw events are either all there or all gone.)
DELETE FROM events_hourly_store s
USING (SELECT DISTINCT account_id, host, time_bucket(INTERVAL '1 hour', "timestamp") AS bucket
       FROM events) AS r
WHERE s.account_id = r.account_id AND s.host = r.host AND s.bucket = r.bucket;

DELETE FROM pages_hourly_store s
USING (SELECT DISTINCT account_id, host, time_bucket(INTERVAL '1 hour', "timestamp") AS bucket
       FROM events) AS r
WHERE s.account_id = r.account_id AND s.host = r.host AND s.bucket = r.bucket;

-- The daily archive is the sum of the hourly archive, so the two never disagree.
DELETE FROM events_daily_store;
INSERT INTO events_daily_store (bucket, account_id, host, event_type, events)
SELECT time_bucket(INTERVAL '1 day', bucket), account_id, host, event_type, sum(events)
FROM events_hourly_store
GROUP BY 1, 2, 3, 4;

DELETE FROM pages_daily_store;
INSERT INTO pages_daily_store (bucket, account_id, host, path, page_views, clicks, errors)
SELECT time_bucket(INTERVAL '1 day', bucket), account_id, host, path,
       sum(page_views), sum(clicks), sum(errors)
FROM pages_hourly_store
GROUP BY 1, 2, 3, 4;

-- Continuous aggregates, created empty (their first refresh needs its own
-- transactions: timescale/0002), with real-time aggregation on.
CREATE MATERIALIZED VIEW events_hourly_cagg
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', "timestamp") AS bucket, account_id, host, event_type,
       count(*) AS events
FROM events
GROUP BY time_bucket(INTERVAL '1 hour', "timestamp"), account_id, host, event_type
WITH NO DATA;

CREATE MATERIALIZED VIEW pages_hourly_cagg
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 hour', "timestamp") AS bucket, account_id, host,
       hindsight_url_path(page_url) AS path,
       count(*) FILTER (WHERE event_type = 'page_view') AS page_views,
       count(*) FILTER (WHERE event_type = 'click') AS clicks,
       count(*) FILTER (WHERE event_type = 'error') AS errors
FROM events
WHERE page_url IS NOT NULL AND event_type IN ('page_view', 'click', 'error')
GROUP BY time_bucket(INTERVAL '1 hour', "timestamp"), account_id, host, hindsight_url_path(page_url)
WITH NO DATA;

-- Daily on top of hourly (hierarchical continuous aggregates).
CREATE MATERIALIZED VIEW events_daily_cagg
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 day', bucket) AS bucket, account_id, host, event_type,
       sum(events) AS events
FROM events_hourly_cagg
GROUP BY time_bucket(INTERVAL '1 day', bucket), account_id, host, event_type
WITH NO DATA;

CREATE MATERIALIZED VIEW pages_daily_cagg
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(INTERVAL '1 day', bucket) AS bucket, account_id, host, path,
       sum(page_views) AS page_views, sum(clicks) AS clicks, sum(errors) AS errors
FROM pages_hourly_cagg
GROUP BY time_bucket(INTERVAL '1 day', bucket), account_id, host, path
WITH NO DATA;

-- Refresh policies: hourly ones every 5 minutes, daily ones every hour; the newest
-- buckets come from real-time aggregation, so readers never wait for a refresh.
SELECT add_continuous_aggregate_policy('events_hourly_cagg', start_offset => INTERVAL '2 days',
       end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '5 minutes', if_not_exists => true);
SELECT add_continuous_aggregate_policy('pages_hourly_cagg', start_offset => INTERVAL '2 days',
       end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '5 minutes', if_not_exists => true);
SELECT add_continuous_aggregate_policy('events_daily_cagg', start_offset => INTERVAL '4 days',
       end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '1 hour', if_not_exists => true);
SELECT add_continuous_aggregate_policy('pages_daily_cagg', start_offset => INTERVAL '4 days',
       end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '1 hour', if_not_exists => true);

-- Roll-ups: 2 years by default.
SELECT add_retention_policy('events_hourly_cagg', drop_after => INTERVAL '730 days', if_not_exists => true);
SELECT add_retention_policy('pages_hourly_cagg', drop_after => INTERVAL '730 days', if_not_exists => true);
SELECT add_retention_policy('events_daily_cagg', drop_after => INTERVAL '730 days', if_not_exists => true);
SELECT add_retention_policy('pages_daily_cagg', drop_after => INTERVAL '730 days', if_not_exists => true);

-- The views the dashboard reads: the continuous aggregate + the archive, one row per
-- key (a day can be split between the two when an account's retention cut it).
CREATE VIEW events_hourly AS
SELECT bucket, account_id, host, event_type, sum(events)::bigint AS events
FROM (SELECT bucket, account_id, host, event_type, events FROM events_hourly_cagg
      UNION ALL
      SELECT bucket, account_id, host, event_type, events FROM events_hourly_store) AS u
GROUP BY bucket, account_id, host, event_type;

CREATE VIEW pages_hourly AS
SELECT bucket, account_id, host, path, sum(page_views)::bigint AS page_views,
       sum(clicks)::bigint AS clicks, sum(errors)::bigint AS errors
FROM (SELECT bucket, account_id, host, path, page_views, clicks, errors FROM pages_hourly_cagg
      UNION ALL
      SELECT bucket, account_id, host, path, page_views, clicks, errors FROM pages_hourly_store) AS u
GROUP BY bucket, account_id, host, path;

CREATE VIEW events_daily AS
SELECT bucket, account_id, host, event_type, sum(events)::bigint AS events
FROM (SELECT bucket, account_id, host, event_type, events FROM events_daily_cagg
      UNION ALL
      SELECT bucket, account_id, host, event_type, events FROM events_daily_store) AS u
GROUP BY bucket, account_id, host, event_type;

CREATE VIEW pages_daily AS
SELECT bucket, account_id, host, path, sum(page_views)::bigint AS page_views,
       sum(clicks)::bigint AS clicks, sum(errors)::bigint AS errors
FROM (SELECT bucket, account_id, host, path, page_views, clicks, errors FROM pages_daily_cagg
      UNION ALL
      SELECT bucket, account_id, host, path, page_views, clicks, errors FROM pages_daily_store) AS u
GROUP BY bucket, account_id, host, path;
