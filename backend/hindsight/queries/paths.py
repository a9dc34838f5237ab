"""Paths: the journeys the statistics stacks write (journeys, journey_steps: seed 000; see
sql/migrations/0011_journeys.sql) read as page-to-page moves — after a given page, where
visitors went next, and before it, where they came from (top N, with counts).

A journey's page steps, in step order, are its pages (`hindsight_url_path`: no host, no
query string). The page after the last one is '(exit)', the one before the first
'(entry)'. A move is counted when the given page's step lies in the range.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from psycopg import sql

from ..db import Conn

EXIT, ENTRY = "(exit)", "(entry)"

_MOVES = """
WITH pages AS (
    SELECT js.journey_id, js."timestamp", hindsight_url_path(js.page_url) AS path,
           lead(hindsight_url_path(js.page_url)) OVER w AS next_path,
           lag(hindsight_url_path(js.page_url)) OVER w AS previous_path
    FROM journeys j
    JOIN journey_steps js ON js.journey_id = j.journey_id AND js.step_type = 'page'
    WHERE j.account_id = %(account_id)s {host}
      AND j.updated_at >= %(start)s
    WINDOW w AS (PARTITION BY js.journey_id ORDER BY js.step)
)
SELECT coalesce({column}, %(edge)s) AS path, count(*) AS moves, count(DISTINCT journey_id) AS sessions
FROM pages
WHERE path = %(page)s AND "timestamp" >= %(start)s AND "timestamp" < %(end)s
GROUP BY 1
ORDER BY moves DESC, path
LIMIT %(limit)s
"""

_TOP = """
SELECT hindsight_url_path(js.page_url) AS path, count(*) AS views, count(DISTINCT js.journey_id) AS sessions
FROM journeys j
JOIN journey_steps js ON js.journey_id = j.journey_id AND js.step_type = 'page'
WHERE j.account_id = %(account_id)s {host} AND j.updated_at >= %(start)s
  AND js."timestamp" >= %(start)s AND js."timestamp" < %(end)s
GROUP BY 1
ORDER BY views DESC, path
LIMIT %(limit)s
"""


def _host(host: str | None) -> sql.Composable:
    return sql.SQL("AND j.host = %(host)s") if host is not None else sql.SQL("")


def moves(conn: Conn, account_id: uuid.UUID, page: str, start: datetime, end: datetime, limit: int,
          host: str | None = None) -> dict[str, list[dict]]:
    """{"next": [...], "previous": [...]}: each {path, moves, sessions}, most frequent first."""
    params = {"account_id": account_id, "page": page, "start": start, "end": end, "limit": limit, "host": host}
    out = {}
    for key, column, edge in (("next", "next_path", EXIT), ("previous", "previous_path", ENTRY)):
        statement = sql.SQL(_MOVES).format(host=_host(host), column=sql.Identifier(column))
        out[key] = conn.execute(statement, {**params, "edge": edge}).fetchall()
    return out


def top_pages(conn: Conn, account_id: uuid.UUID, start: datetime, end: datetime, limit: int,
              host: str | None = None) -> list[dict]:
    """The journeys' most visited pages in the range (to choose one from)."""
    return conn.execute(sql.SQL(_TOP).format(host=_host(host)),
                        {"account_id": account_id, "start": start, "end": end, "limit": limit,
                         "host": host}).fetchall()
