"""Screenshots: content-addressed images plus per-session references."""

from __future__ import annotations

import uuid
from datetime import datetime

from psycopg import sql
from psycopg.types.json import Jsonb

from ..db import Conn, one
from .writers import STRIPPED_URL

_INSERT_SCREENSHOT = sql.SQL("""
INSERT INTO screenshots (session_id, account_id, host, page_url, "timestamp", content_hash, width, height,
                         elements)
VALUES (%(session_id)s, %(account_id)s, %(host)s, {page_url}, %(timestamp)s, %(content_hash)s,
        %(width)s, %(height)s, %(elements)s)
ON CONFLICT (session_id, "timestamp", content_hash) DO NOTHING
RETURNING screenshot_id
""").format(page_url=sql.SQL(STRIPPED_URL.format(strip="%(strip_query)s::boolean", url="%(page_url)s::text")))


def store(conn: Conn, *, content_hash: bytes, image: bytes, image_format: str,
          width: int, height: int, session_id: uuid.UUID, account_id: uuid.UUID, host: str,
          page_url: str | None, timestamp: datetime, strip_query: bool = False,
          elements: list[dict] | None = None) -> tuple[int, bool]:
    """Store the image once and reference it from the session; return (id, created).

    Runs in the caller's transaction. A re-sent upload returns the existing id. With
    `strip_query`, the page URL is stored without its query string (writers.STRIPPED_URL).
    `elements` (schemas.ScreenshotElementSchema) are stored as [selector, x, y, width, height].
    """
    insert_image = """
        INSERT INTO screenshot_images (content_hash, image_data, image_format, image_width,
                                       image_height, file_size)
        VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (content_hash) DO NOTHING
    """
    image_row = (content_hash, image, image_format, width, height, len(image))
    conn.execute(insert_image, image_row)
    # Hold the image against the retention job's reclaim of unreferenced images until
    # our reference commits; if it was reclaimed between the two statements, store it again.
    kept = conn.execute("SELECT 1 FROM screenshot_images WHERE content_hash = %s FOR KEY SHARE",
                        (content_hash,)).fetchone()
    if kept is None:
        conn.execute(insert_image, image_row)
    row = conn.execute(_INSERT_SCREENSHOT, {
        "session_id": session_id, "account_id": account_id, "host": host, "page_url": page_url,
        "strip_query": strip_query, "timestamp": timestamp, "content_hash": content_hash,
        "width": width, "height": height,
        "elements": None if elements is None else Jsonb(
            [[e["selector"], e["x"], e["y"], e["width"], e["height"]] for e in elements if e["selector"]]),
    }).fetchone()
    if row is None:  # the insert conflicted: the screenshot exists
        existing = one(conn.execute(
            'SELECT screenshot_id FROM screenshots WHERE session_id = %s AND "timestamp" = %s '
            "AND content_hash = %s",
            (session_id, timestamp, content_hash),
        ))
        return existing["screenshot_id"], False
    conn.execute(
        "UPDATE sessions SET screenshot_count = screenshot_count + 1, "
        "last_activity_at = greatest(last_activity_at, %s) WHERE session_id = %s",
        (timestamp, session_id),
    )
    return row["screenshot_id"], True


def list_for_session(conn: Conn, session_id: uuid.UUID) -> list[dict]:
    return conn.execute(
        """
        SELECT s.screenshot_id, s.page_url, s."timestamp", s.width, s.height,
               i.image_format, i.file_size, encode(s.content_hash, 'hex') AS content_hash
        FROM screenshots s JOIN screenshot_images i USING (content_hash)
        WHERE s.session_id = %s ORDER BY s."timestamp", s.screenshot_id
        """,
        (session_id,),
    ).fetchall()


def image(conn: Conn, account_id: uuid.UUID, screenshot_id: int) -> dict | None:
    return conn.execute(
        """
        SELECT i.image_data, i.image_format, encode(s.content_hash, 'hex') AS content_hash
        FROM screenshots s JOIN screenshot_images i USING (content_hash)
        WHERE s.screenshot_id = %s AND s.account_id = %s
        """,
        (screenshot_id, account_id),
    ).fetchone()


# The device class of a viewport width: screenshots of one page differ by layout, and a
# layout follows the width (phone < 768 CSS px <= tablet < 1200 <= desktop).
_WIDTH_CLASS = "(CASE WHEN coalesce({w}, 0) < 768 THEN 0 WHEN {w} < 1200 THEN 1 ELSE 2 END)"

# Whether the account already holds a screenshot of this page (its page key, hindsight_url_path:
# path and hash route, no query, no anchor) for this session's device class, taken since
# `since`. No row: no such session.
_FRESH_SCREENSHOT = sql.SQL("""
WITH me AS (
    SELECT account_id, host, viewport_width FROM sessions WHERE session_id = %(session_id)s
)
SELECT me.host, EXISTS (
    SELECT 1
    FROM screenshots sc
    JOIN sessions s ON s.session_id = sc.session_id
    WHERE sc.account_id = me.account_id AND sc.host = me.host
      AND sc."timestamp" >= %(since)s
      AND hindsight_url_path(sc.page_url) = hindsight_url_path(%(page_url)s::text)
      AND {theirs} = {mine}
) AS fresh
FROM me
""").format(theirs=sql.SQL(_WIDTH_CLASS.format(w="s.viewport_width")),
            mine=sql.SQL(_WIDTH_CLASS.format(w="me.viewport_width")))


def fresh_screenshot(conn: Conn, session_id: uuid.UUID, page_url: str, since: datetime) -> dict | None:
    """{host, fresh} for the session's account, or None when the session is unknown."""
    return conn.execute(_FRESH_SCREENSHOT, {"session_id": session_id, "page_url": page_url,
                                            "since": since}).fetchone()
