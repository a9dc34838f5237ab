"""The error shape, body and type guards, rate limits, token states, CORS and tenancy."""

from __future__ import annotations

import falcon.testing

from conftest import now_iso
from hindsight.app import create_app
from hindsight.db import connect


def _assert_error_shape(resp, status):
    assert resp.status_code == status, resp.text
    assert set(resp.json) == {"error", "description", "fields"}
    assert resp.json["description"]


def test_malformed_json_is_a_400_not_a_500(client, site):
    for body in ("{", "[1, 2]", "null", "\"str\"", ""):
        resp = client.simulate_post("/api/v1/track", body=body, headers={
            **site.write_headers(), "Content-Type": "application/json"})
        _assert_error_shape(resp, 400)


def test_bodies_are_parsed_by_the_apps_json_handler_with_the_same_messages(client, site, session_id):
    """json_body reads through req.get_media(): application/json and sendBeacon's text/plain
    parse alike, and each way a body can be unreadable keeps its own 400 message."""
    cases = [
        (b"", "The request body is empty; send a JSON object."),
        (b"{", "The request body is not valid JSON: Expecting property name enclosed in double quotes: "
               "line 1 column 2 (char 1)."),
        (b"\xff{}", "The request body is not valid JSON: 'utf-8' codec can't decode byte 0xff in position 0: "
                    "invalid start byte."),
        (b"[" * 50_000, "The request body is nested too deeply."),
        (b"[1, 2]", "The request body must be a JSON object."),
    ]
    for seq, content_type in enumerate(("application/json", "text/plain;charset=UTF-8"), start=1):
        for body, message in cases:
            resp = client.simulate_post("/api/v1/track", body=body, headers={
                **site.write_headers(), "Content-Type": content_type})
            _assert_error_shape(resp, 400)
            assert resp.json["description"] == message, (content_type, body[:10])
        batch = {"session_id": session_id, "events": [{"seq": seq, "timestamp": now_iso(), "event_type": "click"}]}
        resp = client.simulate_post("/api/v1/track", json=batch, headers={
            **site.write_headers(), "Content-Type": content_type})
        assert resp.status_code == 201, (content_type, resp.text)
    stored = client.simulate_get(f"/api/v1/sessions/{session_id}/events", headers=site.read_headers()).json
    assert [e["seq"] for e in stored["data"]] == [1, 2]


def test_oversized_body_is_refused_before_it_is_read(app, site):
    class Exploding:
        """A body that fails the test if anyone reads it."""

        def read(self, *args):
            raise AssertionError("the body was read")

        readline = readlines = read

    env = falcon.testing.create_environ(
        method="POST", path="/api/v1/track",
        headers={**site.write_headers(), "Content-Type": "application/json",
                 "Content-Length": str(5 * 1024 * 1024)})
    env["wsgi.input"] = Exploding()
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"] = status

    body = b"".join(app(env, start_response))
    assert seen["status"].startswith("413")
    assert b"limit" in body


def test_oversized_body_via_real_payload(client, site, session_id):
    big = {"session_id": session_id, "events": [{"seq": 0, "timestamp": now_iso(), "event_type": "x",
                                                  "event_data": {"pad": "a" * 2_000_000}}]}
    _assert_error_shape(client.simulate_post("/api/v1/track", json=big, headers=site.write_headers()), 413)


def test_wrong_content_type_is_415(client, site, session_id):
    resp = client.simulate_post("/api/v1/track", body="session_id=1", headers={
        **site.write_headers(), "Content-Type": "application/x-www-form-urlencoded"})
    _assert_error_shape(resp, 415)


def test_missing_expired_and_revoked_tokens(client, site, session_id, db_url):
    body = {"session_id": session_id, "events": [{"seq": 0, "timestamp": now_iso(), "event_type": "click"}]}
    missing = client.simulate_post("/api/v1/track", json=body)
    _assert_error_shape(missing, 401)
    not_uuid = client.simulate_post("/api/v1/track", json=body, headers={"Authorization": "Bearer abc"})
    _assert_error_shape(not_uuid, 401)
    basic = client.simulate_post("/api/v1/track", json=body, headers={"Authorization": "Basic abc"})
    _assert_error_shape(basic, 401)
    with connect(db_url) as conn:
        conn.execute("UPDATE statistics_tokens SET expires_at = now() - interval '1 second' WHERE token = %s",
                     (site.token,))
        conn.commit()
    expired = client.simulate_post("/api/v1/track", json=body, headers=site.write_headers())
    _assert_error_shape(expired, 401)
    assert "expired" in expired.json["description"]
    with connect(db_url) as conn:
        conn.execute("UPDATE statistics_tokens SET expires_at = now() + interval '1 day', revoked_at = now() "
                     "WHERE token = %s", (site.token,))
        conn.commit()
    revoked = client.simulate_post("/api/v1/track", json=body, headers=site.write_headers())
    _assert_error_shape(revoked, 401)
    assert "revoked" in revoked.json["description"]


def test_token_from_another_origin_cannot_write(client, site, session_id):
    body = {"session_id": session_id, "events": [{"seq": 0, "timestamp": now_iso(), "event_type": "click"}]}
    resp = client.simulate_post("/api/v1/track", json=body, headers={
        "Authorization": f"Bearer {site.token}", "Origin": "https://evil.example"})
    _assert_error_shape(resp, 403)
    assert "access-control-allow-origin" not in resp.headers


