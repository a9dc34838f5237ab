"""The dashboard in a real headless Chromium, against a real `hindsight serve` and database,
with a visit recorded by the real tracker.js on the demo site.

An analyst logs in, filters the sessions to the visit, opens its replay, plays it (the
picture and the playhead move), jumps to the error marker, follows a deep link, and looks
at the heatmap, which must be hot where the visitor clicked. Every page is saved as a PNG
in test-artifacts/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from dashboard_support import PASSWORD, make_user
from PIL import Image

from browser import ApiServer, chromium, ensure_tracker_built
from conftest import new_account
from harness import http_call, wait_for
from hindsight.demo import DemoSite

pytestmark = pytest.mark.slow

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
VIEWPORT = {"width": 1280, "height": 800}


def snap(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"dashboard-{name}.png"), full_page=True)


def rows(db_url: str, query: str, *params) -> list[dict]:
    with psycopg.connect(db_url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute(query, params).fetchall()


@pytest.fixture(scope="module")
def recorded(db_url):
    """A visit of the demo site, recorded by tracker.js: a click on #buy, a rage click, an error.

    DOM recording is off here (`data-record="off"`): these tests play the screenshot replay,
    which is what a site without DOM recording gets (one screenshot per page view);
    tests/test_replay_dom_browser.py plays DOM recordings."""
    ensure_tracker_built()
    api = ApiServer(db_url).start()
    account = new_account(db_url, "localhost")
    demo = DemoSite(api.url, account["account_id"],
                    attrs={"data-flush-interval": "500", "data-record": "off"}).start()
    try:
        with chromium() as browser:
            context = browser.new_context(viewport=VIEWPORT)
            page = context.new_page()
            shots = []
            # Screenshots the API has stored (not the `wanted` question, not an upload in flight:
            # the page closes soon after the second one).
            page.on("response", lambda r: shots.append(r.url) if (
                r.request.method == "POST" and r.url.split("?")[0].endswith("/track/screenshot")
                and r.status == 201) else None)
            page.goto(demo.url() + "/")
            wait_for(lambda: shots, timeout=60, what="the first screenshot", page=page)
            page.locator("#buy").scroll_into_view_if_needed()
            page.wait_for_timeout(400)  # the scroll is recorded once it settles
            box = page.locator("#buy").bounding_box()
            scroll_y = page.evaluate("Math.round(scrollY)")
            buy = (round(box["x"] + box["width"] / 2), round(box["y"] + box["height"] / 2))
            page.mouse.move(200, 200)
            page.mouse.move(buy[0] - 50, buy[1] - 30, steps=8)
            page.mouse.click(*buy)
            page.wait_for_timeout(1200)
            for _ in range(3):
                page.mouse.click(*buy, delay=20)
            page.wait_for_timeout(800)
            page.goto(demo.url() + "/error.html")
            wait_for(lambda: len(shots) >= 2, timeout=60, what="the error page's screenshot", page=page)
            page.wait_for_timeout(600)
            page.close(run_before_unload=True)
            context.close()
        session = wait_for(lambda: rows(db_url, "SELECT * FROM sessions WHERE account_id = %s",
                                        account["account_id"]), what="the session")[0]
        wait_for(lambda: session["error_count"] or rows(
            db_url, "SELECT 1 FROM sessions WHERE session_id = %s AND error_count > 0 AND rage_click_count > 0",
            session["session_id"]), what="the error and the rage click")
        wait_for(lambda: len(rows(db_url, "SELECT 1 FROM screenshots WHERE session_id = %s",
                                  session["session_id"])) >= 2, what="two screenshots stored")
        yield {"api": api, "account": account, "session_id": str(session["session_id"]), "buy": buy,
               "scroll_y": scroll_y, "demo": demo}
    finally:
        demo.stop()
        api.stop()


@pytest.fixture(scope="module")
def dashboard(recorded, db_url):
    """A logged-in analyst's browser page."""
    email = make_user(db_url, recorded["account"]["account_id"])
    with chromium() as browser:
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        # Every failed request but the browser's own favicon.ico guess.
        page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
                if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
        page.goto(recorded["api"].url + "/dashboard/sessions")
        assert "/dashboard/login" in page.url               # logged out: sent to the login page
        snap(page, "login")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/dashboard/sessions")
        yield page, errors
        context.close()


