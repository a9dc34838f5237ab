"""tracker.js in a real headless Chromium against a real `hindsight serve` and TimescaleDB.

A scripted visit of the demo site (clicks, typing a password and an email, scrolling,
single-page-app navigation, errors, a slow fetch, closing the page) must end with the
right session, its events in order with the right types and coordinates, screenshots that
decode and show the page, and no clear-text secret in the database or in any request the
browser sent to the API.
"""

from __future__ import annotations

import io
import urllib.request

import psycopg
import pytest
from PIL import Image

from browser import RequestLog, http_json
from conftest import new_account
from harness import wait_for
from hindsight.demo import DemoSite

pytestmark = pytest.mark.slow

PASSWORD = "Hunter2-Pa55word!xq"
EMAIL = "ada.secret.visitor@example.org"
CARD = "4111 1111 1111 1111"
VIEWPORT = {"width": 1280, "height": 800}
BLUE = (30, 107, 214)   # the demo header (#1e6bd6)
GREY = (154, 160, 166)  # what masked fields look like in screenshots (#9aa0a6)


def close(a, b, tolerance: int = 40) -> bool:
    return all(abs(x - y) <= tolerance for x, y in zip(a, b, strict=False))


@pytest.fixture(scope="module")
def account(db_url):
    return new_account(db_url, "localhost")


@pytest.fixture(scope="module")
def demo(api, account):
    site = DemoSite(api.url, account["account_id"], attrs={"data-flush-interval": "1000"}).start()
    yield site
    site.stop()


