"""A page the tracker has never seen (issue 11): a web component with a shadow root, a
same-origin and a cross-origin frame, an animated canvas, a video element and a list of
5,000 rows (tracker/demo/unusual.html). It records without an error in the page's console;
what the shadow root and the same-origin frame show is in the recording; what is typed into
the shadow root's field stays masked in every request the page sent; cross-origin frames
and canvas are not recorded (off by default)."""

from __future__ import annotations

import json

from test_tracker_recording import VIEWPORT, demo_site, events_of, session_id_of, wait_for_chunk

from harness import wait_for
from hindsight.db import connect

SECRET = "shadow-secret-7781"


def test_an_unusual_page_records_without_errors_and_privately(api, db_url, browser):
    with demo_site(api, db_url) as site:
        wire = site.wire
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda e: problems.append(f"pageerror: {e}"))
        page.on("console", lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None)
        failed: list[str] = []
        page.on("response", lambda r: failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        page.goto(site.url() + "/unusual.html")
        wait_for_chunk(page)
        page.click("#shadow-button")            # Playwright pierces open shadow roots
        page.click("#shadow-input")
        page.keyboard.type(SECRET)
        page.keyboard.press("Tab")
        page.frame_locator("#same-frame").locator("#frame-input").click()
        page.keyboard.type("in-frame")
        page.mouse.wheel(0, 4000)
        page.wait_for_timeout(500)
        session_id = session_id_of(page)
        page.goto("about:blank")                 # on the way out, the rest is sent
        wait_for(lambda: any(r["query"].get("session_id") == [session_id] for r in wire.segments()),
                 what="the recording's segments")
        # The typing's input event (in a batch: beacons on the way out are kept by the wire too).
        wait_for(lambda: stored(db_url, session_id, "input"), what="the shadow field's input event")
        context.close()

    assert problems == [], (problems, failed)
    recorded = [e for r in wire.segments() if r["query"]["session_id"] == [session_id] for e in events_of(r)]
    text = json.dumps(recorded)
    full = [e for e in recorded if e["type"] == 2]
    assert full, "a full snapshot"
    snapshot = json.dumps(full[0])
    assert "Inside the shadow root" in snapshot            # the shadow root is recorded
    assert '"isShadow": true' in snapshot or '"isShadowHost": true' in snapshot
    assert "Inside a same-origin frame" in text             # and the same-origin frame
    assert "Inside a cross-origin frame" not in text        # not the cross-origin one
    assert snapshot.count("Row ") >= 5000                   # the whole list
    # Every request the page sent, decompressed: the shadow field's value never appears.
    assert SECRET not in wire.everything()
    assert "in-frame" not in wire.everything()
    # Events inside the shadow root name the element they happened on, not its host.
    clicks = stored(db_url, session_id, "click")
    assert [c["target_id"] for c in clicks] == ["shadow-button", "shadow-input"], clicks
    typed = stored(db_url, session_id, "input")
    assert typed[0]["target_id"] == "shadow-input" and typed[0]["input_masked"] is True
    assert all(SECRET not in (e["input_value"] or "") for e in typed)


def stored(db_url, session_id: str, event_type: str) -> list[dict]:
    with connect(db_url) as conn:
        return conn.execute('SELECT target_id, input_value, input_masked FROM events WHERE session_id = %s '
                            'AND event_type = %s ORDER BY "timestamp"', (session_id, event_type)).fetchall()
