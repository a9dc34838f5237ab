"""The seed's statistics-server API: the internal token API and the /api/*/add endpoints."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from stacks_rig import INTERNAL_KEY, counted, make_rig, steps

from hindsight.db import connect
from hindsight.seed.mapping import seed_session_id

INTERNAL = {"Authorization": f"Bearer {INTERNAL_KEY}"}


@pytest.fixture
def rig(settings, pool, db_url):
    return make_rig(settings, pool, db_url, stacks_event_threshold=1000)


def _session_body(session: str, ts: str, **event) -> dict:
    return {"type": "sessions-added", "timestamp": ts, "event": {
        "cklig-track-user-id": "user_456", "cklig-track-user-session": session,
        "cklig-track-user-ip": "192.168.1.100",
        "cklig-track-browser": {"name": "Chrome", "version": "117.0.0.0", "platform": "Windows",
                                "language": "en-US",
                                "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/117.0"},
        "cklig-track-base-domain": "example.com",
        "cklig-track-screen": {"width": 1920, "height": 1080, "colorDepth": 24, "orientation": "landscape"},
        **event}}


def test_token_api_needs_the_internal_key(settings, pool, db_url):
    closed = make_rig(settings, pool, db_url).client
    disabled = make_rig(settings, pool, db_url, internal_api_key="").client
    resp = disabled.simulate_post("/api/token", json={}, headers=INTERNAL)
    assert resp.status_code == 403 and "HINDSIGHT_INTERNAL_API_KEY" in resp.json["description"]
    assert closed.simulate_post("/api/token", json={}).status_code == 401
    assert closed.simulate_post("/api/token", json={},
                                headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert closed.simulate_delete(f"/api/token/{uuid.uuid4()}",
                                  headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_create_extend_and_revoke_a_token(rig):
    site = rig.site()
    created = rig.client.simulate_post("/api/token", headers=INTERNAL, json={
        "account_id": site.account_id, "host": f"www.{site.domain}", "ttl_seconds": 3600})
    assert created.status_code == 201, created.json
    token = created.json["token"]
    assert created.json["host"] == site.domain  # bound to the registered domain
    assert token == site.token  # the live token of account + host
    headers = {"Authorization": f"Bearer {token}", "Origin": site.origin}

    later = (rig.clock.now + timedelta(days=3)).isoformat()
    extended = rig.client.simulate_put(f"/api/token/{token}", headers=INTERNAL, json={"expires_at": later})
    assert extended.status_code == 200 and extended.json["expires_at"] == later
    past = rig.client.simulate_put(f"/api/token/{token}", headers=INTERNAL,
                                   json={"expires_at": (rig.clock.now - timedelta(days=1)).isoformat()})
    assert past.status_code == 400 and "expires_at" in past.json["fields"]
    assert rig.client.simulate_put(f"/api/token/{uuid.uuid4()}", headers=INTERNAL, json={}).status_code == 404

    rig.session(site)
    assert rig.client.simulate_delete(f"/api/token/{token}", headers=INTERNAL).status_code == 204
    refused = rig.client.simulate_post("/api/v1/sessions", json={}, headers=headers)
    assert refused.status_code == 401 and "revoked" in refused.json["description"]
    assert rig.client.simulate_delete(f"/api/token/{token}", headers=INTERNAL).status_code == 204
    assert rig.client.simulate_put(f"/api/token/{token}", headers=INTERNAL, json={}).status_code == 409
    assert rig.client.simulate_delete(f"/api/token/{uuid.uuid4()}", headers=INTERNAL).status_code == 404
    # Its stack was dropped at once and what it counted is flushed by the due run.
    assert rig.stacks.registry.get((uuid.UUID(site.account_id), site.domain)) is None
    rig.flush_due()
    assert counted(rig.db_url, site.account_id)["usage_total"] == 1


def test_create_token_refusals(rig):
    site = rig.site()
    unknown = rig.client.simulate_post("/api/token", headers=INTERNAL,
                                       json={"account_id": str(uuid.uuid4()), "host": site.domain})
    assert unknown.status_code == 404
    foreign = rig.client.simulate_post("/api/token", headers=INTERNAL,
                                       json={"account_id": site.account_id, "host": "evil.example"})
    assert foreign.status_code == 403 and "not a registered domain" in foreign.json["description"]
    invalid = rig.client.simulate_post("/api/token", headers=INTERNAL, json={"host": "x", "extra": 1})
    assert invalid.status_code == 400 and set(invalid.json["fields"]) == {"account_id", "extra"}


def test_seed_events_are_stored_counted_and_become_journey_steps(rig, db_url):
    site = rig.site()
    ts = lambda s: (rig.clock.now - timedelta(seconds=10 - s)).isoformat()  # noqa: E731
    body = _session_body("session_789", ts(0))
    first = rig.client.simulate_post("/api/sessions/add", json=body, headers=site.headers())
    assert first.status_code == 201, first.json
    session_id = first.json["session_id"]
    assert session_id == str(seed_session_id("session_789"))
    again = rig.client.simulate_post("/api/sessions/add", json=body, headers=site.headers())
    assert again.status_code == 200 and again.json["session_id"] == session_id

    posts = [
        ("/api/pages/add", {"cklig-track-event-type": "PageLoad",
                            "cklig-track-event-page-url": f"{site.origin}/products",
                            "cklig-track-event-timeonpage": 45000,
                            "cklig-track-event-page-details": {"title": "Products"}}),
        ("/api/events/add", {"cklig-track-event-type": "Click",
                             "cklig-track-event-target": {"tagName": "BUTTON", "id": "add-to-cart",
                                                          "className": "btn btn-primary",
                                                          "position": {"clientX": 450, "clientY": 320}}}),
        ("/api/events/add", {"cklig-track-event-type": "Focus",
                             "cklig-track-event-target": {"tagName": "INPUT", "id": "email"}}),
        ("/api/referrers/add", {"cklig-track-referrer": "https://search.example/?q=shoes"}),
        ("/api/pages/add", {"cklig-track-event-type": "PageUnload",
                            "cklig-track-event-page-url": f"{site.origin}/products"}),
    ]
    for i, (path, event) in enumerate(posts, start=1):
        payload = {"timestamp": ts(i), "event": {"cklig-track-user-session": "session_789",
                                                 "cklig-track-user-id": "user_456", **event}}
        resp = rig.client.simulate_post(path, json=payload, headers=site.headers())
        assert resp.status_code == 201, (path, resp.json)
        assert resp.json["count"] == 1
        resent = rig.client.simulate_post(path, json=payload, headers=site.headers())
        assert resent.status_code == 200 and resent.json["count"] == 0  # stored once

    with connect(db_url) as conn:
        session = conn.execute("SELECT * FROM sessions WHERE session_id = %s", (session_id,)).fetchone()
        events = conn.execute("SELECT * FROM events WHERE session_id = %s ORDER BY \"timestamp\"",
                              (session_id,)).fetchall()
    assert (session["user_id"], session["browser"], session["os"], session["language"]) == (
        "user_456", "Chrome", "Windows", "en-US")
    assert (session["screen_width"], session["screen_height"]) == (1920, 1080)
    assert session["metadata"]["seed_session"] == "session_789"
    assert b"192.168.1.100" not in bytes(session["ip_hash"])  # hashed, never clear
    assert [e["event_type"] for e in events] == ["page_view", "click", "focus", "referrer", "page_unload"]
    page, click = events[0], events[1]
    assert page["page_url"] == f"{site.origin}/products"
    assert page["event_data"]["time_on_page_ms"] == 45000 and page["event_data"]["page_details"] == {"title": "Products"}
    assert (click["target_tag"], click["target_id"], click["target_class"], click["viewport_x"],
            click["viewport_y"]) == ("BUTTON", "add-to-cart", "btn btn-primary", 450, 320)
    assert events[3]["event_data"]["referrer"] == "https://search.example/?q=shoes"

    rig.clock.advance(minutes=31)
    rig.monitor()
    done = counted(db_url, site.account_id)
    assert done["counters"] == [{"host": site.domain, "session_events": 1, "page_events": 1,
                                 "click_events": 1, "other_events": 3, "total_events": 6}]
    assert done["usage_total"] == 6 == done["stored"]
    assert [s[1] for s in steps(db_url, session_id)] == ["session", "page", "click"]


def test_seed_validation_names_the_fields(rig):
    site = rig.site()
    ts = rig.clock.now.isoformat()
    missing = rig.client.simulate_post("/api/pages/add", headers=site.headers(), json={
        "timestamp": ts, "event": {"cklig-track-event-type": "PageView"}})
    assert missing.status_code == 400
    assert set(missing.json["fields"]["event"]) == {"cklig-track-user-session", "cklig-track-event-type"}
    wrong_type = rig.client.simulate_post("/api/sessions/add", headers=site.headers(),
                                          json={**_session_body("s", ts), "type": "pages-added"})
    assert wrong_type.status_code == 400 and "type" in wrong_type.json["fields"]
    unknown = rig.client.simulate_post("/api/events/add", headers=site.headers(), json={
        "timestamp": ts, "event": {"cklig-track-user-session": "s", "cklig-track-event-type": "Click",
                                   "cklig-track-event-target": {"tagName": "A", "href": "x"}}})
    assert unknown.status_code == 400
    assert unknown.json["fields"]["event"]["cklig-track-event-target"] == {"href": ["Unknown field."]}
    bad_ip = rig.client.simulate_post("/api/sessions/add", headers=site.headers(),
                                      json=_session_body("s", ts, **{"cklig-track-user-ip": "999.1.1.1"}))
    assert bad_ip.status_code == 400 and "cklig-track-user-ip" in bad_ip.json["fields"]["event"]


def test_seed_events_need_their_session_and_their_account(rig):
    site = rig.site()
    ts = rig.clock.now.isoformat()
    orphan = rig.client.simulate_post("/api/events/add", headers=site.headers(), json={
        "timestamp": ts, "event": {"cklig-track-user-session": "never-added", "cklig-track-event-type": "Click"}})
    assert orphan.status_code == 404 and "/api/sessions/add" in orphan.json["description"]
    other = rig.client.simulate_post("/api/sessions/add", headers=site.headers(), json=_session_body(
        "s1", ts, **{"cklig-track-account": str(uuid.uuid4())}))
    assert other.status_code == 403
    no_token = rig.client.simulate_post("/api/sessions/add", json=_session_body("s1", ts))
    assert no_token.status_code == 401
    future = rig.client.simulate_post("/api/pages/add", headers=site.headers(), json={
        "timestamp": (rig.clock.now + timedelta(hours=2)).isoformat(),
        "event": {"cklig-track-user-session": "s1", "cklig-track-event-type": "PageLoad"}})
    assert future.status_code == 400 and "timestamp" in future.json["fields"]


def test_seed_endpoints_get_403_once_the_limit_is_reached(settings, pool, db_url):
    rig = make_rig(settings, pool, db_url, stacks_event_threshold=3)
    site = rig.site(limit=3)
    ts = rig.clock.now.isoformat()
    assert rig.client.simulate_post("/api/sessions/add", headers=site.headers(),
                                    json=_session_body("s1", ts)).status_code == 201
    for n in range(2):
        resp = rig.client.simulate_post("/api/events/add", headers=site.headers(), json={
            "timestamp": ts, "event": {"cklig-track-user-session": "s1", "cklig-track-event-type": "Click",
                                       "cklig-track-event-target": {"id": f"b{n}"}}})
        assert resp.status_code == 201
    rig.flush_due()
    refused = rig.client.simulate_post("/api/pages/add", headers=site.headers(), json={
        "timestamp": ts, "event": {"cklig-track-user-session": "s1", "cklig-track-event-type": "PageLoad"}})
    assert refused.status_code == 403
    assert "Statistics are disabled for this host" in refused.json["description"]