def test_filter_replay_play_and_jump_to_the_error(recorded, dashboard):
    page, errors = dashboard
    base = recorded["api"].url
    assert page.locator("h1").inner_text() == "Sessions"
    snap(page, "sessions")
    # Filter to sessions with errors and rage clicks: the filters land in the URL.
    page.check("input[name=has_errors]")
    page.check("input[name=has_rage_clicks]")
    page.click("#filters button[type=submit]")
    page.wait_for_url("**has_errors=true**")
    assert "has_rage_clicks=true" in page.url
    links = page.locator("a.replay-link")
    assert links.count() == 1
    row = page.locator("table.sessions tbody tr").first
    assert "error" in row.inner_text() and "rage" in row.inner_text()
    snap(page, "sessions-filtered")
    links.first.click()
    page.wait_for_url(f"**/dashboard/sessions/{recorded['session_id']}")
    page.wait_for_selector("#replay[data-ready='1']")
    stage = page.locator("#replay")
    assert stage.get_attribute("data-screenshot") is not None       # the first page's picture
    first_shot = stage.get_attribute("data-screenshot")
    assert page.locator(".marker.error").count() >= 1
    assert page.locator(".marker.rage").count() >= 1
    assert page.locator(".marker.page_view").count() == 2
    facts = page.locator("aside.facts").inner_text()
    assert "Chrome" in facts and "1280 × 800" in facts
    snap(page, "replay-start")

    # Play at 8x: time, playhead and the highlighted event move.
    head_before = page.eval_on_selector("#playhead", "e => e.style.left")
    page.select_option("#speed", "8")
    page.click("#play")
    # (Polled from here: the dashboard's CSP forbids the eval that wait_for_function needs.)
    wait_for(lambda: int(stage.get_attribute("data-time")) > 1500, what="playback", page=page)
    assert page.eval_on_selector("#playhead", "e => e.style.left") != head_before
    assert page.locator("#event-list li.current").count() == 1
    wait_for(lambda: stage.get_attribute("data-screenshot") != first_shot, what="the next page's picture",
             page=page)
    # Pause. At 8x playback may reach the end (and stop) at any moment, so go back to the start
    # and play at 1x: the session lasts seconds, so the pause lands mid-session.
    page.select_option("#speed", "1")
    page.eval_on_selector("#speed", "e => e.blur()")      # keys typed into a select stay there
    page.keyboard.press("Home")
    if stage.get_attribute("data-playing") == "0":
        page.click("#play")
    assert stage.get_attribute("data-playing") == "1"
    page.click("#play")                                   # pause
    assert stage.get_attribute("data-playing") == "0"
    paused_at = stage.get_attribute("data-time")
    # (Mid-session unless the machine is so loaded that a whole second passed at 1x: the
    # clock's stop is what is checked, from wherever it stopped.)
    page.wait_for_timeout(300)
    assert stage.get_attribute("data-time") == paused_at  # the clock stopped
    snap(page, "replay-playing")

    # Jump to the error marker: the clock, the playhead, the picture and the list follow.
    page.click("#play") if stage.get_attribute("data-playing") == "1" else None
    page.keyboard.press("Home")
    assert stage.get_attribute("data-time") == "0"
    assert stage.get_attribute("data-screenshot") == first_shot
    marker = page.locator(".marker.error").first
    target = int(float(marker.get_attribute("data-t")))
    marker.click()
    assert abs(int(stage.get_attribute("data-time")) - target) <= 1
    assert "error.html" in page.locator("#page-url").inner_text()
    assert stage.get_attribute("data-screenshot") != first_shot      # the error page's screenshot
    assert "error" in page.locator("#event-list li.current").get_attribute("class")
    assert "#t=" in page.url
    img = page.locator("#shot")
    assert img.evaluate("i => i.complete && i.naturalWidth > 0")
    snap(page, "replay-error")

    # A deep link opens the player at that moment.
    page.goto(f"{base}/dashboard/sessions/{recorded['session_id']}#t=1.5")
    page.wait_for_selector("#replay[data-ready='1']")
    assert stage.get_attribute("data-time") == "1500"
    assert errors == [], errors


def test_heatmap_is_hot_where_the_visitor_clicked(recorded, dashboard, db_url):
    page, errors = dashboard
    base = recorded["api"].url
    page.goto(f"{base}/dashboard/heatmaps?page=/&range=24h")
    image = page.locator("img#heatmap")
    image.wait_for()
    assert image.evaluate("i => i.complete && i.naturalWidth > 0")
    assert "4 clicks" in page.locator("main").inner_text()
    snap(page, "heatmap")
    src = image.get_attribute("src")
    picture = Image.open(io.BytesIO(page.request.get(base + src).body())).convert("RGB")
    shot = rows(db_url, "SELECT s.width FROM screenshots s WHERE s.session_id = %s ORDER BY s.timestamp LIMIT 1",
                recorded["session_id"])[0]
    scale = picture.width / VIEWPORT["width"]    # the screenshot is the page at this scale
    assert shot["width"] == picture.width
    # On the page (the screenshot is the whole page): the click in the window + the scroll.
    assert recorded["scroll_y"] > 0
    x, y = round(recorded["buy"][0] * scale), round((recorded["buy"][1] + recorded["scroll_y"]) * scale)
    r, g, b = picture.getpixel((x, y))
    assert r > 180 and r > g + 60 and r > b + 60, (x, y, (r, g, b))     # hot: red
    far = picture.getpixel((picture.width - 20, min(picture.height - 20, y + round(300 * scale))))
    assert not (far[0] > 180 and far[0] > far[1] + 60), far              # no heat where nobody clicked
    assert errors == [], errors


