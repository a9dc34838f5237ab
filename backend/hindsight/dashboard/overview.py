"""The overview: a time range's traffic from the roll-ups (hindsight.queries.traffic).

    GET /dashboard/overview[?range=1h|24h|7d|30d|90d]   (or ?format=json)

Visitors, sessions, page views, events and errors over time, hot routes (with visitors, time
on page, bounce and exit rate), referrers, devices, browsers and OS come from the roll-ups
(unique visitors: the visitor roll-ups' sketches, hindsight.queries.visitors); the slowest network endpoints from the network
roll-ups (duration histograms: percentiles within 5 %); the pages with the most errors
from the hourly pages roll-up.
"""

from __future__ import annotations

from datetime import timedelta

import falcon
from markupsafe import Markup, escape

from .. import side_by_side, timerange
from ..queries import traffic
from ..queries import visitors as visitor_stats
from ..services import Services
from . import web

DEFAULT_RANGE = "7d"
METRICS = (("visitors", "Visitors"), ("sessions", "Sessions"), ("page_views", "Page views"), ("events", "Events"),
           ("errors", "Errors"))
BREAKDOWNS = (("referrer", "Referrers"), ("device_type", "Devices"), ("browser", "Browsers"),
              ("os", "Operating systems"))
CHART_W, CHART_H = 560, 120


def bars(series: list[dict], key: str, width: int = CHART_W, height: int = CHART_H,
         labels: list[str] | None = None) -> dict:
    """SVG geometry for one metric's bars, and their markup (`svg`): a `<rect>` with its
    `<title>` per bucket, built here rather than in the template, where 5 charts of 168
    hourly bars (the 7-day overview) took ~25 ms of Jinja's per-value work. What goes in is
    the metric's name and each bucket's time, escaped, and numbers (`labels`: the buckets'
    times, escaped, when the caller has them for several charts)."""
    peak = max((row[key] for row in series), default=0)
    n = max(1, len(series))
    step = width / n
    w = round(max(1.0, step - 1), 2)
    labels = labels if labels is not None else bucket_labels(series)
    css = escape(key)
    rects, svg = [], []
    for i, row in enumerate(series):
        value = int(row[key])
        h = 0 if peak == 0 else max(1.0 if value else 0.0, height * value / peak)
        x, y, h = round(i * step, 2), round(height - h, 2), round(h, 2)
        rects.append({"x": x, "y": y, "w": w, "h": h, "value": value, "bucket": row["bucket"]})
        svg.append(f'<rect class="{css}" x="{x}" y="{y}" width="{w}" height="{h}"><title>{labels[i]}: {value}</title></rect>')
    return {"rects": rects, "svg": Markup("".join(svg)), "peak": peak, "total": sum(row[key] for row in series),
            "width": width, "height": height}


def bucket_labels(series: list[dict]) -> list[str]:
    """Each bucket's time as the bars' titles show it, escaped."""
    return [str(escape(web.when(row["bucket"]))) for row in series]


class OverviewPage:
    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        # A preset only: the page has no from/to (an unknown preset is the default).
        chosen = timerange.dashboard_range({"range": req.get_param("range")}, self._s.clock(),
                                           default_preset=DEFAULT_RANGE)
        start, end, preset = chosen.start, chosen.end, chosen.preset
        with self._s.pool.connection() as conn:  # the login: on the primary
            user = web.current_user(req, conn, self._s)
        read = self._s.read_pool  # the data: may lag (SCALING.md)
        with read.connection() as conn, read.spare() as spare, visitor_stats.snapshot(conn, spare) as shared:
            view = {"range": preset, **numbers(conn, user.account_id, start, end, shared)}
        series, totals = view["series"], view["totals"]
        labels = bucket_labels(series)
        charts = {key: {**bars(series, key, labels=labels), "total": totals[key]} for key, _ in METRICS}
        web.respond(req, resp, "overview.html", view, user, nav="overview", ranges=list(timerange.PRESETS),
                    charts=charts, metrics=METRICS, breakdown_names=BREAKDOWNS)


