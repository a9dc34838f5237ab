-- migrate: no-transaction
-- timescale/0002: materialize the continuous aggregates once, over all raw events.
--
-- The refresh policies only re-read the last days; without this first refresh the
-- older raw events (up to the retention, 30 days by default) would never be
-- materialized, and would vanish from the roll-ups when retention drops them.
-- refresh_continuous_aggregate cannot run inside a transaction block, hence the
-- marker on the first line: `hindsight migrate` runs these statements one by one
-- (each is safe to repeat if the file is interrupted). Hourly before daily.
CALL refresh_continuous_aggregate('events_hourly_cagg', NULL, now() - INTERVAL '1 hour');
CALL refresh_continuous_aggregate('pages_hourly_cagg', NULL, now() - INTERVAL '1 hour');
CALL refresh_continuous_aggregate('events_daily_cagg', NULL, now() - INTERVAL '1 hour');
CALL refresh_continuous_aggregate('pages_daily_cagg', NULL, now() - INTERVAL '1 hour');
