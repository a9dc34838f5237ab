"""The pipeline page (seed 001's terminal): recent event batches with their stages.

    GET /dashboard/pipeline                 newest batches first (or ?format=json)
    GET /dashboard/pipeline?q=ID            one request id's batch, or one session's batches

Each batch: received, validated, committed (rows inserted, duplicates skipped), counted on
its statistics stack, flushed into journeys and usage, each with its instant and its time
since the batch was received; refused batches are highlighted with why. The same data as
GET /api/v1/pipeline (hindsight.observe.traces).
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import falcon

from ..observe import traces
from ..observe.service import TRACES_KEPT
from ..request_ids import sane_request_id
from ..services import Services
from . import web

LIMIT = 100


class PipelinePage:
    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        q = (req.get_param("q") or "").strip()
        with self._s.pool.connection() as conn:
            user = web.current_user(req, conn, self._s)
        account = user.account_id
        if not q:
            batches = traces.recent_batches(self._s.pool, account, limit=LIMIT)
        else:
            # A request id (a sane X-Request-Id), or a session id: both are looked for.
            rid = sane_request_id(q)
            batches = traces.recent_batches(self._s.pool, account, request_id=rid, limit=LIMIT) if rid else []
            try:
                session = uuid.UUID(q)
            except ValueError:
                session = None
            if session is not None:
                seen = {(b["request_id"], b["received_at"]) for b in batches}
                batches += [b for b in traces.recent_batches(self._s.pool, account, session_id=session, limit=LIMIT)
                            if (b["request_id"], b["received_at"]) not in seen]
                batches.sort(key=lambda b: b["received_at"], reverse=True)
        view = {"q": q or None, "kept_hours": int(TRACES_KEPT / timedelta(hours=1)),
                "stages": list(traces.STAGES), "batches": batches[:LIMIT]}
        web.respond(req, resp, "pipeline.html", view, user, nav="pipeline")
