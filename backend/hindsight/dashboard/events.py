"""The events page: custom events (`hindsight.track` and POST /api/v1/events) — their names,
a property's values, a rate between two events that share a property, and a series.

    GET /dashboard/events[?range=7d][&name=N[&property=P]][&numerator=A&denominator=B&rate_property=P]
        (or ?format=json)

The numbers are the API's (hindsight.queries.custom_events, /api/v1/stats/custom-events...).
"""

from __future__ import annotations

from datetime import timedelta

import falcon

from .. import timerange
from ..errors import bad_request
from ..queries import custom_events as q
from ..queries import traffic
from ..services import Services
from . import web
from .overview import bars

DEFAULT_RANGE = "7d"
TEXT_PARAMS = ("name", "property", "numerator", "denominator", "rate_property")


def text_params(req: falcon.Request) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for k in TEXT_PARAMS:
        v = req.get_param(k) or None
        if v is not None and (len(v) > 200 or "\x00" in v):
            raise bad_request(f"{k} is not valid.", {k: ["At most 200 characters, no NUL."]})
        out[k] = v
    return out


class EventsPage:
    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        chosen = timerange.dashboard_range(dict(req.params), self._s.clock(), default_preset=DEFAULT_RANGE)
        p = text_params(req)
        hourly = chosen.end - chosen.start <= timedelta(days=7)
        with self._s.pool.connection() as conn:
            user = web.current_user(req, conn, self._s)
            account = user.account_id
            hours = traffic.hour_range(chosen.start, chosen.end)
            view: dict = {"range": chosen.preset, "from": hours.start, "to": hours.end, **p,
                          "names": q.names(conn, account, hours.start, hours.end, 50),
                          "values": None, "series": None, "rate": None}
            if p["name"]:
                rng = hours if hourly else traffic.day_range(chosen.start, chosen.end)
                width = timedelta(hours=1) if hourly else timedelta(days=1)
                view["interval"] = "hour" if hourly else "day"
                view["series"] = q.series(conn, account, p["name"], rng.start, rng.end, width)
                if p["property"]:
                    view["values"] = q.property_values(conn, account, p["name"], p["property"], hours.start,
                                                       hours.end, 20)
            if p["numerator"] and p["denominator"] and p["rate_property"]:
                view["rate"] = q.rate(conn, account, p["numerator"], p["denominator"], p["rate_property"],
                                      hours.start, hours.end, 20)
        chart = bars(view["series"], "events") if view["series"] else None
        web.respond(req, resp, "events.html", view, user, nav="events", ranges=list(timerange.PRESETS),
                    chart=chart)
