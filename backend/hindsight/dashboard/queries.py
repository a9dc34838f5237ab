"""SQL the dashboard needs beyond hindsight.queries (sessions, events, stats, usage).

Each query is scoped to one account: the caller passes the logged-in user's account.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from psycopg import sql

from ..db import Conn, one

# A click is a rage click when tracker.js marked it (`event_data.rage`: the clicks in the
# burst); the same test as INSERT_BATCH's rage_click_count (hindsight/queries/events.py).
RAGE = "coalesce(e.event_data->>'rage', 'false') NOT IN ('false', '0')"
# A network failure: no answer (status 0) or an HTTP error.
NETWORK_FAILED = "coalesce((e.event_data->>'status')::numeric, 0) NOT BETWEEN 1 AND 399"

MAX_MARKERS = 5000

MARKERS = sql.SQL("""
SELECT e.seq, e."timestamp", e.event_type, e.page_url, e.target_selector,
       e.viewport_x, e.viewport_y,
       CASE WHEN e.event_type = 'click' AND {rage} THEN true ELSE false END AS rage,
       CASE WHEN e.event_type = 'error' THEN left(coalesce(e.event_data->>'message',
                                                  e.event_data->>'url', ''), 200)
            WHEN e.event_type = 'network' THEN concat_ws(' ', e.event_data->>'method',
                                                  e.event_data->>'url', e.event_data->>'status')
       END AS detail
FROM events e
WHERE e.session_id = %(session_id)s AND e.account_id = %(account_id)s
  AND e."timestamp" >= %(started_at)s::timestamptz - INTERVAL '1 day'
  AND (e.event_type IN ('page_view', 'click', 'error')
       OR (e.event_type = 'network' AND {network_failed}))
ORDER BY e."timestamp", e.seq
LIMIT %(limit)s
""").format(rage=sql.SQL(RAGE), network_failed=sql.SQL(NETWORK_FAILED))


def markers(conn: Conn, account_id: uuid.UUID, session_id: uuid.UUID,
            started_at: datetime) -> list[dict]:
    """The replay timeline's markers: page views, clicks (rage marked), errors, failed requests."""
    # started_at (with a day's margin for clocks) skips the chunks before the session.
    return conn.execute(MARKERS, {"session_id": session_id, "account_id": account_id,
                                  "started_at": started_at, "limit": MAX_MARKERS}).fetchall()


# ------------------------------------------------------------------ heatmaps

PAGE_MATCH = """
    e.account_id = %(account_id)s AND e."timestamp" >= %(start)s AND e."timestamp" < %(end)s
    AND hindsight_url_path(e.page_url) = %(path)s
    AND (%(host)s::text IS NULL OR e.host = %(host)s)
"""

MAX_HEATMAP_CLICKS = 50_000

HEATMAP_CLICKS = sql.SQL("""
SELECT e.viewport_x + coalesce(e.scroll_x, 0) AS x, e.viewport_y + coalesce(e.scroll_y, 0) AS y,
       coalesce(s.viewport_width, 0) AS viewport_width, {rage} AS rage
FROM events e
JOIN sessions s ON s.session_id = e.session_id
WHERE e.event_type = 'click' AND e.viewport_x IS NOT NULL AND e.viewport_y IS NOT NULL
  AND {page_match}
ORDER BY e."timestamp" DESC
LIMIT %(limit)s
""").format(rage=sql.SQL(RAGE), page_match=sql.SQL(PAGE_MATCH))

# What makes a heatmap different: the key of its cache entry.
HEATMAP_FINGERPRINT = sql.SQL("""
SELECT count(*) AS clicks, min(e."timestamp") AS first_click, max(e."timestamp") AS last_click
FROM events e
WHERE e.event_type = 'click' AND {page_match}
""").format(page_match=sql.SQL(PAGE_MATCH))

LATEST_SCREENSHOT = """
SELECT sc.screenshot_id, encode(sc.content_hash, 'hex') AS content_hash, sc.page_url,
       sc."timestamp", i.image_width, i.image_height, coalesce(s.viewport_width, 0) AS viewport_width
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


def screenshot_bytes(conn: Conn, account_id: uuid.UUID, screenshot_id: int) -> bytes | None:
    row = conn.execute(
        "SELECT i.image_data FROM screenshots s JOIN screenshot_images i USING (content_hash) "
        "WHERE s.screenshot_id = %s AND s.account_id = %s", (screenshot_id, account_id)).fetchone()
    return bytes(row["image_data"]) if row else None


def cached_heatmap(conn: Conn, account_id: uuid.UUID, key: bytes) -> bytes | None:
    row = conn.execute("SELECT png FROM dashboard_heatmap_cache WHERE cache_key = %s AND account_id = %s",
                       (key, account_id)).fetchone()
    return bytes(row["png"]) if row else None


def store_heatmap(conn: Conn, account_id: uuid.UUID, key: bytes, png: bytes) -> None:
    conn.execute(
        "INSERT INTO dashboard_heatmap_cache (cache_key, account_id, png) VALUES (%s, %s, %s) "
        "ON CONFLICT (cache_key) DO NOTHING", (key, account_id, png))
    conn.execute("DELETE FROM dashboard_heatmap_cache WHERE created_at < now() - INTERVAL '1 day'")


# ------------------------------------------------------------------ overview

SLOWEST_ENDPOINTS = """
SELECT e.event_data->>'method' AS method, e.event_data->>'url' AS url, count(*) AS requests,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY (e.event_data->>'duration_ms')::float8) AS p50_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY (e.event_data->>'duration_ms')::float8) AS p95_ms,
       count(*) FILTER (WHERE coalesce((e.event_data->>'status')::numeric, 0) NOT BETWEEN 1 AND 399) AS failures
