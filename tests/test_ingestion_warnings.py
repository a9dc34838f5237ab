"""Ingestion warnings per account (issue 13): refused writes grouped by (account, status,
reason) with a count, first and last seen and a sample (field names, never the body),
written by the `observe.flush` job, readable by the account's analysts only (API and
account page), bounded in time and rows by `observe.prune`."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta

import falcon.testing
import psycopg
import pytest
from dashboard_support import logged_in

from conftest import new_account, now_iso, token_flow
from hindsight.app import create_app
from hindsight.observe.warnings import classify, field_names
from hindsight.scheduler import Scheduler


@pytest.fixture
def rig(settings, pool):
    scheduler = Scheduler()  # not started: the test runs the jobs
    return falcon.testing.TestClient(create_app(settings, pool, scheduler=scheduler)), scheduler


def make_site(client, db_url) -> dict:
    account = new_account(db_url)
    origin = f"https://{account['domain']}"
    token = token_flow(client, account, origin)
    resp = client.simulate_post("/api/v1/sessions", json={"page_url": f"{origin}/"},
                                headers={"Authorization": f"Bearer {token}", "Origin": origin})
    assert resp.status_code == 201
    return {**account, "origin": origin, "token": token, "session_id": resp.json["session_id"],
            "write": {"Authorization": f"Bearer {token}", "Origin": origin},
            "read": {"Authorization": f"Bearer {account['api_key']}"}}


def track(client, site, headers=None, **change):
    body = {"session_id": site["session_id"], "events": [
        {"seq": 1, "event_type": "page_view", "timestamp": now_iso(-5), "page_url": f"{site['origin']}/"}]}
    body.update(change)
    return client.simulate_post("/api/v1/track", json=body, headers=headers or site["write"])


def warnings_of(client, site) -> dict[tuple[int, str], dict]:
    resp = client.simulate_get("/api/v1/ingestion/warnings", headers=site["read"])
    assert resp.status_code == 200, resp.text
    assert resp.json["kept_days"] == 7
    return {(w["status"], w["reason"]): w for w in resp.json["warnings"]}


def test_reasons():
    assert classify(401, "This statistics token has expired; request a new one.") == "token_expired"
    assert classify(401, "Unknown statistics token; request a new one.") == "token_unknown"
    assert classify(403, "Statistics are disabled for this host (usage limit reached or switched off).") \
        == "host_disabled"
    assert classify(403, "This token writes for a.example, not for this origin.") == "origin_mismatch"
    assert classify(400, "Invalid fields: events.", {"events": {}}) == "invalid_fields"
    assert classify(413, "The request body is 9 bytes") == "too_large"
    assert classify(429, "More than 5 requests") == "rate_limited"
    assert classify(418, "?") == "http_418"
    assert field_names({"events": {"0": {"event_type": ["x"]}, "7": {"event_type": ["y"], "seq": ["z"]}},
                        "token": ["bad"]}) == ["events.*.event_type", "events.*.seq", "token"]


def test_refused_writes_become_the_accounts_warnings(rig, db_url):
    client, scheduler = rig
    a, b = make_site(client, db_url), make_site(client, db_url)
    assert track(client, a).status_code == 201  # accepted: no warning
    for _ in range(3):  # 400, three times: one group counted 3
        resp = track(client, a, events=[{"seq": 1, "event_type": 7, "timestamp": now_iso(),
                                         "page_url": "SECRET-VALUE"}])
        assert resp.status_code == 400
    big = json.dumps({"session_id": a["session_id"], "events": [], "pad": "x" * 1_100_000})
    assert client.simulate_post("/api/v1/track", body=big, headers={
        **a["write"], "Content-Type": "application/json"}).status_code == 413
    assert track(client, a, headers={**a["write"], "Origin": "https://elsewhere.example"}).status_code == 403
    with psycopg.connect(db_url, autocommit=True) as conn:  # the token expires ...
        conn.execute("UPDATE statistics_tokens SET expires_at = now() - interval '1 hour' WHERE token = %s",
                     (a["token"],))
    assert track(client, a).status_code == 401
    with psycopg.connect(db_url, autocommit=True) as conn:  # ... and the host is switched off
        conn.execute("UPDATE statistics_flags SET enabled = false WHERE account_id = %s", (a["account_id"],))
    assert track(client, a).status_code == 403
    # A token nobody issued is nobody's warning.
    stranger = {"Authorization": f"Bearer {uuid.uuid4()}", "Origin": a["origin"]}
    assert track(client, a, headers=stranger).status_code == 401

    assert warnings_of(client, a) == {}  # nothing before the flush: written every 2 s
    scheduler.run_now("observe.flush")
    got = warnings_of(client, a)
    assert set(got) == {(400, "invalid_fields"), (413, "too_large"), (403, "origin_mismatch"),
                        (401, "token_expired"), (403, "host_disabled")}, got
    invalid = got[(400, "invalid_fields")]
    assert invalid["count"] == 3 and invalid["first_seen"] <= invalid["last_seen"]
    assert invalid["sample"]["fields"] == ["events.*.event_type"]
    assert invalid["sample"]["route"] == "/api/v1/track" and invalid["sample"]["request_id"]
    assert "SECRET-VALUE" not in json.dumps(list(got.values()))  # field names, never the body
    assert got[(401, "token_expired")]["count"] == 1
    assert warnings_of(client, b) == {}  # tenants are isolated

    # Another flush adds up into the same groups.
    track(client, a, events=[{"seq": 1, "event_type": 7, "timestamp": now_iso(), "page_url": "x"}])
    scheduler.run_now("observe.flush")
    assert warnings_of(client, a)[(400, "invalid_fields")]["count"] == 4

    # The account page shows them, and the live page those of the last hour.
    page = account_page(client, db_url, a)
    assert "token_expired" in page and "host_disabled" in page and "events.*.event_type" in page
    analyst = logged_in(client, db_url, a["account_id"])
    live = analyst.get("/dashboard/live")
    assert live.status_code == 200 and 'id="live-warnings"' in live.text and "token_expired" in live.text
    twin = analyst.get("/dashboard/live", format="json").json
    assert {(w["status"], w["reason"]) for w in twin["warnings"]} == set(warnings_of(client, a))
    # ... and the refused writes of the last 10 minutes in the rate, per 10 seconds.
    refused = sum(b["rejected"] for b in twin["rate"]["series"])
    assert refused == sum(w["count"] for w in warnings_of(client, a).values()), twin["rate"]
    assert 'class="refused"' in live.text and 'id="rate-refused"' in live.text
    other = logged_in(client, db_url, b["account_id"]).get("/dashboard/live")
    assert "live-warnings-none" in other.text and "token_expired" not in other.text


def account_page(client, db_url, site) -> str:
    resp = logged_in(client, db_url, site["account_id"]).get("/dashboard/account")
    assert resp.status_code == 200, resp.text
    return resp.text


def test_a_flood_is_one_group_and_pruning_bounds_the_table(rig, db_url):
    client, scheduler = rig
    a = make_site(client, db_url)
    for _ in range(150):
        assert track(client, a, headers={**a["write"], "Origin": "https://flood.example"}).status_code == 403
    scheduler.run_now("observe.flush")  # 150 refusals, one group, one upsert
    assert warnings_of(client, a)[(403, "origin_mismatch")]["count"] == 150

    # Pruning: older than 7 days, or beyond the newest 100 groups of an account.
    now = datetime.now(UTC)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO ingestion_warnings (account_id, status, reason, count, first_seen, last_seen) "
            "SELECT %s, 400, 'r' || i, 1, %s - make_interval(mins => i), %s - make_interval(mins => i) "
            "FROM generate_series(1, 120) i", (a["account_id"], now, now))
        conn.execute(
            "INSERT INTO ingestion_warnings (account_id, status, reason, count, first_seen, last_seen) "
            "VALUES (%s, 401, 'old', 1, %s, %s)", (a["account_id"], now - timedelta(days=9), now - timedelta(days=8)))
        scheduler.run_now("observe.prune")
        rows = conn.execute("SELECT reason FROM ingestion_warnings WHERE account_id = %s",
                            (a["account_id"],)).fetchall()
    reasons = {r[0] for r in rows}
    assert len(rows) == 100 and "old" not in reasons and "origin_mismatch" in reasons and "r120" not in reasons
