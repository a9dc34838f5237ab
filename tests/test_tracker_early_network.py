"""Requests a page makes before the async tracker.js starts are recorded (issue 11).

Real components: Debian's headless Chromium, `hindsight serve` and TimescaleDB. The demo's
to-do app (tracker/demo/todo.html) calls its API with fetch and XMLHttpRequest in an inline
script before the async tracker.js tag, as single-page apps do while they load. tracker.js
wraps fetch and XMLHttpRequest only once it runs, so it used to miss them; now the first lazy
chunk (the DOM recorder, or the screenshot chunk with data-record="off") reports them from
the browser's buffered resource timings: once each, without a method, with their status.
Requests made later still go through the wrappers, with their method, and are not reported twice.
"""

from __future__ import annotations

import psycopg
import pytest

from browser import chromium
from conftest import new_account
from harness import wait_for
from hindsight.demo import DemoSite

pytestmark = pytest.mark.slow


def network_events(db_url: str, account_id: str) -> list[dict]:
    with psycopg.connect(db_url, row_factory=psycopg.rows.dict_row) as conn:
        return [r["event_data"] for r in conn.execute(
            "SELECT e.event_data FROM events e JOIN sessions s USING (session_id)"
            " WHERE s.account_id = %s AND e.event_type = 'network' ORDER BY e.seq",
            (account_id,)).fetchall()]


@pytest.mark.parametrize("attrs", [{}, {"data-record": "off"}], ids=["recording", "record-off"])
def test_requests_made_before_the_tracker_loads_are_recorded_once(db_url, api, attrs):
    account = new_account(db_url, "localhost")
    demo = DemoSite(api.url, account["account_id"], attrs={"data-flush-interval": "500", **attrs}).start()
    try:
        with chromium() as browser:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            page.goto(demo.url() + "/todo.html")
            page.wait_for_function("window.hindsight && window.hindsight.version")
            page.evaluate("window.todoBoot")
            # Made after tracker.js started: through its fetch wrapper, with the method.
            page.evaluate("fetch('/api/slow?ms=10&from=later', {method: 'POST'}).then(r => r.text())")

            def recorded():
                rows = network_events(db_url, account["account_id"])
                return rows if len(rows) >= 3 else None

            rows = wait_for(recorded, what="three network events", page=page)
            page.wait_for_timeout(1500)  # anything reported twice would arrive by now
            page.evaluate("window.hindsight.flush()")
            rows = network_events(db_url, account["account_id"])
            context.close()
    finally:
        demo.stop()

    slow = demo.url() + "/api/slow"
    assert sorted((r["kind"], r["method"] or "", r["url"], r["status"]) for r in rows) == [
        ("fetch", "", slow, 200),   # before tracker.js: from the resource timings
        ("fetch", "POST", "/api/slow", 200),  # after: from the wrapper, as the page wrote it
        ("xhr", "", slow, 200),
    ]
    assert all(r["duration_ms"] >= 10 for r in rows), rows
