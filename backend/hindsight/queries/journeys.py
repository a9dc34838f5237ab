"""Journeys: what the statistics stacks' flushes write per session (hindsight.stacks.ledger),
read back for the account page."""

from __future__ import annotations

import uuid

from ..db import Conn

MAX_PAGES = 8   # page steps shown per journey

RECENT = """
SELECT j.journey_id, j.session_id, j.host, j.user_id, j.step_count, j.created_at, j.updated_at,
       ARRAY(SELECT hindsight_url_path(s.page_url) FROM journey_steps s
             WHERE s.journey_id = j.journey_id AND s.step_type = 'page'
             ORDER BY s.step LIMIT %(pages)s) AS pages
FROM journeys j
WHERE j.account_id = %(account_id)s
ORDER BY j.created_at DESC, j.journey_id DESC
LIMIT %(limit)s
"""


def recent(conn: Conn, account_id: uuid.UUID, limit: int = 10) -> list[dict]:
    """The account's newest journeys, each with its step count and first pages (paths)."""
    return conn.execute(RECENT, {"account_id": account_id, "limit": limit, "pages": MAX_PAGES}).fetchall()