def test_a_long_session_plays_while_the_rest_of_its_events_load(recorded, dashboard, db_url, client):
    """1,200 events: the player starts with the first 500 and pages in the rest."""
    from dashboard_support import record_session

    from conftest import token_flow

    page, errors = dashboard
    account = recorded["account"]
    origin = "http://localhost"
    token = token_flow(client, account, origin)

    class Site:
        def write_headers(self):
            return {"Authorization": f"Bearer {token}", "Origin": origin}

    Site.origin = origin
    events = [{"event_type": "page_view", "at": 0}] + [
        {"event_type": "mouse_move", "at": 0.5 + i * 0.25, "viewport_x": 100 + i % 500, "viewport_y": 100 + i % 300}
        for i in range(1199)]
    session_id = record_session(client, Site(), events, page_url=f"{origin}/long")
    page.goto(f"{recorded['api'].url}/dashboard/sessions/{session_id}")
    page.wait_for_selector("#replay[data-ready='1']")
    stage = page.locator("#replay")
    wait_for(lambda: stage.get_attribute("data-complete") == "1", what="every event", page=page)
    assert int(stage.get_attribute("data-loaded")) == 1200
    assert page.locator("#event-list li").count() == 1200
    page.keyboard.press("End")
    assert page.locator("#event-list li.current").get_attribute("data-index") == "1199"
    assert errors == [], errors


def test_events_and_paths_pages(recorded, dashboard):
    """The custom events page (names, a property's values, a rate between two events) and
    the paths view, in Chromium under the dashboard's CSP, with events a server sent."""
    page, errors = dashboard
    base, account = recorded["api"].url, recorded["account"]
    when = datetime.now(UTC) - timedelta(minutes=5)
    events = [{"event_type": kind, "occurred_at": (when + timedelta(seconds=i)).isoformat(),
               "session_id": f"server-{i % 3}", "visitor_id": f"v{i % 3}", "page_url": "http://localhost/post/1",
               "properties": {"mapping_id": 456 if i % 2 else 789}}
              for i, kind in enumerate(["widget_impression"] * 6 + ["widget_click"] * 2)]
    status, _, answer = http_call(recorded["api"].port, "POST", "/api/v1/events", {"events": events},
                                  headers={"Authorization": f"Bearer {account['api_key']}"})
    assert status == 200 and answer["accepted"] == 8, answer
    page.goto(f"{base}/dashboard/events?range=24h")
    names = page.locator("#event-names").inner_text()
    assert "widget_impression" in names and "widget_click" in names
    page.click("#event-names a:has-text('widget_impression')")
    page.fill("#event-detail input[name=property]", "mapping_id")
    page.click("#event-detail button[type=submit]")
    page.wait_for_url("**property=mapping_id**")
    values = page.locator("#property-values").inner_text()
    assert "456" in values and "789" in values
    page.fill("#rate-form input[name=numerator]", "widget_click")
    page.fill("#rate-form input[name=denominator]", "widget_impression")
    page.fill("#rate-form input[name=rate_property]", "mapping_id")
    page.click("#rate-form button[type=submit]")
    page.wait_for_url("**numerator=widget_click**")
    assert "456" in page.locator("#rates").inner_text()
    snap(page, "events")
    page.goto(f"{base}/dashboard/paths?range=24h")
    page.fill("input[name=page]", "/")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**page=%2F**")
    assert page.locator("h1").inner_text() == "Paths"
    snap(page, "paths")
    assert errors == [], errors


def test_overview_and_account_pages(recorded, dashboard):
    page, errors = dashboard
    base = recorded["api"].url
    page.goto(f"{base}/dashboard/overview?range=24h")
    text = page.locator("main").inner_text()
    assert "Hot routes" in text and "/error.html" in text
    assert page.locator(".chart svg rect").count() > 0
    # Visitors: the recorded sessions came from one browser (the visitor id is computed by the server).
    assert int(page.locator("#kpi-visitors").inner_text().replace(",", "")) >= 1
    assert "Time on page" in text and "Bounce" in text and "Exit" in text
    snap(page, "overview")
    page.goto(f"{base}/dashboard/account")
    assert "localhost" in page.locator("main").inner_text()
    page.click("text=Create a key")
    assert page.locator("#new-key").inner_text().startswith("hsk_")
    snap(page, "account")
    page.click("header button:has-text('Log out')")
    page.wait_for_url("**/dashboard/login")
    page.goto(f"{base}/dashboard/sessions")
    assert "/dashboard/login" in page.url
    assert errors == [], errors

