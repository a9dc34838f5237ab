"""Pipeline traces (issue 13, seed 001's terminal): each event batch's stages — received,
validated, committed (inserted, duplicates), counted on its stack, flushed into journeys
and usage — searchable by request id or session id, for the account's analysts only:
GET /api/v1/pipeline, /dashboard/pipeline (and its JSON twin), and in a real Chromium."""

from __future__ import annotations

import uuid

import falcon.testing
import pytest
from dashboard_support import PASSWORD, logged_in, make_user
from test_ingestion_warnings import make_site, track
from test_metrics import new_session, site_over_http

from browser import ApiServer, chromium
from conftest import now_iso
from harness import http_call, wait_for
from hindsight.app import create_app
from hindsight.scheduler import Scheduler


@pytest.fixture
def rig(settings, pool):
    scheduler = Scheduler()  # not started: the test runs the jobs
    # A stack is flushed as soon as it holds an event (flush_due), so the test sees the flush.
    app = create_app(settings.with_(stacks_event_threshold=1), pool, scheduler=scheduler)
    return falcon.testing.TestClient(app), scheduler


def pipeline(client, site, **params) -> list[dict]:
    resp = client.simulate_get("/api/v1/pipeline", params=params, headers=site["read"])
    assert resp.status_code == 200, resp.text
    return resp.json["batches"]


def stage_ms(batch: dict) -> dict:
    return {s["stage"]: s["ms"] for s in batch["stages"]}


def test_a_batch_is_traced_stage_by_stage(rig, db_url):
    client, scheduler = rig
    a, b = make_site(client, db_url), make_site(client, db_url)
    events = [{"seq": 1, "event_type": "page_view", "timestamp": now_iso(-5), "page_url": f"{a['origin']}/"}]
    resp = track(client, a, headers={**a["write"], "X-Request-Id": "trace-me-1"}, events=events)
    assert resp.status_code == 201 and resp.headers["X-Request-Id"] == "trace-me-1"
    again = track(client, a, headers={**a["write"], "X-Request-Id": "trace-me-2"}, events=events)  # re-sent
    assert again.status_code == 201 and again.json["count"] == 0
    refused = track(client, a, headers={**a["write"], "Origin": "https://other.example",
                                        "X-Request-Id": "trace-me-3"})
    assert refused.status_code == 403

    assert pipeline(client, a, request_id="trace-me-1") == []  # written by the next flush
    scheduler.run_now("observe.flush")
    [first] = pipeline(client, a, request_id="trace-me-1")
    ms = stage_ms(first)
    assert first["status"] == 201 and first["session_id"] == a["session_id"] and first["error"] is None
    assert (first["events"], first["inserted"], first["duplicates"]) == (1, 1, 0)
    assert ms["received"] == 0 and 0 <= ms["validated"] <= ms["committed"] <= ms["counted"] <= first["duration_ms"]
    assert ms["flushed"] is None  # not counted into journeys and usage yet
    [resent] = pipeline(client, a, request_id="trace-me-2")
    assert (resent["inserted"], resent["duplicates"]) == (0, 1)
    [bad] = pipeline(client, a, request_id="trace-me-3")
    assert bad["status"] == 403 and "origin_mismatch" in bad["error"] and stage_ms(bad)["committed"] is None

    # The stack's flush (another job, maybe another process) counts it: its flushed stage.
    scheduler.run_now("stacks.flush_due")
    [first] = pipeline(client, a, request_id="trace-me-1")
    assert stage_ms(first)["flushed"] is not None and stage_ms(first)["flushed"] >= stage_ms(first)["committed"]
    assert first["flush_events"] >= 1

    # By session: every batch of it, newest first.
    by_session = pipeline(client, a, session_id=a["session_id"])
    assert [x["request_id"] for x in by_session] == ["trace-me-3", "trace-me-2", "trace-me-1"]
    assert pipeline(client, b, request_id="trace-me-1") == []  # tenants are isolated
    assert client.simulate_get("/api/v1/pipeline", params={"request_id": "has space"},
                               headers=a["read"]).status_code == 400

    # The dashboard page and its JSON twin.
    analyst = logged_in(client, db_url, a["account_id"])
    page = analyst.get("/dashboard/pipeline", q="trace-me-3")
    assert page.status_code == 200 and 'data-request-id="trace-me-3"' in page.text
    assert 'class="batch error"' in page.text and "trace-me-1" not in page.text
    twin = analyst.get("/dashboard/pipeline", q=a["session_id"], format="json").json
    assert [x["request_id"] for x in twin["batches"]] == ["trace-me-3", "trace-me-2", "trace-me-1"]


@pytest.mark.slow
def test_search_a_request_id_in_the_browser(db_url):
    api = ApiServer(db_url).start()
    try:
        site = site_over_http(api.port, db_url)
        sid = new_session(api.port, site)
        rid = f"browser-{uuid.uuid4().hex[:12]}"
        body = {"session_id": sid, "events": [
            {"seq": i, "event_type": "page_view" if i == 0 else "click", "timestamp": now_iso(-5),
             "page_url": f"{site['origin']}/"} for i in range(3)]}
        status, headers, _ = http_call(api.port, "POST", "/api/v1/track", body,
                                       headers={**site["write"], "X-Request-Id": rid})
        assert status == 201
        email = make_user(db_url, site["account_id"])
        with chromium() as browser:
            page = browser.new_page()
            page.goto(f"{api.url}/dashboard/login")
            page.fill("input[name=email]", email)
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url("**/dashboard/sessions**")
            page.goto(f"{api.url}/dashboard/pipeline")
            page.fill("#pipeline-q", rid)

            def found():  # the trace is written within ~2 s: search again until it is there
                page.click("form[role=search] button[type=submit]")
                page.wait_for_load_state()
                return page.locator(f'tr[data-request-id="{rid}"]').count() == 1

            wait_for(found, timeout=30, what="the batch on the pipeline page", page=page)
            row = page.locator(f'tr[data-request-id="{rid}"]')
            assert row.locator("td.stage[data-stage=committed]").inner_text().endswith(" ms")
            assert row.locator("td.stage[data-stage=counted]").inner_text().endswith(" ms")
            assert "201" in row.inner_text()
            assert page.locator("tr.batch").count() == 1  # only the searched batch
    finally:
        api.stop()
