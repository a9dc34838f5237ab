"""tracker.js's visitor modes in Debian's headless Chromium against `hindsight serve`:

* default: nothing is kept in the browser; two browser contexts (two "browsers" with the
  same address and user agent) are one visitor for the day, by the server's daily hash;
* data-visitor="persistent": a random id in localStorage, sent when a session is created;
  the same browser is one visitor across sessions (and days), another browser is another
  visitor, and the stored visitor id is a hash: the browser's id is stored nowhere.
"""

from __future__ import annotations

import uuid

import psycopg
import pytest

from conftest import new_account
from harness import wait_for
from hindsight.demo import DemoSite

pytestmark = pytest.mark.slow


def sessions(db_url: str, account_id: str) -> list[dict]:
    with psycopg.connect(db_url, row_factory=psycopg.rows.dict_row) as conn:
        return conn.execute("SELECT session_id, visitor_id FROM sessions WHERE account_id = %s ORDER BY started_at",
                            (account_id,)).fetchall()


def visit(browser, demo, page_state: dict | None = None) -> tuple[dict, str | None]:
    """One page load in a fresh browser context (or one carrying `page_state`'s storage);
    returns the context's storage state and the visitor key's value in localStorage."""
    context = browser.new_context(storage_state=page_state)
    page = context.new_page()
    page.goto(demo.url() + "/index.html")
    page.wait_for_function("window.hindsight && window.hindsight.version")
    page.evaluate("window.hindsight.flush()")
    stored = page.evaluate("Object.keys(localStorage).filter(k => k.endsWith(':v'))"
                           ".map(k => JSON.parse(localStorage[k]))[0] || null")
    state = context.storage_state()
    context.close()
    return state, stored


def test_default_and_persistent_visitors(db_url, api, browser):
    # Default: nothing stored; the server's daily hash makes two contexts one visitor.
    account = new_account(db_url, "localhost")
    demo = DemoSite(api.url, account["account_id"], attrs={"data-flush-interval": "500"}).start()
    try:
        _, stored = visit(browser, demo)
        _, stored_again = visit(browser, demo)
        rows = wait_for(lambda: (r := sessions(db_url, account["account_id"])) and len(r) >= 2 and r,
                        what="two sessions")
    finally:
        demo.stop()
    assert stored is None and stored_again is None
    assert len(rows) == 2 and rows[0]["visitor_id"] is not None
    assert rows[0]["visitor_id"] == rows[1]["visitor_id"]

    # Persistent: the same browser (its storage carried over) is one visitor over two
    # sessions; a new browser is another one.
    account = new_account(db_url, "localhost")
    demo = DemoSite(api.url, account["account_id"],
                    attrs={"data-flush-interval": "500", "data-visitor": "persistent"}).start()
    try:
        state, first_id = visit(browser, demo)
        # A new session in the same browser: sessionStorage (the session) is per tab, so a new tab.
        _, second_id = visit(browser, demo, state)
        _, other_id = visit(browser, demo)
        rows = wait_for(lambda: (r := sessions(db_url, account["account_id"])) and len(r) >= 3 and r,
                        what="three sessions")
    finally:
        demo.stop()
    assert first_id and first_id == second_id and other_id and other_id != first_id
    uuid.UUID(first_id)  # a random id
    visitors = [r["visitor_id"] for r in rows]
    assert len(rows) == 3 and len({r["session_id"] for r in rows}) == 3
    assert visitors[0] == visitors[1] != visitors[2]
    assert str(visitors[0]) != first_id  # a keyed hash, not the browser's id
    with psycopg.connect(db_url) as conn:
        leaked = conn.execute("SELECT event_type, event_data::text FROM events WHERE event_data::text LIKE %s "
                              "UNION ALL SELECT 'session', session_id::text FROM sessions WHERE session_id = %s",
                              (f"%{first_id}%", first_id)).fetchall()
        started = conn.execute("SELECT count(*) FROM events e JOIN sessions s USING (session_id) "
                               "WHERE s.account_id = %s AND e.event_type = 'session_start'",
                               (account["account_id"],)).fetchone()[0]
    assert started == 3 and leaked == []  # the session_start events do not keep it either
