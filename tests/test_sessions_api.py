"""POST /api/v1/sessions and the session reads."""

from __future__ import annotations

import uuid

from conftest import now_iso
from hindsight.db import connect

CHROME_MAC = ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 "
              "(KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36")
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")


def test_create_session_derives_device_browser_os_from_user_agent(client, site, db_url):
    body = {"user_id": "u-1", "page_url": f"{site.origin}/home", "referrer": "https://search.example/",
            "user_agent": IPHONE, "screen_width": 390, "screen_height": 844, "viewport_width": 390,
            "viewport_height": 700, "language": "en-GB", "timezone": "Europe/London",
            "metadata": {"plan": "pro"}}
    resp = client.simulate_post("/api/v1/sessions", json=body, headers=site.write_headers())
    assert resp.status_code == 201, resp.json
    session_id = resp.json["session_id"]
    uuid.UUID(session_id)
    assert resp.json["started_at"]
    got = client.simulate_get(f"/api/v1/sessions/{session_id}", headers=site.read_headers()).json
    assert (got["device_type"], got["browser"], got["os"]) == ("mobile", "Mobile Safari", "iOS")
    assert got["user_id"] == "u-1" and got["metadata"] == {"plan": "pro"}
    assert got["host"] == site.domain and got["language"] == "en-GB"


def test_given_fields_win_and_user_agent_header_is_the_fallback(client, site):
    resp = client.simulate_post("/api/v1/sessions", json={"browser": "Custom"},
                                headers={**site.write_headers(), "User-Agent": CHROME_MAC})
    got = client.simulate_get(f"/api/v1/sessions/{resp.json['session_id']}", headers=site.read_headers()).json
    assert (got["device_type"], got["browser"], got["os"]) == ("desktop", "Custom", "Mac OS X")


def test_client_generated_session_id_is_idempotent(client, site):
    session_id = str(uuid.uuid4())
    first = client.simulate_post("/api/v1/sessions", json={"session_id": session_id},
                                 headers=site.write_headers())
    again = client.simulate_post("/api/v1/sessions", json={"session_id": session_id},
                                 headers=site.write_headers())
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json == again.json


def test_another_accounts_session_id_cannot_be_taken(client, make_site):
    a, b = make_site(), make_site()
    session_id = str(uuid.uuid4())
    assert client.simulate_post("/api/v1/sessions", json={"session_id": session_id},
                                headers=a.write_headers()).status_code == 201
    resp = client.simulate_post("/api/v1/sessions", json={"session_id": session_id},
                                headers=b.write_headers())
    assert resp.status_code == 409
    assert client.simulate_get(f"/api/v1/sessions/{session_id}", headers=b.read_headers()).status_code == 404


def test_ip_is_stored_only_as_a_keyed_hash(client, site, db_url):
    resp = client.simulate_post("/api/v1/sessions", json={}, headers=site.write_headers(),
                                remote_addr="203.0.113.77")
    with connect(db_url) as conn:
        row = conn.execute("SELECT ip_hash, s.* FROM sessions s WHERE session_id = %s",
                           (resp.json["session_id"],)).fetchone()
        dump = conn.execute("SELECT s::text AS t FROM sessions s WHERE session_id = %s",
                            (resp.json["session_id"],)).fetchone()["t"]
    assert row["ip_hash"] is not None and len(row["ip_hash"]) == 32
    assert "203.0.113.77" not in dump


def test_query_strings_are_stripped_when_the_domain_asks(client, site, db_url):
    with connect(db_url) as conn:
        conn.execute("UPDATE domains SET strip_query_strings = true WHERE name = %s", (site.domain,))
        conn.commit()
    resp = client.simulate_post("/api/v1/sessions", json={"page_url": f"{site.origin}/p?email=a@b.c#x"},
                                headers=site.write_headers())
    sid = resp.json["session_id"]
    client.simulate_post("/api/v1/track", headers=site.write_headers(), json={
        "session_id": sid, "events": [{"seq": 0, "timestamp": now_iso(), "event_type": "page_view",
                                       "page_url": f"{site.origin}/q?token=secret"}]})
    with connect(db_url) as conn:
        s = conn.execute("SELECT page_url FROM sessions WHERE session_id = %s", (sid,)).fetchone()
        e = conn.execute("SELECT page_url FROM events WHERE session_id = %s", (sid,)).fetchone()
    assert s["page_url"] == f"{site.origin}/p"
    assert e["page_url"] == f"{site.origin}/q"


def _session(client, site, **body):
    resp = client.simulate_post("/api/v1/sessions", json=body, headers=site.write_headers())
    assert resp.status_code == 201, resp.json
    return resp.json["session_id"]


def _track(client, site, sid, events):
    resp = client.simulate_post("/api/v1/track", json={"session_id": sid, "events": events},
                                headers=site.write_headers())
    assert resp.status_code == 201, resp.json
    return resp


