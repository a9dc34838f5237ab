"""Heatmaps: where visitors of one page click, and how far down they scroll.

    GET /dashboard/heatmaps?page=/path[&host=][&range=7d|from=&to=]   the page (or ?format=json)
    GET /dashboard/heatmaps/image.png?...same...                         the picture (PNG, cached)

The page is chosen by its page key (the roll-ups' key, `hindsight_url_path`: its path, plus
its route where the site routes by hash, `/#/active`), optionally on one registered domain;
a full URL or a path with a fragment is accepted and reduced to its page by the same SQL
function (an anchor, `/docs#install`, is its page, `/docs`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import urllib.parse
from datetime import datetime

import falcon

from .. import timerange
from ..errors import bad_request
from ..offload import run_in_thread
from ..queries import heatmap_sources as sources
from ..queries import screenshots as screenshot_queries
from ..queries import traffic
from ..services import Services
from . import heatmap, web

DEFAULT_RANGE = "7d"
MAX_POINTS = 500   # click places listed, as drawn, in the page's JSON twin


def selection(req: falcon.Request, now: datetime) -> dict:
    """The page, host and time range asked for (validated), with defaults."""
    page = (req.get_param("page") or "").strip()
    if len(page) > 2048:
        raise bad_request("`page` is too long.", {"page": ["At most 2048 characters."]})
    host = (req.get_param("host") or "").strip().lower() or None
    if "\x00" in page or (host and "\x00" in host):   # PostgreSQL text holds no NUL
        raise bad_request("`page` and `host` must not contain NUL.", {"page": ["Contains NUL."]})
    if "://" in page:
        try:
            parts = urllib.parse.urlsplit(page)
        except ValueError as ex:   # a malformed [IPv6] host
            raise bad_request(f"`page` is not a URL ({ex}).", {"page": ["Not a URL."]}) from ex
        page = (parts.path or "/") + (f"#{parts.fragment}" if parts.fragment else "")
    if page and not page.startswith("/"):
        page = "/" + page
    rng = timerange.dashboard_range(req.params, now, default_preset=DEFAULT_RANGE)
    return {"page": page or None, "host": host, "range": rng.preset, "start": rng.start, "end": rng.end,
            "end_given": bool(req.get_param("to"))}


def _params(account_id, sel: dict) -> dict:
    # Whole hours, as the roll-ups hold them (sql/migrations/0033), like the page list's.
    hours = traffic.hour_range(sel["start"], sel["end"])
    return sources.page_params(account_id, sel["page"], sel["host"], hours.start, hours.end)


def _clicks(rows: list[dict]) -> list[heatmap.Click]:
    """The roll-up's bins as clicks weighed by their count."""
    return [heatmap.Click(r["x"], r["y"], r["viewport_width"], r["rage"], r["selector"],
                          None if r["offset_x"] is None else (float(r["offset_x"]), float(r["offset_y"])),
                          r["clicks"])
            for r in rows]


def _picture(shot: dict | None, lowest: float) -> heatmap.Page:
    """What the heatmap is drawn on: the latest screenshot (its size and element boxes; its
    bytes are read only to draw), else a blank page down to the lowest click."""
    if shot is None:
        return heatmap.blank_page_to(lowest)
    return heatmap.Page(None, shot["image_width"], shot["image_height"], shot["viewport_width"],
                        heatmap.element_boxes(shot["elements"]))


def _points(page: heatmap.Page, clicks: list[heatmap.Click]) -> list[dict]:
    """The places of the newest hours' clicks as drawn (image px of the picture), how each
    was placed and how many clicks it holds (a roll-up bin: 4 CSS px, or an element and a
    whole-px offset)."""
    points = []
    for click in clicks[:MAX_POINTS]:
        x, y, how = heatmap.placed(page, click)
        points.append({"x": round(x, 1), "y": round(y, 1), "placed_by": how, "selector": click.selector,
                       "clicks": click.count})
    return points


def image_query(sel: dict) -> str:
    params = {"page": sel["page"], "host": sel["host"]}
    if sel["range"]:
        params["range"] = sel["range"]
        if sel["end_given"]:
            params["to"] = sel["end"].isoformat()
    else:
        params.update({"from": sel["start"].isoformat(), "to": sel["end"].isoformat()})
    return web.query_string(params)


