"""A click on a <label> is one click (issue 11, tracker.js recording leftovers).

Clicking a label makes the browser dispatch a copy of the click on the label's field (its
activation behaviour); tracker.js used to record both, which doubled click counts on forms,
drew two heatmap points per click and made three quick clicks on a label a rage click of six.
The copy carries the user's click's `timeStamp`: tracker.js records the user's click (on the
label) and skips the copy.

Real components: Debian's headless Chromium, `hindsight serve` and TimescaleDB; the demo's
sign-up page (tracker/demo/index.html: `<label for="name">`, `<label for="email">`, and a
checkbox inside its label).
"""

from __future__ import annotations

import psycopg
import pytest

from browser import chromium
from conftest import new_account
from harness import wait_for
from hindsight.demo import DemoSite

pytestmark = pytest.mark.slow


def clicks(db_url: str, account_id: str) -> list[dict]:
    with psycopg.connect(db_url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute(
            "SELECT e.target_tag, e.target_id, e.target_selector, e.event_data FROM events e"
            " JOIN sessions s USING (session_id) WHERE s.account_id = %s AND e.event_type = 'click'"
            ' ORDER BY e."timestamp", e.seq', (account_id,)).fetchall()


def test_a_click_on_a_label_is_recorded_once_and_real_clicks_on_its_field_still_count(db_url, api):
    account = new_account(db_url, "localhost")
    demo = DemoSite(api.url, account["account_id"],
                    attrs={"data-record": "off", "data-screenshots": "off"}).start()
    try:
        with chromium() as browser:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(demo.url() + "/")
            page.wait_for_function("window.hindsight && window.hindsight.version")
            # What the page itself sees: the browser does dispatch the copy on the field.
            page.evaluate("""() => { window.seen = [];
                document.addEventListener('click', e => seen.push(e.target.id || e.target.tagName), true); }""")
            page.click("label[for=name]")    # 1: the label's middle, its <code> (the field gets a copy)
            assert page.evaluate("document.activeElement.id") == "name"
            box = page.locator("#terms").bounding_box()
            page.locator("label:has(#terms)").click(position={"x": box["width"] + 30, "y": box["height"] / 2})  # 2: its text
            assert page.is_checked("#terms")
            page.click("#terms")                               # 3: the checkbox itself: no copy
            assert not page.is_checked("#terms")
            page.click("#name")                                # 4: the field itself
            for _ in range(3):                                 # 5-7: three quick clicks on a label
                page.click("label[for=email]", delay=10)
            assert page.evaluate("seen") == ["CODE", "name", "LABEL", "terms", "terms", "name",
                                             "LABEL", "email", "LABEL", "email", "LABEL", "email"]
            page.evaluate("hindsight.flush()")
            got = wait_for(lambda: (rows := clicks(db_url, account["account_id"])) and len(rows) >= 7 and rows,
                           page=page, what="the clicks")
            page.wait_for_timeout(500)   # anything recorded twice would have arrived with them
            got = clicks(db_url, account["account_id"])
            assert [(c["target_tag"], c["target_id"]) for c in got] == [
                ("code", None), ("label", None), ("input", "terms"), ("input", "name"),
                ("label", None), ("label", None), ("label", None)]
            assert got[0]["target_selector"] != got[4]["target_selector"]   # the name's label, the email's
            assert len({c["target_selector"] for c in got[4:]}) == 1
            # Three clicks on a label are at most a rage click of three (the copies made it six).
            assert max(c["event_data"].get("rage") or 0 for c in got) <= 3
            assert page.evaluate("hindsight.health().errors") == 0 and errors == []
            context.close()
    finally:
        demo.stop()
