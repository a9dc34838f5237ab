-- apache/0003: the roll-up views' raw tails planned for the recent chunks only.
--
-- Each view of apache/0001 and apache/0002 is its store up to a watermark + the raw events
-- after it: `"timestamp" >= hindsight_rollup_watermark(...)`. That function is STABLE, so
-- PostgreSQL cannot use its value when it plans, and it planned the raw part for every raw
-- chunk of the query's range (a chunk a day, nested once more for each daily view): 75 ms of
-- planning for the overview's 30-day network query at 10 M events, more than its run
-- (issue 12). The raw part is now two:
--   * the events since the watermark that are at most 3 days old: `"timestamp" >= now() -
--     INTERVAL '3 days'` is one of the forms TimescaleDB turns into a constant when it plans
--     (Apache-licensed, so on this edition too), so only the last 3-4 chunks are planned;
--   * the events since the watermark that are older than that, which exist only when the
--     refresh job has not run for 3 days: a function (hindsight_*_behind) runs that query
--     with both times as values, so it is planned for exactly its chunks, and when the job
--     runs it reads nothing.
-- Together they are the events since the watermark, as before. (When the job is 3 days
-- behind, the hour that contains "3 days ago" has a row from each part: readers sum.)

CREATE FUNCTION hindsight_events_behind(since timestamptz, until timestamptz)
    RETURNS TABLE (bucket timestamptz, account_id uuid, host text, event_type text, events bigint)
    LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF since >= until THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE format(
        'SELECT time_bucket(INTERVAL ''1 hour'', "timestamp"), account_id, host, event_type, count(*)
         FROM events WHERE "timestamp" >= %L AND "timestamp" < %L
         GROUP BY 1, 2, 3, 4', since, until);
END $$;

CREATE FUNCTION hindsight_pages_behind(since timestamptz, until timestamptz)
    RETURNS TABLE (bucket timestamptz, account_id uuid, host text, path text, page_views bigint,
                   clicks bigint, errors bigint)
    LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF since >= until THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE format(
        'SELECT time_bucket(INTERVAL ''1 hour'', "timestamp"), account_id, host, hindsight_url_path(page_url),
                count(*) FILTER (WHERE event_type = ''page_view''), count(*) FILTER (WHERE event_type = ''click''),
                count(*) FILTER (WHERE event_type = ''error'')
         FROM events
         WHERE "timestamp" >= %L AND "timestamp" < %L
           AND page_url IS NOT NULL AND event_type IN (''page_view'', ''click'', ''error'')
         GROUP BY 1, 2, 3, 4', since, until);
END $$;

CREATE FUNCTION hindsight_network_behind(since timestamptz, until timestamptz)
    RETURNS TABLE (bucket timestamptz, account_id uuid, host text, method text, url text,
                   duration_bucket smallint, requests bigint, failures bigint, min_ms integer,
                   max_ms integer)
    LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF since >= until THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE format(
        'SELECT time_bucket(INTERVAL ''1 hour'', "timestamp"), account_id, host,
                hindsight_network_method(event_data), hindsight_network_url(event_data),
                hindsight_duration_bucket(hindsight_network_duration(event_data)),
                count(*), count(*) FILTER (WHERE hindsight_network_failed(event_data)),
                min(hindsight_network_duration(event_data)), max(hindsight_network_duration(event_data))
         FROM events
         WHERE "timestamp" >= %L AND "timestamp" < %L
           AND event_type = ''network'' AND hindsight_network_duration(event_data) IS NOT NULL
         GROUP BY 1, 2, 3, 4, 5, 6', since, until);
END $$;

CREATE OR REPLACE VIEW events_hourly AS
SELECT bucket, account_id, host, event_type, events
FROM events_hourly_store
WHERE bucket < hindsight_rollup_watermark('events_hourly')
UNION ALL
SELECT time_bucket(INTERVAL '1 hour', "timestamp") AS bucket, account_id, host, event_type,
       count(*) AS events
FROM events
WHERE "timestamp" >= hindsight_rollup_watermark('events_hourly')
  AND "timestamp" >= now() - INTERVAL '3 days'
GROUP BY 1, 2, 3, 4
UNION ALL
SELECT bucket, account_id, host, event_type, events
FROM hindsight_events_behind(hindsight_rollup_watermark('events_hourly'), now() - INTERVAL '3 days');

CREATE OR REPLACE VIEW pages_hourly AS
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
  AND "timestamp" >= now() - INTERVAL '3 days'
  AND page_url IS NOT NULL AND event_type IN ('page_view', 'click', 'error')
GROUP BY 1, 2, 3, 4
UNION ALL
SELECT bucket, account_id, host, path, page_views, clicks, errors
FROM hindsight_pages_behind(hindsight_rollup_watermark('pages_hourly'), now() - INTERVAL '3 days');

CREATE OR REPLACE VIEW network_hourly AS
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
  AND "timestamp" >= now() - INTERVAL '3 days'
  AND event_type = 'network' AND hindsight_network_duration(event_data) IS NOT NULL
GROUP BY 1, 2, 3, 4, 5, 6
UNION ALL
SELECT bucket, account_id, host, method, url, duration_bucket, requests, failures, min_ms, max_ms
FROM hindsight_network_behind(hindsight_rollup_watermark('network_hourly'), now() - INTERVAL '3 days');
