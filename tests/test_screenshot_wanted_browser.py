"""Screenshots, cheaper (issue 11): with DOM recording on, a visitor's browser takes a
screenshot only when the account has no fresh one of that page and device class. Proven in
Chromium on the demo site: the first visit takes its pages' pictures, a second visitor's
identical visit takes none, and a phone takes its own."""

from __future__ import annotations

import json

from test_tracker_recording import VIEWPORT, demo_site, wait_for_chunk

from harness import wait_for

PAGES = ("/", "/checkout.html#/shipping", "/todo.html")


DECIDED = """key => Object.keys(sessionStorage).filter(k => k.endsWith(':p'))
    .some(k => (JSON.parse(sessionStorage[k]).k || []).includes(key))"""


def visit(browser, site, viewport) -> int:
    """One visitor's visit of PAGES; the screenshots its browser uploaded."""
    wire = site.wire
    before = shots(wire)
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    for path in PAGES:
        page.goto(site.url() + path)
        wait_for_chunk(page)
        # The screenshot chunk notes each page (path, fragment, width) once it has decided,
        # after asking the server (twice on a visit's first page: the session is created by
        # the first batch) and after taking the picture if one was wanted.
        key = page.evaluate("location.pathname + location.hash + ' ' + innerWidth")
        wait_for(lambda k=key: page.evaluate(DECIDED, k), page=page, what=f"the decision for {path}",
                 timeout=30)
    page.goto("about:blank")  # the outbox is sent on the way out
    context.close()
    return len(shots(wire) - before)


def shots(wire) -> set[tuple[str, str]]:
    """Distinct screenshots sent (an upload a navigation cut short is sent again)."""
    return {(json.loads(r["body"])["session_id"], json.loads(r["body"])["timestamp"])
            for r in wire.posts("/api/v1/track/screenshot")}


def test_a_second_identical_visit_takes_no_screenshot(api, db_url, browser):
    with demo_site(api, db_url) as site:
        first = visit(browser, site, VIEWPORT)
        wait_for(lambda: stored(db_url, site) >= len(PAGES), what="the first visit's screenshots")
        second = visit(browser, site, VIEWPORT)
        phone = visit(browser, site, {"width": 390, "height": 800})
    assert first >= len(PAGES), first   # (an app that moves to its first route: one more page)
    assert second == 0, second
    assert phone >= 1, phone


def stored(db_url, site) -> int:
    from hindsight.db import connect
    with connect(db_url) as conn:
        return conn.execute("SELECT count(*) AS n FROM screenshots WHERE account_id = %s",
                            (site.account["account_id"],)).fetchone()["n"]
