"""The overview: a time range's traffic from the roll-ups (hindsight.queries.traffic).

    GET /dashboard/overview[?range=1h|24h|7d|30d|90d]   (or ?format=json)

Sessions, page views, events and errors over time, hot routes, referrers, devices,
browsers and OS come from the roll-ups; the slowest network endpoints from the network
roll-ups (duration histograms: percentiles within 5 %); the pages with the most errors
from the hourly pages roll-up.
"""

from __future__ import annotations

from datetime import timedelta

import falcon

from .. import timerange
from ..queries import traffic
from ..services import Services
from . import web

DEFAULT_RANGE = "7d"
METRICS = (("sessions", "Sessions"), ("page_views", "Page views"), ("events", "Events"),
           ("errors", "Errors"))
BREAKDOWNS = (("referrer", "Referrers"), ("device_type", "Devices"), ("browser", "Browsers"),
              ("os", "Operating systems"))
CHART_W, CHART_H = 560, 120


def bars(series: list[dict], key: str, width: int = CHART_W, height: int = CHART_H) -> dict:
    """SVG geometry for one metric's bars (the template draws them; no chart library)."""
    peak = max((row[key] for row in series), default=0)
    n = max(1, len(series))
    step = width / n
    rects = []
    for i, row in enumerate(series):
        h = 0 if peak == 0 else max(1.0 if row[key] else 0.0, height * row[key] / peak)
        rects.append({"x": round(i * step, 2), "y": round(height - h, 2), "w": round(max(1.0, step - 1), 2),
                      "h": round(h, 2), "value": row[key], "bucket": row["bucket"]})
    return {"rects": rects, "peak": peak, "total": sum(row[key] for row in series),
            "width": width, "height": height}


class OverviewPage:
    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        # A preset only: the page has no from/to (an unknown preset is the default).
        chosen = timerange.dashboard_range({"range": req.get_param("range")}, self._s.clock(),
                                           default_preset=DEFAULT_RANGE)
        start, end, preset = chosen.start, chosen.end, chosen.preset
        interval = "hour" if end - start <= timedelta(days=7) else "day"
        with self._s.pool.connection() as conn:
            user = web.current_user(req, conn, self._s)
            account = user.account_id
            rng = traffic.hour_range(start, end) if interval == "hour" else traffic.day_range(start, end)
            series = traffic.series(conn, account, rng, interval)
            hours = traffic.hour_range(start, end)
            days = traffic.day_range(start, end)
            top_pages, error_pages = traffic.page_lists(conn, account, hours, 10)
            view = {
                "range": preset, "from": rng.start, "to": rng.end, "interval": interval,
                "series": series,
                "totals": {key: sum(r[key] for r in series) for key, _ in METRICS},
                "top_pages": top_pages,
                "breakdowns": {dim: traffic.breakdown(conn, account, dim, days, 8)
                               for dim, _ in BREAKDOWNS},
                "slowest_endpoints": traffic.slowest_endpoints(conn, account, start, end),
                "error_pages": error_pages,
            }
        charts = {key: bars(series, key) for key, _ in METRICS}
        web.respond(req, resp, "overview.html", view, user, nav="overview", ranges=list(timerange.PRESETS),
                    charts=charts, metrics=METRICS, breakdown_names=BREAKDOWNS)
