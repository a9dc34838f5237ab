"""Custom events (`hindsight.track(name, props)` and POST /api/v1/events): what the API's
server-side writes look up, and the reads — counts and unique visitors by name, a
property's values, a rate between two events that share a property, a series.

A custom event is an `events` row with event_type 'custom' and event_data
`{"name": ..., "props": {...}}`. The reads scan the raw rows of the range through
`events_account_type_time_idx` (account, event_type, time); visitors are
`count(DISTINCT sessions.visitor_id)` (sessions without a visitor id are not counted as
visitors). bench/funnels.py measures them at 10 M events (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from psycopg import sql

from ..db import Conn

# ---------------------------------------------------------------- writes' look-ups

ACCOUNT_DOMAINS = """
SELECT d.name, d.strip_query_strings, coalesce(f.enabled, true) AS statistics_enabled
FROM domains d
LEFT JOIN statistics_flags f ON f.account_id = d.account_id AND f.host = d.name
WHERE d.account_id = %s
ORDER BY length(d.name) DESC
"""


def account_domains(conn: Conn, account_id: uuid.UUID) -> list[dict]:
    """The account's registered domains, most specific first, with their write flags."""
    return conn.execute(ACCOUNT_DOMAINS, (account_id,)).fetchall()


def sessions_by_id(conn: Conn, session_ids: list[uuid.UUID]) -> dict[uuid.UUID, dict]:
    rows = conn.execute("SELECT session_id, account_id, host, started_at FROM sessions "
                        "WHERE session_id = ANY(%s)", (session_ids,)).fetchall()
    return {r["session_id"]: r for r in rows}


# ---------------------------------------------------------------- reads

_HOST = sql.SQL("AND e.host = %(host)s")
_NO_HOST = sql.SQL("")

# Event names: events, sessions and visitors each.
NAMES = """
SELECT e.event_data->>'name' AS name, count(*) AS events,
       count(DISTINCT e.session_id) AS sessions, count(DISTINCT s.visitor_id) AS visitors
FROM events e
LEFT JOIN sessions s ON s.session_id = e.session_id
WHERE e.account_id = %(account_id)s AND e.event_type = 'custom'
  AND e."timestamp" >= %(start)s AND e."timestamp" < %(end)s {host}
GROUP BY 1
ORDER BY events DESC, name
LIMIT %(limit)s
"""

# One property's values for one event name (top N); the rest is `total` - their sum.
PROPERTY_VALUES = """
WITH matching AS (
    SELECT e.session_id, e.event_data->'props'->>%(property)s AS value
    FROM events e
    WHERE e.account_id = %(account_id)s AND e.event_type = 'custom'
      AND e.event_data->>'name' = %(name)s
      AND e."timestamp" >= %(start)s AND e."timestamp" < %(end)s {host}
)
SELECT m.value, count(*) AS events, count(DISTINCT s.visitor_id) AS visitors,
       sum(count(*)) OVER () AS total
FROM matching m
LEFT JOIN sessions s ON s.session_id = m.session_id
GROUP BY m.value
ORDER BY events DESC, m.value NULLS LAST
LIMIT %(limit)s
"""

# A rate between two events that share a property, per value of that property (seed 002's
# click-through rate: widget_click / widget_impression per mapping_id).
RATE = """
WITH matching AS (
    SELECT e.session_id, e.event_data->>'name' = %(numerator)s AS is_numerator,
           e.event_data->>'name' = %(denominator)s AS is_denominator,
           e.event_data->'props'->>%(property)s AS value
    FROM events e
    WHERE e.account_id = %(account_id)s AND e.event_type = 'custom'
      AND e.event_data->>'name' IN (%(numerator)s, %(denominator)s)
      AND e.event_data->'props' ? %(property)s
      AND e."timestamp" >= %(start)s AND e."timestamp" < %(end)s {host}
)
SELECT m.value,
       count(*) FILTER (WHERE m.is_numerator) AS numerator,
       count(*) FILTER (WHERE m.is_denominator) AS denominator,
       count(DISTINCT s.visitor_id) FILTER (WHERE m.is_numerator) AS numerator_visitors,
       count(DISTINCT s.visitor_id) FILTER (WHERE m.is_denominator) AS denominator_visitors
FROM matching m
LEFT JOIN sessions s ON s.session_id = m.session_id
GROUP BY m.value
ORDER BY denominator DESC, numerator DESC, m.value
LIMIT %(limit)s
"""

# Events of one name per bucket (zeros included), optionally where a property has a value.
SERIES = """
WITH matching AS (
    SELECT time_bucket(%(width)s::interval, e."timestamp") AS bucket, e.session_id
    FROM events e
    WHERE e.account_id = %(account_id)s AND e.event_type = 'custom'
      AND e.event_data->>'name' = %(name)s
      AND (%(property)s::text IS NULL OR e.event_data->'props'->>%(property)s = %(value)s::text)
      AND e."timestamp" >= %(start)s AND e."timestamp" < %(end)s {host}
), counted AS (
    SELECT m.bucket, count(*) AS events, count(DISTINCT s.visitor_id) AS visitors
    FROM matching m
    LEFT JOIN sessions s ON s.session_id = m.session_id
    GROUP BY m.bucket
)
SELECT b AS bucket, coalesce(c.events, 0) AS events, coalesce(c.visitors, 0) AS visitors
FROM generate_series(%(start)s::timestamptz, %(end)s::timestamptz - %(width)s::interval,
                     %(width)s::interval) AS b
LEFT JOIN counted c ON c.bucket = b
ORDER BY b
"""


def _run(conn: Conn, statement: str, params: dict[str, Any]) -> list[dict]:
    host = _HOST if params.get("host") is not None else _NO_HOST
    conn.execute("SET LOCAL jit = off")  # one scan per chunk: compiling it costs more than running it
    return conn.execute(sql.SQL(statement).format(host=host), params).fetchall()


def names(conn: Conn, account_id: uuid.UUID, start: datetime, end: datetime, limit: int,
          host: str | None = None) -> list[dict]:
    return _run(conn, NAMES, {"account_id": account_id, "start": start, "end": end, "limit": limit,
                              "host": host})


def property_values(conn: Conn, account_id: uuid.UUID, name: str, prop: str, start: datetime,
                    end: datetime, limit: int, host: str | None = None) -> dict[str, Any]:
    rows = _run(conn, PROPERTY_VALUES, {"account_id": account_id, "name": name, "property": prop,
                                        "start": start, "end": end, "limit": limit, "host": host})
    total = int(rows[0]["total"]) if rows else 0
    return {"total": total, "data": [{"value": r["value"], "events": r["events"], "visitors": r["visitors"]}
                                     for r in rows]}


def rate(conn: Conn, account_id: uuid.UUID, numerator: str, denominator: str, prop: str,
         start: datetime, end: datetime, limit: int, host: str | None = None) -> list[dict]:
    rows = _run(conn, RATE, {"account_id": account_id, "numerator": numerator, "denominator": denominator,
                             "property": prop, "start": start, "end": end, "limit": limit, "host": host})
    for r in rows:
        r["rate"] = (r["numerator"] / r["denominator"]) if r["denominator"] else None
    return rows


def series(conn: Conn, account_id: uuid.UUID, name: str, start: datetime, end: datetime, width,
           prop: str | None = None, value: str | None = None, host: str | None = None) -> list[dict]:
    return _run(conn, SERIES, {"account_id": account_id, "name": name, "property": prop, "value": value,
                               "start": start, "end": end, "width": width, "host": host})
