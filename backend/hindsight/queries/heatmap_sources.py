"""What a click heatmap is drawn from, for one page (its page key, `hindsight_url_path`:
the path, plus the route of a hash-routed app, sql/migrations/0029; on one host or all) in a
time range: its clicks (rage clicks marked), its latest screenshot (whose bytes are read
as every screenshot is, screenshots.image) and how far down each session scrolled; and
the cache of drawn PNGs. Scoped to one account, like every dashboard read."""

from __future__ import annotations

import uuid
from datetime import datetime

from psycopg import sql

from ..db import Conn, one
from .events import rage_click

PAGE_MATCH = """
    e.account_id = %(account_id)s AND e."timestamp" >= %(start)s AND e."timestamp" < %(end)s
    AND hindsight_url_path(e.page_url) = %(path)s
    AND (%(host)s::text IS NULL OR e.host = %(host)s)
"""

MAX_HEATMAP_CLICKS = 50_000

HEATMAP_CLICKS = sql.SQL("""
SELECT e.viewport_x + coalesce(e.scroll_x, 0) AS x, e.viewport_y + coalesce(e.scroll_y, 0) AS y,
       coalesce(s.viewport_width, 0) AS viewport_width, {rage_click} AS rage,
       e.target_selector AS selector, e.event_data -> 'o' AS "offset"
FROM events e
JOIN sessions s ON s.session_id = e.session_id
WHERE e.event_type = 'click' AND e.viewport_x IS NOT NULL AND e.viewport_y IS NOT NULL
  AND {page_match}
ORDER BY e."timestamp" DESC
LIMIT %(limit)s
""").format(rage_click=sql.SQL(rage_click("e.")), page_match=sql.SQL(PAGE_MATCH))

# What makes a heatmap different: the key of its cache entry.
HEATMAP_FINGERPRINT = sql.SQL("""
SELECT count(*) AS clicks, min(e."timestamp") AS first_click, max(e."timestamp") AS last_click
FROM events e
WHERE e.event_type = 'click' AND {page_match}
""").format(page_match=sql.SQL(PAGE_MATCH))

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

# Per session that viewed the page, the deepest point of the page it showed: the
# furthest document scroll plus the viewport's height (no scroll: the first screen).
SCROLL_DEPTH = sql.SQL("""
SELECT e.session_id, max(coalesce(e.scroll_y, 0)) + coalesce(max(s.viewport_height), 0) AS deepest
FROM events e
JOIN sessions s ON s.session_id = e.session_id
WHERE e.event_type IN ('page_view', 'scroll') AND e.target_selector IS NULL
  AND {page_match}
GROUP BY e.session_id
""").format(page_match=sql.SQL(PAGE_MATCH))


def page_key(conn: Conn, url: str) -> str:
    """The page a URL or path is (`hindsight_url_path`, the one definition of a page)."""
    return one(conn.execute("SELECT hindsight_url_path(%s::text) AS page", (url,)))["page"]


def page_params(account_id: uuid.UUID, path: str, host: str | None, start: datetime,
                end: datetime, **more) -> dict:
    return {"account_id": account_id, "path": path, "host": host, "start": start, "end": end, **more}


def heatmap_clicks(conn: Conn, params: dict) -> list[dict]:
    return conn.execute(HEATMAP_CLICKS, {**params, "limit": MAX_HEATMAP_CLICKS}).fetchall()


def heatmap_fingerprint(conn: Conn, params: dict) -> dict:
    return one(conn.execute(HEATMAP_FINGERPRINT, params))


def latest_screenshot(conn: Conn, params: dict) -> dict | None:
    return conn.execute(LATEST_SCREENSHOT, params).fetchone()


def scroll_depths(conn: Conn, params: dict) -> list[int]:
    return [r["deepest"] for r in conn.execute(SCROLL_DEPTH, params).fetchall()]


def cached_heatmap(conn: Conn, account_id: uuid.UUID, key: bytes) -> bytes | None:
    row = conn.execute("SELECT png FROM dashboard_heatmap_cache WHERE cache_key = %s AND account_id = %s",
                       (key, account_id)).fetchone()
    return bytes(row["png"]) if row else None


def store_heatmap(conn: Conn, account_id: uuid.UUID, key: bytes, png: bytes) -> None:
    conn.execute(
        "INSERT INTO dashboard_heatmap_cache (cache_key, account_id, png) VALUES (%s, %s, %s) "
        "ON CONFLICT (cache_key) DO NOTHING", (key, account_id, png))
    conn.execute("DELETE FROM dashboard_heatmap_cache WHERE created_at < now() - INTERVAL '1 day'")
