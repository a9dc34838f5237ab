"""Paths: the journeys written by the statistics stacks' flushes, read as page-to-page moves —
after a page, where visitors went next; before it, where they came from."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from stacks_rig import make_rig

from conftest import new_account, token_flow
from hindsight.db import connect
from hindsight.principals import hash_api_key

JOURNEYS = (["/", "/pricing", "/signup"], ["/", "/pricing", "/docs"], ["/blog", "/pricing", "/signup?x=1"],
            ["/", "/pricing"])


@pytest.fixture(scope="module")
def world(settings, pool, db_url):
    rig = make_rig(settings, pool, db_url)
    account = new_account(db_url)
    origin = f"https://{account['domain']}"
    token = token_flow(rig.client, account, origin)
    headers = {"Authorization": f"Bearer {token}", "Origin": origin}
    for pages in JOURNEYS:
        sid = rig.client.simulate_post("/api/v1/sessions", json={"page_url": origin + pages[0]},
                                       headers=headers).json["session_id"]
        base = rig.clock.now - timedelta(minutes=5)
        events = [{"seq": i, "timestamp": (base + timedelta(seconds=10 * i)).isoformat(), "event_type": "page_view",
                   "page_url": origin + page} for i, page in enumerate(pages)]
        resp = rig.client.simulate_post("/api/v1/track", json={"session_id": sid, "events": events}, headers=headers)
        assert resp.status_code == 201, resp.json
    # A server-side sender's page views make a journey too (POST /api/v1/events).
    server = [{"event_type": "page_view", "occurred_at": (rig.clock.now - timedelta(minutes=4, seconds=-i)).isoformat(),
               "session_id": "server-1", "page_url": origin + page} for i, page in enumerate(["/pricing", "/docs"])]
    resp = rig.client.simulate_post("/api/v1/events", json={"events": server},
                                    headers={"Authorization": f"Bearer {account['api_key']}"})
    assert resp.json["accepted"] == 2, resp.json
    result = rig.stacks.flush_now((uuid.UUID(account["account_id"]), account["domain"]), "threshold")
    assert result is not None
    return {"client": rig.client, "key": account["api_key"]}


def paths(world, **params):
    resp = world["client"].simulate_get("/api/v1/stats/paths", params=params,
                                        headers={"Authorization": f"Bearer {world['key']}"})
    return resp


def test_after_and_before_a_page(world):
    resp = paths(world, page="/pricing")
    assert resp.status_code == 200, resp.json
    after = {r["path"]: r["moves"] for r in resp.json["next"]}
    before = {r["path"]: r["moves"] for r in resp.json["previous"]}
    assert after == {"/signup": 2, "/docs": 2, "(exit)": 1}
    assert before == {"/": 3, "/blog": 1, "(entry)": 1}
    assert resp.json["next"][0]["moves"] == 2


def test_top_n_and_validation(world):
    top = paths(world, page="/pricing", limit=1).json
    assert len(top["next"]) == 1 and len(top["previous"]) == 1 and top["previous"][0] == {
        "path": "/", "moves": 3, "sessions": 3}
    assert paths(world, page="/nowhere").json["next"] == []
    assert paths(world, page="pricing").status_code == 400
    assert world["client"].simulate_get("/api/v1/stats/paths", params={"page": "/"}).status_code == 401


def test_paths_view_and_its_json_twin(world, db_url):
    from dashboard_support import logged_in

    with connect(db_url) as conn:
        account_id = conn.execute("SELECT account_id FROM api_keys WHERE key_hash = %s",
                                  (hash_api_key(world["key"]),)).fetchone()["account_id"]
    analyst = logged_in(world["client"], db_url, str(account_id))
    twin = analyst.get("/dashboard/paths", format="json", page="/pricing")
    assert twin.status_code == 200, twin.text
    assert {r["path"]: r["moves"] for r in twin.json["previous"]} == {"/": 3, "/blog": 1, "(entry)": 1}
    assert twin.json["top_pages"][0]["path"] == "/pricing"
    page = analyst.get("/dashboard/paths", page="/pricing")
    assert page.status_code == 200 and 'id="paths-next"' in page.text and "/signup" in page.text
    assert analyst.get("/dashboard/paths", page="nope").status_code == 400