def test_list_filters_sort_and_paginate(client, site):
    mobile = _session(client, site, user_agent=IPHONE, user_id="alice", page_url=f"{site.origin}/a")
    desktop = _session(client, site, user_agent=CHROME_MAC, user_id="bob", page_url=f"{site.origin}/b")
    _track(client, site, desktop, [
        {"seq": i, "timestamp": now_iso(i * 10), "event_type": "page_view" if i == 0 else "click",
         "page_url": f"{site.origin}/checkout"} for i in range(5)])
    h = site.read_headers()

    def ids(**params):
        resp = client.simulate_get("/api/v1/sessions", params=params, headers=h)
        assert resp.status_code == 200, resp.json
        return [row["session_id"] for row in resp.json["data"]], resp.json["total"]

    assert ids() == ([desktop, mobile], 2)
    assert ids(sort="started_at") == ([mobile, desktop], 2)
    assert ids(device_type="mobile") == ([mobile], 1)
    assert ids(browser="Chrome", os="Mac OS X") == ([desktop], 1)
    assert ids(user_id="alice") == ([mobile], 1)
    assert ids(page_url="/checkout") == ([desktop], 1)
    assert ids(page_url="/a") == ([mobile], 1)
    assert ids(min_events=5) == ([desktop], 1)
    assert ids(min_duration=30) == ([desktop], 1)
    assert ids(sort="-duration")[0][0] == desktop
    assert ids(limit=1, offset=1) == ([mobile], 2)
    assert ids(**{"from": now_iso(3600)}) == ([], 0)
    assert ids(**{"to": now_iso(-3600)}) == ([], 0)
    bad = client.simulate_get("/api/v1/sessions", params={"sort": "nope", "limit": 0}, headers=h)
    assert bad.status_code == 400 and set(bad.json["fields"]) == {"sort", "limit"}


def test_events_are_ordered_and_paged(client, site, session_id):
    events = [{"seq": i, "timestamp": now_iso(-i), "event_type": "scroll", "scroll_y": i} for i in range(30)]
    _track(client, site, session_id, events)
    url = f"/api/v1/sessions/{session_id}/events"
    page1 = client.simulate_get(url, params={"limit": 20}, headers=site.read_headers()).json
    page2 = client.simulate_get(url, params={"limit": 20, "offset": 20}, headers=site.read_headers()).json
    seqs = [e["seq"] for e in page1["data"] + page2["data"]]
    assert seqs == list(range(29, -1, -1))  # time order: the highest seq happened first here
    assert page1["total"] == 30 and len(page2["data"]) == 10
    too_many = client.simulate_get(url, params={"limit": 10_001}, headers=site.read_headers())
    assert too_many.status_code == 400 and "limit" in too_many.json["fields"]


def test_reads_need_an_analyst_key(client, site, session_id):
    for path in ("/api/v1/sessions", f"/api/v1/sessions/{session_id}",
                 f"/api/v1/sessions/{session_id}/events", f"/api/v1/sessions/{session_id}/screenshots"):
        assert client.simulate_get(path).status_code == 401
        assert client.simulate_get(path, headers={"Authorization": "Bearer hsk_wrong"}).status_code == 401
        # A statistics token is a write credential, not a read one.
        assert client.simulate_get(path, headers={"Authorization": f"Bearer {site.token}"}).status_code == 401


def test_sort_by_duration_reads_the_duration_index_both_ways(db_url, site):
    """The list's duration sort (and its tie-break) is what sessions_account_duration_idx
    (migration 0018) holds, so PostgreSQL can read the page off the index instead of sorting
    every session of the account. Sequential scans are off so that the small test table
    does not make the planner prefer them; a mismatched expression would still need a Sort."""
    from hindsight.queries.sessions import page_statement
    from hindsight.schemas import SessionListQuerySchema

    with connect(db_url) as conn:
        conn.execute("SET LOCAL enable_seqscan = off")
        for sort in ("-duration", "duration"):
            q = SessionListQuerySchema().load({"sort": sort, "limit": "50"})
            statement, params = page_statement(uuid.UUID(site.account_id), q)
            plan = "\n".join(r["QUERY PLAN"] for r in conn.execute(
                b"EXPLAIN " + statement.as_bytes(conn), params).fetchall())
            assert "sessions_account_duration_idx" in plan, plan
            assert "Sort" not in plan, plan


def test_page_url_filter_matches_entry_and_viewed_pages_of_this_account_only(client, site, make_site):
    other = make_site()
    entry = _session(client, site, page_url=f"{site.origin}/pricing?plan=team")
    viewed = _session(client, site, page_url=f"{site.origin}/")
    _track(client, site, viewed, [{"seq": 0, "timestamp": now_iso(5), "event_type": "page_view",
                                   "page_url": f"{site.origin}/pricing"}])
    clicked = _session(client, site, page_url=f"{site.origin}/")           # a click is not a visit
    _track(client, site, clicked, [{"seq": 0, "timestamp": now_iso(5), "event_type": "click",
                                    "page_url": f"{site.origin}/pricing"}])
    foreign = _session(client, other, page_url=f"{other.origin}/")          # another account's visit
    _track(client, other, foreign, [{"seq": 0, "timestamp": now_iso(5), "event_type": "page_view",
                                     "page_url": f"{other.origin}/pricing"}])

    def ids(**params):
        resp = client.simulate_get("/api/v1/sessions", params=params, headers=site.read_headers())
        assert resp.status_code == 200, resp.json
        return sorted(row["session_id"] for row in resp.json["data"]), resp.json["total"]

    assert ids(page_url="/pricing") == (sorted([entry, viewed]), 2)
    assert ids(page_url="/pricing", **{"from": now_iso(-60)}) == (sorted([entry, viewed]), 2)
    assert ids(page_url="/nowhere") == ([], 0)
