"""The live stream of one API process: one loop reads PostgreSQL, every viewer gets its copy.

A viewer (one Server-Sent Events response: hindsight.resources.live) registers here for
its account and then only waits on its own bounded queue; it never holds a database
connection. One loop per process (a thread, i.e. a greenlet under the gevent worker),
started by the first viewer, polls every `live_poll_seconds` while anyone watches:

1. the horizon (hindsight.queries.live): the oldest start of a transaction of the API
   still open, below which every batch has committed;
2. per watched account, its newest events (at most `live_max_events_per_message`) after
   the cursor and below the horizon, how many there were, and their sessions;
3. per account, ONE message (bytes: an SSE `events` message whose id is the new cursor)
   offered to each of the account's viewers. A viewer whose queue is full (a client that
   does not read) is dropped: its response ends, and its browser reconnects and resumes
   from the last id it received.

Positions are independent of the process, so a viewer may resume on any worker.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from .. import metrics
from ..db import Pool
from ..json_encoding import dumps
from ..queries import live as live_queries
from ..settings import Settings

log = logging.getLogger("hindsight.live")

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
UUID0 = uuid.UUID(int=0)
Position = tuple[datetime, uuid.UUID, int]

# Every hub of this process, for the worker's shutdown (hindsight.worker).
HUBS: weakref.WeakSet[LiveHub] = weakref.WeakSet()


def below(at: datetime) -> Position:
    """The position just before every event received at `at` or later."""
    return (at, UUID0, -1)


def encode_position(pos: Position) -> str:
    """An SSE id: microseconds since the epoch, session id, seq (`1700000000000000-<hex>-12`)."""
    micros = (pos[0] - EPOCH) // timedelta(microseconds=1)
    return f"{micros}-{pos[1].hex}-{pos[2]}"


def decode_position(text: str | None) -> Position | None:
    """The position of an id from `encode_position`; None for anything else."""
    if not text or len(text) > 80:
        return None
    parts = text.strip().split("-", 2)
    if len(parts) != 3:
        return None
    try:
        micros, session, seq = int(parts[0]), uuid.UUID(hex=parts[1]), int(parts[2])
        return (EPOCH + timedelta(microseconds=micros), session, seq)
    except (ValueError, OverflowError):
        return None


def sse(data: Any, event: str | None = None, id: str | None = None) -> bytes:
    """One Server-Sent Events message (the JSON has no newline: one data line)."""
    head = (f"id: {id}\n" if id else "") + (f"event: {event}\n" if event else "")
    return (head + "data: " + dumps(data) + "\n\n").encode()


HEARTBEAT = b": keep-alive\n\n"


def _failed_network(row: dict[str, Any]) -> bool:
    data = row.get("event_data") or {}
    status = data.get("status") if isinstance(data, dict) else None
    return isinstance(status, int) and (status == 0 or status >= 400)


def event_json(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k != "account_id" and v is not None}
    if row["event_type"] == "error" or (row["event_type"] == "network" and _failed_network(row)):
        out["problem"] = True
    return out


def visitor_json(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k != "account_id"}


def events_message(rows: list[dict[str, Any]], sessions: list[dict[str, Any]], cursor: Position,
                   at: datetime, counted: dict[str, int] | None = None) -> bytes:
    """The `events` message of one account: its newest events (`rows`, oldest first), the
    sessions they touched, and how many events and batches arrived (`counted`; when None,
    `rows` are all of them). `skipped`: the events not sent."""
    if counted is None:
        counted = {"events": len(rows), "batches": len({(r["session_id"], r["received_at"]) for r in rows})}
    return sse({"events": [event_json(r) for r in rows], "visitors": [visitor_json(s) for s in sessions],
                "counts": counted, "skipped": counted["events"] - len(rows), "at": at},
               event="events", id=encode_position(cursor))


def read_range(conn: Any, accounts: list[uuid.UUID], after: Position, upto: Position,
               limit: int) -> tuple[dict[uuid.UUID, list[dict[str, Any]]], dict[uuid.UUID, dict[str, int] | None],
                                    dict[uuid.UUID, list[dict[str, Any]]]]:
    """Per account: its newest `limit` events in (after, upto] oldest first, their counts
    (None: the events are all there were) and the sessions they belong to."""
    rows = live_queries.new_events(conn, accounts, after, upto, limit)
    by_account: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for row in reversed(rows):
        by_account.setdefault(row["account_id"], []).append(row)
    cut = [a for a, r in by_account.items() if len(r) >= limit]
    counted: dict[uuid.UUID, dict[str, int] | None] = dict.fromkeys(by_account)
    if cut:
        counted.update(live_queries.counts(conn, cut, after, upto))
    sessions: dict[uuid.UUID, list[dict[str, Any]]] = {}
    for s in live_queries.sessions_by_id(conn, sorted({r["session_id"] for r in rows})):
        sessions.setdefault(s["account_id"], []).append(s)
    return by_account, counted, sessions


class LiveFull(Exception):
    """This process already streams to `live_max_viewers` viewers."""


class Viewer:
    """One stream's mailbox: complete SSE messages, bounded."""

    def __init__(self, account_id: uuid.UUID, size: int) -> None:
        self.account_id = account_id
        self._queue: queue.Queue[bytes | None] = queue.Queue(maxsize=size)
        self.closed: str | None = None  # why, once closed
        # A resumed viewer that has seen more than this process's loop had read (another
        # worker's position): the loop sends it only what comes after, once.
        self.after: Position | None = None

    def offer(self, message: bytes) -> bool:
        if self.closed:
            return False
        try:
            self._queue.put_nowait(message)
            return True
        except queue.Full:
            self.close("overflow")
            return False

    def close(self, reason: str) -> None:
        if self.closed is None:
            self.closed = reason
        try:
            self._queue.put_nowait(None)  # wakes a waiting reader
        except queue.Full:
            pass  # its reader is not waiting: it sees `closed` before its next message

    def next(self, timeout: float) -> bytes | None:
        """The next message; None after `timeout` seconds without one, or once closed."""
        if self.closed:
            return None
        try:
            message = self._queue.get(timeout=timeout)
        except queue.Empty:
            return None
        return None if self.closed else message


