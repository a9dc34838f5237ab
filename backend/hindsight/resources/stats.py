"""GET /api/v1/stats/...: the dashboard's numbers for the analyst key's account, from the roll-ups.

    /api/v1/stats/series?interval=hour|day   events, sessions, page views, clicks, errors,
                                             visitors and bounces per bucket
    /api/v1/stats/event-types                events per type
    /api/v1/stats/pages                      top pages (host + path): views, clicks, errors,
                                             visitors, time on page, bounce and exit rate
    /api/v1/stats/referrers|devices|browsers|os   sessions started and their visitors, by that attribute
    /api/v1/stats/visitors                   visitors, sessions, bounce rate, session duration,
                                             pages per session
    /api/v1/stats/entry-pages|exit-pages     the pages sessions start on / end on

Unique visitors come from the visitor roll-ups' HyperLogLog sketches (hindsight.queries.visitors):
exact up to 2,560 visitors, within about 0.6 % above.

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
from ..queries import visitors as visitor_stats
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
        # One snapshot: the visitor readers may read the roll-ups' partial rows (rollup_rows).
        with self._s.read_pool.connection() as conn, visitor_stats.snapshot(conn):
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
        extra = visitor_stats.series(conn, account_id, rng, query["interval"], query["host"])
        rows = [{**row, "visitors": more["visitors"], "bounces": more["bounces"]}
                for row, more in zip(rows, extra, strict=True)]
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
        more = {(r["host"], r["path"]): r for r in visitor_stats.pages(
            conn, account_id, rng, 100, query["host"], paths=sorted({r["path"] for r in rows}))}
        rows = [{**row, **_page_visits(more.get((row["host"], row["path"])))} for row in rows]
        return {**_range_json(rng), "data": rows}


_VISIT_FIELDS = ("visitors", "avg_time_on_page_s", "entries", "bounces", "bounce_rate", "exits", "exit_rate")


def _page_visits(row: dict | None) -> dict:
    if row is None:
        return {"visitors": 0, "avg_time_on_page_s": None, "entries": 0, "bounces": 0, "bounce_rate": None,
                "exits": 0, "exit_rate": None}
    return {k: row[k] for k in _VISIT_FIELDS}


class Visitors(_StatsResource):
    """GET /api/v1/stats/visitors: the sessions started in the range, summed up."""

    def answer(self, conn, account_id, query: dict) -> dict:
        rng = traffic.hour_range(*_bounds(self._s, query))
        return {**_range_json(rng), **visitor_stats.summary(conn, account_id, rng, query["host"])}


class PageList(_StatsResource):
    """GET /api/v1/stats/{entry-pages,exit-pages}: pages by sessions started or ended there."""

    schema = TopQuerySchema()

    def __init__(self, services: Services, order: str) -> None:
        super().__init__(services)
        self._order = order

    def answer(self, conn, account_id, query: dict) -> dict:
        rng = traffic.hour_range(*_bounds(self._s, query))
        rows = visitor_stats.pages(conn, account_id, rng, query["limit"], query["host"], order=self._order)
        return {**_range_json(rng), "data": [r for r in rows if r[self._order] > 0]}


class Breakdown(_StatsResource):
    """GET /api/v1/stats/{referrers,devices,browsers,os}: sessions started, by one attribute."""

    schema = TopQuerySchema()

    def __init__(self, services: Services, dimension: str) -> None:
        super().__init__(services)
        self._dimension = dimension

    def answer(self, conn, account_id, query: dict) -> dict:
        rng = traffic.day_range(*_bounds(self._s, query))
        # Sessions and their visitors in one statement (the visitor roll-ups count the sessions
        # by attribute as traffic.breakdown does: tests/test_overview_speed_shapes.py).
        result = visitor_stats.breakdowns(conn, account_id, (self._dimension,), rng, query["limit"],
                                          query["host"])[self._dimension]
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
    "/api/v1/stats/visitors": lambda s: Visitors(s),
    "/api/v1/stats/entry-pages": lambda s: PageList(s, "entries"),
    "/api/v1/stats/exit-pages": lambda s: PageList(s, "exits"),
}
