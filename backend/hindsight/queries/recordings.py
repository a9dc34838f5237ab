"""DOM recording segments (0019) and their blobs (0028): authorize and check for a re-send
in one statement, store one (with its blobs) in one, list a session's, read one's JSON.

Every statement names the session's start (`session_started_at`, the hypertable's
partitioning column), so it touches the one chunk that holds the session's segments.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from .. import recording_blobs
from ..db import Conn
from .writers import WRITER


@dataclass(frozen=True)
class Segment:
    """A decoded, validated segment, ready to store."""

    segment: int
    started_at: datetime
    ended_at: datetime
    event_count: int
    full_snapshot: bool
    data: bytes          # gzip of the JSON array (of its rest, when blobs were cut out)
    json_bytes: int
    # The large literals cut out (hindsight.recording_blobs): where each goes back in the
    # rest, which it is, and each distinct one once. Empty: `data` is the whole JSON.
    blob_offsets: tuple[int, ...] = ()
    blob_hashes: tuple[bytes, ...] = ()
    blobs: tuple[recording_blobs.Blob, ...] = ()


# The upload's first statement: the writer's checks (queries/writers.WRITER) and, when
# the session is the writer's, the event count of the segment if it is stored already.
WRITER_AND_STORED = "".join(("\nWITH writer AS (", WRITER, """
), started AS (
    SELECT s.started_at FROM sessions s JOIN writer w ON w.account_id = s.account_id
    WHERE s.session_id = %(session_id)s
)
SELECT writer.*, (SELECT r.event_count FROM recording_segments r
                  WHERE r.session_id = %(session_id)s AND r.segment = %(segment)s
                    AND r.session_started_at = (SELECT started_at FROM started)) AS stored_events
FROM writer
"""))

# One statement: the blobs (each upserted, which locks it against a concurrent reclaim
# until this commits: 0028; in the order of their hashes, as every writer and erasure lock
# them), the segment, and the session's last activity when it was new. The session row is read through the account, so a session of another account
# stores nothing.
STORE = """
WITH session AS (
    SELECT session_id, started_at FROM sessions
    WHERE session_id = %(session_id)s AND account_id = %(account_id)s
), blobs AS (
    INSERT INTO recording_blobs AS b (account_id, sha256, data, gzip_bytes, json_bytes,
                                      first_session_at, last_session_at)
    SELECT %(account_id)s, u.sha256, u.data, octet_length(u.data), u.json_bytes,
           session.started_at, session.started_at
    FROM session, unnest(%(blob_sha256)s::bytea[], %(blob_data)s::bytea[], %(blob_json)s::integer[])
                  AS u(sha256, data, json_bytes)
    ON CONFLICT (account_id, sha256) DO UPDATE
        SET first_session_at = least(b.first_session_at, excluded.first_session_at),
            last_session_at = greatest(b.last_session_at, excluded.last_session_at)
        WHERE b.first_session_at > excluded.first_session_at
           OR b.last_session_at < excluded.last_session_at
), stored AS (
    INSERT INTO recording_segments (session_id, session_started_at, segment, account_id, host,
                                    started_at, ended_at, event_count, full_snapshot, data,
                                    gzip_bytes, json_bytes, blobs, blob_offsets)
    SELECT session_id, started_at, %(segment)s, %(account_id)s, %(host)s, %(started_at)s,
           %(ended_at)s, %(event_count)s, %(full_snapshot)s, %(data)s, %(gzip_bytes)s, %(json_bytes)s,
           %(blobs)s::bytea[], %(blob_offsets)s::integer[]
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
SELECT {columns} FROM recording_segments s
WHERE session_id = %(session_id)s AND session_started_at = %(session_started_at)s AND segment = %(segment)s
"""

# What a read needs to give back the segment's JSON: its blobs' bytes in the order of
# `blobs` (NULL where one is missing: recording_blobs.resolve refuses the segment).
BODY_COLUMNS = """s.data, s.json_bytes, s.blobs, s.blob_offsets,
    CASE WHEN s.blobs IS NOT NULL THEN ARRAY(
        SELECT b.data FROM unnest(s.blobs) WITH ORDINALITY AS u(sha256, i)
        LEFT JOIN recording_blobs b ON b.account_id = s.account_id AND b.sha256 = u.sha256
        ORDER BY u.i) END AS blob_data"""

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


def writer_and_stored(conn: Conn, params: dict, segment: int) -> dict | None:
    """The writer's row (queries/writers.WRITER's columns, for ingestion.authorize.explain)
    with `stored_events`: the segment's event count if it is stored already, else None.
    None: no such token."""
    return conn.execute(WRITER_AND_STORED, {**params, "segment": segment}, prepare=True).fetchone()


def stored_count(conn: Conn, account_id: uuid.UUID, session_id: uuid.UUID, segment: int) -> int | None:
    """The event count of the segment if it is stored already (a re-send), else None."""
    row = _segment(conn, "event_count", account_id, session_id, segment)
    return None if row is None else row["event_count"]


def store(conn: Conn, account_id: uuid.UUID, host: str, session_id: uuid.UUID,
          seg: Segment) -> tuple[bool, int] | None:
    """Store the segment once, with its blobs; return (created, event count stored), or
    None when the account has no such session. One statement: atomic without a
    transaction of its own."""
    refs = bool(seg.blob_hashes)
    blobs = sorted(seg.blobs, key=lambda b: b.sha256)   # one lock order for every writer: no deadlock
    row = conn.execute(STORE, {
        "session_id": session_id, "account_id": account_id, "host": host, "segment": seg.segment,
        "started_at": seg.started_at, "ended_at": seg.ended_at, "event_count": seg.event_count,
        "full_snapshot": seg.full_snapshot, "data": seg.data, "gzip_bytes": len(seg.data),
        "json_bytes": seg.json_bytes,
        "blob_sha256": [b.sha256 for b in blobs], "blob_data": [b.data for b in blobs],
        "blob_json": [b.json_bytes for b in blobs],
        "blobs": list(seg.blob_hashes) if refs else None,
        "blob_offsets": list(seg.blob_offsets) if refs else None,
    }, prepare=True).fetchone()
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

SEGMENT_BODIES = ("SELECT s.session_id, s.segment, s.started_at, s.ended_at, s.event_count, s.full_snapshot, "
                  + BODY_COLUMNS + """
