-- 0031: weekly visitor roll-ups (issue 12, item 4: the overview under 100 ms at 10 M events).
--
-- Unique visitors of a range are the union of its buckets' HyperLogLog sketches (0023), and
-- that union is most of what the overview's 30- and 90-day ranges cost: merging a sketch
-- costs the same whatever it counts, and a 90-day range merged about 90 daily sketches per
-- value (per page, per referrer, browser, ...). These two stores hold the same rows per week
-- (Monday 00:00 UTC, as time_bucket('7 days', ...) cuts them, like network_weekly_store,
-- 0021), merged from the daily roll-ups by Hindsight's scheduler on both editions
-- (hindsight/lifecycle/rollups.py: VISITS_WEEKLY, PAGE_VISITS_WEEKLY; a refresh re-reads the
-- last 3 weeks, which holds the daily roll-ups' 4 days of late events). Readers
-- (hindsight/queries/visitors.py) take a range's whole weeks from here, the days around them
-- from the daily stores and the hours at either end from the hourly ones: a 90-day range
-- merges about 13 + 12 sketches per value instead of 90. Same columns, keys and sketch
-- parameters as the daily stores, so the sums and the sketches are the same.
-- No views: nothing reads them but the stores' readers, which cut at the watermarks
-- themselves. Empty until the scheduler's first refresh (a reader then uses the daily rows).

CREATE TABLE visits_weekly_store (LIKE visits_daily_store INCLUDING ALL);
SELECT create_hypertable('visits_weekly_store', 'bucket', chunk_time_interval => INTERVAL '365 days');

CREATE TABLE page_visits_weekly_store (LIKE page_visits_daily_store INCLUDING ALL);
SELECT create_hypertable('page_visits_weekly_store', 'bucket', chunk_time_interval => INTERVAL '365 days');
