"""Observing the pipeline, for analysts (API key, their account only):

    GET /api/v1/ingestion/warnings                  refused writes grouped by status and reason
    GET /api/v1/pipeline?request_id=...|session_id= recent event batches and their stages

hindsight.observe records both (warnings.py, traces.py); the dashboard's account and
pipeline pages show the same data.
"""

from __future__ import annotations

from datetime import timedelta

import falcon
from apispec import APISpec
from marshmallow import fields, validate

from .. import response_schemas as shapes
from ..observe import traces, warnings
from ..observe.service import TRACES_KEPT, WARNINGS_KEPT
from ..schemas import StrictSchema
from ..services import Services
from .http import analyst, load_query

REQUEST_ID = validate.Regexp(r"^[\x21-\x7e]{1,128}$", error="A request id: 1 to 128 printable ASCII characters.")


class WarningsQuerySchema(StrictSchema):
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=100))


class PipelineQuerySchema(StrictSchema):
    request_id = fields.String(load_default=None, validate=REQUEST_ID,
                               metadata={"description": "The batch's X-Request-Id."})
    session_id = fields.UUID(load_default=None)
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))


class IngestionWarnings:
    """GET /api/v1/ingestion/warnings: the key's account's refused writes, latest first."""

    schema = WarningsQuerySchema()

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        query = load_query(req, self.schema)
        with self._s.pool.connection() as conn:
            who = analyst(req, conn)
        since = self._s.clock() - WARNINGS_KEPT
        resp.cache_control = ["no-store"]
        resp.media = {"kept_days": WARNINGS_KEPT.days,
                      "warnings": warnings.account_warnings(self._s.pool, who.account_id, since, query["limit"])}


class Pipeline:
    """GET /api/v1/pipeline: the key's account's recent event batches, newest first."""

    schema = PipelineQuerySchema()

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        query = load_query(req, self.schema)
        with self._s.pool.connection() as conn:
            who = analyst(req, conn)
        resp.cache_control = ["no-store"]
        resp.media = {"kept_hours": int(TRACES_KEPT / timedelta(hours=1)),
                      "batches": traces.recent_batches(self._s.pool, who.account_id, query["request_id"],
                                                       query["session_id"], query["limit"])}


# ----------------------------------------------------------------------------- OpenAPI

class WarningShape(shapes.Shape):
    status = fields.Integer(metadata={"description": "The HTTP status the writes were refused with."})
    reason = fields.String(metadata={"description": "Short reason: token_expired, token_revoked, token_unknown, "
                                                    "host_disabled, origin_mismatch, invalid_fields, "
                                                    "too_large, rate_limited, ..."})
    count = fields.Integer()
    first_seen = fields.AwareDateTime()
    last_seen = fields.AwareDateTime()
    sample = fields.Dict(metadata={"description": "The latest such request: its route, request id and "
                                                  "description, and `fields` (the invalid fields' names) for a "
                                                  "400; never its body."})


class WarningsShape(shapes.Shape):
    kept_days = fields.Integer()
    warnings = fields.List(fields.Nested(WarningShape))


class StageShape(shapes.Shape):
    stage = fields.String(validate=validate.OneOf(traces.STAGES))
    at = shapes._nullable(fields.AwareDateTime, metadata={"description": "null: not reached (yet)."})
    ms = shapes._nullable(fields.Float, metadata={"description": "Milliseconds since the batch was received."})


class BatchShape(shapes.Shape):
    request_id = fields.String()
    session_id = shapes._nullable(fields.UUID)
    host = shapes._nullable(fields.String)
    path = fields.String()
    status = fields.Integer()
    error = shapes._nullable(fields.String, metadata={"description": "Why it was refused (status >= 400)."})
    received_at = fields.AwareDateTime()
    duration_ms = fields.Float()
    events = shapes._nullable(fields.Integer)
    inserted = shapes._nullable(fields.Integer)
    duplicates = shapes._nullable(fields.Integer, metadata={"description": "Events stored before (a re-send)."})
    flush_events = shapes._nullable(fields.Integer, metadata={
        "description": "Events the flush that counted this batch counted (all batches of its account + host)."})
    stages = fields.List(fields.Nested(StageShape))


class PipelineShape(shapes.Shape):
    kept_hours = fields.Integer()
    batches = fields.List(fields.Nested(BatchShape))


def describe(spec: APISpec) -> None:
    """This module's operations in the OpenAPI document (hindsight.openapi calls it)."""
    from ..openapi import ANALYST, _json, answers

    spec.path("/api/v1/ingestion/warnings", operations={"get": {
        "summary": "Refused writes of the key's account (ingestion warnings), grouped by status and reason.",
        "description": (f"Kept {WARNINGS_KEPT.days} days, at most 100 groups per account; recorded a few "
                        "seconds after the refusal. The account is known from the statistics token the "
                        "request carried, even an expired or revoked one."),
        "security": ANALYST, "parameters": [{"in": "query", "schema": WarningsQuerySchema}],
        "responses": answers({"200": _json(WarningsShape, "The warning groups, latest first.")},
                             "400 401 503")}})
    spec.path("/api/v1/pipeline", operations={"get": {
        "summary": "Recent event batches of the key's account with their stages (the pipeline view).",
        "description": ("Stages: received, validated, committed (rows inserted, duplicates skipped), "
                        "counted on the statistics stack, flushed into journeys and usage. Traces are "
                        "written a few seconds after the request and kept "
                        f"{int(TRACES_KEPT / timedelta(hours=1))} hours. Filter by `request_id` "
                        "(the batch's X-Request-Id) or `session_id`."),
        "security": ANALYST, "parameters": [{"in": "query", "schema": PipelineQuerySchema}],
        "responses": answers({"200": _json(PipelineShape, "The batches, newest first.")}, "400 401 503")}})
