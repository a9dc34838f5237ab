-- migrate: no-transaction
-- timescale/0009: materialize the 28-day network aggregate (timescale/0008) once, over all
-- the weekly one holds (why: see timescale/0002). Its policy is held by `hindsight migrate`
-- until this file has run, so no background refresh runs beside it.
CALL refresh_continuous_aggregate('network_4weekly_cagg', NULL, now() - INTERVAL '1 hour');
