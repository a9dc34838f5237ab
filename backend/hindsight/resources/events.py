"""Custom events: POST /api/v1/events (seed 002's server-side senders) and their numbers.

    POST /api/v1/events                              store events (each validated on its own)
    GET  /api/v1/stats/custom-events                 names: events, sessions, unique visitors
    GET  /api/v1/stats/custom-events/properties      one property's values for a name (top N)
    GET  /api/v1/stats/custom-events/rate            numerator / denominator per property value
    GET  /api/v1/stats/custom-events/series          a name's events per hour or day
    GET  /api/v1/stats/paths?page=/pricing           after a page, where visitors went; before it,
                                                     where they came from (the journeys)

All take the account's analyst API key (`Authorization: Bearer hsk_...`); the reads take
`from`, `to` and `host` as /api/v1/stats/... do (hindsight.timerange).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import falcon
from apispec import APISpec
from marshmallow import fields, validate

from .. import response_schemas as shapes
from ..ingestion import server_events
from ..queries import custom_events as q
from ..queries import paths, traffic
from ..services import Services
from .http import analyst, json_body, load_query
from .stats import SeriesQuerySchema, StatsQuerySchema, _bounds

PROPERTY = validate.Length(min=1, max=100)


class Ingest:
    """POST /api/v1/events: `{events: [...]}` -> `{accepted, rejected, errors: {index: fields}}`."""

    schema = server_events.ServerEventsBodySchema()

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        with self._s.pool.connection() as conn:
            who = analyst(req, conn)
        body = json_body(req, self.schema)
        outcome = server_events.store(self._s, who.account_id, body["events"], self._s.clock())
        # Committed: every accepted event is durable (stored now, or before for a re-send).
        resp.status = falcon.HTTP_200
        resp.media = outcome.answer()


class NamesQuerySchema(StatsQuerySchema):
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


class PropertyQuerySchema(StatsQuerySchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    property = fields.String(required=True, validate=PROPERTY)
    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=100))


class RateQuerySchema(StatsQuerySchema):
    numerator = fields.String(required=True, validate=validate.Length(min=1, max=200), metadata={
        "description": "The event counted above the line, e.g. widget_click."})
    denominator = fields.String(required=True, validate=validate.Length(min=1, max=200), metadata={
        "description": "The event counted below it, e.g. widget_impression."})
    property = fields.String(required=True, validate=PROPERTY, metadata={
        "description": "The property both share, e.g. mapping_id: one rate per value."})
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class EventSeriesQuerySchema(SeriesQuerySchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    property = fields.String(load_default=None, validate=PROPERTY, metadata={
        "description": "With `value`: only events whose property has that value."})
    value = fields.String(load_default=None, validate=validate.Length(max=1000))


class _Read:
    schema: Any = NamesQuerySchema()

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        query = load_query(req, self.schema)
        with self._s.read_pool.connection() as conn:
            who = analyst(req, conn)
            rng = self.range(query)
            resp.media = {"from": rng.start.isoformat(), "to": rng.end.isoformat(),
                          **self.answer(conn, who.account_id, rng, query)}

    def range(self, query: dict) -> traffic.Range:
        return traffic.hour_range(*_bounds(self._s, query))

    def answer(self, conn, account_id, rng: traffic.Range, query: dict) -> dict:
        raise NotImplementedError


class Names(_Read):
    """Custom event names, most frequent first."""

    def answer(self, conn, account_id, rng, query):
        return {"data": q.names(conn, account_id, rng.start, rng.end, query["limit"], query["host"])}


class Properties(_Read):
    schema = PropertyQuerySchema()

    def answer(self, conn, account_id, rng, query):
        result = q.property_values(conn, account_id, query["name"], query["property"], rng.start, rng.end,
                                   query["limit"], query["host"])
        return {"name": query["name"], "property": query["property"], **result}


class Rate(_Read):
    schema = RateQuerySchema()

    def answer(self, conn, account_id, rng, query):
        rows = q.rate(conn, account_id, query["numerator"], query["denominator"], query["property"],
                      rng.start, rng.end, query["limit"], query["host"])
        return {"numerator": query["numerator"], "denominator": query["denominator"],
                "property": query["property"], "data": rows}


class Series(_Read):
    schema = EventSeriesQuerySchema()

    def range(self, query):
        start, end = _bounds(self._s, query)
        return traffic.hour_range(start, end) if query["interval"] == "hour" else traffic.day_range(start, end)

    def answer(self, conn, account_id, rng, query):
        width = timedelta(hours=1) if query["interval"] == "hour" else timedelta(days=1)
        prop = query["property"] if query["value"] is not None else None
        rows = q.series(conn, account_id, query["name"], rng.start, rng.end, width, prop, query["value"],
                        query["host"])
        return {"interval": query["interval"], "name": query["name"], "data": rows}


class PathsQuerySchema(StatsQuerySchema):
    page = fields.String(required=True, validate=validate.Regexp(r"^/[^\x00]{0,2047}\Z", error=(
        "A path beginning with '/', without host or query string.")))
    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=100))


class Paths(_Read):
    schema = PathsQuerySchema()

    def answer(self, conn, account_id, rng, query):
        found = paths.moves(conn, account_id, query["page"], rng.start, rng.end, query["limit"], query["host"])
        return {"page": query["page"], **found}


ROUTES = {
    "/api/v1/stats/paths": Paths,
    "/api/v1/stats/custom-events": Names,
    "/api/v1/stats/custom-events/properties": Properties,
    "/api/v1/stats/custom-events/rate": Rate,
    "/api/v1/stats/custom-events/series": Series,
}


# ---------------------------------------------------------------- OpenAPI

class IngestResultShape(shapes.Shape):
    accepted = fields.Integer(metadata={"description": "Valid events, now stored (or stored before: a re-send)."})
    rejected = fields.Integer()
    errors = fields.Dict(metadata={"description": "Each rejected event's index with its invalid fields: "
                                                  "`{\"3\": {\"occurred_at\": [\"...\"]}}`."})


class NameRowShape(shapes.Shape):
    name = shapes._nullable(fields.String)
    events = fields.Integer()
    sessions = fields.Integer()
    visitors = fields.Integer()


class NamesShape(shapes._RangeShape):
    data = fields.List(fields.Nested(NameRowShape))


class ValueRowShape(shapes.Shape):
    value = shapes._nullable(fields.String, metadata={"description": "null: the event has no such property."})
    events = fields.Integer()
    visitors = fields.Integer()


class PropertiesShape(shapes._RangeShape):
    name = fields.String()
    property = fields.String()
    total = fields.Integer(metadata={"description": "Events of that name in the range (all values)."})
    data = fields.List(fields.Nested(ValueRowShape))


class RateRowShape(shapes.Shape):
    value = fields.String()
    numerator = fields.Integer()
    denominator = fields.Integer()
    numerator_visitors = fields.Integer()
    denominator_visitors = fields.Integer()
    rate = shapes._nullable(fields.Float, metadata={"description": "numerator / denominator; null when 0."})


class RateShape(shapes._RangeShape):
    numerator = fields.String()
    denominator = fields.String()
    property = fields.String()
    data = fields.List(fields.Nested(RateRowShape))


class EventSeriesPointShape(shapes.Shape):
    bucket = fields.AwareDateTime()
    events = fields.Integer()
    visitors = fields.Integer()


class EventSeriesShape(shapes._RangeShape):
    interval = fields.String(validate=validate.OneOf(("hour", "day")))
    name = fields.String()
    data = fields.List(fields.Nested(EventSeriesPointShape))


class MoveShape(shapes.Shape):
    path = fields.String(metadata={"description": "A page's path, or (exit) / (entry)."})
    moves = fields.Integer()
    sessions = fields.Integer()


class PathsShape(shapes._RangeShape):
    page = fields.String()
    next = fields.List(fields.Nested(MoveShape), metadata={"description": "Where visitors went after the page."})
    previous = fields.List(fields.Nested(MoveShape), metadata={"description": "Where they came from."})


shapes._require_keys(shapes.Shape)  # every key required, but OPTIONAL ones (as response_schemas)


def describe(spec: APISpec) -> None:
    """This module's operations in the OpenAPI document (hindsight.openapi calls it)."""
    from ..openapi import ANALYST, BODY, WINDOW, _body, _json, answers, range_rules
    from .stats import DEFAULT_SPAN

    spec.components.schema("ServerEvent", schema=server_events.ServerEventSchema)
    spec.components.schema("ServerEventsBody", schema=server_events.ServerEventsBodySchema)
    spec.path("/api/v1/events", operations={"post": {
        "summary": "Store events from a server (seed 002's shape), each validated on its own.",
        "description": (
            "Each item of `events` is a ServerEvent. `page_view` is a page view; any other event_type "
            "is a custom event of that name with `properties` as its props. A session that does not "
            "exist is created on the host of `page_url` (a registered domain of the account). Re-sending "
            "an event stores nothing new: the key is (session, occurred_at, event_id) or, without "
            f"event_id, the event's content. {WINDOW} Invalid events are listed in `errors` by index; "
            "the valid ones are stored."),
        "security": ANALYST, "requestBody": _body("ServerEventsBody"),
        "responses": answers({"200": _json(IngestResultShape, "The valid events are committed.")},
                             f"400 401 {BODY} 503")}})
    reads = {
        "/api/v1/stats/paths": (PathsQuerySchema, PathsShape, "After a page, where visitors went next; before "
                                "it, where they came from (from the journeys)."),
        "/api/v1/stats/custom-events": (NamesQuerySchema, NamesShape, "Custom event names: events, "
                                        "sessions and unique visitors."),
        "/api/v1/stats/custom-events/properties": (PropertyQuerySchema, PropertiesShape,
                                                   "One property's values for an event name (top N)."),
        "/api/v1/stats/custom-events/rate": (RateQuerySchema, RateShape,
                                             "numerator / denominator per value of a shared property "
                                             "(e.g. click-through rate per mapping_id)."),
        "/api/v1/stats/custom-events/series": (EventSeriesQuerySchema, EventSeriesShape,
                                               "An event name's events and visitors per hour or day."),
    }
    for path, (query, shape, summary) in reads.items():
        spec.path(path, operations={"get": {
            "summary": summary, "description": range_rules(DEFAULT_SPAN.days), "security": ANALYST,
            "parameters": [{"in": "query", "schema": query}],
            "responses": answers({"200": _json(shape, "The numbers, and the range they cover.")},
                                 "400 401 503")}})
