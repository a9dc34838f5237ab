-- 0023: visitors — a visitor id on every session, the daily salts it is derived from, and
-- the HyperLogLog type that lets unique visitors be merged across hours and days.
--
-- sessions.visitor_id is a uuid: the first 16 bytes of an HMAC-SHA256 computed by the
-- server when the session is created (backend/hindsight/visitors.py), never a value a client
-- chooses. By default (no cookie, nothing stored in the browser) the HMAC's key is the salt
-- of the day (UTC) and its message the account's host, the client address and the user
-- agent: the same browser on the same site is the same visitor for that day only, and once
-- the salt is deleted (two days later) nobody can recompute an id from an address. With
-- data-visitor="persistent" the tracker sends a random id it keeps in localStorage; the
-- server hashes it with the account id (and the instance key), so the stored id cannot be
-- matched across accounts or back to the browser's value. NULL for sessions stored before
-- this migration (they count as unknown visitors, never as one visitor).
-- A uuid is 16 bytes like a bytea of 16, prints and parses everywhere (the API, seed 002's
-- `visitor_id`), and hashes with hll_hash_any for the roll-ups.

ALTER TABLE sessions ADD COLUMN visitor_id uuid;
-- A visitor's sessions in time order (erasure, "sessions of this visitor", unique counts).
CREATE INDEX sessions_account_visitor_idx ON sessions (account_id, visitor_id, started_at)
    WHERE visitor_id IS NOT NULL;

-- One random salt per UTC day, created by the first session of the day (INSERT ... ON
-- CONFLICT DO NOTHING, so concurrent processes agree on one) and deleted by the scheduler's
-- `visitor_salts` job once it is two days old: yesterday's stays for sessions that started
-- just before midnight and arrive late.
CREATE TABLE visitor_salts (
    day                  date PRIMARY KEY,
    salt                 bytea NOT NULL CHECK (length(salt) >= 16),
    created_at           timestamptz NOT NULL DEFAULT now()
);

-- HyperLogLog sketches (citusdata/postgresql-hll; Debian: postgresql-15-hll): a sketch
-- of the visitors of an hour merges with the sketches of the other hours of a range into
-- the visitors of the range (within about 0.8 % at log2m 14), which a sum of counts
-- cannot give.
CREATE EXTENSION IF NOT EXISTS hll;

