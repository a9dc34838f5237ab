"""The scheduler thread inside the service: runs named tasks at fixed intervals.

One daemon thread per process keeps a heap of (due time, task) under a lock; an
Event wakes it early when a task is added or on stop. Time is `monotonic()` (or an
injected clock for tests). A task that raises is logged and rescheduled: one
failing job never stops the others. Each task's last run, duration, result and
error are kept for /health.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from . import metrics

log = logging.getLogger("hindsight.scheduler")


@dataclass
class TaskStatus:
    name: str
    interval: float
    runs: int = 0
    failures: int = 0
    last_started_at: datetime | None = None
    last_duration_ms: float | None = None
    last_result: Any = None
    last_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "interval_seconds": self.interval, "runs": self.runs,
            "failures": self.failures,
            "last_started_at": self.last_started_at.isoformat() if self.last_started_at else None,
            "last_duration_ms": self.last_duration_ms, "last_result": self.last_result,
            "last_error": self.last_error,
        }


@dataclass(order=True)
class _Entry:
    due: float
    order: int
    task: _Task = field(compare=False)


@dataclass
class _Task:
    name: str
    interval: float
    fn: Callable[[], Any]
    status: TaskStatus


class Scheduler:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._heap: list[_Entry] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = False
        self._order = itertools.count()
        self._thread: threading.Thread | None = None
        self._tasks: dict[str, _Task] = {}

    def every(self, name: str, interval: float, fn: Callable[[], Any],
              first_delay: float | None = None) -> None:
        """Run `fn` every `interval` seconds, first after `first_delay` (default: one interval)."""
        task = _Task(name, interval, fn, TaskStatus(name, interval))
        with self._lock:
            self._tasks[name] = task
            delay = interval if first_delay is None else first_delay
            heapq.heappush(self._heap, _Entry(self._clock() + delay, next(self._order), task))
        self._wake.set()

    def run_now(self, name: str) -> Any:
        """Run a task in the calling thread (tests, CLI); its status is updated as usual."""
        return self._run(self._tasks[name])

    def status(self) -> list[dict[str, Any]]:
        with self._lock:
            return [t.status.as_dict() for t in self._tasks.values()]

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="hindsight-scheduler", daemon=True)
            self._thread.start()

    def stop(self, timeout: float | None = 10.0) -> None:
        """Stop after the running task (if any) finishes."""
        self._stopping = True
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stopping:
            with self._lock:
                now = self._clock()
                entry = self._heap[0] if self._heap else None
                if entry is not None and entry.due <= now:
                    heapq.heappop(self._heap)
                else:
                    entry_wait = (entry.due - now) if entry is not None else None
                    entry = None
            if entry is None:
                self._wake.wait(entry_wait)
                self._wake.clear()
                continue
            self._run(entry.task)
            with self._lock:
                heapq.heappush(self._heap, _Entry(self._clock() + entry.task.interval,
                                                  next(self._order), entry.task))

    def _run(self, task: _Task) -> Any:
        status = task.status
        status.last_started_at = datetime.now(UTC)
        started = time.perf_counter()
        try:
            result = task.fn()
        except Exception as ex:  # one failing task must not stop the scheduler
            log.exception("scheduled task %s failed", task.name)
            status.failures += 1
            status.last_error = f"{type(ex).__name__}: {ex}"
            result = None
        else:
            status.last_error = None
            status.last_result = result
        finally:
            status.runs += 1
            status.last_duration_ms = round((time.perf_counter() - started) * 1000, 3)
            metrics.task_finished(task.name, status.last_error is None, time.time())
        return result
