"""Writes from the tracker: event batches and screenshots. Each is a few lines on top of
hindsight.ingestion: decode, validate, then authorize + store + count there."""

from __future__ import annotations

import datetime as dt
import time

import falcon
from marshmallow import fields, validate

from ..hosts import covers
from ..ingestion import batches, screenshots
from ..ingestion.window import check_each_in_window, check_window
from ..queries import screenshots as screenshot_queries
from ..schemas import MAX_URL, ScreenshotSchema, StrictSchema, TrackBatchSchema
from ..services import Services
from .http import accept_origin, json_body, load_query, requesting_host, sender


class Track:
    """POST /api/v1/track: store a batch of events once, however often it is sent."""

    schema = TrackBatchSchema()

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = json_body(req, self.schema)
        now = self._s.clock()
        check_each_in_window(body["events"], now, "events")
        trace = getattr(req.context, "trace", None)  # the batch's pipeline trace (request_ids)
        if trace is not None:
            trace.validated = time.perf_counter()
        stored = batches.store(self._s, sender(req, body["token"]), body["session_id"], body["events"], now,
                               trace=trace)
        accept_origin(req)
        # Committed: the 201 means the batch is durable.
        resp.status = falcon.HTTP_201
        resp.media = {"count": stored.inserted, "received": len(body["events"])}


class ScreenshotUpload:
    """POST /api/v1/track/screenshot: a verified image, stored once per content."""

    schema = ScreenshotSchema()

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = json_body(req, self.schema)
        now = self._s.clock()
        check_window(body["timestamp"], now, "timestamp")
        stored = screenshots.store(self._s, sender(req, body["token"]), body, now)
        accept_origin(req)
        resp.status = falcon.HTTP_201 if stored.created else falcon.HTTP_200
        resp.media = {"screenshot_id": stored.screenshot_id}


class ScreenshotWantedQuerySchema(StrictSchema):
    session_id = fields.UUID(required=True)
    page_url = fields.String(required=True, validate=validate.Length(min=1, max=MAX_URL),
                             metadata={"description": "The page the tracker would take a picture of."})


class ScreenshotWanted:
    """GET /api/v1/track/screenshot/wanted: whether this visitor's browser should take a
    screenshot of this page, or the account already holds a fresh one of it (same page path
    and route fragment, same device class). Asked by tracker.js's screenshot chunk before it
    renders anything (html2canvas is the tracker's most expensive act).

    The session id is the capability (only the visitor's browser knows it), and the page's
    Origin must be covered by the session's host; otherwise, and for unknown sessions, the
    answer is "wanted" (the upload is then authorized, or refused, like every write).
    """

    schema = ScreenshotWantedQuerySchema()

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        query = load_query(req, self.schema)
        hours = self._s.settings.screenshot_freshness_hours
        wanted, known = True, True
        if hours > 0:
            since = self._s.clock() - dt.timedelta(hours=hours)
            with self._s.pool.connection() as conn:
                row = screenshot_queries.fresh_screenshot(conn, query["session_id"], query["page_url"], since)
            origin = requesting_host(req)
            known = row is not None
            if row is not None and origin and covers(row["host"], origin):
                wanted = not row["fresh"]
        # Readable by any page: to any other asker the answer is always true, and an
        # unreadable answer would put a CORS error in the site's console.
        accept_origin(req)
        resp.cache_control = ["no-store"]
        # known: false tells tracker.js to ask again once its first batch has created the
        # session (a session id says nothing about anyone: it is random).
        resp.media = {"wanted": wanted, "known": known}
