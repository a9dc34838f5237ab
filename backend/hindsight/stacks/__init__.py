"""Statistics stacks and usage control (issue 5, seed 000's "statistics server" flow).

Every committed event is counted on its account + host's stack; a scheduler task
flushes stacks into journeys, statistics counters and usage, and switches an account
off at its monthly limit. See service.py (the flow), registry.py (memory), ledger.py
(the durable side), health.py (how they do, as data) and docs/DECISIONS.md ("Statistics
stacks"). No HTTP here: the seed's routes are resources (hindsight.resources.seed_*).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from ..db import Pool
from ..settings import Settings
from .service import StatisticsStacks

__all__ = ["StatisticsStacks", "create_stacks"]


def create_stacks(settings: Settings, pool: Pool,
                  clock: Callable[[], datetime]) -> StatisticsStacks:
    return StatisticsStacks(
        pool,
        threshold=settings.stacks_event_threshold,
        idle_seconds=settings.stacks_idle_seconds,
        interval_seconds=settings.stacks_monitor_interval_seconds,
        memory_limit_bytes=int(settings.stacks_memory_limit_mb * 2**20),
        clock=clock,
    )
