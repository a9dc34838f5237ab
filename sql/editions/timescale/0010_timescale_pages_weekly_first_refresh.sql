-- migrate: no-transaction
-- timescale/0010: materialize the weekly page aggregate (timescale/0007) once, over all the
-- daily one holds (why: see timescale/0002). Its policy is held by `hindsight migrate` until
-- this file has run, so no background refresh runs beside it. (0008 and 0009 are other
-- roll-ups' files: every held policy is resumed once all of them have run.)
CALL refresh_continuous_aggregate('pages_weekly_cagg', NULL, now() - INTERVAL '1 hour');
