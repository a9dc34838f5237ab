from conftest import now_iso


def test_full_flow(client, site, session_id):
    events = [{"seq": i, "timestamp": now_iso(i / 10), "event_type": "click" if i % 2 else "page_view",
               "page_url": f"{site.origin}/p?q=1", "viewport_x": i, "viewport_y": 2 * i,
               "event_data": {"k": i}} for i in range(10)]
    resp = client.simulate_post("/api/v1/track", json={"session_id": session_id, "events": events},
                                headers=site.write_headers())
    assert resp.status_code == 201, resp.json
    assert resp.json["count"] == 10
    again = client.simulate_post("/api/v1/track", json={"session_id": session_id, "events": events},
                                 headers=site.write_headers())
    assert again.status_code == 201 and again.json["count"] == 0
    got = client.simulate_get(f"/api/v1/sessions/{session_id}/events", headers=site.read_headers())
    assert got.status_code == 200, got.json
    assert [e["seq"] for e in got.json["data"]] == list(range(10))
    s = client.simulate_get(f"/api/v1/sessions/{session_id}", headers=site.read_headers())
    assert s.json["event_count"] == 10 and s.json["click_count"] == 5
    lst = client.simulate_get("/api/v1/sessions", headers=site.read_headers())
    assert lst.json["total"] == 1
    assert client.simulate_get("/api/v1/openapi.json").status_code == 200
    assert client.simulate_get("/.well-known/jwks.json").json["keys"]
