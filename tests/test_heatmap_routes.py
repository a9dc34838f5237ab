"""What counts as a page (hash routes do, anchors do not: `hindsight_url_path`, migration 0029)
and how a heatmap places a click (on its element's box in the screenshot, plus the click's
offset inside it, clamped; else by the fraction of the visitor's viewport width), against the
real database and API. The Chromium side is tests/test_heatmap_routes_browser.py."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from conftest import now_iso
from hindsight.dashboard import heatmap
from hindsight.db import connect

PAGES = [
    ("https://shop.example/", "/"),
    ("https://shop.example/#/active", "/#/active"),
    ("https://shop.example/#/completed", "/#/completed"),
    ("https://shop.example/index.html#!/item/7?tab=2", "/index.html#!/item/7"),
    ("https://shop.example/app?utm=x#/cart", "/app#/cart"),
    ("https://shop.example/docs#install", "/docs"),          # an anchor stays on its page
    ("https://shop.example/docs#", "/docs"),
    ("https://shop.example/#/", "/"),                        # the empty route is the page
    ("https://shop.example/p?q=#/x/#/y", "/p#/x/"),
    ("/pricing#/yearly", "/pricing#/yearly"),
    ("", "/"),
]


@pytest.mark.parametrize(("url", "page"), PAGES)
def test_a_page_is_its_path_and_hash_route(db_url, url, page):
    with connect(db_url) as conn:
        got = conn.execute("SELECT hindsight_url_path(%s::text) AS p", (url,)).fetchone()["p"]
    assert got == page


def _session(client, site, width: int = 1280) -> str:
    resp = client.simulate_post("/api/v1/sessions", headers=site.write_headers(), json={
        "page_url": f"{site.origin}/", "viewport_width": width, "viewport_height": 700})
    assert resp.status_code == 201, resp.json
    return resp.json["session_id"]


def _shot(client, site, sid: str, page_url: str, **more):
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (10, 120, 200)).save(buf, format="JPEG")
    return client.simulate_post("/api/v1/track/screenshot", headers=site.write_headers(), json={
        "session_id": sid, "page_url": page_url, "timestamp": now_iso(), "width": 64, "height": 48,
        "image_data": "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode(), **more})


def test_hash_routes_are_pages_in_the_page_roll_ups_and_anchors_are_not(client, site):
    sid = _session(client, site)
    urls = ["/#/active", "/#/active", "/#/completed", "/docs", "/docs#install", "/docs#faq"]
    events = [{"seq": i, "timestamp": now_iso(), "event_type": "page_view", "page_url": site.origin + u}
              for i, u in enumerate(urls)]
    resp = client.simulate_post("/api/v1/track", headers=site.write_headers(),
                                json={"session_id": sid, "events": events})
    assert resp.status_code == 201, resp.json
    pages = client.simulate_get("/api/v1/stats/pages", headers=site.read_headers(),
                                params={"limit": 100})
    assert pages.status_code == 200, pages.json
    views = {r["path"]: r["page_views"] for r in pages.json["data"]}
    assert views == {"/#/active": 2, "/#/completed": 1, "/docs": 3}, views


def test_a_screenshot_of_a_page_serves_its_anchors_not_its_other_routes(client, site):
    first, second = _session(client, site), _session(client, site)
    assert _shot(client, site, first, f"{site.origin}/docs").status_code == 201
    wanted = lambda url: client.simulate_get(  # noqa: E731
        "/api/v1/track/screenshot/wanted", params={"session_id": second, "page_url": url},
        headers={"Origin": site.origin}).json["wanted"]
    assert not wanted(f"{site.origin}/docs#install")
    assert wanted(f"{site.origin}/docs#/v2")


def test_screenshot_elements_are_stored_bounded_and_validated(client, site, db_url):
    sid = _session(client, site)
    box = {"selector": "button#buy", "x": 300, "y": 420, "width": 80, "height": 40}
    ok = _shot(client, site, sid, f"{site.origin}/", elements=[box, {**box, "selector": "a.more", "x": 10}])
    assert ok.status_code == 201, ok.json
    with connect(db_url) as conn:
        stored = conn.execute("SELECT elements FROM screenshots WHERE screenshot_id = %s",
                              (ok.json["screenshot_id"],)).fetchone()["elements"]
    assert stored == [["button#buy", 300, 420, 80, 40], ["a.more", 10, 420, 80, 40]]
    assert heatmap.element_boxes(stored)["a.more"] == (10, 420, 80, 40)
    for bad in ([{**box, "x": 1.5}], [{**box, "width": -1}], [{**box, "selector": "x" * 1025}],
                [box] * 501, [{"selector": "a"}], "button"):
        resp = _shot(client, site, sid, f"{site.origin}/", elements=bad)
        assert resp.status_code == 400, (bad if isinstance(bad, str) else bad[:1], resp.json)


def test_a_click_is_placed_on_its_element_clamped_else_by_viewport_fraction():
    # A desktop screenshot at half size of a 1280 px wide page with a centred 400 px column.
    page = heatmap.Page(None, 640, 1000, 1280, {"button#buy": (440.0, 300.0, 100.0, 40.0)})
    # A phone (360 px) clicked 10, 5 px into the button, which is at x = 20 on its screen.
    on_button = heatmap.Click(30, 320, 360, selector="button#buy", offset=(10, 5))
    assert heatmap.placed(page, on_button) == (225.0, 152.5, "element")
    # By the viewport's fraction, the same click lands left of the column, off the button.
    x, y = heatmap.position(page, heatmap.Click(30, 320, 360))
    assert not (220 <= x < 270 and 150 <= y < 170)
    # An offset outside the box (the element was bigger on the visitor's screen) is clamped.
    far = heatmap.Click(0, 0, 360, selector="button#buy", offset=(500, -20))
    assert heatmap.placed(page, far) == (269.5, 150.0, "element")
    # Unknown element, no offset: today's placement.
    assert heatmap.placed(page, heatmap.Click(180, 100, 360, selector="a.gone", offset=(1, 1)))[2] == "viewport"
    assert heatmap.placed(page, heatmap.Click(180, 100, 360, selector="button#buy"))[2] == "viewport"


@pytest.mark.parametrize("stored", [None, "x", [1, 2, 3], [1], [None, 3], [True, 1], [1e300, 1], ["1", "2"],
                                    [float("nan"), 1]])
def test_malformed_click_offsets_are_ignored(stored):
    assert heatmap.click_offset(stored) is None


def test_malformed_element_lists_are_skipped():
    boxes = heatmap.element_boxes([["a", 1, 2, 3, 4], ["b", "1", 2, 3, 4], [1, 1, 2, 3, 4], ["c", 1, 2, 3],
                                   "d", ["e", True, 1, 1, 1]])
    assert boxes == {"a": (1.0, 2.0, 3.0, 4.0)}
    assert heatmap.element_boxes({"a": [1, 2, 3, 4]}) == {}
