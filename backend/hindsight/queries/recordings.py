"""DOM recording segments (0019), their blobs (0028; zstd since 0035) and dictionaries (0030): authorize and
check for a re-send in one statement, store one (with its blobs) in one, list a session's,
read one's JSON.

Every statement names the session's start (`session_started_at`, the hypertable's
partitioning column), so it touches the one chunk that holds the session's segments.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from .. import recording_blobs, recording_codec
from ..db import Conn
from ..recording_codec import DICTIONARIES, CorruptSegment, Dictionary
from .writers import WRITER


@dataclass(frozen=True)
class Segment:
    """A decoded, validated segment, ready to store."""

    segment: int
    started_at: datetime
    ended_at: datetime
    event_count: int
    full_snapshot: bool
    data: bytes          # zstd of the JSON array (of its rest, when blobs were cut out)
    json_bytes: int
    # The large literals cut out (hindsight.recording_blobs): where each goes back in the
    # rest, which it is, and each distinct one once. Empty: `data` is the whole JSON.
    blob_offsets: tuple[int, ...] = ()
    blob_hashes: tuple[bytes, ...] = ()
    blobs: tuple[recording_blobs.Blob, ...] = ()
    # The dictionary `data` and the blobs were compressed with (recording_codec: the
    # account's, or rrweb's vocabulary; None: none, or gzip), and one this upload makes of
    # its text for the account's next segments (None: none; when made, `dictionary` is it).
    dictionary: Dictionary | None = None
    new_dictionary: Dictionary | None = None


# The upload's first statement: the writer's checks (queries/writers.WRITER) and, when
# the session is the writer's, the event count of the segment if it is stored already,
# and the account's newest recording dictionary (0030: its key and when it was made).
WRITER_AND_STORED = "".join(("\nWITH writer AS (", WRITER, """
), started AS (
    SELECT s.started_at FROM sessions s JOIN writer w ON w.account_id = s.account_id
    WHERE s.session_id = %(session_id)s
), newest AS (
    SELECT d.sha256, d.created_at FROM recording_dictionaries d JOIN writer w ON w.account_id = d.account_id
    ORDER BY d.created_at DESC LIMIT 1
)
SELECT writer.*, (SELECT r.event_count FROM recording_segments r
                  WHERE r.session_id = %(session_id)s AND r.segment = %(segment)s
                    AND r.session_started_at = (SELECT started_at FROM started)) AS stored_events,
       (SELECT sha256 FROM newest) AS dictionary, (SELECT created_at FROM newest) AS dictionary_at
