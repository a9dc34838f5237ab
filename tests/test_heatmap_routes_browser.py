"""Heatmaps of a hash-routed single-page app (issue 11), in Chromium on the demo's to-do app
(tracker/demo/todo.html), through the real API, TimescaleDB and the dashboard's heatmap page:

- its routes `/todo.html#/active` and `/todo.html#/completed` are pages of their own, each with
  its own clicks and its own screenshot as background, in the page list (the pages_* roll-ups)
  too; an anchor (`#todo-note`) stays on its page;
- a phone's click on a button of the centred column is drawn on that button in a desktop
  screenshot (placed by the element the click hit and its offset inside it), where placing it
  by the fraction of the viewport's width misses the button.
"""

from __future__ import annotations

from io import BytesIO

from dashboard_support import logged_in
from PIL import Image
from test_tracker_recording import VIEWPORT, demo_site, wait_for_chunk

from harness import wait_for
from hindsight.dashboard import heatmap
from hindsight.db import connect

PHONE = {"width": 360, "height": 740}
# capture.js's pageKey: the path and hash route (an anchor is its page), and the width.
PAGE_KEY = r"location.pathname + ((/^#!?\/[^?#]+/.exec(location.hash) || [''])[0]) + ' ' + innerWidth"
DECIDED = """key => Object.keys(sessionStorage).filter(k => k.endsWith(':p'))
    .some(k => (JSON.parse(sessionStorage[k]).k || []).includes(key))"""


def settled(page) -> None:
    """The screenshot chunk has decided about this page (and sent its picture if wanted)."""
    key = page.evaluate(PAGE_KEY)
    wait_for(lambda: page.evaluate(DECIDED, key), page=page, what=f"the screenshot decision for {key}",
             timeout=40)


def rows(db_url, query: str, *args) -> list[dict]:
    with connect(db_url) as conn:
        return conn.execute(query, args).fetchall()


def screenshots(db_url, account_id) -> list[dict]:
    return rows(db_url, "SELECT screenshot_id, page_url, elements FROM screenshots WHERE account_id = %s "
                        "ORDER BY screenshot_id", account_id)


def clicks(db_url, account_id) -> list[dict]:
    return rows(db_url, "SELECT page_url, target_selector, event_data FROM events "
                        "WHERE account_id = %s AND event_type = 'click'", account_id)


def picture(analyst, url: str):
    """GET a dashboard URL as given (its query string already encoded), with the login."""
    path, _, query = url.partition("?")
    return analyst.client.simulate_get(path, query_string=query or None, cookies=analyst.cookies)


def twin(analyst, page: str) -> dict:
    resp = analyst.get("/dashboard/heatmaps", page=page, range="24h", format="json")
    assert resp.status_code == 200, resp.text
    return resp.json


def test_hash_routes_are_pages_and_anchors_are_not(api, db_url, browser, client):
    with demo_site(api, db_url) as site:
        account = site.account["account_id"]
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.goto(site.url() + "/todo.html")
        wait_for_chunk(page)
        settled(page)
        page.click("#new-todo")                                  # 1 click on /todo.html
        page.keyboard.type("buy milk")
        page.keyboard.press("Enter")
        page.click("#filters a[href='#/active']")                # 2 on /todo.html
        page.wait_for_function("location.hash == '#/active'")
        settled(page)
        page.click("#todo-list input[type=checkbox]")            # 1 on #/active
        page.click("#filters a[href='#/completed']")             # 2 on #/active
        page.wait_for_function("location.hash == '#/completed'")
        settled(page)
        page.click("#clear-completed")                           # 1 on #/completed
        page.evaluate("location.hash = '#todo-note'")            # an anchor: still /todo.html
        page.click("main h1")                                    # 3 on /todo.html
        wait_for(lambda: len(clicks(db_url, account)) >= 6, page=page, what="the six clicks", timeout=30)
        page.goto("about:blank")
        context.close()
        wait_for(lambda: {s["page_url"].split("/", 3)[-1] for s in screenshots(db_url, account)}
                 >= {"todo.html#/active", "todo.html#/completed"}, what="both routes' screenshots",
                 timeout=30)

    analyst = logged_in(client, db_url, account)
    active, completed = twin(analyst, "/todo.html#/active"), twin(analyst, "/todo.html#/completed")
    whole = twin(analyst, "/todo.html")
    assert active["page"] == "/todo.html#/active" and completed["page"] == "/todo.html#/completed"
    # Each route: its own clicks, over its own screenshot.
    assert active["heatmap"]["clicks"] == 2, active["heatmap"]
    assert completed["heatmap"]["clicks"] == 1, completed["heatmap"]
    assert whole["heatmap"]["clicks"] == 3, whole["heatmap"]   # the anchor's click included
    assert active["heatmap"]["screenshot"]["page_url"].endswith("/todo.html#/active")
    assert completed["heatmap"]["screenshot"]["page_url"].endswith("/todo.html#/completed")
    assert "#/" not in whole["heatmap"]["screenshot"]["page_url"]
    ids = {h["heatmap"]["screenshot"]["screenshot_id"] for h in (active, completed, whole)}
    assert len(ids) == 3
    assert [p["selector"] for p in completed["heatmap"]["points"]] == ["button#clear-completed"]
    assert {p["selector"] for p in active["heatmap"]["points"]} == {
        "ul#todo-list > li > input", "nav#filters > a:nth-of-type(3)"}
    # Each click found its element on its route's screenshot.
    assert active["heatmap"]["placed_on_elements"] == 2 and completed["heatmap"]["placed_on_elements"] == 1
    # A full URL names the same page; an anchor is its page.
    assert twin(analyst, site.url() + "/todo.html#/active?from=x")["page"] == "/todo.html#/active"
    assert twin(analyst, "/todo.html#todo-note")["page"] == "/todo.html"
    # The page list (the pages_* roll-ups) knows the routes, and not the anchor.
    listed = {p["path"] for p in whole["top_pages"]}
    assert {"/todo.html", "/todo.html#/active", "/todo.html#/completed"} <= listed, listed
    assert not any("todo-note" in path for path in listed), listed
    # And the pictures differ: each heatmap is drawn over its own route.
    images = [picture(analyst, h["heatmap"]["image_url"]) for h in (active, completed)]
    assert all(i.status_code == 200 and i.headers["content-type"] == "image/png" for i in images)
    assert images[0].content != images[1].content


