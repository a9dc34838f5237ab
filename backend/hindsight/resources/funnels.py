"""Saved funnels and their numbers (analyst API key; one account's funnels only).

    GET, POST          /api/v1/funnels                       list; save a new one (201)
    GET, PUT, DELETE   /api/v1/funnels/{funnel_id}           one; replace it; delete it (204)
    GET                /api/v1/funnels/{funnel_id}/results   per-step counts, conversion, drop-off
    GET                /api/v1/funnels/{funnel_id}/sessions  ?step=N&outcome=converted|dropped

Results and sessions take `from`/`to` (default: the last 30 days) and a segment:
`device_type`, `browser`, `referrer` (the referrer's host, or `direct`), `host`.
"""

from __future__ import annotations

from typing import Any

import falcon
import psycopg
from apispec import APISpec
from marshmallow import fields, validate

from .. import funnels
from .. import response_schemas as shapes
from ..errors import conflict, not_found
from ..queries import funnels as q
from ..services import Services
from .http import analyst, json_body, load_query
from .stats import StatsQuerySchema, _bounds


class FunnelQuerySchema(StatsQuerySchema):
    device_type = fields.String(load_default=None, validate=validate.Length(min=1, max=50))
    browser = fields.String(load_default=None, validate=validate.Length(min=1, max=100))
    referrer = fields.String(load_default=None, validate=validate.Length(min=1, max=253), metadata={
        "description": "The referrer's host (e.g. www.google.com), or `direct`."})


class StepSessionsQuerySchema(FunnelQuerySchema):
    step = fields.Integer(required=True, validate=validate.Range(min=1, max=funnels.MAX_STEPS))
    outcome = fields.String(load_default="dropped", validate=validate.OneOf(q.OUTCOMES), metadata={
        "description": "converted: reached the step (replay at it); dropped: reached the step before and "
                       "went no further (replay at the step before)."})
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


def as_json(row: dict) -> dict[str, Any]:
    return {"funnel_id": row["funnel_id"], "name": row["name"], **row["definition"],
            "created_at": row["created_at"], "updated_at": row["updated_at"]}


def segment_of(query: dict) -> dict[str, str | None]:
    return {k: query.get(k) for k in funnels.SEGMENTS}


def _one(conn, account_id, funnel_id: int) -> dict:
    row = q.get(conn, account_id, funnel_id)
    if row is None:
        raise not_found("No such funnel in this account.")
    return row


class FunnelCollection:
    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        with self._s.pool.connection() as conn:
            who = analyst(req, conn)
            resp.media = {"data": [as_json(r) for r in q.list_all(conn, who.account_id)]}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        with self._s.pool.connection() as conn:
            who = analyst(req, conn)
        body = json_body(req, funnels.FUNNEL_SCHEMA)
        with self._s.pool.connection() as conn:
            row = q.create(conn, who.account_id, body["name"], funnels.normalize(body))
        if row is None:
            raise conflict("This account has a funnel of that name.")
        resp.status = falcon.HTTP_201
        resp.media = as_json(row)


class FunnelItem:
    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, funnel_id: int) -> None:
        with self._s.pool.connection() as conn:
            who = analyst(req, conn)
            resp.media = as_json(_one(conn, who.account_id, funnel_id))

    def on_put(self, req: falcon.Request, resp: falcon.Response, funnel_id: int) -> None:
        with self._s.pool.connection() as conn:
            who = analyst(req, conn)
        body = json_body(req, funnels.FUNNEL_SCHEMA)
        with self._s.pool.connection() as conn:
            try:
                with conn.transaction():
                    row = q.update(conn, who.account_id, funnel_id, body["name"], funnels.normalize(body))
            except psycopg.errors.UniqueViolation as ex:  # the name of another funnel of the account
                raise conflict("This account has a funnel of that name.") from ex
        if row is None:
            raise not_found("No such funnel in this account.")
        resp.media = as_json(row)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, funnel_id: int) -> None:
        with self._s.pool.connection() as conn:
            who = analyst(req, conn)
            if not q.delete(conn, who.account_id, funnel_id):
                raise not_found("No such funnel in this account.")
        resp.status = falcon.HTTP_204


class FunnelResults:
    schema: Any = FunnelQuerySchema()

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, funnel_id: int) -> None:
        query = load_query(req, self.schema)
        start, end = _bounds(self._s, query)
        with self._s.pool.connection() as conn:
            who = analyst(req, conn)
            row = _one(conn, who.account_id, funnel_id)
            resp.media = {"funnel_id": funnel_id, "name": row["name"], "from": start.isoformat(),
                          "to": end.isoformat(), "segment": segment_of(query),
                          **self.answer(conn, who.account_id, row["definition"], start, end, query)}

    def answer(self, conn, account_id, definition, start, end, query) -> dict:
        return funnels.results(conn, account_id, definition, start, end, segment_of(query))


class FunnelSessions(FunnelResults):
    schema = StepSessionsQuerySchema()

    def answer(self, conn, account_id, definition, start, end, query) -> dict:
        if query["step"] > len(definition["steps"]):
            raise not_found("The funnel has no such step.")
        return funnels.sessions_at(conn, account_id, definition, start, end, segment_of(query),
                                   query["step"], query["outcome"], query["limit"])


ROUTES = {
    "/api/v1/funnels": FunnelCollection,
    "/api/v1/funnels/{funnel_id:int(min=1)}": FunnelItem,
    "/api/v1/funnels/{funnel_id:int(min=1)}/results": FunnelResults,
    "/api/v1/funnels/{funnel_id:int(min=1)}/sessions": FunnelSessions,
}


