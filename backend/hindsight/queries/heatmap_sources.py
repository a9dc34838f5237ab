"""What a click heatmap is drawn from, for one page (its page key, `hindsight_url_path`:
the path, plus the route of a hash-routed app, sql/migrations/0029; on one host or all) in a
time range: its clicks (rage clicks marked), its latest screenshot (whose bytes are read
as every screenshot is, screenshots.image) and how far down each session scrolled; and
the cache of drawn PNGs. Scoped to one account, like every dashboard read.

Clicks and depths come from two hourly roll-ups (sql/migrations/0033), refreshed by the
scheduler on both editions (lifecycle/rollups.py): their stores up to each one's watermark,
then the same SELECT that fills a store, for this account and page, over the newer hours.
Ranges are whole hours (the caller rounds them, as every roll-up reader does).
"""

from __future__ import annotations

import uuid
from datetime import datetime

from psycopg import sql
from psycopg.rows import tuple_row

from ..db import Conn, one
from .events import rage_click

# Clicks per hour, account, host, page, the session's viewport width, the clicked element,
# the offset inside it (whole CSS px, hindsight_click_offset) and the position on the page
# (viewport + scroll, a 4 px bin's centre), rage or not. {since}/{until}: the placeholders
# of the range; {scope}: more conditions (the reader's account and page).
_CLICKS = """
SELECT time_bucket(INTERVAL '1 hour', e."timestamp") AS bucket, e.account_id, e.host,
       hindsight_url_path(e.page_url) AS path, coalesce(s.viewport_width, 0) AS viewport_width,
       e.target_selector AS selector,
       hindsight_click_offset(e.event_data -> 'o', 0) AS offset_x,
       hindsight_click_offset(e.event_data -> 'o', 1) AS offset_y,
       (floor((e.viewport_x + coalesce(e.scroll_x, 0)) / 4.0) * 4 + 2)::integer AS x,
       (floor((e.viewport_y + coalesce(e.scroll_y, 0)) / 4.0) * 4 + 2)::integer AS y,
       {rage} AS rage, count(*) AS clicks
FROM events e
JOIN sessions s ON s.session_id = e.session_id
WHERE e.event_type = 'click' AND e.viewport_x IS NOT NULL AND e.viewport_y IS NOT NULL
  AND e.page_url IS NOT NULL AND e."timestamp" >= {since} AND e."timestamp" < {until}{scope}
GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11
"""

# Per session, page and hour: the deepest point of the page it showed (the furthest
# document scroll plus its viewport's height; no scroll: the first screen).
_DEPTHS = """
SELECT time_bucket(INTERVAL '1 hour', e."timestamp") AS bucket, e.account_id, e.host,
       hindsight_url_path(e.page_url) AS path, e.session_id,
       (max(coalesce(e.scroll_y, 0)) + coalesce(max(s.viewport_height), 0))::integer AS deepest
FROM events e
JOIN sessions s ON s.session_id = e.session_id
WHERE e.event_type IN ('page_view', 'scroll') AND e.target_selector IS NULL AND e.page_url IS NOT NULL
  AND e."timestamp" >= {since} AND e."timestamp" < {until}{scope}
GROUP BY 1, 2, 3, 4, 5
"""

# The reader's account and page. A page key's path (before any hash route) is a part of
# every URL it is the key of: a plain substring test first spares most rows the key's two
# regular expressions (about 50 µs a row; the newest hours of a busy account are thousands).
_READER = """
  AND e.account_id = %(account_id)s AND strpos(e.page_url, %(path_hint)s) > 0
  AND hindsight_url_path(e.page_url) = %(path)s"""

# What the scheduler's refresh writes into the stores (every account), as Rollup.source.
CLICKS_SOURCE = _CLICKS.format(rage=rage_click("e."), since="%(start)s", until="%(end)s", scope="")
DEPTHS_SOURCE = _DEPTHS.format(since="%(start)s", until="%(end)s", scope="")
CLICKS_COLUMNS = ("bucket", "account_id", "host", "path", "viewport_width", "selector", "offset_x", "offset_y",
                  "x", "y", "rage", "clicks")
DEPTHS_COLUMNS = ("bucket", "account_id", "host", "path", "session_id", "deepest")

# NULL: not refreshed yet (everything comes from the SELECT).
WATERMARKS = """
SELECT (SELECT materialized_until FROM rollup_watermarks WHERE rollup = 'heatmap_clicks_hourly') AS clicks,
       (SELECT materialized_until FROM rollup_watermarks WHERE rollup = 'heatmap_depths_hourly') AS depths
"""