@dataclass
class Catchup:
    """What a (re)connecting viewer missed: a message, or `reset` when too much."""

    message: bytes | None
    reset: bool


class LiveHub:
    """The viewers of this process and the one loop that feeds them."""

    def __init__(self, pool: Pool, settings: Settings, clock: Callable[[], datetime]) -> None:
        self._pool = pool
        self._settings = settings
        self._clock = clock
        self._viewers: dict[uuid.UUID, set[Viewer]] = {}
        self._lock = threading.Lock()
        self._cursor: Position | None = None
        self._thread: threading.Thread | None = None
        self._wake = threading.Event()
        self.stopping = False
        self.polls = 0
        HUBS.add(self)

    # ------------------------------------------------------------------ viewers

    @property
    def viewer_count(self) -> int:
        return sum(len(v) for v in self._viewers.values())

    def register(self, account_id: uuid.UUID) -> tuple[Viewer, Position]:
        """A new viewer of `account_id` and the position from which the loop will feed it
        (everything up to it is the caller's to catch up on). Raises LiveFull."""
        if self.stopping:
            raise LiveFull("the server is stopping")
        if self.viewer_count >= self._settings.live_max_viewers:
            raise LiveFull(f"{self._settings.live_max_viewers} live viewers on this process already")
        viewer = Viewer(account_id, self._settings.live_queue_messages)
        with self._lock:
            if self._cursor is None:
                with self._pool.connection() as conn:
                    self._cursor = below(live_queries.horizon(conn, self._settings.live_commit_wait_seconds))
            self._viewers.setdefault(account_id, set()).add(viewer)
            cursor = self._cursor
        _gauge(+1)
        self._start()
        return viewer, cursor

    def unregister(self, viewer: Viewer) -> None:
        with self._lock:
            viewers = self._viewers.get(viewer.account_id)
            if viewers is not None and viewer in viewers:
                viewers.discard(viewer)
                if not viewers:
                    del self._viewers[viewer.account_id]
                _gauge(-1)
        if viewer.closed == "overflow":
            log.info("a live viewer of account %s fell %d messages behind: dropped", viewer.account_id,
                     self._settings.live_queue_messages)
        viewer.close(viewer.closed or "gone")

    def catch_up(self, account_id: uuid.UUID, after: Position, upto: Position) -> Catchup:
        """The account's events after `after` up to `upto` (a resumed stream's gap)."""
        if after >= upto:
            return Catchup(None, False)
        if after[0] < self._clock() - timedelta(seconds=self._settings.live_resume_seconds):
            return Catchup(None, True)
        with self._pool.connection() as conn:
            rows, counted, sessions = read_range(conn, [account_id], after, upto,
                                                 self._settings.live_max_events_per_message)
        if not rows:
            return Catchup(None, False)
        return Catchup(events_message(rows[account_id], sessions.get(account_id, []), upto, upto[0],
                                      counted[account_id]), False)

    def stream(self, viewer: Viewer, first: list[bytes], max_seconds: float) -> Iterator[bytes]:
        """The bytes of one viewer's response: `first`, then its messages and heartbeats,
        until it is dropped, the server stops or `max_seconds` have passed (the browser
        then reconnects, and its login or key is checked again)."""
        heartbeat = self._settings.live_heartbeat_seconds
        ends = time.monotonic() + max_seconds
        try:
            yield from first
            while not viewer.closed and not self.stopping:
                remaining = ends - time.monotonic()
                if remaining <= 0:
                    break
                message = viewer.next(min(heartbeat, remaining))
                if viewer.closed or self.stopping:
                    break
                yield message if message is not None else HEARTBEAT
        finally:
            self.unregister(viewer)

    # ------------------------------------------------------------------ the loop

    def _start(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="hindsight-live", daemon=True)
                self._thread.start()
        self._wake.set()

    def stop(self) -> None:
        self.stopping = True
        self._wake.set()
        with self._lock:
            viewers = [v for vs in self._viewers.values() for v in vs]
        for viewer in viewers:
            viewer.close("shutdown")

    def _run(self) -> None:
        interval = self._settings.live_poll_seconds
        while not self.stopping:
            with self._lock:
                idle = not self._viewers
                if idle:
                    self._cursor = None  # nobody watches: the next viewer starts from now
                    self._wake.clear()
            if idle:
                self._wake.wait(5.0)
                continue
            started = time.monotonic()
            try:
                self.poll_once()
            except Exception:  # the database is away, a statement timed out: try again soon
                log.warning("live stream poll failed", exc_info=True)
                time.sleep(1.0)
            time.sleep(max(0.0, interval - (time.monotonic() - started)))

    def poll_once(self) -> None:
        """One read of everything below the horizon, and its messages."""
        accounts = list(self._viewers)
        cursor = self._cursor
        if not accounts or cursor is None:
            return
        with self._pool.connection() as conn:
            horizon = live_queries.horizon(conn, self._settings.live_commit_wait_seconds)
            upto = max(cursor, below(horizon))
            rows, counted, sessions = read_range(conn, accounts, cursor, upto,
                                                 self._settings.live_max_events_per_message)
        self.polls += 1
        with self._lock:
            self._cursor = upto
            targets = {a: list(self._viewers.get(a, ())) for a in rows}
        for account_id, account_rows in rows.items():
            if not targets[account_id]:
                continue
            account_sessions = sessions.get(account_id, [])
            message = events_message(account_rows, account_sessions, upto, horizon, counted[account_id])
            for viewer in targets[account_id]:
                seen = viewer.after
                if seen is not None and seen > cursor:
                    if seen >= upto:
                        continue  # it has all of these already
                    viewer.after = None
                    own = [r for r in account_rows if (r["received_at"], r["session_id"], r["seq"]) > seen]
                    viewer.offer(events_message(own, account_sessions, upto, horizon))
                    continue
                viewer.after = None
                viewer.offer(message)


def _gauge(delta: int) -> None:
    gauge = getattr(metrics, "LIVE_VIEWERS", None)
    if gauge is not None:
        gauge.inc(delta)


def stop_all() -> None:
    """End every stream of this process (the worker is shutting down)."""
    for hub in list(HUBS):
        hub.stop()