def test_a_phone_click_in_the_centred_column_is_drawn_on_its_button(api, db_url, browser, client):
    with demo_site(api, db_url) as site:
        account = site.account["account_id"]
        desktop = browser.new_context(viewport=VIEWPORT)
        page = desktop.new_page()
        page.goto(site.url() + "/todo.html")
        wait_for_chunk(page)
        settled(page)
        on_desktop = page.evaluate("""() => { const r = document.getElementById('clear-completed')
            .getBoundingClientRect(); return [r.left + scrollX, r.top + scrollY, r.width, r.height]; }""")
        page.goto("about:blank")
        desktop.close()
        wait_for(lambda: screenshots(db_url, account), what="the desktop screenshot", timeout=30)

        phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
        # No screenshot from the phone: the heatmap is drawn over the desktop's.
        phone.route("**/tracker/capture.*", lambda route: route.abort())
        page = phone.new_page()
        page.goto(site.url() + "/todo.html")
        wait_for_chunk(page)
        page.click("#clear-completed", position={"x": 6, "y": 8})   # near its left edge
        wait_for(lambda: clicks(db_url, account), page=page, what="the phone's click", timeout=30)
        page.goto("about:blank")
        phone.close()

    [shot] = screenshots(db_url, account)
    boxes = heatmap.element_boxes(shot["elements"])
    box = boxes["button#clear-completed"]
    # The screenshot's box of the button is where the desktop page had it.
    assert all(abs(a - b) <= 1 for a, b in zip(box, on_desktop, strict=True)), (box, on_desktop)
    [click] = clicks(db_url, account)
    assert click["target_selector"] == "button#clear-completed"
    assert [round(v) for v in click["event_data"]["o"]] == [6, 8]

    analyst = logged_in(client, db_url, account)
    h = twin(analyst, "/todo.html")["heatmap"]
    assert h["clicks"] == 1 and h["placed_on_elements"] == 1, h
    [point] = h["points"]
    assert point["placed_by"] == "element"
    scale = h["screenshot"]["width"] / VIEWPORT["width"]
    left, top, width, height = (v * scale for v in box)
    inside = lambda x, y: left <= x < left + width and top <= y < top + height  # noqa: E731
    assert inside(point["x"], point["y"]), (point, box)
    # By the fraction of the phone's width (today's placement without the element), it misses.
    page_ = heatmap.Page(None, h["screenshot"]["width"], h["screenshot"]["height"], VIEWPORT["width"])
    rows_ = rows(db_url, "SELECT viewport_x + scroll_x AS x, viewport_y + scroll_y AS y FROM events "
                         "WHERE account_id = %s AND event_type = 'click'", account)
    old = heatmap.position(page_, heatmap.Click(rows_[0]["x"], rows_[0]["y"], PHONE["width"]))
    assert not inside(*old), (old, box)
    # The picture is hot there.
    image = picture(analyst, h["image_url"])
    r, g, b = Image.open(BytesIO(image.content)).convert("RGB").getpixel((round(point["x"]), round(point["y"])))
    assert r > 200 and b < 120, (r, g, b)
