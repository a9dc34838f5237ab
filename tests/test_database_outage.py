"""The database goes away and comes back: every request answers 503 + Retry-After with
the JSON error shape (never a 500), nothing half-written stays, and once the database
is back the same requests succeed and re-sent batches are stored exactly once.

This module runs its own throw-away TimescaleDB cluster (it stops it), not the
session's shared one.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import falcon.testing
import psycopg
import pytest

from conftest import new_account, start_cluster, token_flow
from hindsight.app import create_app, prepare_database
from hindsight.db import create_pool
from hindsight.migrate import migrate
from hindsight.settings import Settings

POOL_TIMEOUT = 0.5


@pytest.fixture(scope="module")
def outage_db():
    server = start_cluster()
    try:
        migrate(server.url())
        yield server
    finally:
        server.stop()  # terminate + remove the data directory


@pytest.fixture(scope="module")
def outage_pool(outage_db):
    settings = Settings(database_url=outage_db.url(), rate_limit_per_minute=0,
                        pool_min=1, pool_max=2, pool_timeout=POOL_TIMEOUT)
    pool = create_pool(settings)
    prepare_database(pool)
    yield settings, pool
    pool.close(timeout=2)


@pytest.fixture(scope="module")
def outage_client(outage_pool):
    settings, pool = outage_pool
    return falcon.testing.TestClient(create_app(settings, pool))


@pytest.fixture
def db_up(outage_db, outage_pool):
    """Each test starts and ends with the database running and no broken connection
    left in the pool, whatever happened in the test before."""
    if not outage_db.is_alive():
        outage_db.start()
    wait_until_accepting(outage_db.url())
    outage_pool[1].check()
    yield outage_db
    if not outage_db.is_alive():
        outage_db.start()


class Site:
    def __init__(self, client, url: str) -> None:
        self.account = new_account(url)
        self.origin = f"https://{self.account['domain']}"
        self.token = token_flow(client, self.account, self.origin)
        self.write = {"Authorization": f"Bearer {self.token}", "Origin": self.origin}
        self.read = {"Authorization": f"Bearer {self.account['api_key']}"}


def batch(session_id: str, first_seq: int, n: int = 20) -> dict:
    base = datetime.now(UTC) - timedelta(minutes=1)
    # Built once and re-sent unchanged, as the tracker does.
    return {"session_id": session_id, "events": [
        {"seq": s, "timestamp": (base + timedelta(milliseconds=s)).isoformat(),
         "event_type": "click" if s % 2 else "scroll"}
        for s in range(first_seq, first_seq + n)]}


def assert_unavailable(resp) -> None:
    assert resp.status_code == 503, (resp.status_code, resp.text)
    assert int(resp.headers["Retry-After"]) > 0
    assert set(resp.json) == {"error", "description", "fields"}, resp.json
    assert resp.json["error"] and resp.json["description"]
    assert resp.json["fields"] == {}


def health_unavailable(resp) -> None:
    """/health answers its own status document, not the error shape, when the database is down."""
    assert resp.status_code == 503, resp.text
    assert resp.json["status"] == "unavailable"
    assert int(resp.headers["Retry-After"]) > 0


def until_ok(call, attempts: int = 20, check=None):
    """Retry like the tracker after Retry-After (shortened): every failure must be a 503
    with the error shape (or `check`); return the first 2xx and how many 503s came before it."""
    for i in range(attempts):
        resp = call()
        if 200 <= resp.status_code < 300:
            return resp, i
        (check or assert_unavailable)(resp)
        time.sleep(0.1)
    raise AssertionError(f"still failing after {attempts} attempts: {resp.status_code} {resp.text}")


def stored(url: str, session_id: str) -> tuple[int, int, int]:
    """(rows, distinct seqs, sessions.event_count) of a session."""
    with psycopg.connect(url) as c:
        rows, distinct = c.execute("SELECT count(*), count(DISTINCT seq) FROM events WHERE session_id = %s",
                                   (session_id,)).fetchone()
        (count,) = c.execute("SELECT event_count FROM sessions WHERE session_id = %s",
                             (session_id,)).fetchone()
    return rows, distinct, count


def new_session(client, site: Site) -> str:
    resp = client.simulate_post("/api/v1/sessions", json={"page_url": f"{site.origin}/"},
                                headers=site.write)
    assert resp.status_code == 201, resp.json
    return resp.json["session_id"]


def track_killed_mid_statement(client, url: str, site: Site, body: dict, kill) -> object:
    """POST the batch while its session row is locked, so its statement blocks inside
    the transaction after its events were inserted; then `kill(backend_pid)` and
    return the response."""
    result = {}
    admin = psycopg.connect(url)
    try:
        admin.execute("SELECT 1 FROM sessions WHERE session_id = %s FOR UPDATE",
                      (body["session_id"],))
        worker = threading.Thread(target=lambda: result.setdefault(
            "resp", client.simulate_post("/api/v1/track", json=body, headers=site.write)))
        worker.start()
        with psycopg.connect(url, autocommit=True) as watcher:
            deadline = time.monotonic() + 10
            while True:
                row = watcher.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = 'hindsight' "
                    "AND wait_event_type = 'Lock' AND query LIKE '%INSERT INTO events%'"
                ).fetchone()
                if row:
                    break
                assert time.monotonic() < deadline, "the track request never reached the lock"
                time.sleep(0.02)
            kill(watcher, row[0])
        worker.join(timeout=15)
        assert not worker.is_alive(), "the request hung after its backend died"
    finally:
        try:
            admin.close()  # rolls back; after a backend crash it is already gone
        except psycopg.Error:
            pass
    return result["resp"]


def terminate_backend(conn, pid: int) -> None:
    assert conn.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]


def sigkill_backend(conn, pid: int) -> None:
    # A crashed backend: no goodbye message, and the postmaster resets every
    # other backend and runs crash recovery (connections are refused meanwhile).
    os.kill(pid, signal.SIGKILL)
    # Wait until the reset has begun: it ends this very connection too.
    deadline = time.monotonic() + 10
    with pytest.raises(psycopg.OperationalError):
        while time.monotonic() < deadline:
            conn.execute("SELECT 1")
            time.sleep(0.02)


def wait_until_accepting(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            psycopg.connect(url, connect_timeout=2).close()
            return
        except psycopg.OperationalError:
            assert time.monotonic() < deadline, "the database did not come back"
            time.sleep(0.1)


@pytest.mark.slow
def test_connection_lost_mid_request_is_a_503_and_nothing_is_half_stored(outage_client, db_up):
    client, url = outage_client, db_up.url()
    site = Site(client, url)
    sid = new_session(client, site)
    resp = client.simulate_post("/api/v1/track", json=batch(sid, 0), headers=site.write)
    assert resp.status_code == 201 and resp.json["count"] == 20, resp.json

    # 1. The backend is terminated (pg_terminate_backend: an AdminShutdown message).
    second = batch(sid, 20)
    assert_unavailable(track_killed_mid_statement(client, url, site, second, terminate_backend))
    assert stored(url, sid) == (20, 20, 20), "the interrupted batch left rows or counts behind"
    # The broken connection was dropped by the pool: the re-send is stored, once.
    resp = client.simulate_post("/api/v1/track", json=second, headers=site.write)
    assert resp.status_code == 201 and resp.json["count"] == 20, resp.json
    resp = client.simulate_post("/api/v1/track", json=second, headers=site.write)
    assert resp.status_code == 201 and resp.json["count"] == 0, resp.json
    assert stored(url, sid) == (40, 40, 40)

    # 2. The backend crashes (SIGKILL): the socket just closes, then the whole server
    # resets and refuses connections during crash recovery.
    third = batch(sid, 40)
    assert_unavailable(track_killed_mid_statement(client, url, site, third, sigkill_backend))
    wait_until_accepting(url)
    assert stored(url, sid) == (40, 40, 40), "the crashed batch left rows or counts behind"
    resp, crash_503s = until_ok(lambda: client.simulate_post("/api/v1/track", json=third,
                                                             headers=site.write))
    assert resp.json["count"] == 20, resp.json
    assert stored(url, sid) == (60, 60, 60)

    # 3. Every pooled connection killed while idle (a database restart between requests):
    # the next requests answer 503 or succeed, never 500.
    with psycopg.connect(url, autocommit=True) as killer:
        killed = killer.execute("SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                                "WHERE application_name = 'hindsight'").fetchone()[0]
    assert killed >= 1
    fourth = batch(sid, 60)
    resp, idle_503s = until_ok(lambda: client.simulate_post("/api/v1/track", json=fourth,
                                                            headers=site.write))
    assert resp.json["count"] == 20, resp.json
    assert stored(url, sid) == (80, 80, 80)
    print(f"\nafter the backend crash: {crash_503s} x 503 before the 201; after killing "
          f"{killed} idle connection(s): {idle_503s} x 503 before the 201")


@pytest.mark.slow
def test_database_stopped_answers_503_then_recovers(outage_client, db_up):
    client, url = outage_client, db_up.url()
    site = Site(client, url)
    sid = new_session(client, site)
    assert client.simulate_post("/api/v1/track", json=batch(sid, 0),
                                headers=site.write).status_code == 201
    port, data_dir = db_up.settings["port"], db_up.get_data_directory()
    widget_jwt = client.simulate_get(f"/site/account/{site.account['account_id']}/widgets",
                                     headers={"Origin": site.origin}).json["widgets"][0]["token"]
    assert client.simulate_get("/health").status_code == 200

    db_up.terminate()  # fast shutdown of the postmaster; the data directory stays
    assert not db_up.is_alive()
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(url, connect_timeout=2).close()

    t0 = time.monotonic()
    failed_batch = batch(sid, 20)
    late_session = str(uuid.uuid4())
    acc = site.account
    requests = {
        "POST /api/v1/track": lambda: client.simulate_post(
            "/api/v1/track", json=failed_batch, headers=site.write),
        "POST /api/v1/sessions": lambda: client.simulate_post(
            "/api/v1/sessions", json={"session_id": late_session, "page_url": f"{site.origin}/"},
            headers=site.write),
        "GET /api/v1/sessions": lambda: client.simulate_get("/api/v1/sessions", headers=site.read),
        "GET /api/v1/sessions/{id}/events": lambda: client.simulate_get(
            f"/api/v1/sessions/{sid}/events", headers=site.read),
        "GET widgets": lambda: client.simulate_get(
            f"/site/account/{acc['account_id']}/widgets", headers={"Origin": site.origin}),
        "GET account_statistics": lambda: client.simulate_get(
            f"/site/widget/{acc['widget_id']}/account_statistics",
            headers={"Authorization": f"Bearer {widget_jwt}", "Origin": site.origin}),
        "OPTIONS preflight": lambda: client.simulate_options(
            "/api/v1/track", headers={"Origin": site.origin,
                                      "Access-Control-Request-Method": "POST"}),
    }
    for name, call in requests.items():
        resp = call()
        assert resp.status_code == 503, (name, resp.status_code, resp.text)
        assert_unavailable(resp)
    health = client.simulate_get("/health")
    assert health.status_code == 503, health.text
    assert health.json["status"] == "unavailable"
    assert int(health.headers["Retry-After"]) > 0
    outage_seconds = time.monotonic() - t0

    db_up.start()  # same port, same data directory
    assert (db_up.settings["port"], db_up.get_data_directory()) == (port, data_dir)
    assert db_up.url() == url

    t1 = time.monotonic()
    health, failures = until_ok(lambda: client.simulate_get("/health"), check=health_unavailable)
    assert health.json["status"] == "ok"
    # The data from before the restart is there (the cluster was not re-initialized).
    assert stored(url, sid) == (20, 20, 20)

    # The same requests now succeed; the batch that got a 503 is stored once.
    resp, _ = until_ok(requests["POST /api/v1/track"])
    assert resp.status_code == 201 and resp.json["count"] == 20, resp.json
    again = requests["POST /api/v1/track"]()
    assert again.status_code == 201 and again.json["count"] == 0, again.json
    assert stored(url, sid) == (40, 40, 40)

    resp, _ = until_ok(requests["POST /api/v1/sessions"])
    assert resp.status_code == 201 and resp.json["session_id"] == late_session, resp.json
    assert requests["POST /api/v1/sessions"]().status_code == 200  # re-sent: the same session

    listing, _ = until_ok(requests["GET /api/v1/sessions"])
    assert sorted(s["session_id"] for s in listing.json["data"]) == sorted([sid, late_session])
    assert {s["session_id"]: s["event_count"] for s in listing.json["data"]} == {
        sid: 40, late_session: 0}
    events, _ = until_ok(requests["GET /api/v1/sessions/{id}/events"])
    assert [e["seq"] for e in events.json["data"]] == list(range(40))
    widgets, _ = until_ok(requests["GET widgets"])
    assert widgets.json["widgets"]
    stats, _ = until_ok(requests["GET account_statistics"])
    assert stats.json["token"]
    preflight, _ = until_ok(requests["OPTIONS preflight"])
    assert preflight.status_code == 204
    assert preflight.headers["Access-Control-Allow-Origin"] == site.origin
    print(f"\noutage requests took {outage_seconds:.1f}s (pool timeout {POOL_TIMEOUT}s); "
          f"recovered {time.monotonic() - t1:.2f}s after restart, {failures} x 503 first")
