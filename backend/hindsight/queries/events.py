"""Events: store a batch idempotently, read a session's events in order."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from typing import Any

import psycopg

# Columns filled from the tracker's event, in the order of the unnest() below.
EVENT_FIELDS = (
    "seq", "timestamp", "event_type", "page_url", "target_element", "target_selector",
    "target_tag", "target_id", "target_class", "viewport_x", "viewport_y", "screen_x",
    "screen_y", "scroll_x", "scroll_y", "input_value", "input_masked", "key_pressed",
    "mouse_button", "click_count", "event_data",
)
_TYPES = (
    "bigint", "timestamptz", "text", "text", "text", "text", "text", "text", "text", "int",
    "int", "int", "int", "int", "int", "text", "boolean", "text", "smallint", "smallint", "text",
)

# One statement: insert the new events (a re-sent seq is skipped), then move the
# session's counters and last activity by exactly what was inserted.
INSERT_BATCH = """
WITH inserted AS (
    INSERT INTO events (session_id, account_id, host, {columns})
    SELECT %(session_id)s, %(account_id)s, %(host)s, {select}
    FROM unnest({arrays}) AS u({columns})
    ON CONFLICT DO NOTHING
    RETURNING event_type, "timestamp"
), counted AS (
    SELECT count(*) AS n,
           count(*) FILTER (WHERE event_type = 'page_view') AS page_views,
           count(*) FILTER (WHERE event_type = 'click') AS clicks,
           count(*) FILTER (WHERE event_type = 'error') AS errors,
           max("timestamp") AS last_at
    FROM inserted
)
UPDATE sessions s SET
    event_count = s.event_count + c.n,
    page_view_count = s.page_view_count + c.page_views,
    click_count = s.click_count + c.clicks,
    error_count = s.error_count + c.errors,
    last_activity_at = greatest(s.last_activity_at, c.last_at)
FROM counted c
WHERE s.session_id = %(session_id)s
RETURNING c.n AS inserted
""".format(
    columns=", ".join(f'"{c}"' if c == "timestamp" else c for c in EVENT_FIELDS),
    select=", ".join(
        "u.event_data::jsonb" if c == "event_data" else ('u."timestamp"' if c == "timestamp" else f"u.{c}")
        for c in EVENT_FIELDS
    ),
    arrays=", ".join(f"%({c})s::{t}[]" for c, t in zip(EVENT_FIELDS, _TYPES, strict=True)),
)


def columns_of(events: list[dict[str, Any]], strip_query) -> dict[str, list]:
    """Turn validated events into one list per column (the arrays unnest() takes)."""
    arrays: dict[str, list] = {c: [] for c in EVENT_FIELDS}
    for event in events:
        for c in EVENT_FIELDS:
            value = event.get(c)
            if c == "event_data" and value is not None:
                value = json.dumps(value, separators=(",", ":"))
            elif c == "page_url" and strip_query is not None:
                value = strip_query(value)
            arrays[c].append(value)
    return arrays


def insert_batch(conn: psycopg.Connection, session_id: uuid.UUID, account_id: uuid.UUID,
                 host: str, arrays: dict[str, list]) -> int:
    """Store a batch; return how many events were new. Runs in the caller's transaction."""
    params = {"session_id": session_id, "account_id": account_id, "host": host, **arrays}
    row = conn.execute(INSERT_BATCH, params, prepare=True).fetchone()
    return row["inserted"] if row else 0


def type_counts(events: list[dict[str, Any]]) -> Counter:
    return Counter(event["event_type"] for event in events)


EVENT_COLUMNS = ("seq", '"timestamp"') + tuple(
    c for c in EVENT_FIELDS if c not in ("seq", "timestamp")
)


def list_events(conn: psycopg.Connection, session_id: uuid.UUID, limit: int, offset: int) -> list[dict]:
    """A page of a session's events in time order (ties broken by seq)."""
    return conn.execute(
        f"SELECT {', '.join(EVENT_COLUMNS)} FROM events WHERE session_id = %s "
        'ORDER BY "timestamp", seq LIMIT %s OFFSET %s',
        (session_id, limit, offset),
    ).fetchall()
