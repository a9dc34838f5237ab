"""The live stream as Server-Sent Events (hindsight.live): GET /api/v1/live/stream with an
analyst's API key, and the dashboard's /dashboard/live/stream with its login
(hindsight.dashboard.live), both answered by `open_stream`.

    retry: 3000                          (the browser reconnects 3 s after a drop)

    id: 1764170000123456-<session hex>-12
    event: events
    data: {"events": [...], "visitors": [...], "counts": {"events": n, "batches": b},
           "skipped": n, "at": "..."}

    : keep-alive                         (every HINDSIGHT_LIVE_HEARTBEAT_SECONDS of silence)

    event: reset                         (a resume could not be served: reload the snapshot)

A reconnecting browser sends the last id it received as `Last-Event-ID` and gets what it
missed; `?after=<id>` does the same for a first connection (the live page passes the
position its snapshot was read up to).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import falcon

from ..errors import ApiError, bad_request
from ..live import LiveFull, LiveHub, decode_position, encode_position
from ..live.hub import Viewer, sse
from ..services import Services
from .http import analyst

EVENT_STREAM = "text/event-stream"
RETRY_MS = 3000


class ViewerStream:
    """A viewer's response body; `close` (called by the WSGI server whatever happens, even
    before the first chunk) gives the viewer back to the hub."""

    def __init__(self, hub: LiveHub, viewer: Viewer, chunks: Iterator[bytes]) -> None:
        self._hub, self._viewer, self._chunks = hub, viewer, chunks

    def __iter__(self) -> Iterator[bytes]:
        return self._chunks

    def close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()
        self._hub.unregister(self._viewer)


MAX_POSITION = 80  # characters of a stream position (`after`, Last-Event-ID), as documented


def open_stream(req: falcon.Request, resp: falcon.Response, services: Services, hub: LiveHub,
                account_id: uuid.UUID) -> None:
    """Answer `req` with the live stream of `account_id` (the caller has authenticated it)."""
    header, param = req.get_header("Last-Event-ID"), req.get_param("after")
    for name, value in (("Last-Event-ID", header), ("after", param)):
        if value is not None and len(value) > MAX_POSITION:
            raise bad_request(f"{name} is not a stream position.", {name: [f"At most {MAX_POSITION} characters."]})
    after = decode_position(header) or decode_position(param)
    try:
        viewer, cursor = hub.register(account_id)
    except LiveFull as ex:
        raise ApiError(falcon.HTTP_503, "Service Unavailable",
                       f"Too many live viewers on this server right now ({ex}); try again shortly.",
                       headers={"Retry-After": "10"}) from ex
    try:
        first = [f"retry: {RETRY_MS}\n\n".encode()]
        if after is not None and after > cursor:
            viewer.after = after  # ahead of this process's loop (another worker's id): skip to it
        elif after is not None:
            caught = hub.catch_up(account_id, after, cursor)
            if caught.reset:
                first.append(sse({"reason": "too much was missed: reload"}, event="reset",
                                 id=encode_position(cursor)))
            elif caught.message is not None:
                first.append(caught.message)
    except BaseException:
        hub.unregister(viewer)
        raise
    resp.content_type = EVENT_STREAM
    # Proxies must pass each message on at once (nginx buffers otherwise) and not compress it.
    resp.cache_control = ["no-store", "no-transform"]
    resp.set_header("X-Accel-Buffering", "no")
    resp.stream = ViewerStream(hub, viewer, hub.stream(viewer, first,
                                                       services.settings.live_stream_max_seconds))


class LiveStream:
    """GET /api/v1/live/stream: the account of the API key, live."""

    def __init__(self, services: Services, hub: LiveHub) -> None:
        self._s = services
        self._hub = hub

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        with self._s.pool.connection() as conn:
            who = analyst(req, conn)
        open_stream(req, resp, self._s, self._hub, who.account_id)


def describe(spec: Any) -> None:
    """This module's operation in the OpenAPI document (hindsight.openapi calls it)."""
    from ..openapi import ANALYST, answers

    spec.path("/api/v1/live/stream", operations={"get": {
        "summary": "The key's account live: its events as their batches are stored (Server-Sent Events).",
        "description": (
            "A `text/event-stream` that stays open: an `events` message per batch poll (JSON: `events` "
            "oldest first, at most HINDSIGHT_LIVE_MAX_EVENTS_PER_MESSAGE of them with the rest counted "
            "in `skipped`; the `visitors` (sessions) they touched; `counts` of events and batches; "
            "`at`), comment lines as heartbeats, and `reset` when a resume cannot be served. Each "
            "message's `id` is a stream position: send it back as `Last-Event-ID` (or `after`) to "
            "resume. The stream ends after HINDSIGHT_LIVE_STREAM_MAX_SECONDS (reconnect); 503 when "
            "the server streams to HINDSIGHT_LIVE_MAX_VIEWERS already."),
        "security": ANALYST,
        "parameters": [
            {"name": "after", "in": "query", "required": False, "schema": {"type": "string", "maxLength": MAX_POSITION},
             "description": "A stream position (a message id): start with what came after it. "
                            "Anything else is ignored."},
            {"name": "Last-Event-ID", "in": "header", "required": False,
             "schema": {"type": "string", "maxLength": MAX_POSITION},
             "description": "Sent by a reconnecting EventSource; wins over `after`."}],
        "responses": answers({"200": {"description": "The stream.",
                                      "content": {EVENT_STREAM: {"schema": {"type": "string"}}}}},
                             "400 401 503", e503="The database is unreachable, or this server streams to as "
                                               "many viewers as it may (see Retry-After).")}})