def test_tenants_are_isolated(client, make_site, db_url):
    a, b = make_site(), make_site()
    sid_a = client.simulate_post("/api/v1/sessions", json={}, headers=a.write_headers()).json["session_id"]
    event = [{"seq": 0, "timestamp": now_iso(), "event_type": "click"}]
    # B's token cannot write into A's session...
    resp = client.simulate_post("/api/v1/track", json={"session_id": sid_a, "events": event},
                                headers=b.write_headers())
    _assert_error_shape(resp, 404)
    # ...nor read it with B's key...
    for path in (f"/api/v1/sessions/{sid_a}", f"/api/v1/sessions/{sid_a}/events",
                 f"/api/v1/sessions/{sid_a}/screenshots"):
        _assert_error_shape(client.simulate_get(path, headers=b.read_headers()), 404)
    assert client.simulate_get("/api/v1/sessions", headers=b.read_headers()).json["total"] == 0
    # ...while A can.
    assert client.simulate_get(f"/api/v1/sessions/{sid_a}", headers=a.read_headers()).status_code == 200
    assert client.simulate_get("/api/v1/sessions", headers=a.read_headers()).json["total"] == 1
    with connect(db_url) as conn:
        n = conn.execute("SELECT count(*) AS n FROM events WHERE session_id = %s", (sid_a,)).fetchone()["n"]
    assert n == 0


def test_cors_preflight_only_for_registered_origins(client, site):
    ok = client.simulate_options("/api/v1/track", headers={
        "Origin": site.origin, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert ok.status_code == 204
    assert ok.headers["access-control-allow-origin"] == site.origin
    assert "authorization" in ok.headers["access-control-allow-headers"].lower()
    assert "POST" in ok.headers["access-control-allow-methods"]
    sub = client.simulate_options("/api/v1/sessions", headers={
        "Origin": f"https://shop.{site.domain}", "Access-Control-Request-Method": "POST"})
    assert sub.status_code == 204
    evil = client.simulate_options("/api/v1/track", headers={
        "Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert evil.status_code == 403 and "access-control-allow-origin" not in evil.headers
    # Analyst endpoints are not for other sites' browsers.
    read = client.simulate_options("/api/v1/sessions/abc", headers={
        "Origin": site.origin, "Access-Control-Request-Method": "GET"})
    assert read.status_code == 403


def test_rate_limit_answers_429_with_retry_after(settings, pool, site):
    limited = falcon.testing.TestClient(create_app(settings.with_(rate_limit_per_minute=5), pool))
    statuses = [limited.simulate_post("/api/v1/sessions", json={}, headers=site.write_headers(),
                                      remote_addr="198.51.100.1").status_code for _ in range(7)]
    assert statuses[:5] == [201] * 5 and statuses[5:] == [429, 429]
    resp = limited.simulate_post("/api/v1/sessions", json={}, headers=site.write_headers(),
                                 remote_addr="198.51.100.1")
    _assert_error_shape(resp, 429)
    assert 1 <= int(resp.headers["retry-after"]) <= 60
    # Another address has its own budget; reads and health are not limited.
    other = limited.simulate_post("/api/v1/sessions", json={}, headers=site.write_headers(),
                                  remote_addr="198.51.100.2")
    assert other.status_code == 201
    assert limited.simulate_get("/health", remote_addr="198.51.100.1").status_code == 200


def test_unknown_route_and_method(client):
    _assert_error_shape(client.simulate_get("/api/v1/nothing"), 404)
    assert client.simulate_delete("/api/v1/track").status_code == 405


def test_openapi_is_generated_from_the_schemas(client):
    doc = client.simulate_get("/api/v1/openapi.json").json
    assert doc["openapi"].startswith("3.")
    event = doc["components"]["schemas"]["Event"]
    assert {"seq", "timestamp", "event_type"} <= set(event["required"])
    assert event["properties"]["page_url"]["maxLength"] == 2048
    batch = doc["components"]["schemas"]["TrackBatch"]
    assert batch["properties"]["events"]["maxItems"] == 100
    assert "/api/v1/track/screenshot" in doc["paths"] and "/site/account/{account_id}/widgets" in doc["paths"]
    assert {"/api/v1/stats/series", "/api/v1/stats/pages", "/api/token", "/api/pages/add"} <= set(doc["paths"])
    series_params = {p["name"] for p in doc["paths"]["/api/v1/stats/series"]["get"]["parameters"]}
    assert {"from", "to"} <= series_params


def test_hostile_inputs_get_a_400_naming_the_field(client, site, session_id):
    deep = "[" * 100_000 + "]" * 100_000
    resp = client.simulate_post("/api/v1/track", body=deep, headers={
        **site.write_headers(), "Content-Type": "application/json"})
    _assert_error_shape(resp, 400)
    nul = client.simulate_get("/api/v1/sessions", params={"user_id": "a\x00b"}, headers=site.read_headers())
    _assert_error_shape(nul, 400)
    assert "user_id" in nul.json["fields"]
    newline = client.simulate_post("/api/v1/track", headers=site.write_headers(), json={
        "session_id": session_id, "events": [{"seq": 0, "timestamp": now_iso(), "event_type": "click\n"}]})
    _assert_error_shape(newline, 400)
    assert "event_type" in newline.json["fields"]["events"]["0"]
    ancient = client.simulate_post("/api/v1/track", headers=site.write_headers(), json={
        "session_id": session_id, "events": [{"seq": 0, "timestamp": "0001-01-01T00:00:00Z",
                                              "event_type": "click"}]})
    _assert_error_shape(ancient, 400)
    assert ancient.json["fields"]["events"]["0"]["timestamp"] == ["More than a year old."]