def numbers(conn, account, start, end, spare=None) -> dict:
    """The overview's numbers for [start, end), read from the roll-ups.

    With a `spare` connection (ReadSide.spare) its statements run in two groups at once, one
    on each connection (two server processes, two cores: the page takes about the longer
    group instead of the sum); without one, one after another on `conn`. On each connection
    in pipeline mode (a statement whose result is not read, such as each reader's `SET
    LOCAL`, goes out with the next one instead of waiting for its own round trip), and with
    the visitor roll-ups' watermarks read once for both. In one snapshot (`conn` and `spare`
    inside visitor_stats.snapshot, as the page does) the readers may take today's and this
    week's partial rows; else whole days and weeks (rollup_rows.snapshot says why)."""
    interval = "hour" if end - start <= timedelta(days=7) else "day"
    rng = traffic.hour_range(start, end) if interval == "hour" else traffic.day_range(start, end)
    with visitor_stats.same_watermarks(conn):
        if spare is None:
            with conn.pipeline():
                first = _first_half(conn, account, rng, interval)
                second = _second_half(conn, account, start, end)
        else:
            first, second = side_by_side.both(lambda: _piped(conn, _first_half, account, rng, interval),
                                            lambda: _piped(spare, _second_half, account, start, end))
    top_pages, error_pages, series, summary = first
    breakdowns, slowest = second
    # Visitors of the range are not the sum of its buckets' visitors (who come back).
    totals = {key: summary["visitors"] if key == "visitors" else sum(r[key] for r in series)
              for key, _ in METRICS}
    return {
        "from": rng.start, "to": rng.end, "interval": interval,
        "series": series,
        "totals": totals,
        "visitors": summary,
        "top_pages": top_pages,
        "breakdowns": breakdowns,
        "slowest_endpoints": slowest,
        "error_pages": error_pages,
    }


def _piped(conn, part, *args):
    with conn.pipeline():
        return part(conn, *args)


def _first_half(conn, account, rng, interval) -> tuple:
    """One half of the statements (about half the work at every range, measured by the
    server's CPU time per statement at 10 M events: docs/DECISIONS.md): the hot routes (with
    their visitors, time on page, bounce and exit rate) and the pages with the most errors,
    over the page's range (whole days beyond 7 days, as the series and the summary: no hourly
    rows at the start, fewer sketches to merge); the series of events and visitors; the
    range's visitors."""
    top_pages, error_pages = traffic.page_lists(conn, account, rng, 10)
    visits = {(r["host"], r["path"]): r for r in visitor_stats.pages(
        conn, account, rng, 100, paths=sorted({p["path"] for p in top_pages}))}
    top_pages = [{**p, **_page_visits(visits.get((p["host"], p["path"])))} for p in top_pages]
    series = traffic.series(conn, account, rng, interval)
    per_bucket = visitor_stats.series(conn, account, rng, interval)
    series = [{**row, "visitors": more["visitors"]} for row, more in zip(series, per_bucket, strict=True)]
    return top_pages, error_pages, series, visitor_stats.summary(conn, account, rng)


def _second_half(conn, account, start, end) -> tuple:
    """The other half: the four breakdowns (sessions and visitors by referrer, device, browser
    and OS: one statement) and the slowest network endpoints."""
    breakdowns = visitor_stats.breakdowns(conn, account, tuple(dim for dim, _ in BREAKDOWNS),
                                          traffic.day_range(start, end), 8)
    return breakdowns, traffic.slowest_endpoints(conn, account, start, end)


_VISIT_FIELDS = ("visitors", "avg_time_on_page_s", "bounce_rate", "exit_rate")


def _page_visits(row: dict | None) -> dict:
    """A hot route's visitors, time on page, bounce and exit rate (None: not known)."""
    return {k: (row[k] if row is not None else (0 if k == "visitors" else None)) for k in _VISIT_FIELDS}
