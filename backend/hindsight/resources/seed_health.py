"""GET /api/health/stacks: the statistics stacks' health (hindsight.stacks.health) as the
seed's health document: this process's stacks and monitor, and the shared ledger."""

from __future__ import annotations

from typing import Any

import falcon
import psycopg
from psycopg_pool import PoolTimeout

from .. import __version__
from ..services import Services
from ..stacks import ledger
from ..stacks.health import LedgerTotals, StacksHealth


def _ledger_json(totals: LedgerTotals | None) -> dict[str, Any] | None:
    if totals is None:
        return None
    return {"pending_batches": totals.pending_batches, "pending_events": totals.pending_events,
            "pending_stacks": totals.pending_stacks,
            "oldest_pending_at": totals.oldest_pending_at.isoformat() if totals.oldest_pending_at else None}


def seed_document(h: StacksHealth) -> dict[str, Any]:
    """The seed's health document (its field names) for `h`."""
    hour = h.last_hour
    return {
        "status": h.status,
        "timestamp": h.checked_at.isoformat(),
        "uptime_seconds": h.uptime_seconds,
        "statistics_server": {
            "active_stacks": h.active_stacks,
            "total_events_in_memory": h.events_in_memory,
            "empty_stacks": h.empty_stacks,
            "due_stacks": h.due_stacks,
            "memory_usage_mb": round(h.memory_bytes / 2**20, 3),
            "memory_limit_mb": round(h.memory_limit_bytes / 2**20, 3),
            "memory_utilization_percent": h.memory_utilization_percent,
            "oldest_stack_age_minutes": h.oldest_stack_age_minutes,
            "database_connection_status": "connected" if h.database_reachable else "unreachable",
        },
        "idle_monitor_statistics": {
            "monitor_interval_seconds": h.monitor_interval_seconds,
            "event_threshold": h.event_threshold,
            "idle_threshold_minutes": h.idle_threshold_minutes,
            "last_monitor_run": h.last_monitor_run.isoformat() if h.last_monitor_run else None,
            "stacks_processed_last_cycle": h.stacks_processed_last_cycle,
            "idle_triggered_flushes_last_hour": hour.idle_flushes,
            "event_triggered_flushes_last_hour": hour.threshold_flushes,
            "memory_triggered_flushes_last_hour": hour.memory_flushes,
            "revocation_flushes_last_hour": hour.revocation_flushes,
            "orphan_flushes_last_hour": hour.orphan_flushes,
            "stacks_dropped_for_revoked_tokens_last_hour": hour.revoked_drops,
            "empty_stacks_skipped_last_hour": hour.empty_skipped,
            "average_cycle_processing_time_ms": hour.average_cycle_ms,
        },
        "flush_statistics": {
            "successful_flushes_last_hour": hour.successful_flushes,
            "failed_flushes_last_hour": hour.failed_flushes,
            "already_counted_flushes_last_hour": hour.already_counted_flushes,
            "flush_success_rate_percent": hour.success_rate_percent,
            "average_batch_size": hour.average_batch_size,
        },
        "ledger": _ledger_json(h.ledger),
        "health_score": h.health_score,
    }


class SeedHealth:
    """GET /api/health/stacks: 503 (with the document) while the database is unreachable."""

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.cache_control = ["no-store"]
        totals: LedgerTotals | None = None
        try:
            with self._s.pool.connection(timeout=2.0) as conn:
                totals = ledger.pending_totals(conn)
            reachable = True
        except (psycopg.OperationalError, PoolTimeout):
            reachable = False
        doc = seed_document(self._s.stacks.health(reachable, totals))
        doc["version"] = __version__
        if not reachable:
            resp.status = falcon.HTTP_503
            resp.set_header("Retry-After", "5")
        resp.media = doc
