"""Sessions: created by sites (statistics token, through hindsight.ingestion), read by
analysts (API key)."""

from __future__ import annotations

import uuid

import falcon

from ..errors import not_found
from ..ingestion import sessions as session_ingestion
from ..ingestion.window import check_window
from ..queries import events as event_queries
from ..queries import screenshots as screenshot_queries
from ..queries import sessions as session_queries
from ..schemas import EventListQuerySchema, SessionCreateSchema, SessionListQuerySchema
from ..services import Services
from .http import accept_origin, analyst, client_ip, json_body, load_query, sender

_CREATE_FIELDS = (
    "user_id", "visitor", "page_url", "referrer", "user_agent", "screen_width", "screen_height",
    "viewport_width", "viewport_height", "device_type", "browser", "os", "language",
    "timezone", "metadata",
)


def _session_json(row: dict) -> dict:
    return {k: (str(v) if isinstance(v, uuid.UUID) else v) for k, v in row.items()}


class SessionsCollection:
    """POST /api/v1/sessions (site) and GET /api/v1/sessions (analyst)."""

    create_schema = SessionCreateSchema()
    list_schema = SessionListQuerySchema()

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = json_body(req, self.create_schema)
        now = self._s.clock()
        started_at = body["started_at"] or now
        check_window(started_at, now, "started_at")
        values = {k: body[k] for k in _CREATE_FIELDS}
        values.update(session_id=body["session_id"] or uuid.uuid4(), started_at=started_at,
                      user_agent=body["user_agent"] or req.user_agent)
        stored = session_ingestion.create(self._s, sender(req, body["token"]), values, now,
                                          client_ip(req, self._s.settings))
        accept_origin(req)
        resp.status = falcon.HTTP_201 if stored.created else falcon.HTTP_200
        resp.media = {"session_id": str(stored.session_id), "started_at": stored.started_at.isoformat()}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        query = load_query(req, self.list_schema)
        with self._s.read_pool.connection() as conn:
            who = analyst(req, conn)
            page = session_queries.list_sessions(conn, who.account_id, query)
        page["data"] = [_session_json(row) for row in page["data"]]
        resp.media = page


class SessionItem:
    """GET /api/v1/sessions/{session_id}."""

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, session_id: uuid.UUID) -> None:
        with self._s.read_pool.connection() as conn:
            who = analyst(req, conn)
            row = session_queries.get_session(conn, who.account_id, session_id)
        if row is None:
            raise not_found("No such session in this account.")
        resp.media = _session_json(row)


class SessionEvents:
    """GET /api/v1/sessions/{session_id}/events: in time order, paged."""

    schema = EventListQuerySchema()

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, session_id: uuid.UUID) -> None:
        query = load_query(req, self.schema)
        with self._s.read_pool.connection() as conn:
            who = analyst(req, conn)
            session = session_queries.get_session(conn, who.account_id, session_id)
            if session is None:
                raise not_found("No such session in this account.")
            rows = event_queries.list_events(conn, session_id, query["limit"], query["offset"])
        total = session["event_count"]
        resp.media = {"data": rows, "total": total, "limit": query["limit"], "offset": query["offset"]}


class SessionScreenshots:
    """GET /api/v1/sessions/{session_id}/screenshots: metadata, with the image URL."""

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, session_id: uuid.UUID) -> None:
        with self._s.read_pool.connection() as conn:
            who = analyst(req, conn)
            if session_queries.get_session(conn, who.account_id, session_id) is None:
                raise not_found("No such session in this account.")
            rows = screenshot_queries.list_for_session(conn, session_id)
        for row in rows:
            row["url"] = f"/api/v1/screenshots/{row['screenshot_id']}"
        resp.media = {"data": rows, "total": len(rows)}
