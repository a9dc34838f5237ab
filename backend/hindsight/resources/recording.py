"""DOM recordings: tracker.js writes segments of rrweb events, analysts read them back.

    POST /api/v1/track/recording?session_id=S&segment=N&encoding=gzip|json   (statistics token)
    GET  /api/v1/sessions/{id}/recording               the segments' list (analyst key)
    GET  /api/v1/sessions/{id}/recording/{segment}     one segment's events, a JSON array

A segment is stored once per (session, segment): a re-send answers 200 with what is
stored. Segments are not counted on the statistics stacks (docs/DECISIONS.md, "DOM
recording storage and replay"); a host switched off by its usage limit is refused (403)
like every other write.
"""

from __future__ import annotations

import gzip
import uuid

import falcon
from marshmallow import fields, validate

from ..errors import not_found
from ..ingestion import recordings as recording_ingestion
from ..ingestion import segments
from ..queries import recordings
from ..recording_blobs import Body
from ..schemas import StrictSchema
from ..services import Services
from ..timerange import Instant
from .http import accept_origin, analyst, load_query, sender

PATH = "/api/v1/track/recording"
MAX_SEGMENT = 1_000_000
ENCODINGS = ("gzip", "json")
# Media types of a segment's body: what sendBeacon sends for a Blob, and the CORS-safe one.
BODY_TYPES = ("application/octet-stream", "text/plain")


class RecordingUploadQuerySchema(StrictSchema):
    session_id = fields.UUID(required=True)
    segment = fields.Integer(required=True, validate=validate.Range(min=0, max=MAX_SEGMENT),
                             metadata={"description": "Per-session segment number, from 0."})
    encoding = fields.String(required=True, validate=validate.OneOf(ENCODINGS),
                             metadata={"description": "gzip: the body is gzip (CompressionStream); "
                                                      "json: plain JSON."})
    token = fields.UUID(load_default=None, metadata={
        "description": "Statistics token, instead of Authorization: how tracker.js sends a segment (a CORS "
                       "simple request: no preflight, which a browser caches per URL) and sendBeacon must."})


class RecordingUpload:
    """POST /api/v1/track/recording: store a segment once, however often it is sent."""

    schema = RecordingUploadQuerySchema()

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        query = load_query(req, self.schema)
        stored = recording_ingestion.store(
            self._s, sender(req, query["token"]), query["session_id"], query["segment"],
            req.bounded_stream.read(), query["encoding"], self._s.clock())
        accept_origin(req)
        # Committed (or stored before): the 201 means the segment is durable.
        resp.status = falcon.HTTP_201 if stored.created else falcon.HTTP_200
        resp.media = {"segment": stored.segment, "events": stored.events}


def accepts_gzip(req: falcon.Request) -> bool:
    """Whether Accept-Encoding takes gzip (by name or `*`, with a q above 0)."""
    header = req.get_header("Accept-Encoding") or ""
    for item in header.split(","):
        name, _, params = item.strip().partition(";")
        if name.strip().lower() not in ("gzip", "*"):
            continue
        q = params.strip().lower()
        if q.startswith("q="):
            try:
                if float(q[2:]) <= 0:
                    continue
            except ValueError:
                continue
        return True
    return False


def send_segment(req: falcon.Request, resp: falcon.Response, body: Body) -> None:
    """The events as JSON, exactly as sent: the stored gzip itself when the client takes it
    and the segment was stored as the browser's gzip (before 0030); otherwise, decompressed
    and spliced, gzipped fast (level 1). A stored segment
    never changes, so it may be cached (privately: it belongs to one account)."""
    resp.content_type = falcon.MEDIA_JSON
    resp.cache_control = ["private", "max-age=31536000", "immutable"]
    resp.vary = ["Accept-Encoding"]
    if accepts_gzip(req):
        resp.set_header("Content-Encoding", "gzip")
        resp.data = body.data if body.gzip else gzip.compress(body.data, compresslevel=1, mtime=0)
    else:
        resp.data = body.json()


class RecordingListQuerySchema(StrictSchema):
    after = fields.Integer(load_default=-1, validate=validate.Range(min=-1, max=MAX_SEGMENT), metadata={
        "description": "Segments numbered above this (the previous page's `next_after`)."})
    limit = fields.Integer(load_default=recordings.MAX_SEGMENTS_PAGE,
                           validate=validate.Range(min=1, max=recordings.MAX_SEGMENTS_PAGE))
    start = Instant(load_default=None, data_key="from", metadata={
        "description": "Start of a time window: the list begins at the last full snapshot at or "
                       "before it, so the window can be played from its start."})
    end = Instant(load_default=None, data_key="to", metadata={
        "description": "End of the window: no segment that starts after it."})