MAX_HEATMAP_BINS = 100_000   # click bins drawn (the newest hours first)

# The page's click rows in the range (per hour, a position, or an element and an offset,
# per viewport width): the store before the watermark, the SELECT after it.
_ROWS = sql.SQL("""
WITH c AS (
    SELECT bucket, host, viewport_width, selector, offset_x, offset_y, x, y, rage, clicks
    FROM heatmap_clicks_hourly_store
    WHERE account_id = %(account_id)s AND path = %(path)s AND bucket >= %(start)s AND bucket < %(stored_until)s
    UNION ALL
    SELECT bucket, host, viewport_width, selector, offset_x, offset_y, x, y, rage, clicks
    FROM ({tail}) AS tail
)
""").format(tail=sql.SQL(_CLICKS.format(rage=rage_click("e."), since="%(stored_until)s", until="%(end)s",
                                         scope=_READER)))
_HOST = sql.SQL("(%(host)s::text IS NULL OR host = %(host)s)")

# Every bin over the range, newest first: what the picture is drawn from (the drawing
# weighs each by its clicks).
HEATMAP_CLICKS = _ROWS + sql.SQL("""
SELECT viewport_width, selector, offset_x, offset_y, x, y, rage, sum(clicks)::bigint AS clicks
FROM c WHERE {host}
GROUP BY 1, 2, 3, 4, 5, 6, 7
ORDER BY max(bucket) DESC, clicks DESC, x, y
LIMIT %(limit)s
""").format(host=_HOST)

# The places clicked in the newest hours (the page's list; one row per place and hour).
HEATMAP_POINTS = _ROWS + sql.SQL("""
SELECT viewport_width, selector, offset_x, offset_y, x, y, rage, clicks
FROM c WHERE {host}
ORDER BY bucket DESC, clicks DESC, x, y
LIMIT %(limit)s
""").format(host=_HOST)

# What the page shows without drawing: the totals, the lowest click (a page without a
# screenshot is drawn that tall) and, per element, the clicks that carry an offset (they
# are placed on the element when the screenshot knows it).
HEATMAP_SUMMARY = _ROWS + sql.SQL("""
SELECT selector, sum(clicks) FILTER (WHERE offset_x IS NOT NULL)::bigint AS with_offset,
       sum(clicks)::bigint AS clicks, coalesce(sum(clicks) FILTER (WHERE rage), 0)::bigint AS rage_clicks,
       max(y) AS lowest
FROM c WHERE {host}
GROUP BY selector
""").format(host=_HOST)

# What makes the picture different (the key of its cached PNG), computed where the rows
# are: every row of the range (a row per hour: the same clicks give the same digest).
HEATMAP_FINGERPRINT = _ROWS + sql.SQL("""
SELECT count(*) AS rows, coalesce(sum(clicks), 0)::bigint AS clicks,
       md5(string_agg(ROW(bucket, viewport_width, selector, offset_x, offset_y, x, y, rage, clicks)::text, ';'
                      ORDER BY bucket, viewport_width, selector, offset_x, offset_y, x, y, rage)) AS digest
FROM c WHERE {host}
""").format(host=_HOST)

# Per session that viewed the page: its deepest point over the range (the max of its hours).
SCROLL_DEPTH = sql.SQL("""
SELECT max(deepest) AS deepest
FROM (
    SELECT host, session_id, deepest
    FROM heatmap_depths_hourly_store
    WHERE account_id = %(account_id)s AND path = %(path)s AND bucket >= %(start)s AND bucket < %(stored_until)s
    UNION ALL
    SELECT host, session_id, deepest
    FROM ({tail}) AS tail
) AS d
WHERE %(host)s::text IS NULL OR host = %(host)s
GROUP BY session_id
ORDER BY 1
""").format(tail=sql.SQL(_DEPTHS.format(since="%(stored_until)s", until="%(end)s", scope=_READER)))

