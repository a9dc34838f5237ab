"""The overview: a time range's traffic from the roll-ups (hindsight.queries.stats).

    GET /dashboard/overview[?range=24h|7d|30d|90d]   (or ?format=json)

Sessions, page views, events and errors over time, hot routes, referrers, devices,
browsers and OS come from the roll-ups; the slowest network endpoints from the raw
network events (the roll-ups keep no durations); the pages with the most errors from
the hourly pages roll-up.
"""

from __future__ import annotations

from datetime import timedelta

import falcon

from ..queries import stats
from ..services import Services
from . import queries, web

RANGES = {"24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30),
          "90d": timedelta(days=90)}
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
        preset = req.get_param("range") or DEFAULT_RANGE
        if preset not in RANGES:
            preset = DEFAULT_RANGE
        end = self._s.clock()
        start = end - RANGES[preset]
        interval = "hour" if RANGES[preset] <= timedelta(days=7) else "day"
        with self._s.pool.connection() as conn:
            user = web.current_user(req, conn, self._s)
            account = user.account_id
            rng = stats.hour_range(start, end) if interval == "hour" else stats.day_range(start, end)
            series = stats.series(conn, account, rng, interval)
            hours = stats.hour_range(start, end)
            days = stats.day_range(start, end)
            view = {
                "range": preset, "from": rng.start, "to": rng.end, "interval": interval,
                "series": series,
                "totals": {key: sum(r[key] for r in series) for key, _ in METRICS},
                "top_pages": stats.top_pages(conn, account, hours, 10),
                "breakdowns": {dim: stats.breakdown(conn, account, dim, days, 8)
                               for dim, _ in BREAKDOWNS},
                "slowest_endpoints": queries.slowest_endpoints(conn, account, start, end),
                "error_pages": queries.error_pages(conn, account, hours.start, hours.end),
            }
        charts = {key: bars(series, key) for key, _ in METRICS}
        web.respond(req, resp, "overview.html", view, user, nav="overview", ranges=list(RANGES),
                    charts=charts, metrics=METRICS, breakdown_names=BREAKDOWNS)
