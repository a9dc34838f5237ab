"""Pipeline traces: the stages of each event batch, kept a few hours (migration 0022).

The HTTP layer marks a batch's stages on the request as they happen (`Trace`, a few
`perf_counter()` reads) and hands the finished trace to `TraceBuffer.add` — a bounded
deque in memory, no I/O on the request's path. The `observe.flush` scheduler task writes
the buffered traces every couple of seconds in one COPY; the dashboard's pipeline page
and GET /api/v1/pipeline read them from the database, so every process's batches can be
searched. The flush into journeys and usage happens later and elsewhere (a statistics
stack's flush, in any process): each flush writes a `pipeline_flushes` row, and a trace's
"flushed" stage is read as the first flush of its account + host after its commit.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ..db import Pool
from ..queries import observe as queries


@dataclass(slots=True)
class Trace:
    """One batch's stages, as perf_counter() instants (seconds) and what it stored. Cheap on
    the request's path: numbers and references only; `row` leaves the formatting to the
    flush (json_encoding turns the UUIDs into text, SQL the epoch seconds into times)."""

    request_id: str
    path: str
    received_epoch: float
    received: float
    validated: float | None = None
    committed: float | None = None
    counted: float | None = None
    session_id: uuid.UUID | None = None
    account_id: uuid.UUID | None = None
    host: str | None = None
    token: uuid.UUID | None = None
    events: int | None = None
    inserted: int | None = None

    def row(self, status: int, error: str | None, finished: float) -> dict[str, Any]:
        received = self.received
        return {
            "request_id": self.request_id, "path": self.path, "status": status, "error": error,
            "account_id": self.account_id, "token": self.token, "host": self.host,
            "session_id": self.session_id, "received_epoch": self.received_epoch,
            "validated_ms": None if self.validated is None else (self.validated - received) * 1000,
            "committed_ms": None if self.committed is None else (self.committed - received) * 1000,
            "counted_ms": None if self.counted is None else (self.counted - received) * 1000,
            "events": self.events, "inserted": self.inserted,
            "duration_ms": (finished - received) * 1000,
        }


def _columns(r: dict[str, Any], owners: dict) -> tuple:
    """A trace's row in queries.observe.TRACE_COLUMNS order (the account from its token
    when the request was refused before it was known)."""
    account = r["account_id"] if r["account_id"] is not None else owners.get(r["token"])
    received = datetime.fromtimestamp(r["received_epoch"], UTC)
    committed_ms = r["committed_ms"]
    committed_at = None if committed_ms is None else received + timedelta(milliseconds=committed_ms)
    events, inserted = r["events"], r["inserted"]
    error = r["error"][:300] if r["error"] else None
    return (r["request_id"], account, r["host"], r["session_id"], r["path"], r["status"], error,
            received, r["validated_ms"], committed_ms, committed_at, events, inserted,
            None if events is None or inserted is None else events - inserted, r["counted_ms"],
            r["duration_ms"])


def start_trace(request_id: str, path: str) -> Trace:
    return Trace(request_id, path, time.time(), time.perf_counter())


@dataclass
class TraceBuffer:
    """Finished traces waiting for the next flush; the oldest are dropped past `capacity`."""

    capacity: int = 5000
    _items: deque = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    dropped: int = 0

    def add(self, row: dict[str, Any]) -> None:
        with self._lock:
            if len(self._items) >= self.capacity:
                self._items.popleft()
                self.dropped += 1
            self._items.append(row)

    def drain(self) -> list[dict[str, Any]]:
        with self._lock:
            items = list(self._items)
            self._items.clear()
        return items

    def flush(self, pool: Pool) -> int:
        rows = self.drain()
        if not rows:
            return 0
        with pool.connection() as conn, conn.transaction():
            tokens = {r["token"] for r in rows if r["account_id"] is None and r["token"]}
            owners = queries.token_accounts(conn, list(tokens)) if tokens else {}
            queries.insert_traces(conn, [_columns(r, owners) for r in rows])
        return len(rows)


STAGES = ("received", "validated", "committed", "counted", "flushed")


def batch_view(row: dict[str, Any]) -> dict[str, Any]:
    """A trace row (queries.observe.list_traces) as the pipeline view shows it: each stage
    with its instant and its time since the batch was received (null: not reached)."""
    received = row["received_at"]

    def at(ms: float | None) -> datetime | None:
        return None if ms is None else received + timedelta(milliseconds=float(ms))

    flushed_ms = None if row["flushed_ms"] is None else round(float(row["flushed_ms"]), 3)
    marks = {"received": 0.0, "validated": row["validated_ms"], "committed": row["committed_ms"],
             "counted": row["counted_ms"], "flushed": flushed_ms}
    stages = [{"stage": name, "at": at(marks[name]),
               "ms": None if marks[name] is None else round(float(marks[name]), 3)} for name in STAGES]
    return {
        "request_id": row["request_id"], "session_id": row["session_id"], "host": row["host"],
        "path": row["path"], "status": int(row["status"]), "error": row["error"],
        "received_at": received, "duration_ms": round(float(row["duration_ms"]), 3),
        "events": row["events"], "inserted": row["inserted"], "duplicates": row["duplicates"],
        "flush_events": row["flush_events"], "stages": stages,
    }


def recent_batches(pool: Pool, account_id: uuid.UUID, request_id: str | None = None,
                   session_id: uuid.UUID | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """An account's recent batches, newest first (optionally one request's, or one session's)."""
    with pool.connection() as conn:
        rows = queries.list_traces(conn, account_id, request_id, session_id, limit)
    return [batch_view(r) for r in rows]
