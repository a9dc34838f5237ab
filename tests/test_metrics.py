"""GET /metrics against a real `hindsight serve` with two workers: real load through it
(event batches, re-sent batches, refused writes), then a scrape parsed with
prometheus_client's own parser whose numbers must match the load, summed over workers
(prometheus_client's multiprocess mode)."""

from __future__ import annotations

import http.client
import os
import signal
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import new_account
from harness import ServeProcess, group_members, http_call, site_writer, wait_for

KEY = "metrics-test-key"
BASE = datetime.now(UTC) - timedelta(seconds=30)


@pytest.fixture(scope="module")
def server(db_url):
    serve = ServeProcess(db_url, workers=2, env={"HINDSIGHT_METRICS_KEY": KEY}).start()
    yield serve
    serve.stop()


def site_over_http(port: int, db_url: str) -> dict:
    """An account and a statistics token, through the real site flow over HTTP."""
    account = new_account(db_url)
    writer = site_writer(port, account)
    return {**account, "origin": writer["origin"], "token": writer["token"], "write": writer["write"]}


def new_session(port: int, site: dict) -> str:
    status, _, body = http_call(port, "POST", "/api/v1/sessions", {"page_url": f"{site['origin']}/"},
                                headers=site["write"])
    assert status == 201, body
    return body["session_id"]


def batch(session_id: str, first_seq: int, n: int) -> dict:
    base = BASE  # the same event is the same key (session, timestamp, seq) when re-sent
    return {"session_id": session_id, "events": [
        {"seq": first_seq + i, "event_type": "click" if i % 2 else "page_view",
         "timestamp": (base + timedelta(milliseconds=i)).isoformat(), "page_url": "https://x.example/p"}
        for i in range(n)]}


def scrape(port: int) -> dict[str, list]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/metrics", headers={"Authorization": f"Bearer {KEY}"})
        resp = conn.getresponse()
        text = resp.read().decode()
        assert resp.status == 200, text
        assert resp.getheader("Content-Type", "").startswith("text/plain"), resp.getheader("Content-Type")
    finally:
        conn.close()
    families: dict[str, list] = {}
    for family in text_string_to_metric_families(text):
        families.setdefault(family.name, []).extend(family.samples)
    return families


def value(families: dict, name: str, **labels) -> float:
    return sum(s.value for fam in families.values() for s in fam
               if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_metrics_needs_the_key(server):
    assert http_call(server.port, "GET", "/metrics")[0] == 401
    assert http_call(server.port, "GET", "/metrics", headers={"Authorization": "Bearer wrong"})[0] == 401


def test_metrics_count_the_load_of_every_worker(server, db_url):
    port = server.port
    before = scrape(port)
    site = site_over_http(port, db_url)
    sessions = [new_session(port, site) for _ in range(3)]
    sent = stored = 0
    for sid in sessions:
        for k in range(4):  # 12 batches of 25 on fresh connections: both workers take some
            status, _, body = http_call(port, "POST", "/api/v1/track", batch(sid, k * 25, 25),
                                              headers=site["write"])
            assert status == 201, body
            sent += 25
            stored += body["count"]
    # A re-sent batch: 25 duplicates, nothing stored.
    status, _, body = http_call(port, "POST", "/api/v1/track", batch(sessions[0], 0, 25), headers=site["write"])
    assert status == 201 and body["count"] == 0, body
    # Refused writes: a token nobody issued (401), a bad field (400).
    unknown = {"Authorization": f"Bearer {uuid.uuid4()}", "Origin": site["origin"]}
    assert http_call(port, "POST", "/api/v1/track", batch(sessions[0], 500, 2), headers=unknown)[0] == 401
    bad = batch(sessions[0], 600, 1)
    bad["events"][0]["event_type"] = 42
    assert http_call(port, "POST", "/api/v1/track", bad, headers=site["write"])[0] == 400

    after = scrape(port)
    delta = lambda name, **labels: value(after, name, **labels) - value(before, name, **labels)  # noqa: E731
    assert stored == sent == 300
    assert delta("hindsight_events_stored_total") == 300
    assert delta("hindsight_events_duplicate_total") == 25
    assert delta("hindsight_batches_stored_total") == 13
    assert delta("hindsight_rejections_total", status="401", reason="token_unknown") == 1
    assert delta("hindsight_rejections_total", status="400", reason="invalid_fields") == 1
    route = "/api/v1/track"
    assert delta("hindsight_http_request_duration_seconds_count", route=route, status="201") == 13
    assert delta("hindsight_http_request_duration_seconds_count", route="/api/v1/sessions", status="201") == 3
    assert delta("hindsight_http_request_body_bytes_total", route=route) > 13 * 25 * 50
    # Both workers' samples are in the scrape: the multiprocess files of two processes.
    # (The pool gauges add up over the live workers: at least one connection each.)
    # (Each worker samples its pool every 5 s and when it answers a scrape: a worker that
    # has not sampled yet is not in the sum, so wait for a scrape that has both.)
    def both_pools():
        families = scrape(port)
        both = (value(families, "hindsight_pool_connections") >= 2
                and value(families, "hindsight_pool_connections_max") == 2 * 8)
        return families if both else None

    pools = wait_for(both_pools, what="both workers' pools (2 x HINDSIGHT_POOL_MAX 8)")
    assert value(pools, "hindsight_pool_requests_waiting") >= 0
    # Scheduler tasks run in every worker (a freshly booted worker's scheduler may not have
    # reached its first run yet: wait for a scrape that has one); the database's values are
    # read at scrape time.
    ran = wait_for(lambda: (lambda f: f if value(f, "hindsight_scheduler_task_runs_total",
                                                  task="stacks.flush_due") > 0 else None)(scrape(port)),
                   what="a run of stacks.flush_due")
    assert value(ran, "hindsight_scheduler_task_last_success_timestamp_seconds", task="stacks.flush_due") > 0
    assert value(after, "hindsight_database_up") == 1
    assert value(after, "hindsight_database_size_bytes") > 1_000_000
    assert "hindsight_stacks_pending_events" in after
    assert "hindsight_live_viewers" in after
    assert value(after, "hindsight_lifecycle_job_failures") >= 0


def test_a_dead_workers_gauges_stop_counting_its_counters_stay(server, db_url):
    port = server.port
    site = site_over_http(port, db_url)
    sid = new_session(port, site)
    for k in range(6):
        assert http_call(port, "POST", "/api/v1/track", batch(sid, 1000 + k * 10, 10), headers=site["write"])[0] == 201
    before = scrape(port)
    assert value(before, "hindsight_pool_connections_max") == 2 * 8
    master = server.proc.pid
    workers = [pid for pid in group_members(master) if pid != master]
    assert len(workers) == 2
    os.kill(workers[0], signal.SIGKILL)  # gunicorn forks a new one (child_exit marks the dead)
    wait_for(lambda: len(group_members(master)) == 3 and workers[0] not in group_members(master),
             what="a new worker")
    # Without mark_process_dead the dead worker's pool gauges would still be summed (3 x 8).
    after = wait_for(lambda: (lambda f: f if value(f, "hindsight_pool_connections_max") == 2 * 8
                              and value(f, "hindsight_scheduler_task_runs_total", task="metrics.pool") > 0
                              else None)(scrape(port)), what="the new worker's pool gauges")
    assert value(after, "hindsight_pool_connections_max") == 16
    # What the dead worker counted is still counted.
    assert value(after, "hindsight_events_stored_total") >= value(before, "hindsight_events_stored_total")
