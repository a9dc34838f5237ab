"""Writes from the tracker: event batches and screenshots."""

from __future__ import annotations

from datetime import timedelta

import falcon
import psycopg

from .. import images
from ..auth import SiteWriter, statistics_token
from ..errors import bad_request
from ..hosts import hostname_of
from ..queries import events as event_queries
from ..queries import screenshots as screenshot_queries
from ..schemas import ScreenshotSchema, TrackBatchSchema
from ..services import Services
from .common import authorize_write, load_json, require_session, url_filter

MAX_FUTURE = timedelta(hours=1)
# An offline tracker delivers late, but not years late; older is a broken clock.
MAX_PAST = timedelta(days=366)


class Track:
    """POST /api/v1/track: store a batch of events once, however often it is sent."""

    schema = TrackBatchSchema()

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = load_json(req, self.schema)
        now = self._s.clock()
        events = body["events"]
        latest, earliest = now + MAX_FUTURE, now - MAX_PAST
        if any(not earliest <= e["timestamp"] <= latest for e in events):
            raise bad_request(
                "Timestamps more than an hour in the future or a year in the past are refused.",
                {"events": {str(i): {"timestamp": ["In the future." if e["timestamp"] > latest
                                                   else "More than a year old."]}
                            for i, e in enumerate(events) if not earliest <= e["timestamp"] <= latest}},
            )
        stored = self._store_new(req, body, now)
        if stored is not None:
            writer, inserted = stored
        else:
            # Step by step: names what does not check out, and stores a re-sent batch once.
            writer, inserted = self._store(req, body, now)
        # The transaction has committed: the 201 means the batch is durable.
        self._s.stacks.events_stored(writer, events, inserted)
        resp.status = falcon.HTTP_201
        resp.media = {"count": inserted, "received": len(events)}

    def _store_new(self, req: falcon.Request, body: dict, now) -> tuple[SiteWriter, int] | None:
        """The common case in one statement and one round trip; None: take the slow path."""
        token = statistics_token(req, body.get("token"))
        origin = req.get_header("Origin")
        origin_host = hostname_of(origin) if origin else None
        if origin and origin_host is None:
            return None
        batch = event_queries.encode_batch(body["events"], None)  # the statement strips queries
        with self._s.pool.connection() as conn:
            conn.autocommit = True  # the statement is its own transaction: committed when it returns
            try:
                row = event_queries.insert_new_batch_authorized(
                    conn, token=token, session_id=body["session_id"], origin_host=origin_host,
                    now=now, batch=batch)
            except psycopg.errors.UniqueViolation:
                return None  # some of it is stored already: a re-sent batch
            finally:
                if not conn.closed:
                    conn.autocommit = False
        if row is None:
            return None
        if origin:
            req.context.cors_origin = origin
        writer = SiteWriter(token, row["account_id"], row["host"], row["strip_query"])
        return writer, row["inserted"]

    def _store(self, req: falcon.Request, body: dict, now) -> tuple[SiteWriter, int]:
        with self._s.pool.connection() as conn, conn.transaction():
            writer, found = authorize_write(conn, req, body, now, body["session_id"])
            require_session(found)
            batch = event_queries.encode_batch(body["events"], url_filter(writer))
            inserted = event_queries.insert_batch(conn, body["session_id"], writer.account_id,
                                                  writer.host, batch)
        return writer, inserted


class ScreenshotUpload:
    """POST /api/v1/track/screenshot: a verified image, stored once per content."""

    schema = ScreenshotSchema()

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = load_json(req, self.schema)
        now = self._s.clock()
        if not now - MAX_PAST <= body["timestamp"] <= now + MAX_FUTURE:
            raise bad_request("The timestamp is more than an hour in the future or a year in the past.",
                              {"timestamp": ["Out of range."]})
        # Authorize first (cheap), then decode outside any transaction (CPU-bound).
        with self._s.pool.connection() as conn:
            writer, found = authorize_write(conn, req, body, now, body["session_id"])
            require_session(found)
        image = images.decode_data_url(body["image_data"], body["width"], body["height"],
                                       self._s.settings.max_screenshot_bytes)
        strip = url_filter(writer)
        with self._s.pool.connection() as conn, conn.transaction():
            screenshot_id, created = screenshot_queries.store(
                conn, content_hash=image.content_hash, image=image.data, image_format=image.format,
                width=image.width, height=image.height, session_id=body["session_id"],
                account_id=writer.account_id, host=writer.host,
                page_url=strip(body["page_url"]) if strip else body["page_url"],
                timestamp=body["timestamp"],
            )
        resp.status = falcon.HTTP_201 if created else falcon.HTTP_200
        resp.media = {"screenshot_id": screenshot_id}
