"""The seed's event API: one seed event per request (hindsight.seed), with
`Authorization: Bearer <statistics token>` (or `token` in the body), through the same
ingestion pipeline as /api/v1/sessions and /api/v1/track (same checks, same ledger):

    POST /api/sessions/add     a session start             -> ingestion.sessions
    POST /api/pages/add        PageLoad / PageUnload       -> ingestion.batches
    POST /api/events/add       Click / Focus / Blur        -> ingestion.batches
    POST /api/referrers/add    where the visitor came from -> ingestion.batches

`cklig-track-account`, when given, must be the token's account (checked with the rest
of the write's checks, hindsight.queries.writers).
"""

from __future__ import annotations

import falcon
from marshmallow import Schema

from ..ingestion import batches
from ..ingestion import sessions as session_ingestion
from ..ingestion.window import check_window
from ..seed import mapping
from ..seed.schemas import InteractionAddSchema, PageAddSchema, ReferrerAddSchema, SessionAddSchema
from ..services import Services
from .http import accept_origin, client_ip, json_body, sender

NO_SEED_SESSION = "No such session for this account; send it to /api/sessions/add first."


class SeedSessions:
    """POST /api/sessions/add: a session start ("sessions-added")."""

    schema = SessionAddSchema()

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = json_body(req, self.schema)
        e, now = body["event"], self._s.clock()
        check_window(body["timestamp"], now, "timestamp")
        values = mapping.session_values(e, body["timestamp"], req.user_agent)
        ip = str(e["user_ip"]) if e["user_ip"] is not None else client_ip(req, self._s.settings)
        stored = session_ingestion.create(self._s, sender(req, body["token"], e["account"]), values, now, ip)
        accept_origin(req)
        resp.status = falcon.HTTP_201 if stored.created else falcon.HTTP_200
        resp.media = {"session_id": str(stored.session_id), "started_at": stored.started_at.isoformat()}


class _SeedEvent:
    """One seed event, stored as one event of a batch of its session."""

    kind = ""
    schema: Schema

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = json_body(req, self.schema)
        e, now = body["event"], self._s.clock()
        check_window(body["timestamp"], now, "timestamp")
        event = mapping.event(self.kind, e, body["timestamp"])
        session_id = mapping.seed_session_id(e["session"])
        stored = batches.store(self._s, sender(req, body["token"], e["account"]), session_id, [event], now,
                               NO_SEED_SESSION)
        accept_origin(req)
        resp.status = falcon.HTTP_201 if stored.inserted else falcon.HTTP_200
        resp.media = {"count": stored.inserted, "session_id": str(session_id), "event_type": event["event_type"]}


class SeedPages(_SeedEvent):
    """POST /api/pages/add: PageLoad (a page view, a journey step) or PageUnload."""

    kind = mapping.PAGES
    schema = PageAddSchema()


class SeedInteractions(_SeedEvent):
    """POST /api/events/add: Click (a journey step), Focus or Blur."""

    kind = mapping.INTERACTIONS
    schema = InteractionAddSchema()


class SeedReferrers(_SeedEvent):
    """POST /api/referrers/add: where the visitor came from (counted, not a journey step)."""

    kind = mapping.REFERRERS
    schema = ReferrerAddSchema()
