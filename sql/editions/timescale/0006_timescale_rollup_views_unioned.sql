-- timescale/0006: the event and page roll-up views (timescale/0001) without their GROUP BY:
-- the continuous aggregate's rows, then the archive's.
--
-- timescale/0001 summed the two parts per key inside each view, so that a key appeared
-- once. Every reader sums by its own keys anyway (hindsight/queries/traffic.py), and that
-- inner GROUP BY hashed every materialized row a query touched a second time: it was most of
-- the cost of a 90-day overview (at 3 M events, its top pages took 117 ms with it, 20 ms
-- without; issue 12). Now a key appears twice only when an hour or a day is split between
-- the aggregate and the archive (retention cut it in an apache-edition past); the sums are
-- the same. Same names, columns and types as before and as the apache edition's views.
CREATE OR REPLACE VIEW events_hourly AS
SELECT bucket, account_id, host, event_type, events FROM events_hourly_cagg
UNION ALL
SELECT bucket, account_id, host, event_type, events FROM events_hourly_store;

CREATE OR REPLACE VIEW pages_hourly AS
SELECT bucket, account_id, host, path, page_views, clicks, errors FROM pages_hourly_cagg
UNION ALL
SELECT bucket, account_id, host, path, page_views, clicks, errors FROM pages_hourly_store;

CREATE OR REPLACE VIEW events_daily AS
SELECT bucket, account_id, host, event_type, events::bigint AS events FROM events_daily_cagg
UNION ALL
SELECT bucket, account_id, host, event_type, events FROM events_daily_store;

CREATE OR REPLACE VIEW pages_daily AS
SELECT bucket, account_id, host, path, page_views::bigint AS page_views, clicks::bigint AS clicks,
       errors::bigint AS errors
FROM pages_daily_cagg
UNION ALL
SELECT bucket, account_id, host, path, page_views, clicks, errors FROM pages_daily_store;

-- Coming from the Apache edition: the functions its views read their old raw events
-- through (apache/0003) have no reader left.
DROP FUNCTION IF EXISTS hindsight_events_behind(timestamptz, timestamptz);
DROP FUNCTION IF EXISTS hindsight_pages_behind(timestamptz, timestamptz);
DROP FUNCTION IF EXISTS hindsight_network_behind(timestamptz, timestamptz);
