"""The live view's reads: the newest events by the time their batch was received, the
sessions active now, the ingestion rate (hindsight.live polls them; the live page's
snapshot reads them once).

Positions. An event's place in the live stream is (received_at, session_id, seq):
`received_at` is its batch statement's now(), i.e. its transaction's start, and every event
of a batch has the same one. Rows become visible at commit, not in `received_at` order, so
a reader must not move past a `received_at` that a transaction still running may yet
commit: `horizon` is the oldest start of the API's open transactions (application name
`hindsight`, started less than `commit_wait` seconds ago; older ones are not waited for),
read in a statement before the one that reads the rows. Every row whose received_at is
below it has committed (or never will) by the time the next statement looks.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from psycopg import sql

from ..db import Conn, one

Position = tuple[datetime, uuid.UUID, int]

# What the live page shows of an event (small: a viewer may receive hundreds a second).
_EVENT_COLUMNS = sql.SQL("""
    session_id, seq, "timestamp", received_at, host, event_type, page_url, target_selector,
    target_tag, key_pressed,
    CASE WHEN event_type IN ('error', 'network', 'custom', 'page_view', 'visibility')
         THEN event_data END AS event_data
""")

# Events older than this (by their own timestamp) are not live: a tracker delivering a
# day late is stored, but not streamed. It also keeps the read to the newest chunks.
LIVE_AGE = sql.SQL("interval '1 day'")

HORIZON = """
SELECT least(clock_timestamp(), min(xact_start)) AS horizon
FROM pg_stat_activity
WHERE application_name = 'hindsight' AND pid <> pg_backend_pid() AND xact_start IS NOT NULL
  AND xact_start > clock_timestamp() - make_interval(secs => %(commit_wait)s)
"""

# Per account, its newest `limit` events in the range (after, upto]: a poll never reads more
# than a viewer is sent, however fast events arrive (COUNTS counts them all).
_RANGE = sql.SQL("""
    "timestamp" > %(upto_at)s - {live_age}
    AND received_at >= %(after_at)s AND received_at <= %(upto_at)s
    AND (received_at, session_id, seq) > (%(after_at)s, %(after_session)s, %(after_seq)s)
    AND (received_at, session_id, seq) <= (%(upto_at)s, %(upto_session)s, %(upto_seq)s)
""").format(live_age=LIVE_AGE)

NEW_EVENTS = sql.SQL("""
SELECT a.account_id, e.*
FROM unnest(%(accounts)s::uuid[]) AS a(account_id)
CROSS JOIN LATERAL (
    SELECT {event_columns}
    FROM events
    WHERE account_id = a.account_id AND {range}
    ORDER BY received_at DESC, session_id DESC, seq DESC
    LIMIT %(limit)s
) e
""").format(event_columns=_EVENT_COLUMNS, range=_RANGE).as_string()

# Events and batches (a batch: one session's events with one received_at) in the range.
COUNTS = sql.SQL("""
SELECT account_id, count(*) AS events, count(DISTINCT (session_id, received_at)) AS batches
FROM events
WHERE account_id = ANY(%(accounts)s) AND {range}
GROUP BY account_id
""").format(range=_RANGE).as_string()

RECENT_EVENTS = sql.SQL("""
SELECT {event_columns}
FROM events
WHERE account_id = %(account_id)s
  AND "timestamp" > %(horizon)s - {live_age}
  AND received_at > %(horizon)s - make_interval(secs => %(seconds)s) AND received_at < %(horizon)s
ORDER BY received_at DESC, session_id DESC, seq DESC
LIMIT %(limit)s
""").format(event_columns=_EVENT_COLUMNS, live_age=LIVE_AGE).as_string()

# Active sessions: `started_at` bounds the read to the account's sessions of the last day
# (its index), last_activity_at (the newest event's own time) picks the active ones.
_SESSION_COLUMNS = sql.SQL("""
    s.session_id, s.host, s.device_type, s.browser, s.os, s.started_at, s.last_activity_at,
    s.event_count, s.error_count,
    extract(epoch FROM s.last_activity_at - s.started_at)::float8 AS duration_seconds,
    coalesce((SELECT e.page_url FROM events e
              WHERE e.session_id = s.session_id AND e.page_url IS NOT NULL
                AND e."timestamp" > s.last_activity_at - interval '1 hour'
              ORDER BY e."timestamp" DESC, e.seq DESC LIMIT 1), s.page_url) AS current_page