FROM recording_segments s
WHERE s.account_id = %s AND s.session_id = ANY(%s) ORDER BY s.session_id, s.segment
""")


def segment_data(conn: Conn, account_id: uuid.UUID, session_id: uuid.UUID,
                 segment: int) -> recording_blobs.Body | None:
    """The segment's JSON, exactly as sent: the stored gzip when no blob was cut out of it,
    else spliced back together (None: no such segment of a session of the account)."""
    row = _segment(conn, BODY_COLUMNS, account_id, session_id, segment)
    return None if row is None else recording_blobs.resolve(row)


def segment_bodies(conn: Conn, account_id: uuid.UUID, session_ids: list[uuid.UUID]) -> list[dict]:
    """Every segment of these sessions of the account (session_id, segment, started_at,
    ended_at, event_count, full_snapshot) with its JSON, exactly as sent (`json`: bytes)."""
    rows = conn.execute(SEGMENT_BODIES, (account_id, session_ids)).fetchall()
    for row in rows:
        row["json"] = recording_blobs.resolve(row).json()
        for column in ("data", "json_bytes", "blobs", "blob_offsets", "blob_data"):
            del row[column]
    return rows


# Reclaim (0028): lock the candidates first, then check for references in a new statement
# (a write that references a blob holds its row locked until it commits).
LOCK_BLOBS = """
SELECT sha256 FROM recording_blobs WHERE account_id = %s AND sha256 = ANY(%s)
ORDER BY sha256 FOR UPDATE
"""
LOCK_UNUSED_CANDIDATES = """
SELECT account_id, sha256 FROM recording_blobs b
WHERE NOT EXISTS (SELECT 1 FROM recording_segments r
                  WHERE r.account_id = b.account_id AND r.blobs @> ARRAY[b.sha256]
                    AND r.session_started_at BETWEEN b.first_session_at AND b.last_session_at)
LIMIT %s FOR UPDATE SKIP LOCKED
"""
DELETE_UNUSED = """
DELETE FROM recording_blobs b
USING unnest(%s::uuid[], %s::bytea[]) AS c(account_id, sha256)
WHERE b.account_id = c.account_id AND b.sha256 = c.sha256
  AND NOT EXISTS (SELECT 1 FROM recording_segments r
                  WHERE r.account_id = b.account_id AND r.blobs @> ARRAY[b.sha256]
                    AND r.session_started_at BETWEEN b.first_session_at AND b.last_session_at)
RETURNING b.gzip_bytes
"""


def delete_unused_blobs(conn: Conn, account_id: uuid.UUID, hashes: list[bytes]) -> int:
    """Delete those of the account's blobs `hashes` names that no segment references any
    more; the number deleted. Run it in a transaction (the locks must last until the
    delete)."""
    if not hashes:
        return 0
    locked = [r["sha256"] for r in conn.execute(LOCK_BLOBS, (account_id, sorted(set(hashes)))).fetchall()]
    if not locked:
        return 0
    return len(conn.execute(DELETE_UNUSED, ([account_id] * len(locked), locked)).fetchall())


def reclaim_blobs(conn: Conn, batch: int) -> tuple[int, int]:
    """Delete up to `batch` blobs no segment references (those a write holds are left for
    the next run); (blobs, gzip bytes) deleted. Run it in a transaction."""
    rows = conn.execute(LOCK_UNUSED_CANDIDATES, (batch,)).fetchall()
    if not rows:
        return 0, 0
    deleted = conn.execute(DELETE_UNUSED, ([r["account_id"] for r in rows],
                                           [r["sha256"] for r in rows])).fetchall()
    return len(deleted), sum(r["gzip_bytes"] for r in deleted)