LATEST_SCREENSHOT = """
SELECT sc.screenshot_id, encode(sc.content_hash, 'hex') AS content_hash, sc.page_url,
       sc."timestamp", i.image_width, i.image_height, coalesce(s.viewport_width, 0) AS viewport_width,
       sc.elements
FROM screenshots sc
JOIN screenshot_images i USING (content_hash)
JOIN sessions s ON s.session_id = sc.session_id
WHERE sc.account_id = %(account_id)s AND hindsight_url_path(sc.page_url) = %(path)s
  AND (%(host)s::text IS NULL OR sc.host = %(host)s)
  AND sc."timestamp" < %(end)s
ORDER BY sc."timestamp" DESC
LIMIT 1
"""


def page_key(conn: Conn, url: str) -> str:
    """The page a URL or path is (`hindsight_url_path`, the one definition of a page)."""
    return one(conn.execute("SELECT hindsight_url_path(%s::text) AS page", (url,)))["page"]


def page_params(account_id: uuid.UUID, path: str, host: str | None, start: datetime,
                end: datetime, **more) -> dict:
    # The key's path part, as it stands in the URL; `/` may stand for an empty path (no test).
    hint = path.split("#", 1)[0]
    return {"account_id": account_id, "path": path, "path_hint": "" if hint == "/" else hint, "host": host,
            "start": start, "end": end, **more}


def _split(conn: Conn, params: dict, which: str) -> dict:
    """The range's stored part ends at the roll-up's watermark; the SELECT reads the rest."""
    mark = one(conn.execute(WATERMARKS))[which]
    start, end = params["start"], params["end"]
    return {**params, "stored_until": start if mark is None else min(max(mark, start), end)}


def heatmap_clicks(conn: Conn, params: dict) -> list[dict]:
    """The page's click bins in the range, newest hour first (at most MAX_HEATMAP_BINS)."""
    return conn.execute(HEATMAP_CLICKS, {**_split(conn, params, "clicks"), "limit": MAX_HEATMAP_BINS}).fetchall()


def heatmap_points(conn: Conn, params: dict, limit: int) -> list[dict]:
    """The bins of the newest hours (the page's list of places)."""
    return conn.execute(HEATMAP_POINTS, {**_split(conn, params, "clicks"), "limit": limit}).fetchall()


def heatmap_summary(conn: Conn, params: dict) -> list[dict]:
    """Per selector (NULL: none): clicks, rage clicks, clicks with an offset, the lowest y."""
    return conn.execute(HEATMAP_SUMMARY, _split(conn, params, "clicks")).fetchall()


def heatmap_fingerprint(conn: Conn, params: dict) -> dict:
    return one(conn.execute(HEATMAP_FINGERPRINT, _split(conn, params, "clicks")))


def latest_screenshot(conn: Conn, params: dict) -> dict | None:
    return conn.execute(LATEST_SCREENSHOT, params).fetchone()


def scroll_depths(conn: Conn, params: dict) -> list[int]:
    """Each session's deepest point (CSS px), in ascending order."""
    with conn.cursor(row_factory=tuple_row) as cur:
        return [r[0] for r in cur.execute(SCROLL_DEPTH, _split(conn, params, "depths")).fetchall()]


# The depths store names sessions: its rows go with their account's raw events (whole
# hours before the account's cutoff), not with the roll-ups' longer retention.
EXPIRE_DEPTHS = """
WITH cutoffs AS (
    SELECT account_id, time_bucket(INTERVAL '1 hour', %(now)s::timestamptz
               - make_interval(days => coalesce(events_retention_days, %(default)s))) AS cutoff
    FROM accounts)
DELETE FROM heatmap_depths_hourly_store d USING cutoffs c
WHERE d.account_id = c.account_id AND d.bucket < c.cutoff
"""


def expire_depths(conn: Conn, now: datetime, default_days: int) -> int:
    return conn.execute(EXPIRE_DEPTHS, {"now": now, "default": default_days}).rowcount


def cached_heatmap(conn: Conn, account_id: uuid.UUID, key: bytes) -> bytes | None:
    row = conn.execute("SELECT png FROM dashboard_heatmap_cache WHERE cache_key = %s AND account_id = %s",
                       (key, account_id)).fetchone()
    return bytes(row["png"]) if row else None


def store_heatmap(conn: Conn, account_id: uuid.UUID, key: bytes, png: bytes) -> None:
    conn.execute(
        "INSERT INTO dashboard_heatmap_cache (cache_key, account_id, png) VALUES (%s, %s, %s) "
        "ON CONFLICT (cache_key) DO NOTHING", (key, account_id, png))
    conn.execute("DELETE FROM dashboard_heatmap_cache WHERE created_at < now() - INTERVAL '1 day'")
