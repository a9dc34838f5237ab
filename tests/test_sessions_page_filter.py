"""The sessions list's "page URL contains" (queries/sessions.py): the entry page or any page
viewed, by the trigram index of sql/migrations/0034 — a LIKE that must test exactly what
strpos tested, whatever the text holds (`%`, `_`, backslashes), and nothing of another
account or from before the range."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from lifecycle_support import connect, fresh_database, new_account

from hindsight.queries import sessions as session_queries
from hindsight.schemas import SessionListQuerySchema

URLS = {
    "pct": "https://shop.example/sale/50%off",
    "under": "https://shop.example/a_b/item",
    "plain": "https://shop.example/axb/item",
    "slash": "https://shop.example/q?path=C:\\temp\\x",
    "p7": "https://shop.example/p7?utm_source=news",
    "p70": "https://shop.example/p70",
}
TEXTS = ("50%", "%", "a_b", "_", "\\temp", "p7", "/p7", "utm_source", "/", "nothing-like-it", "xb/i")


@pytest.fixture
def world(cluster):
    with fresh_database(cluster.url(), "pagefilter") as url, connect(url) as conn:
        now = conn.execute("SELECT now() AS t").fetchone()["t"]
        account, host = new_account(conn)
        other, other_host = new_account(conn)
        sessions = {}
        for name, url_ in URLS.items():
            for who, acc, h in (("mine", account, host), ("other", other, other_host)):
                sid = uuid.uuid4()
                # Entered on the home page; the named page is a later page view.
                conn.execute("INSERT INTO sessions (session_id, account_id, host, started_at, last_activity_at, "
                             "page_url) VALUES (%s, %s, %s, %s, %s, 'https://shop.example/')",
                             (sid, acc, h, now - timedelta(hours=2), now - timedelta(hours=1)))
                conn.execute("INSERT INTO events (session_id, seq, \"timestamp\", account_id, host, event_type, "
                             "page_url) VALUES (%s, 1, %s, %s, %s, 'page_view', %s)",
                             (sid, now - timedelta(hours=1), acc, h, url_))
                if who == "mine":
                    sessions[name] = sid
        # Entered on a page (no page view of it): found by its entry page.
        entered = uuid.uuid4()
        conn.execute("INSERT INTO sessions (session_id, account_id, host, started_at, last_activity_at, page_url) "
                     "VALUES (%s, %s, %s, %s, %s, 'https://shop.example/landing_50%%')",
                     (entered, account, host, now - timedelta(hours=3), now - timedelta(hours=3)))
        # An old session: outside a 24-hour range.
        old = uuid.uuid4()
        conn.execute("INSERT INTO sessions (session_id, account_id, host, started_at, last_activity_at, page_url) "
                     "VALUES (%s, %s, %s, %s, %s, 'https://shop.example/')",
                     (old, account, host, now - timedelta(days=3), now - timedelta(days=3)))
        conn.execute("INSERT INTO events (session_id, seq, \"timestamp\", account_id, host, event_type, page_url) "
                     "VALUES (%s, 1, %s, %s, %s, 'page_view', %s)", (old, now - timedelta(days=3), account, host,
                                                                     URLS["p7"]))
        conn.commit()
        yield {"conn": conn, "account": account, "now": now, "sessions": sessions, "entered": entered, "old": old}


def listed(world, text: str, **more) -> set:
    query = SessionListQuerySchema().load({"limit": "200", "page_url": text, **more})
    page = session_queries.list_sessions(world["conn"], world["account"], query, count_beyond=1000)
    ids = {r["session_id"] for r in page["data"]}
    assert page["total"] == len(ids) and page["total_exact"]
    return ids


@pytest.mark.parametrize("text", TEXTS)
def test_page_url_contains_tests_the_text_literally(world, text):
    want = {sid for name, sid in world["sessions"].items() if text in URLS[name]}
    if text in "https://shop.example/landing_50%":
        want.add(world["entered"])
    if text in URLS["p7"]:
        want.add(world["old"])        # no range given: all time
    if text in "https://shop.example/":
        want |= {*world["sessions"].values(), world["entered"], world["old"]}   # every entry page
    assert listed(world, text) == want


def test_page_url_contains_keeps_to_the_range_and_the_index_exists(world):
    since = (world["now"] - timedelta(hours=24)).isoformat()
    assert listed(world, "p7", **{"from": since}) == {world["sessions"]["p7"], world["sessions"]["p70"]}
    assert listed(world, "p7") == {world["sessions"]["p7"], world["sessions"]["p70"], world["old"]}
    index = world["conn"].execute("SELECT indexdef FROM pg_indexes WHERE indexname = "
                                  "'events_page_view_url_trgm_idx'").fetchone()
    assert index and "gin_trgm_ops" in index["indexdef"] and "page_view" in index["indexdef"]