-- ------------------------------------------------------------------ the visitor roll-ups
--
-- Two roll-ups, refreshed by Hindsight's scheduler on both editions (like sessions_daily,
-- 0007: they join events with sessions, which continuous aggregates cannot follow), each a
-- view = its store up to its watermark + the newer buckets computed at query time by the
-- same function that fills the store (so the two can never disagree):
--
--   visits_hourly, visits_daily        per bucket of session START, account, host and
--       dimension ('all' with value '', 'referrer', 'device_type', 'browser', 'os',
--       'entry_page' = the path the session started on): sessions, visitors (a sketch),
--       bounces (sessions with at most one page view), the sum of session durations
--       (last activity - start, seconds) and of page views per session;
--   page_visits_hourly, page_visits_daily   per bucket of PAGE VIEW, account, host and path:
--       page views, visitors (a sketch), exits (page views that were their session's last)
--       and the sum of the time on page (seconds).
--
-- Time on page = the gap to the same session's next page view; for the session's last page
-- view, its last activity (any event: scrolls, clicks, inputs); either way at most
-- 30 minutes (an idle tab is not reading: the cap of the common 30-minute visit timeout).
-- "Next page view" looks at most a day past the refreshed window: a session is over long
-- before that.
--
-- Sketches: hll_add_agg(hll_hash_bytea(uuid_send(visitor_id)), 15, 5, -1, 1): 2^15
-- registers (standard error 1.04/sqrt(32768) = 0.57 %), exact (an explicit list of hashes)
-- while a sketch holds at most 2,560 visitors, sparse above that. Readers merge the
-- sketches of the buckets of a range with hll_union_agg, then hll_cardinality.

CREATE FUNCTION hindsight_visitor_hash(visitor_id uuid) RETURNS hll_hashval
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN hll_hash_bytea(uuid_send(visitor_id));

CREATE TABLE visits_hourly_store (
    bucket               timestamptz NOT NULL,
    account_id           uuid NOT NULL,
    host                 text NOT NULL,
    dimension            text NOT NULL,
    value                text NOT NULL,
    sessions             bigint NOT NULL,
    visitors             hll,
    bounces              bigint NOT NULL,
    duration_s           double precision NOT NULL,
    page_views           bigint NOT NULL,
    PRIMARY KEY (account_id, dimension, bucket, host, value)
);
SELECT create_hypertable('visits_hourly_store', 'bucket', chunk_time_interval => INTERVAL '30 days');

CREATE TABLE visits_daily_store (LIKE visits_hourly_store INCLUDING ALL);
SELECT create_hypertable('visits_daily_store', 'bucket', chunk_time_interval => INTERVAL '365 days');

CREATE TABLE page_visits_hourly_store (
    bucket               timestamptz NOT NULL,
    account_id           uuid NOT NULL,
    host                 text NOT NULL,
    path                 text NOT NULL,
    page_views           bigint NOT NULL,
    visitors             hll,
    exits                bigint NOT NULL,
    time_on_page_s       double precision NOT NULL,
    PRIMARY KEY (account_id, bucket, host, path)
);
SELECT create_hypertable('page_visits_hourly_store', 'bucket', chunk_time_interval => INTERVAL '30 days');

CREATE TABLE page_visits_daily_store (LIKE page_visits_hourly_store INCLUDING ALL);
SELECT create_hypertable('page_visits_daily_store', 'bucket', chunk_time_interval => INTERVAL '365 days');

-- The sessions started in [since, until), by hour (of one account, or of all). plpgsql +
-- EXECUTE: planned with the values, so only the chunks and index ranges they name are read.
CREATE FUNCTION hindsight_visits(since timestamptz, until timestamptz, account uuid DEFAULT NULL)
    RETURNS TABLE (bucket timestamptz, account_id uuid, host text, dimension text, value text,
                   sessions bigint, visitors hll, bounces bigint, duration_s double precision,
                   page_views bigint)
    LANGUAGE plpgsql STABLE AS $$
BEGIN
    IF since >= until THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE format($q$
        SELECT time_bucket(INTERVAL '1 hour', s.started_at), s.account_id, s.host, d.dimension, d.value,
               count(*), hll_add_agg(hindsight_visitor_hash(s.visitor_id), 15, 5, -1, 1),
               count(*) FILTER (WHERE s.page_view_count <= 1),
               coalesce(sum(extract(epoch FROM greatest(s.last_activity_at - s.started_at, INTERVAL '0'))), 0)::double precision,
               coalesce(sum(s.page_view_count), 0)::bigint
        FROM sessions s
        CROSS JOIN LATERAL (VALUES
            ('all', ''),
            ('referrer', coalesce(hindsight_referrer_host(s.referrer, s.host), '')),
            ('device_type', coalesce(s.device_type, '')),
            ('browser', coalesce(s.browser, '')),
            ('os', coalesce(s.os, '')),
            ('entry_page', coalesce(hindsight_url_path(s.page_url), ''))
        ) AS d (dimension, value)
        WHERE s.started_at >= %L AND s.started_at < %L AND %s
        GROUP BY 1, 2, 3, 4, 5$q$, since, until,
        CASE WHEN account IS NULL THEN 'true' ELSE format('s.account_id = %L', account) END);
END $$;

-- The page views of [since, until), by hour (of one account, or of all), with their
-- visitors, exits and time on page.
CREATE FUNCTION hindsight_page_visits(since timestamptz, until timestamptz, account uuid DEFAULT NULL)
    RETURNS TABLE (bucket timestamptz, account_id uuid, host text, path text, page_views bigint,
                   visitors hll, exits bigint, time_on_page_s double precision)
    LANGUAGE plpgsql STABLE AS $$
DECLARE
    -- How far to look for a page view's successor ('infinity' + a day is out of range).
    horizon timestamptz := CASE WHEN isfinite(until) THEN until + INTERVAL '1 day' ELSE until END;
BEGIN
    IF since >= until THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE format($q$
        WITH pv AS (
            SELECT session_id, "timestamp" AS t, account_id, host, hindsight_url_path(page_url) AS path,
                   lead("timestamp") OVER (PARTITION BY session_id ORDER BY "timestamp", seq) AS next_t
            FROM events
            WHERE event_type = 'page_view' AND page_url IS NOT NULL
              AND "timestamp" >= %1$L AND "timestamp" < %3$L AND %4$s
        )
        SELECT time_bucket(INTERVAL '1 hour', pv.t), pv.account_id, pv.host, pv.path, count(*),
               hll_add_agg(hindsight_visitor_hash(s.visitor_id), 15, 5, -1, 1),
               count(*) FILTER (WHERE pv.next_t IS NULL),
               sum(extract(epoch FROM least(greatest(coalesce(pv.next_t, s.last_activity_at, pv.t) - pv.t,
                                                     INTERVAL '0'), INTERVAL '30 minutes')))::double precision
        FROM pv LEFT JOIN sessions s ON s.session_id = pv.session_id
        WHERE pv.t < %2$L
        GROUP BY 1, 2, 3, 4$q$, since, until, horizon,
        CASE WHEN account IS NULL THEN 'true' ELSE format('account_id = %L', account) END);
END $$;

CREATE VIEW visits_hourly AS
SELECT bucket, account_id, host, dimension, value, sessions, visitors, bounces, duration_s, page_views
FROM visits_hourly_store
WHERE bucket < hindsight_rollup_watermark('visits_hourly')
UNION ALL
SELECT * FROM hindsight_visits(hindsight_rollup_watermark('visits_hourly'), 'infinity');

CREATE VIEW visits_daily AS
SELECT bucket, account_id, host, dimension, value, sessions, visitors, bounces, duration_s, page_views
FROM visits_daily_store
WHERE bucket < hindsight_rollup_watermark('visits_daily')
UNION ALL
SELECT time_bucket(INTERVAL '1 day', bucket), account_id, host, dimension, value, sum(sessions)::bigint,
       hll_union_agg(visitors), sum(bounces)::bigint, sum(duration_s), sum(page_views)::bigint
FROM visits_hourly
WHERE bucket >= hindsight_rollup_watermark('visits_daily')
GROUP BY 1, 2, 3, 4, 5;

CREATE VIEW page_visits_hourly AS
SELECT bucket, account_id, host, path, page_views, visitors, exits, time_on_page_s
FROM page_visits_hourly_store
WHERE bucket < hindsight_rollup_watermark('page_visits_hourly')
UNION ALL
SELECT * FROM hindsight_page_visits(hindsight_rollup_watermark('page_visits_hourly'), 'infinity');

CREATE VIEW page_visits_daily AS
SELECT bucket, account_id, host, path, page_views, visitors, exits, time_on_page_s
FROM page_visits_daily_store
WHERE bucket < hindsight_rollup_watermark('page_visits_daily')
UNION ALL
SELECT time_bucket(INTERVAL '1 day', bucket), account_id, host, path, sum(page_views)::bigint,
       hll_union_agg(visitors), sum(exits)::bigint, sum(time_on_page_s)
FROM page_visits_hourly
WHERE bucket >= hindsight_rollup_watermark('page_visits_daily')
GROUP BY 1, 2, 3, 4;
