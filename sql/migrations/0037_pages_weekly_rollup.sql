-- 0037: a weekly page roll-up, so that long ranges read weeks instead of days.
--
-- The overview's page lists (the most viewed pages, the pages with the most errors) summed
-- one row per page and day: about 27,000 rows for 90 days at 10 M events, the largest read
-- of the page's first half (issue 12: every overview range under 100 ms). With weekly rows
-- a 90-day range reads 12-13 weeks, the days around them and the hours at either end
-- (about 8,000 rows), as the network and visitor roll-ups already do
-- (hindsight.queries.rollup_rows).
--
-- `pages_weekly_store` has the columns and key of `pages_daily_store`. Weeks start on Monday
-- 00:00 UTC, as time_bucket('7 days', ...) cuts them. What fills it is the edition's:
--   * apache edition (editions/apache/0004): Hindsight's `refresh_rollups` job, from the
--     daily roll-up, behind a view `pages_weekly` (store up to its watermark + the newer
--     weeks computed from `pages_daily`);
--   * timescale edition (editions/timescale/0007): a continuous aggregate on the daily one,
--     and this table is the archive of weeks from an apache past, as the other stores.
--
-- For a DBA: an account's views per week.
--   SELECT bucket, sum(page_views) FROM pages_weekly WHERE account_id = '...' GROUP BY 1 ORDER BY 1;
CREATE TABLE pages_weekly_store (
    bucket               timestamptz NOT NULL,
    account_id           uuid NOT NULL,
    host                 text NOT NULL,
    path                 text NOT NULL,
    page_views           bigint NOT NULL,
    clicks               bigint NOT NULL,
    errors               bigint NOT NULL,
    PRIMARY KEY (account_id, bucket, host, path)
);
SELECT create_hypertable('pages_weekly_store', 'bucket', chunk_time_interval => INTERVAL '365 days');
