"""The live page: who is on the site now, events as they arrive, the ingestion rate.

    GET /dashboard/live                 the page (dashboard/static/live.js draws and updates it)
    GET /dashboard/live?format=json     its snapshot (hindsight.live.snapshot)
    GET /dashboard/live/stream          the logged-in account's live stream (Server-Sent Events,
                                        hindsight.resources.live)
    GET /dashboard/sessions/{id}/live   whether a session is live, and how far it has got (the
                                        replay page's tail mode polls it)
"""

from __future__ import annotations

import uuid

import falcon

from ..errors import not_found
from ..live import LiveHub
from ..live.snapshot import ACTIVE_SECONDS, snapshot
from ..queries import live as live_queries
from ..resources.live import open_stream
from ..services import Services
from . import web


class LivePage:
    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        with self._s.pool.connection() as conn:
            user = web.current_user(req, conn, self._s)
        view = snapshot(self._s.pool, self._s.settings, self._s.clock, user.account_id)
        view["read_replica"] = self._s.read_pool.summary()  # the other pages' lag (SCALING.md)
        web.respond(req, resp, "live.html", view, user, nav="live",
                    data_url=f"{web.PREFIX}/live?format=json", stream_url=f"{web.PREFIX}/live/stream")


class LiveStreamPage:
    """The stream of the account the logged-in analyst looks at (never another one)."""

    def __init__(self, services: Services, hub: LiveHub) -> None:
        self._s = services
        self._hub = hub

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        with self._s.pool.connection() as conn:
            user = web.current_user(req, conn, self._s, json_twin=True)
        open_stream(req, resp, self._s, self._hub, user.account_id)


class SessionLive:
    """Tail mode's question: is this session live, how many events has it got so far?"""

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, session_id: uuid.UUID) -> None:
        with self._s.pool.connection() as conn:
            user = web.current_user(req, conn, self._s, json_twin=True)
            row = live_queries.session_live(conn, user.account_id, session_id, self._s.clock(),
                                            ACTIVE_SECONDS)
        if row is None:
            raise not_found("No such session in this account.")
        web.secure_headers(resp)
        resp.content_type = falcon.MEDIA_JSON
        # The replay reads its events from the replica (SCALING.md): how far behind they may be.
        resp.text = web.dumps({**row, "active_seconds": ACTIVE_SECONDS,
                               "behind_seconds": self._s.read_pool.summary()["lag_seconds"] or 0})