def session_rows(db_url: str, account_id: str) -> list[dict]:
    with psycopg.connect(db_url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute("SELECT * FROM sessions WHERE account_id = %s", (account_id,)).fetchall()


def event_rows(db_url: str, session_id) -> list[dict]:
    with psycopg.connect(db_url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute('SELECT * FROM events WHERE session_id = %s ORDER BY "timestamp", seq',
                            (session_id,)).fetchall()


def database_contains(db_url: str, needle: str) -> list[str]:
    """Every table of the public schema, each row as text: where does `needle` occur?"""
    found = []
    with psycopg.connect(db_url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").fetchall()]
        for table in tables:
            hit = conn.execute(
                psycopg.sql.SQL("SELECT count(*) FROM {} t WHERE t::text ILIKE %s").format(
                    psycopg.sql.Identifier(table)), (f"%{needle}%",)).fetchone()[0]
            if hit:
                found.append(table)
    return found


def center(page, selector: str) -> tuple[int, int]:
    box = page.locator(selector).bounding_box()
    return round(box["x"] + box["width"] / 2), round(box["y"] + box["height"] / 2)


def test_scripted_visit_is_recorded_faithfully_and_privately(db_url, api, browser, account, demo):
    context = browser.new_context(viewport=VIEWPORT)
    log = RequestLog(context)
    page_errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda e: page_errors.append(str(e)))

    # 1. The sign-up page: its screenshot is taken once the page is idle.
    page.goto(demo.url() + "/")
    wait_for(lambda: log.posts("/api/v1/track/screenshot"), what="the first screenshot", page=page)
    page.locator("#buy").scroll_into_view_if_needed()
    buy = center(page, "#buy")
    page.mouse.click(*buy)
    page.click("#name")
    page.keyboard.type("Ada")
    page.click("#email")
    page.keyboard.type(EMAIL)
    page.keyboard.press("Tab")  # into the password field
    page.keyboard.type(PASSWORD)
    page.click("#card")
    page.keyboard.type(CARD)
    page.locator("#buy").scroll_into_view_if_needed()
    rage = center(page, "#buy")
    for _ in range(3):  # a rage click: three on the same spot within a second
        page.mouse.click(*rage, delay=20)
    page.mouse.wheel(0, 700)
    page.wait_for_timeout(600)
    scrolled_to = page.evaluate("Math.round(scrollY)")
    assert scrolled_to > 0

    # 2. The single-page app: a page load, then pushState, a hash change and back.
    page.click("header a[href='/app']")
    page.wait_for_url("**/app")
    wait_for(lambda: len(log.posts("/api/v1/track/screenshot")) >= 2, what="the app's screenshot",
             page=page)
    page.click("#nav-settings")
    page.wait_for_url("**/app/settings")
    page.click("#nav-details")
    page.wait_for_url("**/app/settings#details")
    page.go_back()
    page.wait_for_url("**/app/settings")
    page.go_back()
    page.wait_for_url("**/app")

    # 3. Errors: one thrown by the page a second after it loads, one unhandled rejection.
    page.goto(demo.url() + "/error.html")
    page.wait_for_timeout(1300)
    page.click("#reject")
    # "unhandledrejection" is dispatched in a later task: let it happen before navigating away.
    for _ in range(100):
        if any("nobody handled" in e for e in page_errors):
            break
        page.wait_for_timeout(50)

    # 4. A slow fetch and an XHR with secrets in their query strings and bodies.
    page.goto(demo.url() + "/slow.html")
    page.click("#slow")
    page.wait_for_function("document.getElementById('status').textContent.includes('1500')")
    page.click("#xhr")
    page.wait_for_function("document.getElementById('status').textContent.includes('XHR')")
    assert page.evaluate("hindsight.health().errors") == 0
    # Closing runs the unload steps (pagehide): the last batch leaves with the page.
    page.close(run_before_unload=True)

    # The right session: one, with what the browser said about itself.
    sessions = wait_for(lambda: session_rows(db_url, account["account_id"]), what="the session")
    assert len(sessions) == 1
    session = sessions[0]
    assert "Chrome" in session["user_agent"]
    assert (session["viewport_width"], session["viewport_height"]) == (1280, 800)
    assert session["page_url"] == demo.url() + "/"
    # The page's last batches travel separately (fetch, beacons): wait until the last one is in
    # and the session's counter has caught up with every stored event.
    def settled():
        rows = event_rows(db_url, session["session_id"])
        (again,) = session_rows(db_url, account["account_id"])
        return rows if rows and rows[-1]["event_type"] == "visibility" and again["event_count"] == len(rows) else None

    events = wait_for(settled, what="the events sent as the page closed")

    # In order: seq grows with time, each once; the visit's milestones in sequence.
    seqs = [e["seq"] for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    # Read the session again: its counters move with the batches that arrived since.
    (session,) = session_rows(db_url, account["account_id"])
    assert session["event_count"] == len(events)
    types = [e["event_type"] for e in events]
    assert types[0] == "session_start" and types[1] == "page_view"
    assert types.count("session_start") == 1  # page loads within the visit keep the session
    views = [(e["page_url"].removeprefix(demo.url()), e["event_data"]["nav"])
             for e in events if e["event_type"] == "page_view"]
    assert views == [("/", "load"), ("/app", "load"), ("/app/settings", "push"),
                     ("/app/settings#details", "hash"), ("/app/settings", "hash"), ("/app", "pop"),
                     ("/error.html", "load"), ("/slow.html", "load")]
    assert {"click", "input", "keypress", "scroll", "mouse_move", "error", "network",
            "visibility"} <= set(types)

    # Clicks: where they happened, on what, and the rage click marked.
    clicks = [e for e in events if e["event_type"] == "click" and e["target_id"] == "buy"]
    assert len(clicks) == 4
    for c, (x, y) in zip(clicks, [buy, rage, rage, rage], strict=True):
        assert abs(c["viewport_x"] - x) <= 1 and abs(c["viewport_y"] - y) <= 1
        assert c["target_selector"] == "button#buy" and c["target_tag"] == "button"
        assert c["mouse_button"] == 0 and c["event_data"]["text"] == "Buy now"
    assert "rage" not in clicks[0]["event_data"]
    assert clicks[-1]["event_data"]["rage"] >= 3

    # Inputs: the name as typed; email, password and card masked in the browser.
    inputs = {e["target_id"]: e for e in events if e["event_type"] == "input"}
    assert inputs["name"]["input_value"] == "Ada" and inputs["name"]["input_masked"] is False
    for field in ("email", "password", "card"):
        assert inputs[field]["input_masked"] is True and inputs[field]["input_value"] is None
    keys = [e["key_pressed"] for e in events if e["event_type"] == "keypress"]
    assert "Tab" in keys
    assert not [k for k in keys if len(k) == 1], "characters typed into fields are never recorded"

    scrolls = [e for e in events if e["event_type"] == "scroll" and e["page_url"] == demo.url() + "/"]
    assert scrolled_to in [e["scroll_y"] for e in scrolls], "where the scrolling stopped"

    errors = [e["event_data"] for e in events if e["event_type"] == "error"]
    kinds = {d["kind"] for d in errors}
    assert {"error", "unhandledrejection", "resource"} <= kinds
    thrown = next(d for d in errors if d["kind"] == "error")
    assert "undefined" in thrown["message"] and thrown["source"].endswith("/error.html")
    assert any("Demo rejection nobody handled" in (d.get("message") or "") for d in errors)

    network = [e["event_data"] for e in events if e["event_type"] == "network"]
    assert not [n for n in network if str(api.port) in n["url"]], "never its own calls"
    slow = next(n for n in network if n["kind"] == "fetch")
    assert slow["url"] == "/api/slow"  # as the page wrote it, without its query string
    assert (slow["method"], slow["status"]) == ("GET", 200) and slow["duration_ms"] >= 1400
    xhr = next(n for n in network if n["kind"] == "xhr")
    assert (xhr["method"], xhr["status"], xhr["url"]) == ("POST", 200, "/api/slow")

    # Screenshots: they decode, have the declared size, and show the page with masks.
    shots = http_json(f"{api.url}/api/v1/sessions/{session['session_id']}/screenshots",
                      {"Authorization": f"Bearer {account['api_key']}"})
    data = shots["data"] if isinstance(shots, dict) else shots
    assert len(data) >= 2
    pages = set()
    for shot in data:
        with urllib.request.urlopen(urllib.request.Request(
                f"{api.url}/api/v1/screenshots/{shot['screenshot_id']}",
                headers={"Authorization": f"Bearer {account['api_key']}"})) as resp:
            image = Image.open(io.BytesIO(resp.read())).convert("RGB")
        assert image.size == (shot["width"], shot["height"])
        assert image.width <= 1024  # scaled down
        scale = image.width / 1280
        assert close(image.getpixel((5, 5)), BLUE), "the demo's blue header is at the top"
        pages.add(shot["page_url"].removeprefix(demo.url()))
        if shot["page_url"] == demo.url() + "/":
            signup = image
    assert {"/", "/app"} <= pages
    # The masked fields are grey boxes in the picture (positions as laid out at 1280 px).
    layout = browser.new_page(viewport=VIEWPORT)
    layout.goto(demo.url() + "/?layout")
    for field in ("#email", "#password", "#card", "#account-box"):
        x, y = center(layout, field)
        assert close(signup.getpixel((int(x * scale), int(y * scale))), GREY, 12), field
    x, y = center(layout, "#submit")
    assert close(signup.getpixel((int(x * scale), int(y * scale))), BLUE), "the page itself is visible"
    layout.close()

    # Nothing private left the browser or reached the database.
    sent = "\n".join(f"{r['url']}\n{r['body']}" for r in log.requests if r["url"].startswith(api.url))
    assert "/api/v1/track" in sent
    for secret in (PASSWORD, EMAIL, CARD, "SECRET-COUPON", "SECRET-TOKEN"):
        assert secret not in sent, secret
        assert database_contains(db_url, secret) == [], secret
    # The page's own two errors reached the page as usual; tracker.js added none.
    assert len(page_errors) == 2
    assert any("items" in e for e in page_errors) and any("nobody handled" in e for e in page_errors)
    context.close()
