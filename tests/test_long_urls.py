"""URLs that are within the API's limits but long in bytes (non-ASCII: up to 4 bytes a
character) are stored, and neither the events' page index nor the roll-ups' keys refuse them
(a btree entry holds about 2,700 bytes)."""

from __future__ import annotations

import random

from conftest import now_iso
from hindsight.db import connect

RND = random.Random(11)
# 1,900 random CJK characters: within the 2,048-character URL limit, about 5,700 bytes.
LONG = "".join(chr(RND.randrange(0x4E00, 0x9FFF)) for _ in range(1900))


def test_a_long_non_ascii_page_url_is_stored_whole(client, site, session_id, db_url):
    url = f"{site.origin}/{LONG}"
    events = [{"seq": i, "timestamp": now_iso(i / 100), "event_type": kind, "page_url": url}
              for i, kind in enumerate(("page_view", "click", "scroll"))]
    resp = client.simulate_post("/api/v1/track", json={"session_id": session_id, "events": events},
                                headers=site.write_headers())
    assert resp.status_code == 201 and resp.json["count"] == 3, resp.json
    with connect(db_url) as conn:
        stored = conn.execute("SELECT page_url FROM events WHERE session_id = %s ORDER BY seq",
                              (session_id,)).fetchall()
    assert [r["page_url"] for r in stored] == [url] * 3


def test_the_events_page_url_index_takes_any_url(db_url):
    with connect(db_url) as conn:
        kind = conn.execute("SELECT am.amname FROM pg_class c JOIN pg_am am ON am.oid = c.relam "
                            "WHERE c.relname = 'events_page_url_idx'").fetchone()
    assert kind == {"amname": "hash"}


def test_a_value_past_a_postgresql_limit_is_not_reported_as_the_database_being_unreachable():
    # SQLSTATE class 54 is an OperationalError in psycopg, like a lost connection; retrying
    # it cannot help, so it must not be the 503 "unreachable, retrying is safe".
    import psycopg

    from hindsight.errors import _is_connection_failure

    assert _is_connection_failure(psycopg.OperationalError("connection lost"))
    assert not _is_connection_failure(psycopg.errors.ProgramLimitExceeded("index row size 3056 exceeds"))
