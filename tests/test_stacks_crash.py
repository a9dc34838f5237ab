"""The statistics stacks with real server processes: kill -9 at any moment (including in
the middle of a flush) loses no count and doubles none; two servers sharing tokens keep
exact totals, enforce the limit, and drop a token revoked by the other within a cycle.

Real processes only: `hindsight serve` (gunicorn) against the session's TimescaleDB
cluster, HTTP over loopback, the real site token flow.
"""

from __future__ import annotations

import http.client
import itertools
import os
import subprocess
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from conftest import new_account
from harness import HINDSIGHT, ServeProcess, http_call

INTERNAL_KEY = "crash-internal-key"
KINDS = ["page_view", "click", "mouse_move", "click", "scroll", "input", "click", "keypress"]


def call(port: int, method: str, path: str, body=None, headers=None, timeout=10.0):
    """One request on a fresh connection; (status, parsed JSON or None)."""
    status, _, reply = http_call(port, method, path, body, headers, timeout)
    return status, reply


def stack_server(db_url: str, workers: int, **settings: str) -> ServeProcess:
    """`hindsight serve` with the internal API key and the given (fast) stack settings."""
    return ServeProcess(db_url, workers=workers,
                        env={"HINDSIGHT_INTERNAL_API_KEY": INTERNAL_KEY, **settings})


def site_token(port: int, account: dict, origin: str) -> str:
    status, widgets = call(port, "GET", f"/site/account/{account['account_id']}/widgets",
                           headers={"Origin": origin})
    assert status == 200, widgets
    status, stats = call(port, "GET", f"/site/widget/{account['widget_id']}/account_statistics",
                         headers={"Authorization": f"Bearer {widgets['widgets'][0]['token']}", "Origin": origin})
    assert status == 200, stats
    return stats["token"]


def settle(db_url: str, account_ids: list[str], timeout: float = 30.0) -> None:
    """Wait until the flushes have taken every ledger row of these accounts."""
    deadline = time.monotonic() + timeout
    while True:
        with psycopg.connect(db_url) as c:
            left = c.execute("SELECT count(*) FROM stack_pending WHERE account_id = ANY(%s::uuid[])",
                             (account_ids,)).fetchone()[0]
        if left == 0:
            return
        assert time.monotonic() < deadline, f"{left} ledger rows never flushed"
        time.sleep(0.1)


def check_counted_once(db_url: str, account_id: str) -> dict:
    """Usage equals what is stored; every page view and click is one journey step."""
    with psycopg.connect(db_url) as c:
        q = lambda sql: c.execute(sql, (account_id,)).fetchone()[0]  # noqa: E731
        stored = q("SELECT count(*) FROM events WHERE account_id = %s") + \
            q("SELECT count(*) FROM sessions WHERE account_id = %s")
        usage = q("SELECT coalesce(sum(amount), 0) FROM usage_log WHERE account_id = %s")
        period = q("SELECT coalesce(sum(amount), 0) FROM usage_periods WHERE account_id = %s")
        counters = q("SELECT coalesce(sum(total_events), 0) FROM statistics_counters WHERE account_id = %s")
        flushes = q("SELECT count(*) FROM statistics_counters WHERE account_id = %s")
        wrong_steps = c.execute(
            """
            WITH expected AS (
                SELECT session_id, seq FROM events
                WHERE account_id = %(a)s AND event_type IN ('page_view', 'click')
                UNION ALL SELECT session_id, NULL FROM sessions WHERE account_id = %(a)s
            ), actual AS (
                SELECT j.session_id, s.seq FROM journey_steps s JOIN journeys j USING (journey_id)
                WHERE j.account_id = %(a)s
            )
            SELECT (SELECT count(*) FROM (SELECT * FROM expected EXCEPT ALL SELECT * FROM actual) x)
                 + (SELECT count(*) FROM (SELECT * FROM actual EXCEPT ALL SELECT * FROM expected) y)
            """, {"a": account_id}).fetchone()[0]
        gaps = c.execute(
            """
            SELECT count(*) FROM (
                SELECT journey_id, max(step) AS top, count(*) AS n FROM journey_steps
                WHERE journey_id IN (SELECT journey_id FROM journeys WHERE account_id = %s)
                GROUP BY journey_id) j
            WHERE top <> n
            """, (account_id,)).fetchone()[0]
    assert usage == period == counters == stored, (account_id, usage, period, counters, stored)
    assert wrong_steps == 0 and gaps == 0, (account_id, wrong_steps, gaps)
    return {"stored": stored, "flushes": flushes}


