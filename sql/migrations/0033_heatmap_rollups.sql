-- 0033: the heatmap page reads roll-ups, not raw events.
--
-- A heatmap of a page over a range (7 days by default) read every click of the account in
-- the range, computed the page key of each (`hindsight_url_path`, a regular expression),
-- joined each to its session, and grouped the account's page views and scrolls by session
-- for the scroll depth: 1.1-1.7 s at 10 M events on either edition (docs/BENCHMARKS.md,
-- "Heatmaps and the sessions filter at 10 M events"). Two roll-ups, refreshed by
-- Hindsight's scheduler on both editions (they join events with sessions, like
-- visits_hourly, 0023), keyed by the page key, read by (account, page, hour):
--
--   heatmap_clicks_hourly   clicks per hour, account, host, page, the session's viewport
--       width, the clicked element's selector, the click's offset inside it (event_data.o,
--       whole CSS px; NULL when it has none), its position on the page (viewport + scroll,
--       binned to 4 CSS px: x and y are a bin's centre) and whether it was a rage click.
--       Everything hindsight.dashboard.heatmap places a click with, so a picture drawn from
--       it is the picture drawn from the raw clicks up to the bins (2 px at most, against
--       a drawing grid of 8-10 px and a blur of 14 px).
--   heatmap_depths_hourly   per hour, account, host, page and session: the deepest point of
--       the page it showed (the furthest document scroll + its viewport height, the raw
--       query's definition). A session's depth over a range is the max of its hours: exact.
--       Session ids are stored (erasure rewrites these buckets like every roll-up's; the
--       rows are dropped with their events by retention, not kept as long as counts).
--
-- Each is filled by one SELECT over [start, end) (hindsight.queries.heatmap_sources, which
-- applies the rage-click rule of queries.events): the refresh writes the store with it for
-- every account, and a reader takes the store before the watermark plus the same SELECT
-- for its own account and page after it (so the two never disagree).

-- A click's offset inside its element (tracker.js's event_data.o = [x, y]) in whole CSS
-- px, as hindsight.dashboard.heatmap.click_offset accepts it: two finite numbers under
-- 1e7 in size; else NULL. `which` is 0 (x) or 1 (y).
CREATE FUNCTION hindsight_click_offset(o jsonb, which integer) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN CASE WHEN jsonb_typeof(o) = 'array' AND jsonb_array_length(o) = 2
                     AND jsonb_typeof(o -> 0) = 'number' AND jsonb_typeof(o -> 1) = 'number'
                THEN CASE WHEN abs((o ->> 0)::numeric) < 1e7 AND abs((o ->> 1)::numeric) < 1e7
                          THEN round((o ->> which)::numeric)::integer END END;

CREATE TABLE heatmap_clicks_hourly_store (
    bucket               timestamptz NOT NULL,
    account_id           uuid NOT NULL,
    host                 text NOT NULL,
    path                 text NOT NULL,
    viewport_width       integer NOT NULL,      -- the session's; 0: unknown
    selector             text,                  -- NULL: none
    offset_x             integer,               -- NULL: no offset
    offset_y             integer,
    x                    integer NOT NULL,      -- CSS px of the page, a 4 px bin's centre
    y                    integer NOT NULL,
    rage                 boolean NOT NULL,
    clicks               bigint NOT NULL
);
SELECT create_hypertable('heatmap_clicks_hourly_store', 'bucket', chunk_time_interval => INTERVAL '30 days');
CREATE INDEX heatmap_clicks_hourly_page_idx ON heatmap_clicks_hourly_store (account_id, path, bucket);

CREATE TABLE heatmap_depths_hourly_store (
    bucket               timestamptz NOT NULL,
    account_id           uuid NOT NULL,
    host                 text NOT NULL,
    path                 text NOT NULL,
    session_id           uuid NOT NULL,
    deepest              integer NOT NULL       -- CSS px
);
SELECT create_hypertable('heatmap_depths_hourly_store', 'bucket', chunk_time_interval => INTERVAL '30 days');
CREATE INDEX heatmap_depths_hourly_page_idx ON heatmap_depths_hourly_store (account_id, path, bucket);
