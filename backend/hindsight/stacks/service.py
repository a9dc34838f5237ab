"""The statistics stacks of one process: counted after each commit, flushed by the scheduler.

Requests call `events_stored` / `session_stored` after their transaction has committed
(the ledger row was written by that transaction). The scheduler thread runs two tasks:

- `stacks.monitor` every `HINDSIGHT_STACKS_MONITOR_INTERVAL_SECONDS` (60 s): on its first
  run it rebuilds the stacks from the ledger; every run it drops the stacks of tokens
  revoked anywhere, switches hosts back on that are under their limit again, flushes the
  due stacks and the idle ones, and adopts ledger rows that nobody flushed (a process
  that died);
- `stacks.flush_due` every quarter second: flushes the stacks that reached the event threshold
  (or were picked to relieve memory, or were revoked) without waiting for the monitor.

All flushes run on the scheduler thread; request threads only touch the registry.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import PoolTimeout

from ..db import Pool
from ..principals import SiteWriter
from ..scheduler import Scheduler
from . import ledger
from .health import LastHour, LedgerTotals, StacksHealth
from .last_hour import LastHourCounts
from .registry import IDLE, ORPHAN, REVOKED, Key, Registry, Stack

log = logging.getLogger("hindsight.stacks")

FLUSH_DUE_INTERVAL = 0.25  # seconds: how soon a stack at the threshold is flushed
# Revocations are looked up since the last lookup minus this margin (a revoking
# transaction may commit a little after the time it wrote).
REVOCATION_MARGIN = timedelta(minutes=2)
_DB_ERRORS = (psycopg.OperationalError, PoolTimeout)

PAGE_VIEW, CLICK = "page_view", "click"


class StatisticsStacks:
    def __init__(self, pool: Pool, *, threshold: int, idle_seconds: float,
                 interval_seconds: float, memory_limit_bytes: int,
                 clock: Callable[[], datetime]) -> None:
        self._pool = pool
        self._clock = clock
        self.idle_seconds = idle_seconds
        self.interval_seconds = interval_seconds
        self.registry = Registry(threshold, memory_limit_bytes, lambda: clock().timestamp())
        self.last_hour = LastHourCounts()
        self.started_at = time.monotonic()
        self.last_cycle_at: datetime | None = None
        self.last_cycle: dict[str, Any] = {}
        self.database_ok: bool | None = None
        self._recovered = False
        self._revocations_seen_at: datetime | None = None

    # ------------------------------------------------------------------ after a commit

    def events_stored(self, writer: SiteWriter, events: Iterable[dict], inserted: int) -> None:
        """Count a stored batch. A re-sent batch (nothing inserted) counts nothing; for a
        partly re-sent one the memory count is high until the flush, which counts exactly."""
        if inserted <= 0:
            return
        pages = clicks = n = 0
        for event in events:
            n += 1
            kind = event["event_type"]
            if kind == PAGE_VIEW:
                pages += 1
            elif kind == CLICK:
                clicks += 1
        self.registry.add(writer.account_id, writer.host, writer.token,
                          pages=pages, clicks=clicks, other=n - pages - clicks)

    def session_stored(self, writer: SiteWriter, created: bool) -> None:
        """Count a session start (only a newly created session is one)."""
        if created:
            self.registry.add(writer.account_id, writer.host, writer.token, sessions=1)

    def token_issued(self, account_id: uuid.UUID, host: str, token: uuid.UUID) -> None:
        self.registry.register(account_id, host, token)

    def token_revoked(self, account_id: uuid.UUID, host: str) -> None:
        """Drop the stack now; the next due run counts what it had (from the ledger)."""
        self.registry.drop((account_id, host), REVOKED)

    # ------------------------------------------------------------------ scheduler tasks

    def install(self, scheduler: Scheduler) -> None:
        scheduler.every("stacks.monitor", self.interval_seconds, self.monitor_cycle, first_delay=0)
        scheduler.every("stacks.flush_due", FLUSH_DUE_INTERVAL, self.flush_due)

    def flush_due(self) -> dict[str, int]:
        return {"flushed": self._flush_all(self.registry.take_due())}

    def monitor_cycle(self) -> dict[str, Any]:
        started = time.perf_counter()
        now = self._clock()
        now_ts = now.timestamp()
        processed = empty = 0
        if self._lookups(now):  # with the database down, every stack waits where it is
            processed += self._flush_all(self.registry.take_due())
            idle, empty = self.registry.take_idle(now_ts - self.idle_seconds)
            processed += self._flush_all([(s.key, IDLE, s) for s in idle])
            processed += self._adopt_orphans()
        duration_ms = (time.perf_counter() - started) * 1000
        self.last_hour.add(now_ts, cycles=1, cycle_ms=duration_ms, empty_skipped=empty)
        self.last_cycle_at = now
        self.last_cycle = {"processed": processed, "empty_skipped": empty,
                           "active_stacks": len(self.registry),
                           "duration_ms": round(duration_ms, 3)}
        return self.last_cycle

    # ------------------------------------------------------------------ flushing

    def flush_now(self, key: Key, reason: str) -> ledger.FlushResult | None:
        """Flush one key at once, with its stack if this process has one (tests, bench)."""
        results: list[ledger.FlushResult] = []
        self._flush_all([(key, reason, self.registry.pop(key))], results)
        return results[0] if results else None

    def _flush_all(self, items: Iterable[tuple[Key, str, Stack | None]],
                   results: list[ledger.FlushResult] | None = None) -> int:
        """Flush each key (with its stack, if any); return how many wrote something.

        On a database error the rest are not tried: they go back (stacks and due list)
        for the next run. Any other error is a bug: logged, and that key goes back.
        """
        flushed = 0
        pending = list(items)
        for i, (key, reason, stack) in enumerate(pending):
            now = self._clock()
            try:
                with self._pool.connection() as conn:
                    result = ledger.flush(conn, key[0], key[1], now)
            except _DB_ERRORS as ex:
                self.last_hour.add(now.timestamp(), failed=1)
                self._database_down(ex)
                for key_, reason_, stack_ in pending[i:]:
                    self.registry.put_back(key_, reason_, stack_)
                break
            except Exception:
                self.last_hour.add(now.timestamp(), failed=1)
                log.exception("flush of %s/%s failed; its stack is kept", key[0], key[1])
                self.registry.put_back(key, IDLE, stack)  # not due again at once: no hot loop
                continue
            self._database_up()
            if results is not None:
                results.append(result)
            if result.empty:
                # Another process (or an earlier flush) counted these events already.
                self.last_hour.add(now.timestamp(), empty_flushes=1)
                continue
            flushed += 1
            self.last_hour.add(now.timestamp(), succeeded=1, batch_events=result.total,
                           **{f"{reason}_flushes": 1})
            usage = result.usage
            if usage is not None and usage.exceeded:
                log.info("account %s reached its limit (%s of %s events this month): statistics off",
                         key[0], usage.used, usage.limit)
                # Its other stacks go too; their ledger rows are flushed by the next due run.
                self.registry.drop_account(key[0], REVOKED)
        return flushed

    # ------------------------------------------------------------------ the monitor's chores

    def _lookups(self, now: datetime) -> bool:
        """Rebuild (first time), drop revoked tokens' stacks, switch hosts back on."""
        from ..queries.usage import switch_back_on

        try:
            with self._pool.connection() as conn:
                if not self._recovered:
                    restored = self.registry.restore(ledger.pending_by_key(conn))
                    self._recovered = True
                    if restored:
                        log.info("rebuilt %d statistics stacks from the ledger", restored)
                since = (self._revocations_seen_at or now) - REVOCATION_MARGIN
                keys, self._revocations_seen_at = ledger.revoked_since(conn, since)
                switched_on = switch_back_on(conn, now)
                conn.commit()
        except _DB_ERRORS as ex:
            self._database_down(ex)
            return False
        self._database_up()
        dropped = 0
        for key in keys:
            if key in self.registry:
                self.registry.drop(key, REVOKED)  # flushed by the due run that follows
                dropped += 1
        if dropped:
            self.last_hour.add(now.timestamp(), revoked_drops=dropped)
        for row in switched_on:
            log.info("statistics back on for %s/%s (under its limit again)", row["account_id"], row["host"])
        return True

    def _adopt_orphans(self) -> int:
        """Flush ledger rows that nobody flushed for the idle time (their process died)."""
        try:
            with self._pool.connection() as conn:
                rows = ledger.orphans(conn, self.idle_seconds)
        except _DB_ERRORS as ex:
            self._database_down(ex)
            return 0
        keys = [(row["account_id"], row["host"]) for row in rows]
        return self._flush_all([(key, ORPHAN, self.registry.pop(key)) for key in keys])

    def _database_down(self, ex: BaseException) -> None:
        if self.database_ok is not False:
            log.warning("statistics stacks: database unreachable, stacks kept until it is back: %s", ex)
        self.database_ok = False

    def _database_up(self) -> None:
        if self.database_ok is False:
            log.info("statistics stacks: database reachable again")
        self.database_ok = True

    # ------------------------------------------------------------------ health

    def health(self, database_reachable: bool, ledger_totals: LedgerTotals | None = None) -> StacksHealth:
        """How this process's stacks do (plus the ledger, for all of them, when given)."""
        now = self._clock()
        now_ts = now.timestamp()
        snap = self.registry.snapshot()
        hour = self.last_hour.sum(now_ts)
        limit = self.registry.memory_limit_bytes
        succeeded, failed = hour["succeeded"], hour["failed"]
        attempts = succeeded + failed + hour["empty_flushes"]
        success_rate = 100.0 if attempts == 0 else 100.0 * (attempts - failed) / attempts
        utilization = 100.0 * snap.memory_bytes / limit if limit else 0.0
        score = 0.0 if not database_reachable else round(success_rate * (0.5 if utilization >= 100 else 1.0), 1)
        return StacksHealth(
            status="healthy" if score >= 90 else ("degraded" if score > 0 else "unhealthy"),
            health_score=score,
            checked_at=now,
            uptime_seconds=round(time.monotonic() - self.started_at, 1),
            database_reachable=database_reachable,
            active_stacks=snap.active_stacks,
            events_in_memory=snap.events,
            empty_stacks=snap.empty_stacks,
            due_stacks=snap.due,
            memory_bytes=snap.memory_bytes,
            memory_limit_bytes=limit,
            memory_utilization_percent=round(utilization, 1),
            oldest_stack_age_minutes=(None if snap.oldest_created_at is None
                                      else round((now_ts - snap.oldest_created_at) / 60, 1)),
            monitor_interval_seconds=self.interval_seconds,
            event_threshold=self.registry.threshold,
            idle_threshold_minutes=round(self.idle_seconds / 60, 3),
            last_monitor_run=self.last_cycle_at,
            stacks_processed_last_cycle=self.last_cycle.get("processed", 0),
            last_hour=LastHour(
                idle_flushes=int(hour["idle_flushes"]),
                threshold_flushes=int(hour["threshold_flushes"]),
                memory_flushes=int(hour["memory_flushes"]),
                revocation_flushes=int(hour["revoked_flushes"]),
                orphan_flushes=int(hour["orphan_flushes"]),
                revoked_drops=int(hour["revoked_drops"]),
                empty_skipped=int(hour["empty_skipped"]),
                average_cycle_ms=round(hour["cycle_ms"] / hour["cycles"], 3) if hour["cycles"] else None,
                successful_flushes=int(succeeded),
                failed_flushes=int(failed),
                already_counted_flushes=int(hour["empty_flushes"]),
                success_rate_percent=round(success_rate, 1),
                average_batch_size=round(hour["batch_events"] / succeeded, 1) if succeeded else None,
            ),
            ledger=ledger_totals,
        )
