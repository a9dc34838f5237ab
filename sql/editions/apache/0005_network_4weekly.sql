-- apache/0005: the 28-day network roll-up's view (its store: sql/migrations/0038), as the
-- other network views (apache/0002): the store up to the watermark that Hindsight's
-- scheduler moves (`refresh_rollups`, backend/hindsight/lifecycle/rollups.py
-- NETWORK_4WEEKLY), then the days after it computed from the daily view. The same name and
-- columns exist on the timescale edition (sql/editions/timescale/0008).
--
-- The store also holds the current block so far (its weeks and days up to the daily
-- roll-up's watermark, a whole day; replaced by the next refresh): a key of the current block
-- can have two rows here, the store's and the computed one (readers sum by their keys, as
-- on the timescale edition: timescale/0006).
--
-- The daily rows come through a function, not the view itself: a view that names
-- network_daily would stop timescale/0004 from dropping it (DROP VIEW without CASCADE)
-- when this database moves to the timescale edition; timescale/0008 drops both.
CREATE FUNCTION hindsight_network_days_since(since timestamptz)
    RETURNS TABLE (bucket timestamptz, account_id uuid, host text, method text, url text,
                   duration_bucket smallint, requests bigint, failures bigint, min_ms integer,
                   max_ms integer)
    LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN QUERY
    SELECT d.bucket, d.account_id, d.host, d.method, d.url, d.duration_bucket, d.requests, d.failures,
           d.min_ms, d.max_ms
    FROM network_daily d
    WHERE d.bucket >= since;
END $$;

CREATE VIEW network_4weekly AS
SELECT bucket, account_id, host, method, url, duration_bucket, requests, failures, min_ms, max_ms
FROM network_4weekly_store
WHERE bucket < hindsight_rollup_watermark('network_4weekly')
UNION ALL
SELECT time_bucket(INTERVAL '28 days', bucket) AS bucket, account_id, host, method, url, duration_bucket,
       sum(requests)::bigint AS requests, sum(failures)::bigint AS failures,
       min(min_ms) AS min_ms, max(max_ms) AS max_ms
FROM hindsight_network_days_since(hindsight_rollup_watermark('network_4weekly'))
GROUP BY 1, 2, 3, 4, 5, 6;