def segment_page(req: falcon.Request, services: Services, account_id: uuid.UUID,
                 session_id: uuid.UUID, query: dict) -> dict:
    """{segments, next_after}: one page of the listing (next_after null on the last page)."""
    with services.read_pool.connection() as conn:
        segments = recordings.list_for_session(
            conn, account_id, session_id, after=query["after"], limit=query["limit"] + 1,
            start=query["start"], end=query["end"])
    if segments is None:
        raise not_found("No such session in this account.")
    more = len(segments) > query["limit"]
    segments = segments[:query["limit"]]
    return {"segments": segments, "next_after": segments[-1]["segment"] if more else None}


class SessionRecording:
    """GET /api/v1/sessions/{session_id}/recording: the segments, in order, paged."""

    schema = RecordingListQuerySchema()

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, session_id: uuid.UUID) -> None:
        query = load_query(req, self.schema)
        with self._s.read_pool.connection() as conn:
            who = analyst(req, conn)
        resp.media = segment_page(req, self._s, who.account_id, session_id, query)


class RecordingSegment:
    """GET /api/v1/sessions/{session_id}/recording/{segment}: its events (a JSON array)."""

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, session_id: uuid.UUID,
               segment: int) -> None:
        with self._s.read_pool.connection() as conn:
            who = analyst(req, conn)
            data = recordings.segment_data(conn, who.account_id, session_id, segment)
        if data is None:
            raise not_found("No such segment of a session in this account.")
        send_segment(req, resp, data)


def document(spec, site: list, analyst_key: list, responses) -> None:
    """The endpoints' part of the OpenAPI document (called by openapi.build_spec)."""
    uuid_param = {"in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
    spec.components.schema("RecordingUploadQuery", schema=RecordingUploadQuerySchema)
    spec.path(PATH, operations={"post": {
        "summary": "Store a segment of a DOM recording (rrweb events), once per session + segment.",
        "description": (
            "The body is a JSON array of rrweb events (`{type: int, data, timestamp: ms}`), gzip "
            "when `encoding=gzip`. At most HINDSIGHT_MAX_RECORDING_BODY_BYTES (2 MiB) as sent, "
            f"{segments.MAX_JSON_BYTES} bytes decompressed (checked while inflating), "
            f"{segments.MAX_EVENTS} events, timestamps at most an hour ahead and a year old. "
            "201 `{segment, events}` when stored, 200 with the same body when it already was."),
        "security": site,
        "parameters": [{"in": "query", "schema": RecordingUploadQuerySchema}],
        "requestBody": {"required": True, "content": {
            media: {"schema": {"type": "string", "format": "binary"}} for media in BODY_TYPES}},
        "responses": responses("201", None, "Committed: {segment, events} (200: already stored).")}})
    spec.path("/api/v1/sessions/{session_id}/recording", operations={"get": {
        "summary": "A session's recording segments, in order: {segments: [{segment, started_at, "
                   "ended_at, events, full_snapshot, bytes}], next_after}.",
        "description": "Paged: at most `limit` segments numbered above `after`; `next_after` is the "
                       "`after` of the next page (null: this is the last). `from`/`to` (ISO 8601) "
                       "narrow the list to a time window, starting at the full snapshot that "
                       "window needs.",
        "security": analyst_key,
        "parameters": [{"name": "session_id", **uuid_param}, {"in": "query", "schema": RecordingListQuerySchema}],
        "responses": responses("200", None, "{segments: [...], next_after}", "400 401 404 503")}})
    spec.path("/api/v1/sessions/{session_id}/recording/{segment}", operations={"get": {
        "summary": "One segment's rrweb events (a JSON array; Content-Encoding: gzip when accepted). "
                   "Immutable: cacheable.",
        "security": analyst_key,
        "parameters": [{"name": "session_id", **uuid_param},
                       {"name": "segment", "in": "path", "required": True,
                        "schema": {"type": "integer", "minimum": 0, "maximum": MAX_SEGMENT}}],
        "responses": responses("200", None, "The events.")}})
