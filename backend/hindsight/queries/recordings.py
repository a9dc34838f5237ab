"""DOM recording segments (0019): store one, list a session's, read one's bytes.

Every statement names the session's start (`session_started_at`, the hypertable's
partitioning column), so it touches the one chunk that holds the session's segments.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from ..db import Conn


@dataclass(frozen=True)
class Segment:
    """A decoded, validated segment, ready to store."""

    segment: int
    started_at: datetime
    ended_at: datetime
    event_count: int
    full_snapshot: bool
    data: bytes          # gzip of the JSON array
    json_bytes: int


# One statement: the segment, and the session's last activity when it was new. The
# session row is read through the account, so a session of another account stores nothing.
STORE = """
WITH session AS (
    SELECT session_id, started_at FROM sessions
    WHERE session_id = %(session_id)s AND account_id = %(account_id)s
), stored AS (
    INSERT INTO recording_segments (session_id, session_started_at, segment, account_id, host,
                                    started_at, ended_at, event_count, full_snapshot, data,
                                    gzip_bytes, json_bytes)
    SELECT session_id, started_at, %(segment)s, %(account_id)s, %(host)s, %(started_at)s,
           %(ended_at)s, %(event_count)s, %(full_snapshot)s, %(data)s, %(gzip_bytes)s, %(json_bytes)s
    FROM session
    ON CONFLICT DO NOTHING
    RETURNING session_id
), touched AS (
    UPDATE sessions SET last_activity_at = %(ended_at)s
    WHERE session_id = %(session_id)s AND last_activity_at < %(ended_at)s
      AND EXISTS (SELECT 1 FROM stored)
)
SELECT (SELECT count(*) FROM session) AS sessions, (SELECT count(*) FROM stored) AS stored
"""

SESSION_START = "SELECT started_at FROM sessions WHERE session_id = %s AND account_id = %s"

# A segment by its key: the session's start names its chunk.
SEGMENT = """
SELECT {columns} FROM recording_segments
WHERE session_id = %(session_id)s AND session_started_at = %(session_started_at)s AND segment = %(segment)s
"""

# A page of the session's segments after segment `after`, in order. With `from`, the list
# starts at the last full snapshot taken at or before it (a player needs it to show that
# moment; segment numbers follow time within a session); with `to`, it ends with the last
# segment that starts by then.
SEGMENTS = """
SELECT segment, started_at, ended_at, event_count AS events, full_snapshot, gzip_bytes AS bytes
FROM recording_segments
WHERE session_id = %(session_id)s AND session_started_at = %(session_started_at)s
  AND segment > %(after)s
  AND (%(to)s::timestamptz IS NULL OR started_at <= %(to)s)
  AND (%(from)s::timestamptz IS NULL OR segment >= coalesce((
        SELECT max(segment) FROM recording_segments
        WHERE session_id = %(session_id)s AND session_started_at = %(session_started_at)s
          AND full_snapshot AND started_at <= %(from)s), 0))
ORDER BY segment
LIMIT %(limit)s
"""
MAX_SEGMENTS_PAGE = 1000


def session_start(conn: Conn, account_id: uuid.UUID, session_id: uuid.UUID) -> datetime | None:
    """When the account's session started (None: the account has no such session)."""
    row = conn.execute(SESSION_START, (session_id, account_id)).fetchone()
    return None if row is None else row["started_at"]


def _segment(conn: Conn, columns: str, account_id: uuid.UUID, session_id: uuid.UUID,
             segment: int) -> dict | None:
    started = session_start(conn, account_id, session_id)
    if started is None:
        return None
    return conn.execute(SEGMENT.format(columns=columns), {
        "session_id": session_id, "session_started_at": started, "segment": segment}).fetchone()


def stored_count(conn: Conn, account_id: uuid.UUID, session_id: uuid.UUID, segment: int) -> int | None:
    """The event count of the segment if it is stored already (a re-send), else None."""
    row = _segment(conn, "event_count", account_id, session_id, segment)
    return None if row is None else row["event_count"]


def store(conn: Conn, account_id: uuid.UUID, host: str, session_id: uuid.UUID,
          seg: Segment) -> tuple[bool, int] | None:
    """Store the segment once; return (created, event count stored), or None when the
    account has no such session."""
    row = conn.execute(STORE, {
        "session_id": session_id, "account_id": account_id, "host": host, "segment": seg.segment,
        "started_at": seg.started_at, "ended_at": seg.ended_at, "event_count": seg.event_count,
        "full_snapshot": seg.full_snapshot, "data": seg.data, "gzip_bytes": len(seg.data),
        "json_bytes": seg.json_bytes,
    }).fetchone()
    if row is None or not row["sessions"]:
        return None
    if row["stored"]:
        return True, seg.event_count
    # Stored before (a re-send that raced the first one): answer with what is stored.
    existing = stored_count(conn, account_id, session_id, seg.segment)
    return False, seg.event_count if existing is None else existing


def list_for_session(conn: Conn, account_id: uuid.UUID, session_id: uuid.UUID, *,
                     after: int = -1, limit: int = MAX_SEGMENTS_PAGE, start: datetime | None = None,
                     end: datetime | None = None) -> list[dict] | None:
    """The session's segments in order, at most `limit` after segment `after`, within the
    window [start, end] as SEGMENTS describes (None: no such session in the account)."""
    started = session_start(conn, account_id, session_id)
    if started is None:
        return None
    return conn.execute(SEGMENTS, {"session_id": session_id, "session_started_at": started,
                                   "after": after, "limit": limit, "from": start, "to": end}).fetchall()


def segment_data(conn: Conn, account_id: uuid.UUID, session_id: uuid.UUID, segment: int) -> bytes | None:
    """The segment's gzip bytes (None: no such segment of a session of the account)."""
    row = _segment(conn, "data", account_id, session_id, segment)
    return None if row is None else bytes(row["data"])