# ---------------------------------------------------------------- OpenAPI

class FunnelStepShape(shapes.Shape):
    kind = fields.String(validate=validate.OneOf(("page", "event")))
    path = fields.String(metadata={shapes.OPTIONAL: True, "description": "Page steps only."})
    name = fields.String(metadata={shapes.OPTIONAL: True, "description": "Event steps only."})
    filters = fields.Dict(metadata={shapes.OPTIONAL: True, "description": "Event steps only."})


class FunnelShape(shapes.Shape):
    funnel_id = fields.Integer()
    name = fields.String()
    per = fields.String(validate=validate.OneOf(("visitor", "session")))
    window_seconds = fields.Integer()
    steps = fields.List(fields.Nested(FunnelStepShape))
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class FunnelListShape(shapes.Shape):
    data = fields.List(fields.Nested(FunnelShape))


class FunnelStepResultShape(shapes.Shape):
    step = fields.Integer()
    label = fields.String()
    count = fields.Integer(metadata={"description": "Visitors (or sessions) that reached the step."})
    conversion = shapes._nullable(fields.Float, metadata={"description": "count / the first step's."})
    conversion_from_previous = shapes._nullable(fields.Float)
    dropped = fields.Integer(metadata={"description": "Reached the step before, not this one."})


class FunnelSegmentShape(shapes.Shape):
    device_type = shapes._nullable(fields.String)
    browser = shapes._nullable(fields.String)
    referrer = shapes._nullable(fields.String)
    host = shapes._nullable(fields.String)


class FunnelResultsShape(shapes._RangeShape):
    funnel_id = fields.Integer()
    name = fields.String()
    segment = fields.Nested(FunnelSegmentShape)
    per = fields.String()
    window_seconds = fields.Integer()
    entered = fields.Integer()
    converted = fields.Integer()
    steps = fields.List(fields.Nested(FunnelStepResultShape))


class FunnelSessionShape(shapes.Shape):
    session_id = fields.UUID()
    timestamp = fields.AwareDateTime(metadata={"description": "The moment of the step."})
    started_at = fields.AwareDateTime()
    user_id = shapes._nullable(fields.String)
    offset_seconds = fields.Float()
    replay = fields.String(metadata={"description": "The dashboard's replay at that moment."})


class FunnelSessionsShape(shapes._RangeShape):
    funnel_id = fields.Integer()
    name = fields.String()
    segment = fields.Nested(FunnelSegmentShape)
    step = fields.Integer()
    outcome = fields.String(validate=validate.OneOf(q.OUTCOMES))
    total = fields.Integer()
    data = fields.List(fields.Nested(FunnelSessionShape))


shapes._require_keys(shapes.Shape)  # every key required, but OPTIONAL ones (as response_schemas)


def describe(spec: APISpec) -> None:
    from ..openapi import ANALYST, BODY, _body, _json, answers, range_rules
    from .stats import DEFAULT_SPAN

    spec.components.schema("FunnelDefinition", schema=funnels.FunnelSchema)
    funnel_id = {"name": "funnel_id", "in": "path", "required": True,
                 "schema": {"type": "integer", "minimum": 1}}
    one = _json(FunnelShape, "The funnel.")
    spec.path("/api/v1/funnels", operations={
        "get": {"summary": "The account's saved funnels.", "security": ANALYST,
                "responses": answers({"200": _json(FunnelListShape, "The funnels.")}, "401 503")},
        "post": {"summary": "Save a funnel: 2 to 10 ordered steps, a window, visitor or session.",
                 "security": ANALYST, "requestBody": _body("FunnelDefinition"),
                 "responses": answers({"201": one}, f"400 401 409 {BODY} 503",
                                      e409="The account has a funnel of that name.")}})
    spec.path("/api/v1/funnels/{funnel_id}", operations={
        "get": {"summary": "One saved funnel.", "security": ANALYST, "parameters": [funnel_id],
                "responses": answers({"200": one}, "401 404 503")},
        "put": {"summary": "Replace a saved funnel.", "security": ANALYST, "parameters": [funnel_id],
                "requestBody": _body("FunnelDefinition"),
                "responses": answers({"200": one}, f"400 401 404 409 {BODY} 503",
                                     e409="The account has another funnel of that name.")},
        "delete": {"summary": "Delete a saved funnel.", "security": ANALYST, "parameters": [funnel_id],
                   "responses": answers({"204": {"description": "Deleted."}}, "401 404 503")}})
    spec.path("/api/v1/funnels/{funnel_id}/results", operations={"get": {
        "summary": "Per step: who reached it, conversion and drop-off, over a range and a segment.",
        "description": range_rules(DEFAULT_SPAN.days), "security": ANALYST,
        "parameters": [funnel_id, {"in": "query", "schema": FunnelQuerySchema}],
        "responses": answers({"200": _json(FunnelResultsShape, "The funnel's numbers.")}, "400 401 404 503")}})
    spec.path("/api/v1/funnels/{funnel_id}/sessions", operations={"get": {
        "summary": "The sessions that converted at a step or dropped off there, with replay links.",
        "description": range_rules(DEFAULT_SPAN.days), "security": ANALYST,
        "parameters": [funnel_id, {"in": "query", "schema": StepSessionsQuerySchema}],
        "responses": answers({"200": _json(FunnelSessionsShape, "The newest sessions first.")},
                             "400 401 404 503", e404="No such funnel, or no such step.")}})
