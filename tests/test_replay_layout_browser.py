"""The replay page's layout in a real headless Chromium (issue 11, "What a real third-party app
showed"): a phone session's stage fits the window, so the timeline and the controls stay in
view, and the event list lets the analyst read every value in full (as text, never as HTML).

Sessions are made through the API (a 390 x 844 phone viewport), one with a DOM recording
and one without; a logged-in analyst opens both in a 1280 x 800 window.
"""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime

import falcon.testing
import pytest
from dashboard_support import PASSWORD, make_user
from test_replay_dom_browser import ensure_dashboard_built

from browser import chromium
from conftest import new_account, token_flow
from harness import ServeProcess, wait_for

pytestmark = pytest.mark.slow

WINDOW = {"width": 1280, "height": 800}
PHONE = (390, 844)
START_MS = 1_780_000_000_000
# A value far longer than a row, with markup that must stay text.
LONG_VALUE = "<b>not bold</b> " + " ".join(f"word{i}" for i in range(60)) + " THE-END"


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def phone_recording() -> list[dict]:
    """The smallest rrweb recording of a page: its meta event and a full snapshot."""
    text = {"type": 3, "textContent": "A phone page", "id": 6}
    body = {"type": 2, "tagName": "body", "attributes": {}, "childNodes": [text], "id": 5}
    head = {"type": 2, "tagName": "head", "attributes": {}, "childNodes": [], "id": 4}
    html = {"type": 2, "tagName": "html", "attributes": {}, "childNodes": [head, body], "id": 3}
    doctype = {"type": 1, "name": "html", "publicId": "", "systemId": "", "id": 2}
    return [
        {"type": 4, "timestamp": START_MS, "data": {"href": "http://127.0.0.1/phone", "width": PHONE[0], "height": PHONE[1]}},
        {"type": 2, "timestamp": START_MS + 1, "data": {"node": {"type": 0, "childNodes": [doctype, html], "id": 1},
                                                        "initialOffset": {"left": 0, "top": 0}}},
    ]


@pytest.fixture(scope="module")
def sessions(db_url, app):
    ensure_dashboard_built()
    client = falcon.testing.TestClient(app)
    account = new_account(db_url)
    token = token_flow(client, account, f"https://{account['domain']}")
    auth = {"Authorization": f"Bearer {token}"}
    ids = {}
    for name in ("dom", "screenshot"):
        resp = client.simulate_post("/api/v1/sessions", headers=auth, json={
            "started_at": iso(START_MS), "page_url": "http://127.0.0.1/phone",
            "viewport_width": PHONE[0], "viewport_height": PHONE[1],
            "user_agent": "Mozilla/5.0 (iPhone) Mobile Safari/604.1"})
        assert resp.status_code == 201, resp.json
        sid = ids[name] = resp.json["session_id"]
        batch = [{"seq": 0, "timestamp": iso(START_MS + 500), "event_type": "click",
                  "viewport_x": 100, "viewport_y": 700, "target_selector": "button#go"},
                 {"seq": 1, "timestamp": iso(START_MS + 1500), "event_type": "input",
                  "target_selector": "input#title", "input_value": LONG_VALUE, "input_masked": False},
                 {"seq": 2, "timestamp": iso(START_MS + 4000), "event_type": "click",
                  "viewport_x": 200, "viewport_y": 800, "target_selector": "a#end"}]
        resp = client.simulate_post("/api/v1/track", json={"session_id": sid, "events": batch}, headers=auth)
        assert resp.status_code == 201, resp.json
    body = gzip.compress(json.dumps(phone_recording()).encode())
    resp = client.simulate_post("/api/v1/track/recording", body=body,
                                params={"session_id": ids["dom"], "segment": 0, "encoding": "gzip"},
                                headers={**auth, "Content-Type": "application/octet-stream"})
    assert resp.status_code == 201, resp.json
    api = ServeProcess(db_url).start()
    try:
        yield {"api": api, "account": account, **ids}
    finally:
        api.stop()


@pytest.fixture(scope="module")
def page(sessions, db_url):
    email = make_user(db_url, sessions["account"]["account_id"])
    with chromium() as browser:
        context = browser.new_context(viewport=WINDOW)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(sessions["api"].url + "/dashboard/login")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/dashboard/sessions")
        yield page
        assert errors == []
        context.close()


def open_replay(page, base: str, session_id: str) -> None:
    page.goto(f"{base}/dashboard/sessions/{session_id}")
    wait_for(lambda: page.locator("#replay").get_attribute("data-complete"), what="the events", page=page)


@pytest.mark.parametrize("mode", ["dom", "screenshot"])
def test_a_phone_session_fits_the_window_with_its_controls(sessions, page, mode):
    open_replay(page, sessions["api"].url, sessions[mode])
    if mode == "dom":
        page.wait_for_selector("#replay[data-mode='dom']")
    page.wait_for_timeout(300)
    assert page.evaluate("scrollY") == 0
    for selector in ("#stage", "#timeline", "#play", "#speed"):
        box = page.locator(selector).bounding_box()
        assert box and box["y"] >= 0 and box["y"] + box["height"] <= WINDOW["height"], (selector, box)
    stage = page.locator("#stage").bounding_box()
    assert stage["height"] >= 240
    # The stage keeps the phone's proportions' height: never taller than the phone scaled to the width.
    assert stage["height"] <= stage["width"] * PHONE[1] / PHONE[0]


def test_the_event_list_shows_a_cut_off_value_in_full_as_text(sessions, page):
    open_replay(page, sessions["api"].url, sessions["screenshot"])
    row = page.locator("#event-list li.input")
    what = row.locator(".what")
    text = "input#title = " + LONG_VALUE
    assert what.get_attribute("title") == text            # a tooltip with the whole value
    assert what.evaluate("e => e.scrollWidth > e.clientWidth")   # cut off in the list
    row.click()
    assert "open" in (row.get_attribute("class") or "")
    assert what.evaluate("e => e.scrollWidth <= e.clientWidth + 1")  # now wrapped, in full
    box = what.bounding_box()
    assert box["height"] > 40                               # several lines
    assert what.text_content() == text and what.locator("b").count() == 0   # text, never markup
    row.click()                                             # and closed again
    assert "open" not in (row.get_attribute("class") or "")
