-- 0029: hash routes are pages; screenshots know where their elements are; page and host keys fit an index.
--
-- 1. What counts as a page. `hindsight_url_path(url)` is the one key every page-keyed read
--    uses (pages_* roll-ups on both editions, page visits, heatmaps, paths, funnels, entry
--    pages). Until now it was the URL's path alone, so a single-page app that routes by
--    hash (`/#/active`, `/#/completed`: its page views carry nav=hash) was one page, `/`.
--    Now a fragment that starts with `/` or `!/` (a hash route, `#/...` or `#!/...`) is part
--    of the page, without the route's own query string (`/#/search?q=x` -> `/#/search`);
--    any other fragment is an anchor on its page and is dropped (`/docs#install` -> `/docs`),
--    as is the empty route (`/#/` is `/`, which such apps redirect to anyway).
--    The rule is on the URL alone, so the function stays IMMUTABLE (continuous aggregates
--    group by it); see docs/DECISIONS.md. Roll-up rows computed before this migration keep
--    their old key (history is not rewritten); buckets refreshed after it use the new one.
-- 2. `screenshots.elements`: where the page's clickable elements were when the screenshot
--    was taken, so that a heatmap places a click on the element that was clicked
--    (tracker/src/capture.js sends them, hindsight.dashboard.heatmap draws with them):
--    a JSON array of [selector, x, y, width, height] in CSS pixels of the page, at most
--    schemas.MAX_SCREENSHOT_ELEMENTS; NULL for older screenshots.
-- 3. Keys that fit an index. A page key and a referrer host are parts of the roll-ups'
--    primary keys, and a btree entry must fit in a third of a page (about 2,700 bytes): a
--    1,000-character path of CJK text (3 bytes a character, within the API's 2,048-character
--    URL limit) failed every refresh of pages_hourly_store from then on. Both are cut to a
--    length whose UTF-8 fits with the rest of the key, whatever the characters: a page key at
--    400 characters (at most 1,600 bytes), a host at 253 (the longest a DNS name can be).
--    Two pages that differ only after their 400th character count as one.
--    The events' own index on page_url had the same fault at ingestion: a batch with such a
--    URL (a hand-made request; browsers percent-encode URLs) failed as a whole and its client
--    retried it forever. It is now a hash index: the same equality lookups by URL, an entry
--    of a few bytes whatever the URL's length (rebuilt here: on a large events table this
--    migration takes as long as one pass over it).
DROP INDEX IF EXISTS events_page_url_idx;
CREATE INDEX events_page_url_idx ON events USING hash (page_url);

CREATE OR REPLACE FUNCTION hindsight_url_path(url text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN left(coalesce(nullif(substring(url FROM '^(?:[A-Za-z][A-Za-z0-9+.-]*:)?(?://[^/?#]*)?([^?#]*)'), ''), '/')
        || coalesce('#' || substring(url FROM '^[^#]*#(!?/[^?#]+)'), ''), 400);

CREATE OR REPLACE FUNCTION hindsight_url_host(url text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN left(regexp_replace(lower(substring(url FROM '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?([^:/?#]+)')),
                               '^www\.', ''), 253);

ALTER TABLE screenshots ADD COLUMN IF NOT EXISTS elements jsonb;
