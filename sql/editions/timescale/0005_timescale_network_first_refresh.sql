-- migrate: no-transaction
-- timescale/0005: materialize the network aggregates once, over all raw events (why: see
-- timescale/0002). Their policies (timescale/0004) are held by `hindsight migrate` until
-- this file has run, so no background refresh runs beside these. Hourly, daily, weekly.
CALL refresh_continuous_aggregate('network_hourly_cagg', NULL, now() - INTERVAL '1 hour');
CALL refresh_continuous_aggregate('network_daily_cagg', NULL, now() - INTERVAL '1 hour');
CALL refresh_continuous_aggregate('network_weekly_cagg', NULL, now() - INTERVAL '1 hour');
