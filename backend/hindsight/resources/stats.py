"""GET /api/v1/stats/...: the dashboard's numbers for the analyst key's account, from the roll-ups.

    /api/v1/stats/series?interval=hour|day   events, sessions, page views, clicks, errors per bucket
    /api/v1/stats/event-types                events per type
    /api/v1/stats/pages                      top pages (host + path): views, clicks, errors
    /api/v1/stats/referrers|devices|browsers|os   sessions started, by that attribute

Every endpoint takes `from` and `to` (ISO 8601; default: the last 30 days) and `host`
(one of the account's registered domains; default: all). The answer says which range
it covers: hours for series and totals, days for series by day and breakdowns. The
range, its defaults and its limits are hindsight.timerange's (the dashboard's too).
"""

from __future__ import annotations

from datetime import timedelta

import falcon
from marshmallow import fields, validate

from .. import timerange
from ..queries import traffic
from ..schemas import StrictSchema
from ..services import Services
from .http import analyst, load_query

DEFAULT_SPAN = timedelta(days=30)


class StatsQuerySchema(StrictSchema):
    start = timerange.Instant(data_key="from", load_default=None, metadata={
        "description": "Start (ISO 8601, 1970 to 9999); default: `to` - 30 days. "
                       f"At most {timerange.MAX_SPAN.days} days before `to`."})
    end = timerange.Instant(data_key="to", load_default=None, metadata={
        "description": "End, exclusive (ISO 8601, 1970 to 9999); default: now."})
    host = fields.String(load_default=None, validate=validate.Length(min=1, max=253),
                         metadata={"description": "Only this registered domain."})


class SeriesQuerySchema(StatsQuerySchema):
    interval = fields.String(load_default="day", validate=validate.OneOf(("hour", "day")), metadata={
        "description": f"An hourly series covers at most {timerange.MAX_HOURLY_SPAN.days} days."})


class TopQuerySchema(StatsQuerySchema):
    limit = fields.Integer(load_default=10, validate=validate.Range(min=1, max=100))


def _bounds(services: Services, query: dict) -> tuple:
    """The effective range (defaults filled in), checked against the span limits."""
    rng = timerange.effective(query["start"], query["end"], services.clock(), default_span=DEFAULT_SPAN,
                              hourly=query.get("interval") == "hour")
    return rng.start, rng.end


def _range_json(rng: traffic.Range) -> dict:
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
        rng = traffic.hour_range(start, end) if hourly else traffic.day_range(start, end)
        rows = traffic.series(conn, account_id, rng, query["interval"], query["host"])
        return {**_range_json(rng), "interval": query["interval"], "data": rows}


class EventTypes(_StatsResource):
    """GET /api/v1/stats/event-types: events per type, most frequent first."""

    def answer(self, conn, account_id, query: dict) -> dict:
        rng = traffic.hour_range(*_bounds(self._s, query))
        return {**_range_json(rng), "data": traffic.event_types(conn, account_id, rng, query["host"])}


class TopPages(_StatsResource):
    """GET /api/v1/stats/pages: the most viewed pages."""

    schema = TopQuerySchema()

    def answer(self, conn, account_id, query: dict) -> dict:
        rng = traffic.hour_range(*_bounds(self._s, query))
        rows = traffic.top_pages(conn, account_id, rng, query["limit"], query["host"])
        return {**_range_json(rng), "data": rows}


class Breakdown(_StatsResource):
    """GET /api/v1/stats/{referrers,devices,browsers,os}: sessions started, by one attribute."""

    schema = TopQuerySchema()

    def __init__(self, services: Services, dimension: str) -> None:
        super().__init__(services)
        self._dimension = dimension

    def answer(self, conn, account_id, query: dict) -> dict:
        rng = traffic.day_range(*_bounds(self._s, query))
        result = traffic.breakdown(conn, account_id, self._dimension, rng, query["limit"], query["host"])
        return {**_range_json(rng), "dimension": self._dimension, **result}


# The endpoints (app.py adds them, openapi.py describes them).
ROUTES = {
    "/api/v1/stats/series": lambda s: Series(s),
    "/api/v1/stats/event-types": lambda s: EventTypes(s),
    "/api/v1/stats/pages": lambda s: TopPages(s),
    "/api/v1/stats/referrers": lambda s: Breakdown(s, "referrer"),
    "/api/v1/stats/devices": lambda s: Breakdown(s, "device_type"),
    "/api/v1/stats/browsers": lambda s: Breakdown(s, "browser"),
    "/api/v1/stats/os": lambda s: Breakdown(s, "os"),
}
