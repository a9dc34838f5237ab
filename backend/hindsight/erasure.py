"""A person's right of access and right to be forgotten (GDPR articles 15 and 17).

    hindsight export --account ID (--user-id U | --visitor-id V | --session-id S)
    hindsight erase  --account ID (--user-id U | --visitor-id V | --session-id S)
    GET/POST /api/v1/admin/export, POST /api/v1/admin/erase   (an admin API key of the account)

`export` reads everything stored for the selection as one JSON document. `erase` deletes
it in one transaction (hindsight.queries.erasure: sessions, events — compressed chunks
included —, screenshots and the images nobody references any more, recording segments,
journeys, pending ledger rows), writes the audit row (who, when, the selector's kind, rows
per table; never the selector's value or the data), commits, and then recomputes the
roll-ups over the erased time range, so no number still counts the person's sessions.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from .db import Conn
from .lifecycle import rollups
from .lifecycle.edition import TIMESCALE, schema_edition
from .queries import erasure as q

log = logging.getLogger("hindsight.erasure")

SELECTORS = q.SELECTORS


def export(conn: Conn, account_id: uuid.UUID, kind: str, value: str, now: datetime) -> dict[str, Any]:
    """Everything stored for the selection (right of access)."""
    sessions = q.selected_sessions(conn, account_id, kind, value)
    data = q.export(conn, account_id, [s["session_id"] for s in sessions])
    return {"account_id": account_id, "selector": kind, "exported_at": now, **data}


def erase(conn: Conn, account_id: uuid.UUID, kind: str, value: str, actor: str) -> dict[str, Any]:
    """Delete the selection, audit it, recompute the roll-ups of its range; return what was done.

    `conn` must be idle (not in a transaction); it is left in autocommit afterwards as it was."""
    was_autocommit = conn.autocommit
    conn.autocommit = False
    try:
        with conn.transaction():
            sessions = q.selected_sessions(conn, account_id, kind, value)
            ids = [s["session_id"] for s in sessions]
            span = q.event_span(conn, ids) if ids else (None, None)
            rows = q.erase(conn, account_id, sessions, span) if ids else {"sessions": 0}
            entry = q.audit(conn, account_id, actor, kind, rows)
    finally:
        conn.autocommit = was_autocommit
    result: dict[str, Any] = {"erasure_id": entry["erasure_id"], "erased_at": entry["erased_at"],
                              "selector": kind, "rows": rows, "rollups": {}}
    if ids:
        times = [t for t in (*(s["started_at"] for s in sessions), *(s["last_activity_at"] for s in sessions),
                             *span) if t is not None]
        result["rollups"] = refresh_range(conn, min(times), max(times))
    log.warning("erasure %s of account %s by %s: %s", entry["erasure_id"], account_id, actor, rows)
    return result


def _floor(t: datetime, width: timedelta) -> datetime:
    epoch = datetime(2000, 1, 3, tzinfo=UTC)  # a Monday: time_bucket's origin for weeks
    return epoch + ((t.astimezone(UTC) - epoch) // width) * width


def refresh_range(conn: Conn, first: datetime, last: datetime) -> dict[str, Any]:
    """Recompute every roll-up's buckets that [first, last] touches (up to each one's
    watermark: later buckets are the regular refresh's). On the timescale edition the
    continuous aggregates are refreshed over the same buckets."""
    was_autocommit = conn.autocommit
    conn.autocommit = True
    done: dict[str, Any] = {}
    try:
        edition = schema_edition(conn)
        if edition == TIMESCALE:
            for view in q.continuous_aggregates(conn):
                # Whole weeks (whole 28-day blocks for network_4weekly_cagg: a refresh window
                # smaller than one bucket refreshes nothing), finest aggregates first.
                width = timedelta(days=28 if view.startswith("network_4weekly") else 7)
                start, end = _floor(first, width), _floor(last, width) + width
                try:
                    q.refresh_aggregate(conn, view, start, end)
                    done[view] = "refreshed"
                except Exception as ex:  # reported, not fatal: the data is gone; the policy refreshes later
                    log.warning("refreshing %s after an erasure failed: %s", view, ex)
                    done[view] = f"failed: {ex}"
        for rollup in rollups.scheduler_rollups(edition):
            mark = q.watermark(conn, rollup.name)
            start = _floor(first, rollup.width)
            end = _floor(last, rollup.width) + rollup.width
            if mark is not None:
                end = min(end, mark)
            if mark is None or start >= end:
                done[rollup.name] = "not materialized yet"
                continue
            with conn.transaction():
                rows = q.rewrite_store(conn, rollup.store, rollup.columns, rollup.source, start, end)
            done[rollup.name] = {"from": start, "to": end, "rows": rows}
    finally:
        conn.autocommit = was_autocommit
    return done