class Writers:
    """Client threads that send sessions and batches, re-sending whatever got no 2xx
    (the server may be dead) until it is acknowledged: a tracker that never gives up."""

    def __init__(self, port: int, sites: list[dict], per_site: int = 2) -> None:
        self.port = port
        self.sites = sites
        self.stop = threading.Event()
        self.acked = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run, args=(site, n), daemon=True)
                        for site in sites for n in range(per_site)]

    def _send(self, method: str, path: str, body: dict, headers: dict) -> None:
        while True:  # until acknowledged; only a test bug gets anything but 2xx or no answer
            try:
                status, reply = call(self.port, method, path, body=body, headers=headers, timeout=5)
            except (OSError, http.client.HTTPException):
                time.sleep(0.05)
                continue
            assert 200 <= status < 300, (status, reply)
            with self.lock:
                self.acked += 1
            return

    def _run(self, site: dict, n: int) -> None:
        headers = {"Authorization": f"Bearer {site['token']}", "Origin": site["origin"]}
        base = datetime.now(UTC) - timedelta(minutes=10)
        for b in itertools.count():
            if self.stop.is_set():
                return
            if b % 5 == 0:
                session_id = str(uuid.uuid4())
                self._send("POST", "/api/v1/sessions", {"session_id": session_id, "page_url": site["origin"]},
                           headers)
            events = [{"seq": b * 8 + i, "timestamp": (base + timedelta(milliseconds=b * 8 + i)).isoformat(),
                       "event_type": kind, "page_url": f"{site['origin']}/{n}/{b}"} for i, kind in enumerate(KINDS)]
            self._send("POST", "/api/v1/track", {"session_id": session_id, "events": events}, headers)

    def start(self) -> None:
        for t in self.threads:
            t.start()

    def wait_for(self, more: int, timeout: float = 20.0) -> None:
        target = self.acked + more
        deadline = time.monotonic() + timeout
        while self.acked < target:
            assert time.monotonic() < deadline, "the load stalled"
            time.sleep(0.01)

    def finish(self) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)
        assert not any(t.is_alive() for t in self.threads)


def wait_for_blocked_flush(db_url: str, timeout: float = 20.0) -> int:
    """Wait until a server's flush is waiting on our lock on usage_periods, i.e. is in the
    middle of its transaction (ledger rows taken, journey steps written, usage not yet)."""
    deadline = time.monotonic() + timeout
    while True:
        with psycopg.connect(db_url, autocommit=True) as c:
            n = c.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'hindsight' "
                "AND wait_event_type = 'Lock' AND query LIKE '%%usage_periods%%'").fetchone()[0]
        if n:
            return n
        assert time.monotonic() < deadline, "no flush reached the usage step"
        time.sleep(0.02)


@pytest.mark.slow
def test_kill9_at_any_moment_counts_every_committed_event_once(db_url):
    server = stack_server(db_url, workers=2, HINDSIGHT_STACKS_MONITOR_INTERVAL_SECONDS="0.25",
                    HINDSIGHT_STACKS_EVENT_THRESHOLD="30", HINDSIGHT_STACKS_IDLE_SECONDS="1")
    server.start()
    try:
        sites = []
        for _ in range(3):
            account = new_account(db_url)
            origin = f"https://{account['domain']}"
            sites.append({"account_id": account["account_id"], "origin": origin,
                          "token": site_token(server.port, account, origin)})
        writers = Writers(server.port, sites)
        writers.start()

        writers.wait_for(40)
        server.kill9()  # 1: anywhere in the load
        server.start()

        writers.wait_for(40)
        with psycopg.connect(db_url) as lock:  # 2: in the middle of a flush
            lock.execute("LOCK TABLE usage_periods IN EXCLUSIVE MODE")
            blocked = wait_for_blocked_flush(db_url)
            server.kill9()
            lock.rollback()
        assert blocked >= 1
        server.start()

        writers.wait_for(40)
        server.kill9()  # 3: anywhere again
        server.start()
        writers.wait_for(20)
        writers.finish()

        ids = [s["account_id"] for s in sites]
        settle(db_url, ids)
        results = [check_counted_once(db_url, account_id) for account_id in ids]
        assert all(r["stored"] > 0 and r["flushes"] >= 1 for r in results)
        print(f"\n3 kills (one mid-flush, {blocked} flush(es) blocked in the usage step); "
              f"per account stored = counted: {[r['stored'] for r in results]}, "
              f"flushes: {[r['flushes'] for r in results]}")
    finally:
        server.stop()


