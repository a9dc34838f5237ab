-- 0007: the sessions roll-up: sessions started per day by referrer, device type,
-- browser and OS, for the dashboard's breakdowns.
--
-- `sessions` is a plain table (not a hypertable) on both editions, so this roll-up is
-- refreshed by Hindsight's scheduler everywhere: the view is the store up to its
-- watermark plus the sessions started after it. A breakdown over 30 days then reads
-- a few thousand roll-up rows instead of every session of the period.

-- The host of a URL, lower case, without "www." (NULL when it has none).
CREATE FUNCTION hindsight_url_host(url text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN regexp_replace(lower(substring(url FROM '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?([^:/?#]+)')),
                          '^www\.', '');

-- The host a referrer points at; NULL when there is none or when it is the site itself
-- (the registered domain or one of its subdomains). Single expressions, so PostgreSQL
-- inlines both functions into the queries that call them.
CREATE FUNCTION hindsight_referrer_host(referrer text, site_host text) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN hindsight_url_host(referrer) = '' OR hindsight_url_host(referrer) = site_host
                     OR right(hindsight_url_host(referrer), length(site_host) + 1) = '.' || site_host
                THEN NULL
                ELSE hindsight_url_host(referrer) END;

CREATE TABLE sessions_daily_store (
    bucket               timestamptz NOT NULL,
    account_id           uuid NOT NULL,
    host                 text NOT NULL,
    -- 'referrer', 'device_type', 'browser' or 'os'; value '' means unknown (or direct).
    dimension            text NOT NULL,
    value                text NOT NULL,
    sessions             bigint NOT NULL,
    PRIMARY KEY (account_id, dimension, bucket, host, value)
);
SELECT create_hypertable('sessions_daily_store', 'bucket', chunk_time_interval => INTERVAL '365 days');

-- The roll-up refresh reads sessions by start time across accounts.
CREATE INDEX sessions_started_idx ON sessions (started_at);

-- One branch per dimension: a query for one dimension (the dashboard's) runs one branch.
CREATE VIEW sessions_daily AS
SELECT bucket, account_id, host, dimension, value, sessions
FROM sessions_daily_store
WHERE bucket < hindsight_rollup_watermark('sessions_daily')
UNION ALL
SELECT time_bucket(INTERVAL '1 day', started_at), account_id, host, 'referrer',
       coalesce(hindsight_referrer_host(referrer, host), ''), count(*)
FROM sessions WHERE started_at >= hindsight_rollup_watermark('sessions_daily')
GROUP BY 1, 2, 3, 5
UNION ALL
SELECT time_bucket(INTERVAL '1 day', started_at), account_id, host, 'device_type', coalesce(device_type, ''), count(*)
FROM sessions WHERE started_at >= hindsight_rollup_watermark('sessions_daily')
GROUP BY 1, 2, 3, 5
UNION ALL
SELECT time_bucket(INTERVAL '1 day', started_at), account_id, host, 'browser', coalesce(browser, ''), count(*)
FROM sessions WHERE started_at >= hindsight_rollup_watermark('sessions_daily')
GROUP BY 1, 2, 3, 5
UNION ALL
SELECT time_bucket(INTERVAL '1 day', started_at), account_id, host, 'os', coalesce(os, ''), count(*)
FROM sessions WHERE started_at >= hindsight_rollup_watermark('sessions_daily')
GROUP BY 1, 2, 3, 5;