FROM writer
"""))

# One statement: the blobs (each upserted, which locks it against a concurrent reclaim
# until this commits: 0028; in the order of their hashes, as every writer and erasure lock
# them), the dictionary the segment's and blobs' bytes need (locked likewise: 0030; no
# segment is stored when it is gone), the segment, a new dictionary of the account when the
# upload made one (unless one was made since; the segment then names the new one, 0035:
# stored when it was inserted), and the session's last activity when it was new. rrweb's
# vocabulary (recording_codec.VOCABULARY) is never stored: always usable. The session row is
# read through the account, so a session of another account stores nothing; the dictionary
# is looked up in the account, so no segment names another's.
STORE = """
WITH session AS (
    SELECT session_id, started_at FROM sessions
    WHERE session_id = %(session_id)s AND account_id = %(account_id)s
), dictionary AS (
    SELECT sha256 FROM recording_dictionaries
    WHERE account_id = %(account_id)s AND sha256 = %(dictionary)s::bytea
    FOR KEY SHARE
), new_dictionary AS (
    INSERT INTO recording_dictionaries (account_id, sha256, data, stored_bytes, dictionary_bytes,
                                        source_session_id)
    SELECT %(account_id)s, %(new_sha256)s::bytea, %(new_data)s::bytea, octet_length(%(new_data)s::bytea),
           %(new_bytes)s::integer, session_id
    FROM session
    WHERE %(new_sha256)s::bytea IS NOT NULL
      AND NOT EXISTS (SELECT 1 FROM recording_dictionaries
                      WHERE account_id = %(account_id)s AND created_at > now() - %(rotate)s::interval)
    ON CONFLICT DO NOTHING
    RETURNING sha256
), usable AS (
    SELECT session.* FROM session
    WHERE %(dictionary)s::bytea IS NULL OR %(dictionary)s::bytea = %(vocabulary)s::bytea
       OR EXISTS (SELECT 1 FROM dictionary)
       OR EXISTS (SELECT 1 FROM new_dictionary WHERE sha256 = %(dictionary)s::bytea)
), blobs AS (
    INSERT INTO recording_blobs AS b (account_id, sha256, data, gzip_bytes, json_bytes,
                                      first_session_at, last_session_at, dictionary)
    SELECT %(account_id)s, u.sha256, u.data, octet_length(u.data), u.json_bytes,
           session.started_at, session.started_at, u.dictionary
    FROM usable AS session, unnest(%(blob_sha256)s::bytea[], %(blob_data)s::bytea[], %(blob_json)s::integer[],
                                   %(blob_dictionary)s::bytea[])
                  AS u(sha256, data, json_bytes, dictionary)
    ON CONFLICT (account_id, sha256) DO UPDATE
        SET first_session_at = least(b.first_session_at, excluded.first_session_at),
            last_session_at = greatest(b.last_session_at, excluded.last_session_at)
        WHERE b.first_session_at > excluded.first_session_at
           OR b.last_session_at < excluded.last_session_at
), stored AS (
    INSERT INTO recording_segments (session_id, session_started_at, segment, account_id, host,
                                    started_at, ended_at, event_count, full_snapshot, data,
                                    gzip_bytes, json_bytes, blobs, blob_offsets, dictionary)
    SELECT session_id, started_at, %(segment)s, %(account_id)s, %(host)s, %(started_at)s,
           %(ended_at)s, %(event_count)s, %(full_snapshot)s, %(data)s, %(gzip_bytes)s, %(json_bytes)s,
           %(blobs)s::bytea[], %(blob_offsets)s::integer[], %(dictionary)s::bytea
    FROM usable
    ON CONFLICT DO NOTHING
    RETURNING session_id
), touched AS (
    UPDATE sessions SET last_activity_at = %(ended_at)s
    WHERE session_id = %(session_id)s AND last_activity_at < %(ended_at)s
      AND EXISTS (SELECT 1 FROM stored)
)
SELECT (SELECT count(*) FROM session) AS sessions, (SELECT count(*) FROM stored) AS stored,
       (SELECT count(*) FROM usable) AS usable
