"""The per-process observer: ingestion warnings and pipeline traces in memory, written to
the database by the scheduler (`observe.flush` every 2 s) and pruned (`observe.prune`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ..db import Pool
from ..queries import observe as queries
from ..scheduler import Scheduler
from .traces import TraceBuffer
from .warnings import WarningBuffer

FLUSH_SECONDS = 2.0
PRUNE_SECONDS = 600.0
WARNINGS_KEPT = timedelta(days=7)
WARNINGS_PER_ACCOUNT = 100
TRACES_KEPT = timedelta(hours=6)
REJECTIONS_KEPT = timedelta(days=1)  # refused writes per 10 s (the live page draws 10 minutes)


def _utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass
class Observer:
    clock: Callable[[], datetime] = _utc_now
    traces_enabled: bool = True
    warnings: WarningBuffer = field(init=False)
    traces: TraceBuffer = field(default_factory=TraceBuffer)

    def __post_init__(self) -> None:
        self.warnings = WarningBuffer(self.clock)

    def flush(self, pool: Pool) -> dict[str, Any]:
        traces = self.traces.flush(pool)
        warnings = self.warnings.flush(pool)
        return {"traces": traces, "warnings": warnings, "dropped_traces": self.traces.dropped,
                "dropped_warnings": self.warnings.dropped}

    def prune(self, pool: Pool) -> dict[str, int]:
        now = self.clock()
        with pool.connection() as conn, conn.transaction():
            warnings = queries.prune_warnings(conn, now - WARNINGS_KEPT, WARNINGS_PER_ACCOUNT)
            traces = queries.prune_traces(conn, now - TRACES_KEPT)
            rejections = queries.prune_rejections(conn, now - REJECTIONS_KEPT)
        return {"warnings": warnings, "traces": traces, "rejections": rejections}

    def install(self, scheduler: Scheduler, pool: Pool) -> None:
        scheduler.every("observe.flush", FLUSH_SECONDS, lambda: self.flush(pool))
        scheduler.every("observe.prune", PRUNE_SECONDS, lambda: self.prune(pool), first_delay=60.0)
