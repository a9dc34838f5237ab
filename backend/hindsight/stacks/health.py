"""How the statistics stacks do: what `StatisticsStacks.health` returns, as data.

The HTTP layer formats it (the seed's document at /api/health/stacks,
resources/seed_health.py; the account page's summary); nothing reads it back by keys.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class LedgerTotals:
    """What is stored and not counted yet, for all processes (stack_pending)."""

    pending_batches: int
    pending_events: int
    pending_stacks: int
    oldest_pending_at: datetime | None


@dataclass(frozen=True)
class LastHour:
    """What this process's monitor and flushes did in the last hour."""

    idle_flushes: int
    threshold_flushes: int
    memory_flushes: int
    revocation_flushes: int
    orphan_flushes: int
    revoked_drops: int            # stacks dropped because their token was revoked
    empty_skipped: int            # empty stacks dropped without a flush
    average_cycle_ms: float | None
    successful_flushes: int
    failed_flushes: int
    already_counted_flushes: int  # flushes that found nothing: another process counted it
    success_rate_percent: float
    average_batch_size: float | None


@dataclass(frozen=True)
class StacksHealth:
    """This process's stacks and monitor (and, when the database answered, the ledger)."""

    status: str                   # healthy (score >= 90) | degraded | unhealthy (score 0)
    health_score: float           # 0-100: the flush success rate, halved at the memory limit
    checked_at: datetime
    uptime_seconds: float
    database_reachable: bool
    active_stacks: int
    events_in_memory: int
    empty_stacks: int
    due_stacks: int
    memory_bytes: int
    memory_limit_bytes: int
    memory_utilization_percent: float
    oldest_stack_age_minutes: float | None
    monitor_interval_seconds: float
    event_threshold: int
    idle_threshold_minutes: float
    last_monitor_run: datetime | None
    stacks_processed_last_cycle: int
    last_hour: LastHour
    ledger: LedgerTotals | None
