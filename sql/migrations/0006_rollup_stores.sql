-- 0006: where the dashboard's roll-ups keep their rows, on both TimescaleDB editions.
--
-- The dashboard reads four roll-ups, by these names, never the raw events:
--   events_hourly, events_daily   events per account, host, bucket and event type
--   pages_hourly,  pages_daily    page views, clicks and errors per account, host, bucket and path
-- They are views; what stands behind them depends on the edition and is set up by
-- the files in sql/editions/ (applied by `hindsight migrate` after these migrations):
--   apache:    each view = its *_store table up to a watermark + the raw events after it;
--              Hindsight's scheduler refreshes the store (sql/editions/apache/).
--   timescale: each view = a continuous aggregate (real-time) + its *_store table, which
--              then only holds history carried over from an Apache-edition past
--              (sql/editions/timescale/).
-- The stores are hypertables so old roll-ups are dropped a chunk at a time.

-- The path of a page URL: no scheme, host, query string or fragment ('/' when empty).
-- IMMUTABLE, so continuous aggregates may group by it.
CREATE FUNCTION hindsight_url_path(url text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN coalesce(nullif(substring(url FROM '^(?:[A-Za-z][A-Za-z0-9+.-]*:)?(?://[^/?#]*)?([^?#]*)'), ''), '/');

CREATE TABLE events_hourly_store (
    bucket               timestamptz NOT NULL,
    account_id           uuid NOT NULL,
    host                 text NOT NULL,
    event_type           text NOT NULL,
    events               bigint NOT NULL,
    PRIMARY KEY (account_id, bucket, host, event_type)
);
SELECT create_hypertable('events_hourly_store', 'bucket', chunk_time_interval => INTERVAL '30 days');

CREATE TABLE events_daily_store (
    bucket               timestamptz NOT NULL,
    account_id           uuid NOT NULL,
    host                 text NOT NULL,
    event_type           text NOT NULL,
    events               bigint NOT NULL,
    PRIMARY KEY (account_id, bucket, host, event_type)
);
SELECT create_hypertable('events_daily_store', 'bucket', chunk_time_interval => INTERVAL '365 days');

CREATE TABLE pages_hourly_store (
    bucket               timestamptz NOT NULL,
    account_id           uuid NOT NULL,
    host                 text NOT NULL,
    path                 text NOT NULL,
    page_views           bigint NOT NULL,
    clicks               bigint NOT NULL,
    errors               bigint NOT NULL,
    PRIMARY KEY (account_id, bucket, host, path)
);
SELECT create_hypertable('pages_hourly_store', 'bucket', chunk_time_interval => INTERVAL '30 days');

CREATE TABLE pages_daily_store (
    bucket               timestamptz NOT NULL,
    account_id           uuid NOT NULL,
    host                 text NOT NULL,
    path                 text NOT NULL,
    page_views           bigint NOT NULL,
    clicks               bigint NOT NULL,
    errors               bigint NOT NULL,
    PRIMARY KEY (account_id, bucket, host, path)
);
SELECT create_hypertable('pages_daily_store', 'bucket', chunk_time_interval => INTERVAL '365 days');

-- How far each scheduler-refreshed roll-up is materialized: its store holds every
-- bucket before `materialized_until`; its view computes the buckets after it from the
-- source rows, so a reader always sees complete numbers (like TimescaleDB's real-time
-- aggregation, whose watermark plays the same part).
CREATE TABLE rollup_watermarks (
    rollup               text PRIMARY KEY,
    materialized_until   timestamptz NOT NULL,
    refreshed_at         timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION hindsight_rollup_watermark(rollup text) RETURNS timestamptz
    LANGUAGE sql STABLE STRICT PARALLEL SAFE
    AS $$ SELECT coalesce((SELECT materialized_until FROM rollup_watermarks WHERE rollup_watermarks.rollup = $1),
                          '-infinity') $$;
