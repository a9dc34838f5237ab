def test_health_reports_timescaledb(client):
    resp = client.simulate_get("/health")
    assert resp.status_code == 200, resp.json
    assert resp.json["timescaledb"]["edition"] in ("apache", "timescale")
    assert resp.json["database"]["migration_version"] >= 3