""")

ACTIVE_SESSIONS = sql.SQL("""
SELECT {session_columns}
FROM sessions s
WHERE s.account_id = %(account_id)s
  AND s.started_at > %(now)s - interval '1 day'
  AND s.last_activity_at > %(now)s - make_interval(secs => %(active_seconds)s)
  AND s.ended_at IS NULL
ORDER BY s.last_activity_at DESC
LIMIT %(limit)s
""").format(session_columns=_SESSION_COLUMNS).as_string()

SESSIONS_BY_ID = sql.SQL("""
SELECT s.account_id, {session_columns}
FROM sessions s
WHERE s.session_id = ANY(%(session_ids)s)
""").format(session_columns=_SESSION_COLUMNS).as_string()

# Events and batches (a batch: the events of one session with one received_at) per
# `bucket` seconds over the last `seconds`.
RATE = sql.SQL("""
SELECT to_timestamp(floor(extract(epoch FROM received_at) / %(bucket)s) * %(bucket)s) AS bucket,
       count(*) AS events, count(DISTINCT (session_id, received_at)) AS batches
FROM events
WHERE account_id = %(account_id)s
  AND "timestamp" > %(horizon)s - {live_age}
  AND received_at > %(horizon)s - make_interval(secs => %(seconds)s) AND received_at < %(horizon)s
GROUP BY 1 ORDER BY 1
""").format(live_age=LIVE_AGE).as_string()

SESSION_LIVE = """
SELECT s.last_activity_at, s.ended_at, s.event_count,
       (s.ended_at IS NULL AND s.last_activity_at > %(now)s - make_interval(secs => %(active_seconds)s))
           AS live
FROM sessions s WHERE s.session_id = %(session_id)s AND s.account_id = %(account_id)s
"""


def horizon(conn: Conn, commit_wait: float) -> datetime:
    return one(conn.execute(HORIZON, {"commit_wait": commit_wait}))["horizon"]


def _range(after: Position, upto: Position) -> dict[str, Any]:
    return {"after_at": after[0], "after_session": after[1], "after_seq": after[2],
            "upto_at": upto[0], "upto_session": upto[1], "upto_seq": upto[2]}


def new_events(conn: Conn, accounts: list[uuid.UUID], after: Position, upto: Position,
               limit: int) -> list[dict[str, Any]]:
    """Per account, its newest `limit` events after position `after` up to `upto` (included),
    newest first."""
    return conn.execute(NEW_EVENTS, {"accounts": accounts, "limit": limit, **_range(after, upto)}).fetchall()


def counts(conn: Conn, accounts: list[uuid.UUID], after: Position, upto: Position) -> dict[uuid.UUID, dict]:
    """Per account, its events and batches after `after` up to `upto`."""
    rows = conn.execute(COUNTS, {"accounts": accounts, **_range(after, upto)}).fetchall()
    return {r["account_id"]: {"events": r["events"], "batches": r["batches"]} for r in rows}


def recent_events(conn: Conn, account_id: uuid.UUID, before: datetime, seconds: float,
                  limit: int) -> list[dict[str, Any]]:
    """The account's newest events received in the last `seconds` before `before`, newest first."""
    return conn.execute(RECENT_EVENTS, {"account_id": account_id, "horizon": before,
                                        "seconds": seconds, "limit": limit}).fetchall()


def active_sessions(conn: Conn, account_id: uuid.UUID, now: datetime, active_seconds: float,
                    limit: int) -> list[dict[str, Any]]:
    return conn.execute(ACTIVE_SESSIONS, {"account_id": account_id, "now": now,
                                          "active_seconds": active_seconds, "limit": limit}).fetchall()


def sessions_by_id(conn: Conn, session_ids: list[uuid.UUID]) -> list[dict[str, Any]]:
    if not session_ids:
        return []
    return conn.execute(SESSIONS_BY_ID, {"session_ids": session_ids}).fetchall()


def rate(conn: Conn, account_id: uuid.UUID, before: datetime, seconds: float,
         bucket: int) -> list[dict[str, Any]]:
    return conn.execute(RATE, {"account_id": account_id, "horizon": before, "seconds": seconds,
                               "bucket": bucket}).fetchall()


def session_live(conn: Conn, account_id: uuid.UUID, session_id: uuid.UUID, now: datetime,
                 active_seconds: float) -> dict[str, Any] | None:
    return conn.execute(SESSION_LIVE, {"account_id": account_id, "session_id": session_id,
                                       "now": now, "active_seconds": active_seconds}).fetchone()
