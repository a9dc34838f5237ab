"""GET /api/v1/stats/...: the dashboard's numbers for the analyst key's account, from the roll-ups.

    /api/v1/stats/series?interval=hour|day   events, sessions, page views, clicks, errors per bucket
    /api/v1/stats/event-types                events per type
    /api/v1/stats/pages                      top pages (host + path): views, clicks, errors
    /api/v1/stats/referrers|devices|browsers|os   sessions started, by that attribute

Every endpoint takes `from` and `to` (ISO 8601; default: the last 30 days) and `host`
(one of the account's registered domains; default: all). The answer says which range
it covers: hours for series and totals, days for series by day and breakdowns.
"""

from __future__ import annotations

from datetime import timedelta

import falcon
from marshmallow import ValidationError, fields, validate, validates_schema

from ..auth import analyst
from ..queries import stats
from ..schemas import StrictSchema
from ..services import Services
from .common import load_query

DEFAULT_SPAN = timedelta(days=30)
MAX_SPAN = timedelta(days=800)        # the roll-ups keep 2 years
MAX_HOURLY_SPAN = timedelta(days=93)  # at most 2,232 points in an hourly series


class StatsQuerySchema(StrictSchema):
    start = fields.AwareDateTime(data_key="from", load_default=None,
                                 metadata={"description": "Start (ISO 8601); default: `to` - 30 days."})
    end = fields.AwareDateTime(data_key="to", load_default=None,
                               metadata={"description": "End, exclusive (ISO 8601); default: now."})
    host = fields.String(load_default=None, validate=validate.Length(min=1, max=253),
                         metadata={"description": "Only this registered domain."})

    @validates_schema
    def _range(self, data, **kwargs) -> None:
        start, end = data.get("start"), data.get("end")
        if start is not None and end is not None:
            if start >= end:
                raise ValidationError("`from` must be before `to`.", "from")
            if end - start > MAX_SPAN:
                raise ValidationError(f"At most {MAX_SPAN.days} days.", "from")


class SeriesQuerySchema(StatsQuerySchema):
    interval = fields.String(load_default="day", validate=validate.OneOf(("hour", "day")))

    @validates_schema
    def _hourly_span(self, data, **kwargs) -> None:
        start, end = data.get("start"), data.get("end")
        if (data.get("interval") == "hour" and start is not None and end is not None
                and end - start > MAX_HOURLY_SPAN):
            raise ValidationError(f"An hourly series covers at most {MAX_HOURLY_SPAN.days} days.", "from")


class TopQuerySchema(StatsQuerySchema):
    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=100))


def _bounds(services: Services, query: dict):
    end = query["end"] or services.clock()
    start = query["start"] or end - DEFAULT_SPAN
    return start, end


def _range_json(rng: stats.Range) -> dict:
    return {"from": rng.start.isoformat(), "to": rng.end.isoformat()}


class _StatsResource:
    schema: StrictSchema = StatsQuerySchema()

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        query = load_query(req, self.schema)
        with self._s.pool.connection() as conn:
            who = analyst(req, conn)
            resp.media = self.answer(conn, who.account_id, query)

    def answer(self, conn, account_id, query: dict) -> dict:
        raise NotImplementedError


class Series(_StatsResource):
    """GET /api/v1/stats/series: one row per hour or day, zeros included."""

    schema = SeriesQuerySchema()

    def answer(self, conn, account_id, query: dict) -> dict:
        start, end = _bounds(self._s, query)
        hourly = query["interval"] == "hour"
        rng = stats.hour_range(start, end) if hourly else stats.day_range(start, end)
        rows = stats.series(conn, account_id, rng, query["interval"], query["host"])
        return {**_range_json(rng), "interval": query["interval"], "data": rows}


class EventTypes(_StatsResource):
    """GET /api/v1/stats/event-types: events per type, most frequent first."""

    def answer(self, conn, account_id, query: dict) -> dict:
        rng = stats.hour_range(*_bounds(self._s, query))
        return {**_range_json(rng), "data": stats.event_types(conn, account_id, rng, query["host"])}


class TopPages(_StatsResource):
    """GET /api/v1/stats/pages: the most viewed pages."""

    schema = TopQuerySchema()

    def answer(self, conn, account_id, query: dict) -> dict:
        rng = stats.hour_range(*_bounds(self._s, query))
        rows = stats.top_pages(conn, account_id, rng, query["limit"], query["host"])
        return {**_range_json(rng), "data": rows}


class Breakdown(_StatsResource):
    """GET /api/v1/stats/{referrers,devices,browsers,os}: sessions started, by one attribute."""

    schema = TopQuerySchema()

    def __init__(self, services: Services, dimension: str) -> None:
        super().__init__(services)
        self._dimension = dimension

    def answer(self, conn, account_id, query: dict) -> dict:
        rng = stats.day_range(*_bounds(self._s, query))
        result = stats.breakdown(conn, account_id, self._dimension, rng, query["limit"], query["host"])
        return {**_range_json(rng), "dimension": self._dimension, **result}


ROUTES = {
    "/api/v1/stats/series": lambda s: Series(s),
    "/api/v1/stats/event-types": lambda s: EventTypes(s),
    "/api/v1/stats/pages": lambda s: TopPages(s),
    "/api/v1/stats/referrers": lambda s: Breakdown(s, "referrer"),
    "/api/v1/stats/devices": lambda s: Breakdown(s, "device_type"),
    "/api/v1/stats/browsers": lambda s: Breakdown(s, "browser"),
    "/api/v1/stats/os": lambda s: Breakdown(s, "os"),
}


def add_routes(app: falcon.App, services: Services) -> None:
    for path, make in ROUTES.items():
        app.add_route(path, make(services))
