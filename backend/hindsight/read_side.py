"""Reads that tolerate lag, on a streaming replica (HINDSIGHT_READ_DATABASE_URL).

`ReadSide.connection()` lends a connection of the replica's pool while the replica
answers, and of the primary's otherwise: without a replica it *is* the primary's pool.
Which reads use it is decided case by case in docs/SCALING.md ("Which reads go to the
replica"); anything that must read its own writes keeps `services.pool`.

A stopped replica degrades to the primary (docs/DECISIONS.md, "Read replica"): the first
checkout that fails (or a query that loses its connection) marks the replica down, with a
warning in the log; until a probe reaches it again (`status()`, run by /health and by the
scheduler every few seconds) every read goes to the primary, and `/health` says so.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from contextvars import ContextVar
from typing import Any

import psycopg
from psycopg_pool import PoolTimeout

from .db import Conn, Pool, create_pool
from .queries.replication import replica_lag
from .scheduler import Scheduler
from .settings import Settings

log = logging.getLogger("hindsight.read_side")

CHECKOUT_SECONDS = 1.0  # a request waits this long for a replica connection, then uses the primary
PROBE_SECONDS = 5.0     # how often the scheduler looks at the replica (lag, back up)
SPARE_SECONDS = 0.01    # a second connection for a request that can use one, if one is this near

# The pool whose connection `ReadSide.connection()` lends in this context (for `spare`).
_LENT: ContextVar[Pool | None] = ContextVar("read_side_lent", default=None)


@contextmanager
def _lending(pool: Pool | None) -> Iterator[None]:
    token = _LENT.set(pool)
    try:
        yield
    finally:
        _LENT.reset(token)


class ReadSide:
    """The pool of reads that tolerate lag: the replica's while it is up, else the primary's."""

    def __init__(self, primary: Pool, replica: Pool | None = None) -> None:
        self._primary = primary
        self._replica = replica
        self._lock = threading.Lock()
        self._up = replica is not None
        self._error: str | None = None
        self._lag: dict[str, Any] | None = None
        self.fallbacks = 0  # reads sent to the primary because the replica was down

    @property
    def configured(self) -> bool:
        return self._replica is not None

    @property
    def replica_up(self) -> bool:
        return self._up

    @contextmanager
    def connection(self, timeout: float | None = None) -> Iterator[Conn]:
        """A connection for reads; the same interface as the pool's `connection()`."""
        with ExitStack() as stack:
            conn: Conn | None = None
            replica = self._replica if self._up else None
            if replica is not None:
                wait = CHECKOUT_SECONDS if timeout is None else min(timeout, CHECKOUT_SECONDS)
                try:
                    conn = stack.enter_context(replica.connection(timeout=wait))
                except (PoolTimeout, psycopg.OperationalError) as ex:
                    self._mark_down(ex)
            if conn is None:
                if self._replica is not None:
                    self.fallbacks += 1
                with self._primary.connection(timeout=timeout) as primary_conn, _lending(self._primary):
                    yield primary_conn
                return
            try:
                with _lending(replica):
                    yield conn
            except psycopg.OperationalError as ex:
                # This request fails (503, the client retries); the next reads go to the primary.
                self._mark_down(ex)
                raise

    @contextmanager
    def spare(self, wait: float = SPARE_SECONDS) -> Iterator[Conn | None]:
        """A second connection for a request that can split its reads (the overview runs its
        statements on two at once), from the pool `connection()` uses, or None if none is
        free within `wait`: the caller then reads on its one connection. Never waits long,
        never marks the replica down (a busy pool is not a replica that is gone). Inside
        `connection()`, from the pool that lent that connection (both on one server, whatever
        the replica's state does meanwhile: their reads share a snapshot, rollup_rows)."""
        pool = _LENT.get() or (self._replica if (self._replica is not None and self._up) else self._primary)
        try:
            stack = ExitStack()
            conn = stack.enter_context(pool.connection(timeout=wait))
        except (PoolTimeout, psycopg.OperationalError):
            yield None
            return
        with stack:
            yield conn

    def _mark_down(self, ex: BaseException) -> None:
        with self._lock:
            was_up, self._up = self._up, False
            self._error = type(ex).__name__
        if was_up:
            log.warning("read replica unreachable (%s): reads go to the primary until it is back",
                        type(ex).__name__)

    def _mark_up(self) -> None:
        with self._lock:
            was_up, self._up, self._error = self._up, True, None
        if not was_up:
            log.warning("read replica reachable again: reads go to it")

    def status(self) -> dict[str, Any]:
        """Probe the replica (its lag, or that it is down) and say where reads go; /health's
        `read_replica`."""
        if self._replica is None:
            return {"configured": False, "reads_on": "primary"}
        try:
            with self._replica.connection(timeout=CHECKOUT_SECONDS) as conn:
                lag = replica_lag(conn)
        except (PoolTimeout, psycopg.OperationalError) as ex:
            self._mark_down(ex)
        else:
            self._lag = lag
            self._mark_up()
        lag = self._lag or {}
        return {
            "configured": True,
            "reachable": self._up,
            "reads_on": "replica" if self._up else "primary",
            "error": self._error,
            "in_recovery": lag.get("in_recovery"),
            "lag_seconds": lag.get("lag_seconds") if self._up else None,
            "replayed_at": lag.get("replayed_at"),
            "fallback_reads": self.fallbacks,
        }

    def summary(self) -> dict[str, Any]:
        """Where reads go and the replica's lag as last probed (no query): for pages that say
        how far behind their data may be (the live page, the replay's tail mode)."""
        on_replica = self._replica is not None and self._up
        lag = (self._lag or {}).get("lag_seconds") if on_replica else None
        return {"reads_on": "replica" if on_replica else "primary", "lag_seconds": lag}

    def install(self, scheduler: Scheduler) -> None:
        if self._replica is not None:
            scheduler.every("read_side.probe", PROBE_SECONDS, self.status, first_delay=PROBE_SECONDS)

    def close(self) -> None:
        if self._replica is not None:
            self._replica.close()


def create_read_side(settings: Settings, primary: Pool) -> ReadSide:
    """The read side of HINDSIGHT_READ_DATABASE_URL: a pool on the replica (opened without
    waiting: a replica down at start only sends the reads to the primary)."""
    if not settings.read_database_url:
        return ReadSide(primary)
    replica = create_pool(settings, open_wait=False, url=settings.read_database_url,
                          name="hindsight-read")
    return ReadSide(primary, replica)
