"""The live page's state at one moment (its first paint and its `?format=json` twin): the
visitors on the site now, the newest events, the ingestion rate of the last ten minutes,
and the stream position they were read up to (the stream goes on from there)."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from ..db import Pool
from ..observe.warnings import account_warnings
from ..queries import live as live_queries
from ..queries import observe as observe_queries
from ..settings import Settings
from .hub import below, encode_position, event_json, visitor_json

ACTIVE_SECONDS = 300     # a visitor is "on the site now" with an event in the last 5 minutes
RATE_SECONDS = 600       # the ingestion rate's window
RATE_BUCKET = 10         # ... in buckets of this many seconds
EVENTS = 100             # newest events shown at first
VISITORS = 1000
WARNINGS_SECONDS = 3600  # refused writes shown: those seen in the last hour
WARNINGS = 10


def snapshot(pool: Pool, settings: Settings, clock: Callable[[], datetime],
             account_id: uuid.UUID) -> dict[str, Any]:
    with pool.connection() as conn:
        horizon = live_queries.horizon(conn, settings.live_commit_wait_seconds)
        now = clock()
        visitors = live_queries.active_sessions(conn, account_id, now, ACTIVE_SECONDS, VISITORS)
        events = live_queries.recent_events(conn, account_id, horizon, RATE_SECONDS, EVENTS)
        rate_rows = live_queries.rate(conn, account_id, horizon, RATE_SECONDS, RATE_BUCKET)
        refused = observe_queries.rejections(conn, account_id, horizon - timedelta(seconds=RATE_SECONDS))
    # Refused writes (hindsight.observe.warnings, grouped by status and reason; the full
    # list is on the account page).
    warnings = account_warnings(pool, account_id, now - timedelta(seconds=WARNINGS_SECONDS), WARNINGS)
    hosts = Counter(v["host"] for v in visitors)
    return {
        "now": now,
        "cursor": encode_position(below(horizon)),
        "active_seconds": ACTIVE_SECONDS,
        "visitors": [visitor_json(v) for v in visitors],
        "hosts": [{"host": h, "visitors": n} for h, n in sorted(hosts.items(), key=lambda x: (-x[1], x[0]))],
        "events": [event_json(e) for e in events],
        "rate": rate_series(rate_rows, horizon, refused),
        "warnings_seconds": WARNINGS_SECONDS,
        "warnings": warnings,
    }


def rate_series(rows: list[dict[str, Any]], horizon: datetime,
                refused: list[dict[str, Any]]) -> dict[str, Any]:
    """Every bucket of the window, empty ones as zeros, oldest first: events and batches
    stored, and writes refused (ingestion_rejections, in the same 10-second buckets)."""
    step = RATE_BUCKET
    end = datetime.fromtimestamp(horizon.timestamp() // step * step, tz=horizon.tzinfo)
    found = {int(r["bucket"].timestamp()): r for r in rows}
    rejected: dict[int, int] = {}
    for r in refused:  # refusals are not behind the horizon: newer ones go in the last bucket
        key = min(int(r["bucket"].timestamp()), int(end.timestamp()))
        rejected[key] = rejected.get(key, 0) + int(r["rejected"])
    series = []
    for i in range(RATE_SECONDS // step - 1, -1, -1):
        at = end - timedelta(seconds=i * step)
        row = found.get(int(at.timestamp()))
        series.append({"bucket": at, "events": row["events"] if row else 0,
                       "batches": row["batches"] if row else 0,
                       "rejected": rejected.get(int(at.timestamp()), 0)})
    return {"bucket_seconds": step, "seconds": RATE_SECONDS, "series": series}
