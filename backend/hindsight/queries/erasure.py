"""A person's data — selected by user id, visitor id or session id within one account —
read out (right of access) and deleted (right to be forgotten), table by table, and the
audit row that records an erasure without recording what was erased.

What belongs to a person: their sessions, and everything keyed by those sessions —
events, screenshots (and the images nobody else references), DOM recording segments (and
the recording blobs nobody else references),
journeys (and their steps), the statistics stacks' pending ledger rows. The heatmap cache
of the account is dropped too (a rendered heatmap may contain their clicks; it is
re-rendered on demand). On the timescale edition `events` chunks may be compressed:
TimescaleDB 2.11 and later DELETE from compressed chunks directly, decompressing only the
batches that match; the statement filters on the segmentby column (account_id) and the
time range so that few batches qualify (docs/DECISIONS.md).
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from ..db import Conn
from . import recordings

SELECTORS = ("user_id", "visitor_id", "session_id")

_SESSIONS = {
    "user_id": "SELECT session_id, started_at, last_activity_at FROM sessions "
               "WHERE account_id = %s AND user_id = %s ORDER BY started_at",
    "visitor_id": "SELECT session_id, started_at, last_activity_at FROM sessions "
                  "WHERE account_id = %s AND visitor_id = %s::uuid ORDER BY started_at",
    "session_id": "SELECT session_id, started_at, last_activity_at FROM sessions "
                  "WHERE account_id = %s AND session_id = %s::uuid",
}


def is_admin_key(conn: Conn, key_id: int) -> bool:
    row = conn.execute("SELECT admin FROM api_keys WHERE key_id = %s AND revoked_at IS NULL", (key_id,)).fetchone()
    return bool(row and row["admin"])


def make_admin_key(conn: Conn, key_hash: bytes) -> None:
    """Let the API key with this hash erase and export (hindsight keys create --admin)."""
    conn.execute("UPDATE api_keys SET admin = true WHERE key_hash = %s", (key_hash,))


def selected_sessions(conn: Conn, account_id: uuid.UUID, kind: str, value: str) -> list[dict]:
    """The account's sessions the selector names (a visitor or session id that is not a UUID
    names none)."""
    if kind in ("visitor_id", "session_id"):
        try:
            value = str(uuid.UUID(value))
        except ValueError:
            return []
    return conn.execute(_SESSIONS[kind], (account_id, value)).fetchall()


def event_span(conn: Conn, ids: list[uuid.UUID]) -> tuple[datetime | None, datetime | None]:
    row = conn.execute('SELECT min("timestamp") AS first, max("timestamp") AS last FROM events '
                       "WHERE session_id = ANY(%s)", (ids,)).fetchone()
    return (row["first"], row["last"]) if row else (None, None)


# ---------------------------------------------------------------- right of access

def _hex(value: Any) -> Any:
    return value.hex() if isinstance(value, bytes | memoryview) else value


def export(conn: Conn, account_id: uuid.UUID, ids: list[uuid.UUID]) -> dict[str, Any]:
    """Everything stored for these sessions, as JSON-ready rows (images by reference)."""
    sessions = conn.execute("SELECT * FROM sessions WHERE account_id = %s AND session_id = ANY(%s) "
                            "ORDER BY started_at", (account_id, ids)).fetchall()
    events = conn.execute("SELECT * FROM events WHERE account_id = %s AND session_id = ANY(%s) "
                          'ORDER BY session_id, "timestamp", seq', (account_id, ids)).fetchall()
    shots = conn.execute("SELECT screenshot_id, session_id, host, page_url, \"timestamp\", content_hash, width, "
                         "height, created_at FROM screenshots WHERE session_id = ANY(%s) "
                         'ORDER BY session_id, "timestamp"', (ids,)).fetchall()
    segments = recordings.segment_bodies(conn, account_id, ids)   # blobs spliced back (0028)
    journeys = conn.execute(
        "SELECT j.session_id, j.host, j.user_id, j.step_count, j.created_at, "
        "coalesce(json_agg(json_build_object('step', s.step, 'type', s.step_type, 'page_url', s.page_url, "
        "'timestamp', s.\"timestamp\", 'event', s.event) ORDER BY s.step) FILTER (WHERE s.step IS NOT NULL), "
        "'[]') AS steps FROM journeys j LEFT JOIN journey_steps s ON s.journey_id = j.journey_id "
        "WHERE j.session_id = ANY(%s) GROUP BY j.journey_id ORDER BY j.created_at", (ids,)).fetchall()
    for row in sessions:
        row["ip_hash"] = _hex(row["ip_hash"])
    for row in shots:
        row["content_hash"] = _hex(row["content_hash"])
        row["image"] = f"/api/v1/screenshots/{row['screenshot_id']}"
    for row in segments:
        raw = row.pop("json")
        try:
            row["events"] = json.loads(raw)
        except ValueError:  # stored as sent; not JSON after all: give the bytes
            row["events_base64"] = base64.b64encode(raw).decode()
    return {"sessions": sessions, "events": events, "screenshots": shots, "recording_segments": segments,
            "journeys": journeys}


# ---------------------------------------------------------------- erasure

def erase(conn: Conn, account_id: uuid.UUID, sessions: list[dict],
          span: tuple[datetime | None, datetime | None]) -> dict[str, int]:
    """Delete everything of these sessions (in the caller's transaction); rows per table."""
    ids = [s["session_id"] for s in sessions]
    starts = sorted({s["started_at"] for s in sessions})
    counts: dict[str, int] = {}
    first, last = span
    counts["stack_pending"] = conn.execute(
        "DELETE FROM stack_pending WHERE account_id = %s AND session_id = ANY(%s)", (account_id, ids)).rowcount
    if first is not None and last is not None:
        # account_id is the compressed chunks' segmentby; the range excludes other chunks.
        counts["events"] = conn.execute(
            'DELETE FROM events WHERE account_id = %s AND session_id = ANY(%s) '
            'AND "timestamp" >= %s AND "timestamp" <= %s', (account_id, ids, first, last)).rowcount
    else:
        counts["events"] = 0
    referenced = conn.execute(
        "DELETE FROM recording_segments WHERE session_id = ANY(%s) AND session_started_at = ANY(%s) "
        "RETURNING blobs, dictionary", (ids, starts)).fetchall()
    counts["recording_segments"] = len(referenced)
    # The blobs only these segments referenced (0028); one another segment uses stays.
    counts["recording_blobs"] = recordings.delete_unused_blobs(
        conn, account_id, [h for r in referenced for h in (r["blobs"] or ())])
    # The dictionaries made of these sessions' text (0030): other segments that used one are
    # compressed again without it first; those only these segments used go too.
    counts["recording_dictionaries"], counts["recording_segments_recompressed"] = recordings.erase_dictionaries(
        conn, account_id, ids, [r["dictionary"] for r in referenced])
    hashes = [r["content_hash"] for r in conn.execute(
        "DELETE FROM screenshots WHERE session_id = ANY(%s) RETURNING content_hash", (ids,)).fetchall()]
    counts["screenshots"] = len(hashes)
    counts["screenshot_images"] = conn.execute(
        "DELETE FROM screenshot_images i WHERE i.content_hash = ANY(%s) "
        "AND NOT EXISTS (SELECT 1 FROM screenshots s WHERE s.content_hash = i.content_hash)",
        (list(set(hashes)),)).rowcount
    counts["journey_steps"] = conn.execute(
        "DELETE FROM journey_steps WHERE journey_id IN (SELECT journey_id FROM journeys WHERE session_id = ANY(%s))",
        (ids,)).rowcount
    counts["journeys"] = conn.execute("DELETE FROM journeys WHERE session_id = ANY(%s)", (ids,)).rowcount
    # The pipeline view's traces name sessions (kept 6 hours; hindsight.observe.traces).
    counts["pipeline_traces"] = conn.execute(
        "DELETE FROM pipeline_traces WHERE account_id = %s AND session_id = ANY(%s)", (account_id, ids)).rowcount
    counts["heatmap_cache"] = conn.execute(
        "DELETE FROM dashboard_heatmap_cache WHERE account_id = %s", (account_id,)).rowcount
    counts["sessions"] = conn.execute(
        "DELETE FROM sessions WHERE account_id = %s AND session_id = ANY(%s)", (account_id, ids)).rowcount
    return counts


def audit(conn: Conn, account_id: uuid.UUID, actor: str, kind: str, rows: dict[str, int]) -> dict:
    row: Any = conn.execute(
        "INSERT INTO erasure_audit (account_id, actor, selector_kind, sessions, rows) VALUES (%s, %s, %s, %s, %s) "
        "RETURNING erasure_id, erased_at", (account_id, actor, kind, rows.get("sessions", 0), Jsonb(rows))).fetchone()
    return row


def audit_log(conn: Conn, account_id: uuid.UUID, limit: int = 50) -> list[dict]:
    return conn.execute("SELECT erasure_id, actor, selector_kind, sessions, rows, erased_at FROM erasure_audit "
                        "WHERE account_id = %s ORDER BY erased_at DESC, erasure_id DESC LIMIT %s",
                        (account_id, limit)).fetchall()


# ---------------------------------------------------------------- roll-ups of the erased range

def rewrite_store(conn: Conn, store: str, columns: tuple[str, ...], source: str, start: datetime,
                  end: datetime) -> int:
    """Recompute a roll-up store's buckets in [start, end) from its source (apache edition)."""
    table = sql.Identifier(store)
    conn.execute(sql.SQL("DELETE FROM {} WHERE bucket >= %(start)s AND bucket < %(end)s").format(table),
                 {"start": start, "end": end})
    return conn.execute(sql.SQL("INSERT INTO {} ({}) SELECT * FROM ({}) AS fresh").format(
        table, sql.SQL(", ").join(map(sql.Identifier, columns)), sql.SQL(source)),
        {"start": start, "end": end}).rowcount


def watermark(conn: Conn, rollup: str) -> datetime | None:
    row = conn.execute("SELECT materialized_until FROM rollup_watermarks WHERE rollup = %s", (rollup,)).fetchone()
    return row["materialized_until"] if row else None


def continuous_aggregates(conn: Conn) -> list[str]:
    """The timescale edition's continuous aggregates, finest first (a daily one may read an
    hourly one)."""
    rows = conn.execute("SELECT view_name FROM timescaledb_information.continuous_aggregates "
                        "WHERE view_schema = 'public'").fetchall()
    order = {"hourly": 0, "daily": 1, "4weekly": 3, "weekly": 2}  # "4weekly" before "weekly": both match
    names = [r["view_name"] for r in rows]
    return sorted(names, key=lambda n: (next((v for k, v in order.items() if k in n), 3), n))


def refresh_aggregate(conn: Conn, view: str, start: datetime, end: datetime) -> None:
    """CALL refresh_continuous_aggregate (outside a transaction: autocommit)."""
    conn.execute("CALL refresh_continuous_aggregate(%s, %s::timestamptz, %s::timestamptz)",
                 (view, start - timedelta(0), end))
