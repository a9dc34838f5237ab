"""Heatmaps: where visitors of one page click, and how far down they scroll.

    GET /dashboard/heatmaps?page=/path[&host=][&range=7d|from=&to=]   the page (or ?format=json)
    GET /dashboard/heatmaps/image.png?...same...                         the picture (PNG, cached)

The page is chosen by its path (the roll-ups' key), optionally on one registered domain;
a full URL is accepted and reduced to its path.
"""

from __future__ import annotations

import hashlib
import urllib.parse
from datetime import UTC, datetime, timedelta

import falcon

from ..errors import bad_request
from ..queries import stats
from ..services import Services
from . import heatmap, queries, web

RANGES = {"24h": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30),
          "90d": timedelta(days=90)}
DEFAULT_RANGE = "7d"


def _time(value: str | None, name: str) -> datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as ex:
        raise bad_request(f"`{name}` is not an ISO 8601 time.", {name: ["Not a valid datetime."]}) from ex
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)  # a time without zone is UTC


def selection(req: falcon.Request, now: datetime) -> dict:
    """The page, host and time range asked for (validated), with defaults."""
    page = (req.get_param("page") or "").strip()
    if len(page) > 2048:
        raise bad_request("`page` is too long.", {"page": ["At most 2048 characters."]})
    if "://" in page:
        page = urllib.parse.urlsplit(page).path or "/"
    if page and not page.startswith("/"):
        page = "/" + page
    host = (req.get_param("host") or "").strip().lower() or None
    preset = req.get_param("range") or (None if req.get_param("from") else DEFAULT_RANGE)
    end = _time(req.get_param("to"), "to") or now
    if preset in RANGES:
        start = end - RANGES[preset]
    else:
        start = _time(req.get_param("from"), "from") or end - RANGES[DEFAULT_RANGE]
        preset = None
    if start >= end:
        raise bad_request("`from` must be before `to`.", {"from": ["Must be before `to`."]})
    return {"page": page or None, "host": host, "range": preset, "start": start, "end": end}


def _params(account_id, sel: dict) -> dict:
    return queries.page_params(account_id, sel["page"], sel["host"], sel["start"], sel["end"])


def _page(conn, account_id, sel: dict) -> tuple[heatmap.Page, dict | None, list[heatmap.Click]]:
    params = _params(account_id, sel)
    shot = queries.latest_screenshot(conn, params)
    clicks = [heatmap.Click(r["x"], r["y"], r["viewport_width"], r["rage"])
              for r in queries.heatmap_clicks(conn, params)]
    if shot is None:
        return heatmap.blank_page(clicks), None, clicks
    return (heatmap.Page(None, shot["image_width"], shot["image_height"], shot["viewport_width"]),
            shot, clicks)


def image_query(sel: dict) -> str:
    params = {"page": sel["page"], "host": sel["host"]}
    if sel["range"]:
        params["range"] = sel["range"]
    else:
        params.update({"from": sel["start"].isoformat(), "to": sel["end"].isoformat()})
    return web.query_string(params)


class HeatmapsPage:
    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        with self._s.pool.connection() as conn:
            user = web.current_user(req, conn, self._s)
            sel = selection(req, self._s.clock())
            rng = stats.hour_range(sel["start"], sel["end"])
            pages = stats.top_pages(conn, user.account_id, rng, 25, sel["host"])
            if sel["page"] is None and pages:
                sel["page"] = pages[0]["path"]
            result = None
            if sel["page"] is not None:
                page, shot, clicks = _page(conn, user.account_id, sel)
                depths = queries.scroll_depths(conn, _params(user.account_id, sel))
                result = {
                    "clicks": len(clicks),
                    "rage_clicks": sum(c.rage for c in clicks),
                    "sessions": len(depths),
                    "screenshot": None if shot is None else {
                        "screenshot_id": shot["screenshot_id"], "page_url": shot["page_url"],
                        "timestamp": shot["timestamp"], "width": shot["image_width"],
                        "height": shot["image_height"]},
                    "scroll_depth": heatmap.reach(depths, page.css_height),
                    "image_url": f"{web.PREFIX}/heatmaps/image.png{image_query(sel)}",
                }
        view = {"page": sel["page"], "host": sel["host"], "range": sel["range"],
                "from": sel["start"], "to": sel["end"], "top_pages": pages, "heatmap": result}
        web.respond(req, resp, "heatmaps.html", view, user, nav="heatmaps", ranges=list(RANGES))


class HeatmapImage:
    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        with self._s.pool.connection() as conn:
            user = web.current_user(req, conn, self._s, json_twin=True)
            sel = selection(req, self._s.clock())
            if sel["page"] is None:
                raise bad_request("Choose a page (`page=/path`).", {"page": ["Required."]})
            params = _params(user.account_id, sel)
            shot = queries.latest_screenshot(conn, params)
            mark = queries.heatmap_fingerprint(conn, params)
            depths = queries.scroll_depths(conn, params)
            key = hashlib.sha256(web.dumps([
                heatmap.RENDER_VERSION, user.account_id, sel["page"], sel["host"],
                shot and shot["content_hash"], mark["clicks"], mark["first_click"], mark["last_click"],
                sorted(depths),
            ]).encode()).digest()
            png = queries.cached_heatmap(conn, user.account_id, key)
            resp.set_header("X-Heatmap-Cache", "hit" if png else "miss")
            if png is None:
                page, shot, clicks = _page(conn, user.account_id, sel)
                if shot is not None:
                    image = queries.screenshot_bytes(conn, user.account_id, shot["screenshot_id"])
                    page = heatmap.Page(image, page.image_width, page.image_height, page.css_width)
                png = heatmap.render(page, clicks, depths)
                queries.store_heatmap(conn, user.account_id, key, png)
        resp.content_type = "image/png"
        resp.cache_control = ["private", "no-cache"]
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.etag = '"' + key.hex()[:32] + '"'
        if req.get_header("If-None-Match") == resp.etag:
            resp.status = falcon.HTTP_304
            return
        resp.data = png
