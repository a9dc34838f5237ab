-- apache/0004: the weekly page roll-up's view (its store: sql/migrations/0037), as the
-- network one (apache/0002): the store up to the watermark that Hindsight's scheduler moves
-- (`refresh_rollups`, backend/hindsight/lifecycle/rollups.py PAGES_WEEKLY), then the weeks
-- after it computed from the daily view. The same name and columns exist on the timescale
-- edition (sql/editions/timescale/0007).
--
-- The newer weeks come through a function, not straight from the `pages_daily` view: a view
-- on that view would stop timescale/0001 (which drops it) on the way to the timescale
-- edition; a function's body is not a dependency. Planned as if written in place (a SQL
-- function of one SELECT is inlined).
CREATE FUNCTION hindsight_pages_weekly_after(since timestamptz)
    RETURNS TABLE (bucket timestamptz, account_id uuid, host text, path text, page_views bigint,
                   clicks bigint, errors bigint)
    LANGUAGE sql STABLE AS $$
SELECT time_bucket(INTERVAL '7 days', bucket), account_id, host, path,
       sum(page_views)::bigint, sum(clicks)::bigint, sum(errors)::bigint
FROM pages_daily
WHERE bucket >= since
GROUP BY 1, 2, 3, 4
$$;

CREATE VIEW pages_weekly AS
SELECT bucket, account_id, host, path, page_views, clicks, errors
FROM pages_weekly_store
WHERE bucket < hindsight_rollup_watermark('pages_weekly')
UNION ALL
SELECT * FROM hindsight_pages_weekly_after(hindsight_rollup_watermark('pages_weekly'));