"""

SESSION_START = "SELECT started_at FROM sessions WHERE session_id = %s AND account_id = %s"

# A segment by its key: the session's start names its chunk.
SEGMENT = """
SELECT {columns} FROM recording_segments s
WHERE session_id = %(session_id)s AND session_started_at = %(session_started_at)s AND segment = %(segment)s
"""

# What a read needs to give back the segment's JSON: its blobs' bytes in the order of
# `blobs` (NULL where one is missing: recording_blobs.resolve refuses the segment), and the
# dictionary each was compressed with (0035; NULL: gzip).
BODY_COLUMNS = """s.account_id, s.data, s.json_bytes, s.blobs, s.blob_offsets, s.dictionary,
    CASE WHEN s.blobs IS NOT NULL THEN ARRAY(
        SELECT b.data FROM unnest(s.blobs) WITH ORDINALITY AS u(sha256, i)
        LEFT JOIN recording_blobs b ON b.account_id = s.account_id AND b.sha256 = u.sha256
        ORDER BY u.i) END AS blob_data,
    CASE WHEN s.blobs IS NOT NULL THEN ARRAY(
        SELECT b.dictionary FROM unnest(s.blobs) WITH ORDINALITY AS u(sha256, i)
        LEFT JOIN recording_blobs b ON b.account_id = s.account_id AND b.sha256 = u.sha256
        ORDER BY u.i) END AS blob_dictionaries"""

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


class DictionaryGone(RuntimeError):
    """The dictionary a segment was compressed with was reclaimed before it was stored."""


def store(conn: Conn, account_id: uuid.UUID, host: str, session_id: uuid.UUID,
          seg: Segment) -> tuple[bool, int] | None:
    """Store the segment once, with its blobs (and the dictionary it makes, if any); return
    (created, event count stored), or None when the account has no such session; raise
    DictionaryGone when its dictionary was reclaimed meanwhile (nothing stored). One
    statement: atomic without a transaction of its own."""
    refs = bool(seg.blob_hashes)
    new = seg.new_dictionary
    blobs = sorted(seg.blobs, key=lambda b: b.sha256)   # one lock order for every writer: no deadlock
    row = conn.execute(STORE, {
        "session_id": session_id, "account_id": account_id, "host": host, "segment": seg.segment,
        "started_at": seg.started_at, "ended_at": seg.ended_at, "event_count": seg.event_count,
        "full_snapshot": seg.full_snapshot, "data": seg.data, "gzip_bytes": len(seg.data),
        "json_bytes": seg.json_bytes,
        "blob_sha256": [b.sha256 for b in blobs], "blob_data": [b.data for b in blobs],
        "blob_json": [b.json_bytes for b in blobs], "blob_dictionary": [b.dictionary for b in blobs],
        "vocabulary": recording_codec.VOCABULARY.sha256,
        "blobs": list(seg.blob_hashes) if refs else None,
        "blob_offsets": list(seg.blob_offsets) if refs else None,
        "dictionary": seg.dictionary.sha256 if seg.dictionary else None,
        "new_sha256": new.sha256 if new else None, "new_data": new.stored() if new else None,
        "new_bytes": len(new.raw) if new else None, "rotate": recording_codec.ROTATE,
    }, prepare=True).fetchone()
    if row is None or not row["sessions"]:
        return None
    if not row["usable"]:
        raise DictionaryGone()
    if row["stored"]:
        if new is not None:   # the account's next uploads in this process need not read it back
            DICTIONARIES.put(account_id, new)
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


DICTIONARY = "SELECT data FROM recording_dictionaries WHERE account_id = %s AND sha256 = %s"


def dictionary(conn: Conn, account_id: uuid.UUID, sha256: bytes) -> Dictionary | None:
    """The account's dictionary by its key, from this process's cache or the database
    (checked against its key when loaded), or rrweb's vocabulary (every account's, never
    stored); None: the account has no such dictionary."""
    if bytes(sha256) == recording_codec.VOCABULARY.sha256:
        return recording_codec.VOCABULARY
    found = DICTIONARIES.get(account_id, sha256)
    if found is None:
        row = conn.execute(DICTIONARY, (account_id, bytes(sha256))).fetchone()
        if row is None:
            return None
        found = recording_codec.load_dictionary(bytes(sha256), bytes(row["data"]))
        DICTIONARIES.put(account_id, found)
    return found


def _dictionaries(conn: Conn, account_id: uuid.UUID, names) -> dict[bytes, Dictionary]:
    """The account's dictionaries by these keys (None left out); CorruptSegment when one
    is missing."""
    found: dict[bytes, Dictionary] = {}
    for name in names:
        if name is None or bytes(name) in found:
            continue
        loaded = dictionary(conn, account_id, bytes(name))
        if loaded is None:
            raise CorruptSegment(f"dictionary {bytes(name).hex()} is missing")
        found[bytes(name)] = loaded
    return found


def resolve(conn: Conn, row: dict) -> recording_blobs.Body:
    """A segment's JSON from its row (BODY_COLUMNS), with its dictionary and its blobs'
    looked up in the segment's own account; CorruptSegment when anything it names is
    missing or altered."""
    named = row.get("dictionary")
    found = _dictionaries(conn, row["account_id"], [named, *(row.get("blob_dictionaries") or ())])
    return recording_blobs.resolve(row, None if named is None else found[bytes(named)], found)


def segment_data(conn: Conn, account_id: uuid.UUID, session_id: uuid.UUID,
                 segment: int) -> recording_blobs.Body | None:
    """The segment's JSON, exactly as sent: the stored gzip when it was stored as the
    browser's gzip, else decompressed (with its dictionary) and spliced back together
    (None: no such segment of a session of the account)."""
    row = _segment(conn, BODY_COLUMNS, account_id, session_id, segment)
    return None if row is None else resolve(conn, row)


def segment_bodies(conn: Conn, account_id: uuid.UUID, session_ids: list[uuid.UUID]) -> list[dict]:
    """Every segment of these sessions of the account (session_id, segment, started_at,
    ended_at, event_count, full_snapshot) with its JSON, exactly as sent (`json`: bytes)."""
    rows = conn.execute(SEGMENT_BODIES, (account_id, session_ids)).fetchall()
    for row in rows:
        row["json"] = resolve(conn, row).json()
        for column in ("account_id", "data", "json_bytes", "blobs", "blob_offsets", "blob_data",
                       "blob_dictionaries", "dictionary"):
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


# Dictionaries (0030), reclaimed like blobs: lock the candidates, then check for users in a
# new statement (an upload that names one holds it FOR KEY SHARE until it commits). One is
# kept while a segment or a blob (0035) uses it, and while it is its account's newest unless
# its source session is gone.
_UNUSED_DICTIONARY = """NOT EXISTS (SELECT 1 FROM recording_segments r
                  WHERE r.account_id = d.account_id AND r.dictionary = d.sha256)
       AND NOT EXISTS (SELECT 1 FROM recording_blobs bl
                       WHERE bl.account_id = d.account_id AND bl.dictionary = d.sha256)"""
_REPLACEABLE_DICTIONARY = """(EXISTS (SELECT 1 FROM recording_dictionaries n
                 WHERE n.account_id = d.account_id AND n.created_at > d.created_at)
       OR NOT EXISTS (SELECT 1 FROM sessions s WHERE s.session_id = d.source_session_id))"""
LOCK_UNUSED_DICTIONARIES = "".join(("""
SELECT d.account_id, d.sha256 FROM recording_dictionaries d
WHERE """, _UNUSED_DICTIONARY, " AND ", _REPLACEABLE_DICTIONARY, """
LIMIT %s FOR UPDATE SKIP LOCKED
"""))
LOCK_DICTIONARIES = "".join(("""
SELECT d.account_id, d.sha256 FROM recording_dictionaries d
WHERE d.account_id = %s AND d.sha256 = ANY(%s) AND """, _UNUSED_DICTIONARY, " AND ", _REPLACEABLE_DICTIONARY, """
ORDER BY d.sha256 FOR UPDATE
"""))
DELETE_UNUSED_DICTIONARIES = "".join(("""
DELETE FROM recording_dictionaries d
USING unnest(%s::uuid[], %s::bytea[]) AS c(account_id, sha256)
WHERE d.account_id = c.account_id AND d.sha256 = c.sha256 AND """, _UNUSED_DICTIONARY, """
RETURNING d.stored_bytes
"""))
SOURCE_DICTIONARIES = """
SELECT sha256 FROM recording_dictionaries WHERE account_id = %s AND source_session_id = ANY(%s)
ORDER BY sha256 FOR UPDATE
"""
DICTIONARY_USERS = """
SELECT s.session_id, s.session_started_at, s.segment, s.data, s.json_bytes
FROM recording_segments s WHERE s.account_id = %s AND s.dictionary = %s
"""
RECOMPRESSED = """
UPDATE recording_segments SET data = %(data)s, gzip_bytes = octet_length(%(data)s), dictionary = %(dictionary)s
WHERE session_id = %(session_id)s AND session_started_at = %(session_started_at)s AND segment = %(segment)s
"""
# The blobs compressed with a dictionary (0035), locked: re-compressed with the vocabulary.
BLOB_DICTIONARY_USERS = """
SELECT account_id, sha256, data, json_bytes FROM recording_blobs
WHERE account_id = %s AND dictionary = %s ORDER BY sha256 FOR UPDATE
"""
BLOB_RECOMPRESSED = """
UPDATE recording_blobs SET data = %(data)s, gzip_bytes = octet_length(%(data)s), dictionary = %(dictionary)s
WHERE account_id = %(account_id)s AND sha256 = %(sha256)s
"""
# Blobs whose dictionary was made of a session that is gone (retention): a stylesheet's blob
# may be used for months, its dictionary must not keep an expired session's text that long.
LOCK_ORPHANED_BLOBS = """
SELECT b.account_id, b.sha256, b.data, b.json_bytes, b.dictionary FROM recording_blobs b
JOIN recording_dictionaries d ON d.account_id = b.account_id AND d.sha256 = b.dictionary
WHERE NOT EXISTS (SELECT 1 FROM sessions s WHERE s.session_id = d.source_session_id)
LIMIT %s FOR UPDATE OF b SKIP LOCKED
"""


def _recompress_blob(conn: Conn, row: dict, found: Dictionary | None) -> int:
    """One locked blob row compressed again with the vocabulary instead of `found`."""
    literal = recording_codec.unpack(bytes(row["data"]), found, row["json_bytes"])
    vocabulary = recording_codec.VOCABULARY
    conn.execute(BLOB_RECOMPRESSED, {"account_id": row["account_id"], "sha256": row["sha256"],
                                     "data": recording_codec.pack(literal, vocabulary),
                                     "dictionary": vocabulary.sha256})
    return 1


def recompress_orphaned_blobs(conn: Conn, batch: int) -> tuple[int, int]:
    """Compress up to `batch` blobs whose dictionary's source session is gone again with the
    vocabulary (the dictionary can then be reclaimed); (blobs, 0). Run it in a transaction."""
    done = 0
    for row in conn.execute(LOCK_ORPHANED_BLOBS, (batch,)).fetchall():
        done += _recompress_blob(conn, row, dictionary(conn, row["account_id"], bytes(row["dictionary"])))
    return done, 0


def reclaim_dictionaries(conn: Conn, batch: int) -> tuple[int, int]:
    """Delete up to `batch` dictionaries no segment uses that another replaced (or whose
    source session is gone); (dictionaries, stored bytes) deleted. Run it in a transaction."""
    rows = conn.execute(LOCK_UNUSED_DICTIONARIES, (batch,)).fetchall()
    if not rows:
        return 0, 0
    deleted = conn.execute(DELETE_UNUSED_DICTIONARIES, ([r["account_id"] for r in rows],
                                                        [r["sha256"] for r in rows])).fetchall()
    return len(deleted), sum(r["stored_bytes"] for r in deleted)


def erase_dictionaries(conn: Conn, account_id: uuid.UUID, session_ids: list[uuid.UUID],
                       used: list[bytes]) -> tuple[int, int]:
    """After the segments of erased sessions are deleted (in the erasure's transaction):
    the dictionaries made of those sessions' text go, once every other segment and every
    blob that used one is compressed again with the vocabulary instead; and those only the
    erased segments used go unless one is still its account's newest. (dictionaries
    deleted, segments and blobs recompressed)."""
    made = [bytes(r["sha256"]) for r in conn.execute(SOURCE_DICTIONARIES, (account_id, session_ids)).fetchall()]
    recompressed = 0
    vocabulary = recording_codec.VOCABULARY
    for sha in made:
        found = dictionary(conn, account_id, sha)
        for row in conn.execute(DICTIONARY_USERS, (account_id, sha)).fetchall():
            rest = recording_codec.unpack(bytes(row["data"]), found, row["json_bytes"])
            conn.execute(RECOMPRESSED, {**row, "data": recording_codec.pack(rest, vocabulary),
                                        "dictionary": vocabulary.sha256})
            recompressed += 1
        for row in conn.execute(BLOB_DICTIONARY_USERS, (account_id, sha)).fetchall():
            recompressed += _recompress_blob(conn, row, found)
    gone = [bytes(h) for h in used if h is not None and bytes(h) not in made]
    locked = [r["sha256"] for r in conn.execute(LOCK_DICTIONARIES, (account_id, sorted(set(gone)))).fetchall()]
    candidates = made + [bytes(h) for h in locked]
    deleted = conn.execute(DELETE_UNUSED_DICTIONARIES, ([account_id] * len(candidates), candidates)).fetchall()
    return len(deleted), recompressed
