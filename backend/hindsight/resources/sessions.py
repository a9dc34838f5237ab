"""Sessions: created by sites (statistics token), read by analysts (API key)."""

from __future__ import annotations

import uuid

import falcon

from .. import useragent
from ..auth import analyst
from ..errors import conflict, not_found
from ..queries import events as event_queries
from ..queries import screenshots as screenshot_queries
from ..queries import sessions as session_queries
from ..schemas import EventListQuerySchema, SessionCreateSchema, SessionListQuerySchema
from ..services import Services
from .common import authorize_write, load_json, load_query, url_filter
from .track import MAX_FUTURE

_CREATE_FIELDS = (
    "user_id", "page_url", "referrer", "user_agent", "screen_width", "screen_height",
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
        body = load_json(req, self.create_schema)
        now = self._s.clock()
        started_at = body["started_at"] or now
        if started_at > now + MAX_FUTURE:
            started_at = now
        values = {k: body[k] for k in _CREATE_FIELDS}
        client = useragent.describe(body["user_agent"] or req.user_agent)
        values["user_agent"] = body["user_agent"] or req.user_agent
        values["device_type"] = values["device_type"] or client.device_type
        values["browser"] = values["browser"] or client.browser
        values["os"] = values["os"] or client.os
        session_id = body["session_id"] or uuid.uuid4()
        with self._s.pool.connection() as conn, conn.transaction():
            writer, _ = authorize_write(conn, req, body, now, None)
            strip = url_filter(writer)
            if strip:
                values["page_url"] = strip(values["page_url"])
            values.update(
                session_id=session_id, account_id=writer.account_id, host=writer.host,
                started_at=started_at, last_activity_at=started_at,
                ip_hash=self._s.ip_hash(self._s.client_ip(req)),
            )
            row, created = session_queries.insert_session(conn, values)
            if row["account_id"] != writer.account_id:
                raise conflict("This session id is already taken; generate another.")
        self._s.stacks.session_stored(writer, created)
        resp.status = falcon.HTTP_201 if created else falcon.HTTP_200
        resp.media = {"session_id": str(row["session_id"]), "started_at": row["started_at"].isoformat()}

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        query = load_query(req, self.list_schema)
        with self._s.pool.connection() as conn:
            who = analyst(req, conn)
            page = session_queries.list_sessions(conn, who.account_id, query)
        page["data"] = [_session_json(row) for row in page["data"]]
        resp.media = page


class SessionItem:
    """GET /api/v1/sessions/{session_id}."""

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, session_id: uuid.UUID) -> None:
        with self._s.pool.connection() as conn:
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
        with self._s.pool.connection() as conn:
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
        with self._s.pool.connection() as conn:
            who = analyst(req, conn)
            if session_queries.get_session(conn, who.account_id, session_id) is None:
                raise not_found("No such session in this account.")
            rows = screenshot_queries.list_for_session(conn, session_id)
        for row in rows:
            row["url"] = f"/api/v1/screenshots/{row['screenshot_id']}"
        resp.media = {"data": rows, "total": len(rows)}


class ScreenshotImage:
    """GET /api/v1/screenshots/{screenshot_id}: the image bytes, cacheable for a year."""

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, screenshot_id: int) -> None:
        with self._s.pool.connection() as conn:
            who = analyst(req, conn)
            row = screenshot_queries.image(conn, who.account_id, screenshot_id)
        if row is None:
            raise not_found("No such screenshot in this account.")
        etag = f'"{row["content_hash"]}"'
        resp.etag = etag
        # Private: the bytes belong to one account; immutable: an id never changes content.
        resp.cache_control = ["private", "max-age=31536000", "immutable"]
        if req.get_header("If-None-Match") == etag:
            resp.status = falcon.HTTP_304
            return
        resp.content_type = f"image/{row['image_format']}"
        resp.data = bytes(row["image_data"])
