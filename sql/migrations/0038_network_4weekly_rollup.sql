-- 0038: a 28-day network roll-up, and the network functions a reader can inline.
--
-- The overview's slowest network endpoints at 90 days merged ~25,000 histogram rows (12-13
-- weeks of ~1,500 endpoint x duration-bucket rows each, the days and hours around them) at
-- 10 M events (issue 12: every overview range under 100 ms). A 28-day bucket holds ~2,200
-- such rows: whole 28-day blocks of a range are read from this roll-up, the weeks around
-- them from the weekly one (hindsight.queries.rollup_rows, traffic.slowest_endpoints).
--
--   network_4weekly_store   the columns and key of network_weekly_store (0021), per 28 days
--
-- Blocks of 28 days start on Monday 2000-01-03 00:00 UTC, time_bucket's default origin, the
-- one weeks are cut from: a block is exactly 4 weekly buckets. What fills it is the
-- edition's:
--   * apache edition (editions/apache/0005): Hindsight's `refresh_rollups` job, from the
--     weekly store up to its watermark, behind a view `network_4weekly`;
--   * timescale edition (editions/timescale/0008): a continuous aggregate on the weekly one,
--     and this table is the archive of an apache past, as the other stores.
--
-- For a DBA: an account's requests per 28 days.
--   SELECT bucket, sum(requests) FROM network_4weekly WHERE account_id = '...' GROUP BY 1 ORDER BY 1;
CREATE TABLE network_4weekly_store (
    bucket               timestamptz NOT NULL,
    account_id           uuid NOT NULL,
    host                 text NOT NULL,
    method               text NOT NULL,
    url                  text NOT NULL,
    duration_bucket      smallint NOT NULL,
    requests             bigint NOT NULL,
    failures             bigint NOT NULL,
    min_ms               integer NOT NULL,
    max_ms               integer NOT NULL,
    PRIMARY KEY (account_id, bucket, host, method, url, duration_bucket)
);
SELECT create_hypertable('network_4weekly_store', 'bucket', chunk_time_interval => INTERVAL '365 days');

-- The duration bucket and the percentile's estimate (0021), the same values, no longer
-- STRICT: PostgreSQL inlines a SQL function only when it is not STRICT or its body is
-- strict, and a CASE is not. Called as functions, they cost a call of the SQL-function
-- executor per row: the estimate for each of the ~2,000 merged rows of a 90-day overview
-- (6 ms of its ~30 ms), the bucket for each raw network event of a roll-up's tail. A NULL
-- argument still gives NULL.
CREATE OR REPLACE FUNCTION hindsight_duration_bucket(duration_ms integer) RETURNS smallint
    LANGUAGE sql IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE
    RETURN CASE WHEN duration_ms <= 1 THEN 0
                ELSE ceil(ln(duration_ms::float8) / ln(1.05::float8 / 0.95))::smallint
           END;

CREATE OR REPLACE FUNCTION hindsight_duration_estimate(duration_bucket smallint, min_ms integer, max_ms integer)
    RETURNS double precision
    LANGUAGE sql IMMUTABLE CALLED ON NULL INPUT PARALLEL SAFE
    RETURN CASE WHEN duration_bucket IS NOT NULL AND min_ms IS NOT NULL AND max_ms IS NOT NULL THEN
               least(greatest(CASE WHEN duration_bucket = 0 THEN 1
                                   ELSE 0.95 * power(1.05::float8 / 0.95, duration_bucket)
                              END, min_ms), max_ms)
           END;