@pytest.mark.slow
def test_two_servers_sharing_tokens(db_url):
    """Two `hindsight serve` processes (think: two hosts) on one database."""
    fast = {"HINDSIGHT_STACKS_MONITOR_INTERVAL_SECONDS": "0.25", "HINDSIGHT_STACKS_EVENT_THRESHOLD": "20",
            "HINDSIGHT_STACKS_IDLE_SECONDS": "600"}
    a, b = stack_server(db_url, workers=1, **fast), stack_server(db_url, workers=1, **fast)
    a.start()
    b.start()
    try:
        # --- a token revoked through one server is dropped by the other within a cycle
        account = new_account(db_url)
        origin = f"https://{account['domain']}"
        token = site_token(a.port, account, origin)
        headers = {"Authorization": f"Bearer {token}", "Origin": origin}
        session_id = str(uuid.uuid4())
        assert call(a.port, "POST", "/api/v1/sessions", {"session_id": session_id}, headers)[0] == 201
        now = datetime.now(UTC)
        batch = {"session_id": session_id, "events": [
            {"seq": i, "timestamp": (now + timedelta(milliseconds=i)).isoformat(), "event_type": "click"}
            for i in range(5)]}
        assert call(b.port, "POST", "/api/v1/track", batch, headers)[0] == 201
        held = call(b.port, "GET", "/api/health/stacks")[1]
        assert held["statistics_server"]["total_events_in_memory"] >= 5
        dropped_before = held["idle_monitor_statistics"]["stacks_dropped_for_revoked_tokens_last_hour"]

        assert call(a.port, "DELETE", f"/api/token/{token}", headers={
            "Authorization": f"Bearer {INTERNAL_KEY}"})[0] == 204
        batch["events"][0]["seq"] = 99
        assert call(b.port, "POST", "/api/v1/track", batch, headers)[0] == 401  # refused by b at once
        deadline = time.monotonic() + 15
        while call(b.port, "GET", "/api/health/stacks")[1]["idle_monitor_statistics"][
                "stacks_dropped_for_revoked_tokens_last_hour"] == dropped_before:
            assert time.monotonic() < deadline, "b never dropped the revoked token's stack"
            time.sleep(0.05)
        settle(db_url, [account["account_id"]])
        assert check_counted_once(db_url, account["account_id"])["stored"] == 6

        # --- the monthly limit, with both servers counting the same token
        limited = new_account(db_url, limit=150)
        origin = f"https://{limited['domain']}"
        token = site_token(b.port, limited, origin)
        headers = {"Authorization": f"Bearer {token}", "Origin": origin}
        refused: dict[int, dict] = {}
        failures: list[BaseException] = []

        def send(server: ServeProcess) -> None:
            try:
                send_until_refused(server)
            except BaseException as ex:  # noqa: BLE001 - reported by the main thread
                failures.append(ex)

        def send_until_refused(server: ServeProcess) -> None:
            sid = str(uuid.uuid4())
            status, reply = call(server.port, "POST", "/api/v1/sessions", {"session_id": sid}, headers)
            assert status == 201, reply
            start = datetime.now(UTC) - timedelta(minutes=1)
            for n in range(1000):  # bounded: the limit stops it long before
                events = [{"seq": n * 10 + i, "timestamp": (start + timedelta(milliseconds=n * 10 + i)).isoformat(),
                           "event_type": KINDS[i % len(KINDS)]} for i in range(10)]
                status, reply = call(server.port, "POST", "/api/v1/track", {"session_id": sid, "events": events},
                                     headers)
                if status == 403:
                    refused[server.port] = reply
                    return
                assert status == 201, reply

        threads = [threading.Thread(target=send, args=(srv,)) for srv in (a, b)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not failures, failures
        assert set(refused) == {a.port, b.port}, "both servers must refuse once the limit is reached"
        assert all("Statistics are disabled for this host" in r["description"] for r in refused.values())
        settle(db_url, [limited["account_id"]])
        totals = check_counted_once(db_url, limited["account_id"])
        with psycopg.connect(db_url) as c:
            flag = c.execute("SELECT enabled, disabled_reason FROM statistics_flags WHERE account_id = %s",
                             (limited["account_id"],)).fetchone()
            revoked = c.execute("SELECT revoked_at IS NOT NULL FROM statistics_tokens WHERE token = %s",
                                (token,)).fetchone()[0]
        assert totals["stored"] >= 150 and flag == (False, "usage_limit") and revoked

        # --- raising the limit lets the site get a new token through the normal flow
        env = dict(os.environ, HINDSIGHT_DATABASE_URL=db_url)
        raised = subprocess.run([str(HINDSIGHT), "accounts", "set-limit", "--account", limited["account_id"],
                                 "--monthly-event-limit", "100000"], env=env, capture_output=True, text=True,
                                timeout=60)
        assert raised.returncode == 0, raised.stderr
        new_token = site_token(a.port, limited, origin)
        assert new_token != token
        sid = str(uuid.uuid4())
        assert call(b.port, "POST", "/api/v1/sessions", {"session_id": sid},
                    {"Authorization": f"Bearer {new_token}", "Origin": origin})[0] == 201
        print(f"\nlimit 150: {totals['stored']} events counted in {totals['flushes']} flushes "
              f"over two servers (the excess is what was in flight when the limit was reached)")
    finally:
        a.stop()
        b.stop()
