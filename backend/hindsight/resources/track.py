"""Writes from the tracker: event batches and screenshots. Each is a few lines on top of
hindsight.ingestion: decode, validate, then authorize + store + count there."""

from __future__ import annotations

import falcon

from ..ingestion import batches, screenshots
from ..ingestion.window import check_each_in_window, check_window
from ..schemas import ScreenshotSchema, TrackBatchSchema
from ..services import Services
from .http import accept_origin, json_body, sender


class Track:
    """POST /api/v1/track: store a batch of events once, however often it is sent."""

    schema = TrackBatchSchema()

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = json_body(req, self.schema)
        now = self._s.clock()
        check_each_in_window(body["events"], now, "events")
        stored = batches.store(self._s, sender(req, body["token"]), body["session_id"], body["events"], now)
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