FROM events e
WHERE e.account_id = %(account_id)s AND e.event_type = 'network'
  AND e."timestamp" >= %(start)s AND e."timestamp" < %(end)s
  AND jsonb_typeof(e.event_data->'duration_ms') = 'number'
GROUP BY 1, 2
ORDER BY p95_ms DESC NULLS LAST, requests DESC
LIMIT %(limit)s
"""


def slowest_endpoints(conn: Conn, account_id: uuid.UUID, start: datetime,
                      end: datetime, limit: int = 10) -> list[dict]:
    """The network endpoints the account's pages waited longest for (p95), from raw events.

    Raw events: the roll-ups do not keep durations. The (account, type, time) index
    bounds the scan to the range's network events.
    """
    return conn.execute(SLOWEST_ENDPOINTS, {"account_id": account_id, "start": start, "end": end,
                                            "limit": limit}).fetchall()


ERROR_PAGES = """
SELECT host, path, sum(errors)::bigint AS errors, sum(page_views)::bigint AS page_views
FROM pages_hourly
WHERE account_id = %(account_id)s AND bucket >= %(start)s AND bucket < %(end)s
GROUP BY host, path
HAVING sum(errors) > 0
ORDER BY errors DESC, host, path
LIMIT %(limit)s
"""


def error_pages(conn: Conn, account_id: uuid.UUID, start: datetime, end: datetime,
                limit: int = 10) -> list[dict]:
    """The pages with the most errors in the range, from the hourly pages roll-up."""
    return conn.execute(ERROR_PAGES, {"account_id": account_id, "start": start, "end": end,
                                      "limit": limit}).fetchall()


# ------------------------------------------------------------------ account

def account(conn: Conn, account_id: uuid.UUID) -> dict:
    """The signed-in user's account (accounts are never deleted)."""
    return one(conn.execute(
        "SELECT account_id, name, active, monthly_event_limit, created_at FROM accounts WHERE account_id = %s",
        (account_id,)))


HOSTS = """
SELECT d.name AS host, d.strip_query_strings, coalesce(f.enabled, true) AS statistics_enabled,
       f.disabled_reason, f.updated_at AS flag_updated_at,
       (SELECT count(*) FROM statistics_tokens t WHERE t.account_id = d.account_id AND t.host = d.name
          AND t.revoked_at IS NULL AND t.expires_at > %(now)s) AS live_tokens,
       (SELECT max(t.expires_at) FROM statistics_tokens t WHERE t.account_id = d.account_id
          AND t.host = d.name AND t.revoked_at IS NULL AND t.expires_at > %(now)s) AS token_expires_at
FROM domains d
LEFT JOIN statistics_flags f ON f.account_id = d.account_id AND f.host = d.name
WHERE d.account_id = %(account_id)s
ORDER BY d.name
"""


def hosts(conn: Conn, account_id: uuid.UUID, now: datetime) -> list[dict]:
    """Each registered domain with its statistics flag and its live tokens (never their values)."""
    return conn.execute(HOSTS, {"account_id": account_id, "now": now}).fetchall()


def api_keys(conn: Conn, account_id: uuid.UUID) -> list[dict]:
    return conn.execute(
        "SELECT key_id, prefix, created_at, revoked_at FROM api_keys WHERE account_id = %s "
        "ORDER BY revoked_at IS NOT NULL, created_at DESC, key_id DESC", (account_id,)).fetchall()


def revoke_api_key(conn: Conn, account_id: uuid.UUID, key_id: int) -> bool:
    row = conn.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE key_id = %s AND account_id = %s "
        "AND revoked_at IS NULL RETURNING key_id", (key_id, account_id)).fetchone()
    return row is not None


def pending_usage(conn: Conn, account_id: uuid.UUID) -> dict:
    """Events stored but not yet counted by a stack flush (the ledger), for this account."""
    return one(conn.execute(
        "SELECT coalesce(sum(total), 0)::bigint AS events, count(*) AS batches, min(created_at) AS oldest "
        "FROM stack_pending WHERE account_id = %s", (account_id,)))
