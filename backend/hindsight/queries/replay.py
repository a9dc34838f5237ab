"""What the replay's timeline shows of a session: its markers (page views, clicks with
rage clicks marked, errors, failed requests). Its events, screenshots and recording are
read as the API reads them (events.py, screenshots.py, recordings.py)."""

from __future__ import annotations

import uuid
from datetime import datetime

from psycopg import sql

from ..db import Conn
from .events import rage_click

# A network failure: no answer (status 0) or an HTTP error.
NETWORK_FAILED = "coalesce((e.event_data->>'status')::numeric, 0) NOT BETWEEN 1 AND 399"

MAX_MARKERS = 5000

MARKERS = sql.SQL("""
SELECT e.seq, e."timestamp", e.event_type, e.page_url, e.target_selector,
       e.viewport_x, e.viewport_y,
       {rage_click} AS rage,
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
""").format(rage_click=sql.SQL(rage_click("e.")), network_failed=sql.SQL(NETWORK_FAILED))


def markers(conn: Conn, account_id: uuid.UUID, session_id: uuid.UUID,
            started_at: datetime) -> list[dict]:
    """The replay timeline's markers: page views, clicks (rage marked), errors, failed requests."""
    # started_at (with a day's margin for clocks) skips the chunks before the session.
    return conn.execute(MARKERS, {"session_id": session_id, "account_id": account_id,
                                  "started_at": started_at, "limit": MAX_MARKERS}).fetchall()
