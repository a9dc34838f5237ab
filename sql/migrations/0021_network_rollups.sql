-- 0021: the network roll-ups: how long each endpoint took to answer, per hour and per day,
-- as mergeable histograms — what the overview's "slowest network endpoints" reads instead
-- of every raw network event of its range (issue 12: 1.3 s for 90 days on compressed chunks).
--
--   network_hourly, network_daily,  one row per account, host, bucket, endpoint (method +
--   network_weekly                  URL) and duration bucket: requests, failures, and the
--                                   shortest and longest duration in it
--
-- Weekly rows (weeks start on Monday, 00:00 UTC: time_bucket's default origin) keep a
-- 90-day range to about 13 weeks + a few days + a few hours of rows: an endpoint's
-- durations spread over some 15-25 buckets a day, so 90 daily rows per endpoint would be
-- over a thousand rows for each (issue 12 measured that read).
--
-- Like the other roll-ups (0006) these are views, set up per edition by sql/editions/
-- (apache: the *_store tables below up to a watermark + the raw events after it, refreshed
-- by Hindsight's scheduler; timescale: continuous aggregates + the stores as an archive).
--
-- Duration buckets. A duration of d milliseconds (a whole number; tracker.js rounds it)
-- falls in bucket
--     0                              when d <= 1
--     ceil(ln(d) / ln(1.05 / 0.95))  otherwise
-- so bucket b >= 1 holds the durations in (γ^(b-1), γ^b] with γ = 1.05 / 0.95 ≈ 1.105
-- (about 24 buckets per factor of ten: 215 buckets up to 24 days). Counts of the same
-- bucket add up across hours, days and hosts: the histograms merge exactly. A percentile
-- is read off the merged counts: the nearest-rank percentile (SQL's percentile_disc) is in
-- the bucket where the running count reaches its rank, and that bucket's estimate,
--     0.95 · γ^b, moved into [shortest, longest] of the bucket,
-- is within 5 % of it (within 1 ms for bucket 0). When every duration in the bucket is the
-- same the estimate is exact. (hindsight.dashboard.queries.slowest_endpoints)
--
-- The functions never raise, whatever a page sent as event_data (a refresh that fails on
-- one bad event would stop the roll-up): a duration that is not a JSON number or is
-- negative is no duration (the event is left out), one over 2^31 - 1 ms counts as that;
-- a status that is not a number (or a string of digits) is a failure; URLs are cut at 500
-- characters and methods at 16, so a key always fits in the primary key's index.

-- The duration of a network event in whole milliseconds; NULL when it has none.
CREATE FUNCTION hindsight_network_duration(event_data jsonb) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN jsonb_typeof(event_data -> 'duration_ms') = 'number' THEN
               CASE WHEN (event_data ->> 'duration_ms')::numeric >= 0 THEN
                   least(round((event_data ->> 'duration_ms')::numeric), 2147483647)::integer
               END
           END;

-- A network request failed: no answer (status 0 or none) or an HTTP error (>= 400).
CREATE FUNCTION hindsight_network_failed(event_data jsonb) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN (event_data ->> 'status') ~ '^[0-9]{1,9}(\.[0-9]*)?$'
                THEN (event_data ->> 'status')::numeric NOT BETWEEN 1 AND 399
                ELSE true
           END;

-- The endpoint: method and URL as tracker.js sent them (the URL without its query
-- string), '' when missing.
CREATE FUNCTION hindsight_network_method(event_data jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN coalesce(left(event_data ->> 'method', 16), '');

CREATE FUNCTION hindsight_network_url(event_data jsonb) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN coalesce(left(event_data ->> 'url', 500), '');

CREATE FUNCTION hindsight_duration_bucket(duration_ms integer) RETURNS smallint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN CASE WHEN duration_ms <= 1 THEN 0
                ELSE ceil(ln(duration_ms::float8) / ln(1.05::float8 / 0.95))::smallint
           END;

-- The value a percentile that falls in `duration_bucket` is given (see above).
CREATE FUNCTION hindsight_duration_estimate(duration_bucket smallint, min_ms integer, max_ms integer)
    RETURNS double precision
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN least(greatest(CASE WHEN duration_bucket = 0 THEN 1
                               ELSE 0.95 * power(1.05::float8 / 0.95, duration_bucket)
                          END, min_ms), max_ms);

CREATE TABLE network_hourly_store (
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
SELECT create_hypertable('network_hourly_store', 'bucket', chunk_time_interval => INTERVAL '30 days');

CREATE TABLE network_daily_store (
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
SELECT create_hypertable('network_daily_store', 'bucket', chunk_time_interval => INTERVAL '365 days');

CREATE TABLE network_weekly_store (
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
SELECT create_hypertable('network_weekly_store', 'bucket', chunk_time_interval => INTERVAL '365 days');
