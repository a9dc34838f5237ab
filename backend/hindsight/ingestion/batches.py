"""Event batches (POST /api/v1/track, and the seed's /api/pages|events|referrers/add):
authorize, store and count, after the endpoint has decoded and validated the body.

A new batch is one autocommitted statement that authorizes and stores it in one round
trip (queries/events.py, INSERT_NEW_BATCH_AUTHORIZED). When it stores nothing (something
did not check out) or finds the batch stored before (a unique violation), the
step-by-step path runs: it reads the same checks to say exactly what is wrong, or stores
the batch once (ON CONFLICT DO NOTHING). Either way the answer comes after the commit.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg

from .. import metrics, visitors
from ..observe.traces import Trace
from ..principals import SiteWriter
from ..queries import events as event_queries
from ..services import Services
from .authorize import NO_SESSION, Sender, authorize


@dataclass(frozen=True)
class StoredBatch:
    writer: SiteWriter
    inserted: int   # events newly stored (a re-sent event is not)


def store(services: Services, sender: Sender, session_id: uuid.UUID, events: list[dict[str, Any]],
          now: datetime, no_session: str = NO_SESSION, trace: Trace | None = None) -> StoredBatch:
    """Authorize, store once, count; return who wrote and how many events were new.
    `trace` (hindsight.observe.traces) gets the instants of the commit and the count."""
    visitors.drop_browser_ids(events)
    batch = event_queries.encode_batch(events)
    if trace is not None:
        trace.session_id, trace.events, trace.token = session_id, len(events), sender.token
    stored = _store_new(services, sender, session_id, batch, now)
    if stored is None:
        stored = _store_step_by_step(services, sender, session_id, batch, now, no_session)
    if trace is not None:
        trace.committed = time.perf_counter()
        trace.account_id, trace.host, trace.inserted = stored.writer.account_id, stored.writer.host, stored.inserted
    # Committed: count it on the statistics stacks (hindsight.stacks).
    services.stacks.events_stored(stored.writer, events, stored.inserted)
    metrics.batch_stored(stored.inserted, len(events))
    if trace is not None:
        trace.counted = time.perf_counter()
    return stored


def _store_new(services: Services, sender: Sender, session_id: uuid.UUID, batch: dict[str, Any],
               now: datetime) -> StoredBatch | None:
    """The common case in one statement and one round trip; None: take the other path."""
    with services.pool.connection() as conn:
        conn.autocommit = True  # the statement is its own transaction: committed when it returns
        try:
            row = event_queries.insert_new_batch_authorized(conn, sender.params(now), session_id, batch)
        except psycopg.errors.UniqueViolation:
            return None  # some of it is stored already: a re-sent batch
        finally:
            if not conn.closed:
                conn.autocommit = False
    if row is None:
        return None
    return StoredBatch(SiteWriter(sender.token, row["account_id"], row["host"], row["strip_query"]),
                       row["inserted"])


def _store_step_by_step(services: Services, sender: Sender, session_id: uuid.UUID,
                        batch: dict[str, Any], now: datetime, no_session: str) -> StoredBatch:
    with services.pool.connection() as conn, conn.transaction():
        writer = authorize(conn, sender, now, session_id, no_session)
        inserted = event_queries.insert_batch(conn, session_id, writer.account_id, writer.host, batch,
                                              writer.strip_query_strings)
    return StoredBatch(writer, inserted)