class HeatmapsPage:
    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        with self._s.pool.connection() as conn:  # the login: on the primary
            user = web.current_user(req, conn, self._s)
        with self._s.read_pool.connection() as conn:  # the data: may lag (SCALING.md)
            sel = selection(req, self._s.clock())
            rng = traffic.hour_range(sel["start"], sel["end"])
            pages = traffic.top_pages(conn, user.account_id, rng, 25, sel["host"])
            if sel["page"] is None and pages:
                sel["page"] = pages[0]["path"]
            if sel["page"] is not None:
                sel["page"] = sources.page_key(conn, sel["page"])
            result = None
            if sel["page"] is not None:
                params = _params(user.account_id, sel)
                shot = sources.latest_screenshot(conn, params)
                summary = sources.heatmap_summary(conn, params)
                page = _picture(shot, max((r["lowest"] for r in summary), default=0))
                depths = sources.scroll_depths(conn, params)
                points = _clicks(sources.heatmap_points(conn, params, MAX_POINTS))
                result = {
                    "clicks": sum(r["clicks"] for r in summary),
                    "rage_clicks": sum(r["rage_clicks"] for r in summary),
                    "sessions": len(depths),
                    "screenshot": None if shot is None else {
                        "screenshot_id": shot["screenshot_id"], "page_url": shot["page_url"],
                        "timestamp": shot["timestamp"], "width": shot["image_width"],
                        "height": shot["image_height"]},
                    "scroll_depth": heatmap.reach(depths, page.css_height),
                    # A click with an offset, on an element the screenshot knows (heatmap.placed).
                    "placed_on_elements": sum(r["with_offset"] or 0 for r in summary
                                              if r["selector"] and r["selector"] in page.elements),
                    "points": _points(page, points),
                    "image_url": f"{web.PREFIX}/heatmaps/image.png{image_query(sel)}",
                }
        view = {"page": sel["page"], "host": sel["host"], "range": sel["range"],
                "from": sel["start"], "to": sel["end"], "top_pages": pages, "heatmap": result}
        web.respond(req, resp, "heatmaps.html", view, user, nav="heatmaps", ranges=list(timerange.PRESETS))


class HeatmapImage:
    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        with self._s.pool.connection() as conn:  # the login: on the primary
            user = web.current_user(req, conn, self._s, json_twin=True)
        with self._s.read_pool.connection() as conn:  # the data: may lag (SCALING.md)
            sel = selection(req, self._s.clock())
            if sel["page"] is None:
                raise bad_request("Choose a page (`page=/path`).", {"page": ["Required."]})
            sel["page"] = sources.page_key(conn, sel["page"])
            params = _params(user.account_id, sel)
            shot = sources.latest_screenshot(conn, params)
            mark = sources.heatmap_fingerprint(conn, params)
            depths = sources.scroll_depths(conn, params)
            # Everything the picture is drawn from: the click rows' digest (computed in SQL), the
            # screenshot and every session's depth.
            key = hashlib.sha256(web.dumps([
                heatmap.RENDER_VERSION, user.account_id, sel["page"], sel["host"],
                shot and shot["content_hash"], shot and shot["screenshot_id"],
                mark["rows"], mark["clicks"], mark["digest"], depths,
            ]).encode()).digest()
            png = sources.cached_heatmap(conn, user.account_id, key)
            resp.set_header("X-Heatmap-Cache", "hit" if png else "miss")
            if png is None:
                clicks = _clicks(sources.heatmap_clicks(conn, params))
                page = _picture(shot, max((c.y for c in clicks), default=0))
                if shot is not None:
                    found = screenshot_queries.image(conn, user.account_id, shot["screenshot_id"])
                    image = bytes(found["image_data"]) if found else None
                    page = dataclasses.replace(page, image=image)
                # Seconds of CPU for a long page: off the gevent hub (hindsight.offload).
                png = run_in_thread(heatmap.render, page, clicks, depths)
                sources.store_heatmap(conn, user.account_id, key, png)
        resp.content_type = "image/png"
        resp.cache_control = ["private", "no-cache"]
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.etag = '"' + key.hex()[:32] + '"'
        if req.get_header("If-None-Match") == resp.etag:
            resp.status = falcon.HTTP_304
            return
        resp.data = png
