"""Funnels: saved per account; per-step counts per visitor and per session, inside the
window, over a segment; from a step, the sessions that converted or dropped off there with
replay links at the moment of the step."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from lifecycle_support import add_events, add_session, connect

from hindsight.queries.tenancy import create_account, create_api_key

DEFINITION = {"name": "Pro signup", "per": "visitor", "window_seconds": 3600, "steps": [
    {"kind": "page", "path": "/pricing*"},
    {"kind": "event", "name": "signup", "filters": {"plan": "pro"}},
    {"kind": "page", "path": "/welcome"}]}


@pytest.fixture(scope="module")
def world(db_url):
    """Six visitors walking (or not) through pricing -> signup(pro) -> welcome."""
    with connect(db_url) as conn:
        account = create_account(conn, "Funnels", f"funnel-{uuid.uuid4().hex[:8]}.example", None)
        key = create_api_key(conn, account["account_id"])
        account_id, host = account["account_id"], account["domain"]
        t = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
        url = f"https://{host}"
        sessions = {}

        def visit(name, visitor, start, steps, device="desktop"):
            sid = add_session(conn, account_id, host, start, device_type=device)
            conn.execute("UPDATE sessions SET visitor_id = %s WHERE session_id = %s", (visitor, sid))
            events = [(start + timedelta(minutes=m), kind, url + path, data) for m, kind, path, data in steps]
            add_events(conn, sid, account_id, host, events)
            sessions[name] = sid

        pro, free = {"name": "signup", "props": {"plan": "pro"}}, {"name": "signup", "props": {"plan": "free"}}
        va, vb, vc, vd, ve, vf = (uuid.uuid4() for _ in range(6))
        visit("a1", va, t, [(1, "page_view", "/pricing/annual", None), (3, "custom", "/pricing", pro),
                            (9, "page_view", "/welcome", None)])
        visit("b1", vb, t + timedelta(hours=1), [(2, "page_view", "/pricing", None)])
        visit("b2", vb, t + timedelta(hours=1, minutes=20), [(1, "custom", "/x", pro)])
        visit("c1", vc, t + timedelta(hours=2), [(5, "page_view", "/pricing", None), (6, "custom", "/x", free)])
        visit("d1", vd, t + timedelta(hours=3), [(1, "page_view", "/pricing", None),
                                                 (130, "custom", "/x", pro)])          # outside the window
        visit("e1", ve, t + timedelta(hours=4), [(1, "page_view", "/welcome", None)])  # never entered
        visit("f1", vf, t + timedelta(hours=5), [(1, "page_view", "/pricing", None), (2, "custom", "/x", pro),
                                                 (4, "page_view", "/welcome?x=1", None)], device="mobile")
    return {"key": key, "sessions": sessions, "start": t}


def call(client, world, method, path, **kwargs):
    return client.simulate_request(method, path, headers={"Authorization": f"Bearer {world['key']}"}, **kwargs)


@pytest.fixture(scope="module")
def funnel_id(app, world):
    import falcon.testing

    client = falcon.testing.TestClient(app)
    resp = call(client, world, "POST", "/api/v1/funnels", json=DEFINITION)
    assert resp.status_code == 201, resp.json
    return resp.json["funnel_id"]


def counts(client, world, funnel_id, **params):
    resp = call(client, world, "GET", f"/api/v1/funnels/{funnel_id}/results", params=params)
    assert resp.status_code == 200, resp.json
    return [s["count"] for s in resp.json["steps"]], resp.json


def test_per_visitor_counts_conversion_and_dropoff(client, world, funnel_id):
    numbers, body = counts(client, world, funnel_id)
    assert numbers == [5, 3, 2]   # a b c d f; a b f (b in a second session); a f
    assert body["steps"][1]["dropped"] == 2 and body["steps"][2]["conversion"] == pytest.approx(2 / 5)
    assert body["steps"][2]["conversion_from_previous"] == pytest.approx(2 / 3)
    assert body["entered"] == 5 and body["converted"] == 2


def test_per_session_and_segment(client, world, funnel_id):
    per_session = {**DEFINITION, "name": "Pro signup (sessions)", "per": "session"}
    created = call(client, world, "POST", "/api/v1/funnels", json=per_session)
    assert created.status_code == 201
    assert counts(client, world, created.json["funnel_id"])[0] == [5, 2, 2]   # b2 never saw pricing
    assert counts(client, world, funnel_id, device_type="mobile")[0] == [1, 1, 1]
    assert counts(client, world, funnel_id, referrer="direct")[0] == [5, 3, 2]
    # A range that ends before anyone entered.
    early = (world["start"] - timedelta(days=1)).isoformat()
    assert counts(client, world, funnel_id, to=early)[0] == [0, 0, 0]


def test_dropped_and_converted_sessions_open_their_replay_at_the_step(client, world, funnel_id):
    resp = call(client, world, "GET", f"/api/v1/funnels/{funnel_id}/sessions",
                params={"step": 2, "outcome": "dropped"})
    assert resp.status_code == 200, resp.json
    found = {r["session_id"]: r for r in resp.json["data"]}
    s = world["sessions"]
    assert set(found) == {str(s["c1"]), str(s["d1"])} and resp.json["total"] == 2
    # c1 entered 5 minutes into its session: the replay opens there.
    assert found[str(s["c1"])]["offset_seconds"] == pytest.approx(300)
    assert found[str(s["c1"])]["replay"] == f"/dashboard/sessions/{s['c1']}#t=300.0"
    converted = call(client, world, "GET", f"/api/v1/funnels/{funnel_id}/sessions",
                     params={"step": 3, "outcome": "converted"}).json
    assert {r["session_id"] for r in converted["data"]} == {str(s["a1"]), str(s["f1"])}
    assert call(client, world, "GET", f"/api/v1/funnels/{funnel_id}/sessions",
                params={"step": 4}).status_code == 404


def test_saved_per_account_and_validated(client, world, funnel_id, site):
    listed = call(client, world, "GET", "/api/v1/funnels").json["data"]
    assert DEFINITION["name"] in {f["name"] for f in listed}
    # Another account's key sees none of them.
    other = client.simulate_get(f"/api/v1/funnels/{funnel_id}", headers=site.read_headers())
    assert other.status_code == 404
    assert client.simulate_get("/api/v1/funnels", headers=site.read_headers()).json == {"data": []}
    assert call(client, world, "POST", "/api/v1/funnels", json=DEFINITION).status_code == 409
    bad = {**DEFINITION, "name": "bad", "steps": [{"kind": "page"}, {"kind": "event", "path": "/x"}]}
    resp = call(client, world, "POST", "/api/v1/funnels", json=bad)
    assert resp.status_code == 400 and "steps" in resp.json["fields"]
    renamed = call(client, world, "PUT", f"/api/v1/funnels/{funnel_id}", json={**DEFINITION, "name": "Renamed"})
    assert renamed.status_code == 200 and renamed.json["name"] == "Renamed"
    scratch = call(client, world, "POST", "/api/v1/funnels", json={**DEFINITION, "name": "scratch"}).json
    assert call(client, world, "DELETE", f"/api/v1/funnels/{scratch['funnel_id']}").status_code == 204
    assert call(client, world, "GET", f"/api/v1/funnels/{scratch['funnel_id']}").status_code == 404


def test_dashboard_page_and_its_json_twin(client, db_url, world, funnel_id):
    from dashboard_support import logged_in

    with connect(db_url) as conn:
        account_id = conn.execute("SELECT account_id FROM funnels WHERE funnel_id = %s",
                                  (funnel_id,)).fetchone()["account_id"]
    analyst = logged_in(client, db_url, str(account_id))
    twin = analyst.get(f"/dashboard/funnels/{funnel_id}", format="json", step="2", outcome="dropped")
    assert twin.status_code == 200, twin.text
    assert [s["count"] for s in twin.json["steps"]] == [5, 3, 2]
    assert twin.json["sessions"]["total"] == 2
    page = analyst.get(f"/dashboard/funnels/{funnel_id}", step="2", outcome="dropped")
    assert page.status_code == 200 and "#t=300.0" in page.text
    listing = analyst.get("/dashboard/funnels", format="json").json["funnels"]
    assert funnel_id in {f["funnel_id"] for f in listing}
    # The builder: a bad line is named, not stored.
    token = analyst.csrf("/dashboard/funnels")
    bad = analyst.post("/dashboard/funnels", {"csrf_token": token, "name": "x", "steps": "/a\nsignup plan",
                                              "per": "visitor", "window": "1d"})
    assert bad.status_code == 400 and "a filter is property=value" in bad.text
    good = analyst.post("/dashboard/funnels", {"csrf_token": token, "name": "Built", "per": "session",
                                               "steps": "/pricing*\nsignup plan=pro", "window": "1h"})
    assert good.status_code == 303
    built = analyst.get(good.headers["location"], format="json").json
    assert built["per"] == "session" and [s["count"] for s in built["steps"]] == [5, 2]
    assert analyst.get(f"/dashboard/funnels/{funnel_id}", step="9").status_code == 400
