"""Beyond one machine (issue 15), proven with real processes on loopback: a TimescaleDB
primary, a streaming replica made with pg_basebackup -R, PgBouncer in transaction pooling
mode, two `hindsight serve` hosts and HAProxy round robin in front (tests/scale_support.py).

- PgBouncer: without `prepare_threshold=None` psycopg's prepared statements break in
  transaction pooling; with HINDSIGHT_DATABASE_POOLER=pgbouncer the API runs through it;
- reads that tolerate lag are served by the replica (paused replay: the replica answers
  without the newest session, the primary has it), its lag is in /health, and a stopped
  replica degrades to the primary (log line, /health flag) and is used again once back;
- kill -9 of one host mid-load: every batch acknowledged once, stored once, counted once
  in usage, the clients' retries succeed on the other host;
- the primary restarted under load: 503 + Retry-After while it is down, nothing lost.
"""

from __future__ import annotations

import http.client
import time
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
from scale_support import Rig, TrackerLoad, have_tools
from test_stacks_crash import check_counted_once, settle

from harness import http_call, wait_for
from hindsight.db import _configure, connection_kwargs
from hindsight.lifecycle.jobs import register
from hindsight.logins.users import authenticate, start_session
from hindsight.scheduler import Scheduler
from hindsight.settings import Settings

pytestmark = pytest.mark.slow  # a second and third cluster, PgBouncer, HAProxy, two hosts


@pytest.fixture(scope="module")
def rig():
    if have_tools() is not None:
        pytest.skip(have_tools())
    r = Rig(hosts=2, workers=1)
    try:
        r.start()
        yield r
    finally:
        r.stop()


def health(port: int) -> dict:
    status, _, body = http_call(port, "GET", "/health")
    assert status == 200, body
    return body


def caught_up(rig: Rig) -> bool:
    """The replica has replayed everything the primary had written when asked."""
    lsn = rig.primary.sql("SELECT pg_current_wal_lsn()::text")[0][0]
    return bool(rig.replica.sql("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,))[0][0])


def test_the_pooler_setting_turns_off_prepared_statements_and_session_state():
    pooled = Settings(database_url="postgresql://bouncer/db", database_pooler="pgbouncer",
                      direct_database_url="postgresql://primary/db")
    assert connection_kwargs(pooled)["prepare_threshold"] is None
    assert _configure(pooled) is None  # no SET statement_timeout on a pooled server connection
    assert "prepare_threshold" not in connection_kwargs(Settings(database_url="x"))
    assert _configure(Settings(database_url="x")) is not None
    with pytest.raises(SystemExit, match="HINDSIGHT_DATABASE_POOLER"):
        connection_kwargs(Settings(database_url="x", database_pooler="pgpool"))
    # The lifecycle jobs' advisory locks last a session: they connect to the primary directly.
    runner = register(Scheduler(), pooled.with_(lifecycle_jobs=False))
    assert runner._url == "postgresql://primary/db"
    assert register(Scheduler(), Settings(database_url="postgresql://p/db", lifecycle_jobs=False))._url \
        == "postgresql://p/db"


def test_pgbouncer_transaction_pooling_needs_prepare_threshold_none(rig):
    assert ("pool_mode", "transaction") in {(r[0], r[1]) for r in rig.bouncer.admin("SHOW CONFIG")}

    def two_clients(**kwargs) -> None:
        # A prepares its statement on a server connection; B holds that connection in a
        # transaction; A's next transaction runs on another server connection.
        with psycopg.connect(rig.bouncer.url(), **kwargs) as a, psycopg.connect(rig.bouncer.url()) as b:
            a.execute("SELECT %s::int + 1", (1,), prepare=kwargs.get("prepare_threshold", 0) is not None)
            a.commit()
            b.execute("SELECT 1")  # B now holds a server connection (its transaction is open)
            a.execute("SELECT %s::int + 1", (1,), prepare=kwargs.get("prepare_threshold", 0) is not None)
            a.commit()
            b.rollback()

    with pytest.raises(psycopg.errors.InvalidSqlStatementName):
        two_clients(prepare_threshold=0)  # psycopg's default, after 5 uses: prepared
    two_clients(prepare_threshold=None)  # HINDSIGHT_DATABASE_POOLER=pgbouncer
    # The overview sends its statements in psycopg's pipeline mode (one exchange, SET LOCAL
    # included): through PgBouncer's transaction pooling, while another client holds a server
    # connection, it answers what it answers on a direct connection to the primary.
    from hindsight.dashboard.overview import numbers
    from hindsight.db import connect

    account_id = rig.account()["account_id"]
    end = datetime.now(UTC)
    with connect(rig.primary.url()) as direct:
        expected = numbers(direct, account_id, end - timedelta(days=7), end)
    with connect(rig.bouncer.url(), prepare_threshold=None) as pooled, psycopg.connect(rig.bouncer.url()) as other:
        other.execute("SELECT 1")   # holds a server connection in its open transaction
        for _ in range(3):
            assert numbers(pooled, account_id, end - timedelta(days=7), end) == expected
            pooled.commit()
        other.rollback()
    # The hosts' API pools are PgBouncer's clients (the replica's are direct).
    clients = rig.bouncer.admin("SHOW CLIENTS")
    assert any("hindsight" in map(str, row) for row in clients), clients
    # PgBouncer passes the API's application_name on to its server connections: the live
    # stream's horizon finds the API's open transactions by it in pg_stat_activity.
    for _ in range(3):
        assert http_call(rig.port, "GET", "/health")[0] == 200
    assert rig.primary.sql("SELECT count(*) FROM pg_stat_activity WHERE application_name = 'hindsight' "
                           "AND datname = 'hindsight'")[0][0] >= 1


def test_reads_go_to_the_replica_and_its_lag_is_in_health(rig):
    account = rig.account()
    for host in rig.hosts:
        replica = health(host.port)["read_replica"]
        assert replica["configured"] and replica["reachable"] and replica["in_recovery"], replica
        assert replica["reads_on"] == "replica"
    wait_for(lambda: caught_up(rig), timeout=30, what="the replica to replay the new account")
    rig.replica.sql("SELECT pg_wal_replay_pause()")  # from now on the replica is behind
    # A dashboard login, made on the primary like any login.
    from dashboard_support import PASSWORD, make_user

    email = make_user(rig.primary.url(), account["account_id"])
    from hindsight.db import connect

    with connect(rig.primary.url()) as conn:
        user = authenticate(conn, email, PASSWORD)
        assert user is not None
        cookie = f"hs_session={start_session(conn, user, datetime.now(UTC), timedelta(hours=1))}"
    try:
        sid = str(uuid.uuid4())
        status, _, body = http_call(rig.port, "POST", "/api/v1/sessions",
                                    body={"session_id": sid, "page_url": f"{account['origin']}/"},
                                    headers=account["write"])
        assert status == 201, body  # written on the primary (through PgBouncer)
        assert rig.primary.sql("SELECT count(*) FROM sessions WHERE session_id = %s", (sid,))[0][0] == 1
        # Through the balancer, both hosts: the analysts' API and the dashboard read the
        # replica, which has not replayed the session yet; the login itself was checked
        # on the primary (the replica does not know this dashboard session either).
        for _ in range(4):
            status, _, body = http_call(rig.port, "GET", f"/api/v1/sessions/{sid}", headers=account["read"])
            assert status == 404, body
            status, _, page = http_call(rig.port, "GET", "/dashboard/sessions?format=json",
                                        headers={"Cookie": cookie, "Accept": "application/json"})
            assert status == 200, page
            assert sid not in {str(s["session_id"]) for s in page["data"]}
        assert rig.replica.sql("SELECT count(*) FROM dashboard_sessions")[0][0] < \
            rig.primary.sql("SELECT count(*) FROM dashboard_sessions")[0][0]
        # The writes' side is the primary's: the session's events are accepted meanwhile.
        status, _, body = http_call(rig.port, "POST", "/api/v1/track", headers=account["write"], body={
            "session_id": sid, "events": [{"seq": 0, "event_type": "click", "timestamp": datetime.now(UTC).isoformat(),
                                           "page_url": f"{account['origin']}/"}]})
        assert status == 201, body
        lag = wait_for(lambda: [h for h in (health(host.port)["read_replica"] for host in rig.hosts)
                                if (h["lag_seconds"] or 0) > 0] or None, timeout=15, what="a lag in /health")
        assert lag[0]["reads_on"] == "replica"
        # The pages say so: the live page (which reads the primary) gives the replica's lag,
        # the replay's tail mode how far behind the session's events may be.
        for _ in range(2):  # both hosts probed the replica in /health just above
            status, _, live = http_call(rig.port, "GET", "/dashboard/live?format=json",
                                        headers={"Cookie": cookie, "Accept": "application/json"})
            assert status == 200, live
            assert live["read_replica"]["reads_on"] == "replica", live["read_replica"]
            status, _, tail = http_call(rig.port, "GET", f"/dashboard/sessions/{sid}/live",
                                        headers={"Cookie": cookie, "Accept": "application/json"})
            assert status == 200, tail
            assert tail["behind_seconds"] > 0, tail
        conn = http.client.HTTPConnection("127.0.0.1", rig.port, timeout=10)
        conn.request("GET", "/dashboard/live", headers={"Cookie": cookie})
        page_html = conn.getresponse().read().decode()
        conn.close()
        assert 'id="read-lag"' in page_html and "the other pages read a replica" in page_html
    finally:
        rig.replica.sql("SELECT pg_wal_replay_resume()")
    wait_for(lambda: http_call(rig.port, "GET", f"/api/v1/sessions/{sid}", headers=account["read"])[0] == 200,
             timeout=30, what="the replica to replay the session")
    # The replica's own statistics: the hosts' read pools are its clients.
    readers = rig.replica.sql("SELECT count(*) FROM pg_stat_activity WHERE datname = 'hindsight' "
                              "AND application_name = 'hindsight'")[0][0]
    assert readers >= len(rig.hosts)


def test_a_stopped_replica_degrades_to_the_primary(rig):
    account = rig.account()
    sid = str(uuid.uuid4())
    status, _, body = http_call(rig.port, "POST", "/api/v1/sessions",
                                body={"session_id": sid, "page_url": f"{account['origin']}/"}, headers=account["write"])
    assert status == 201, body
    rig.replica.stop()
    try:
        # Reads keep being answered (by the primary); a read caught by the stop may get a
        # 503 with Retry-After, which clients retry.
        def read_ok() -> bool:
            status, headers, _ = http_call(rig.port, "GET", f"/api/v1/sessions/{sid}", headers=account["read"])
            assert status == 200 or (status == 503 and {k.lower() for k in headers} >= {"retry-after"}), status
            return status == 200
        for _ in range(6):
            wait_for(read_ok, timeout=20, what="a read answered by the primary")
        for host in rig.hosts:
            replica = wait_for(lambda h=host: (r := health(h.port)["read_replica"])["reads_on"] == "primary" and r,
                               timeout=20, what="/health to say reads go to the primary")
            assert replica["reachable"] is False and replica["error"], replica
            assert "read replica unreachable" in host.log_tail(20000)
    finally:
        rig.replica.start()
    for host in rig.hosts:
        wait_for(lambda h=host: health(h.port)["read_replica"]["reads_on"] == "replica", timeout=30,
                 what="reads back on the replica")
        assert "read replica reachable again" in host.log_tail(20000)


def test_kill9_one_host_behind_haproxy_loses_and_doubles_nothing(rig):
    account = rig.account()
    load = TrackerLoad(rig.port, account, clients=6, batches=150, events=10).start()
    wait_for(lambda: load.acked >= 250, timeout=60, what="250 batches acknowledged")
    killed = rig.hosts[0].kill9()
    acked_at_kill = load.acked
    load.join(timeout=120)
    assert killed >= 2
    totals = load.check_stored(rig.primary.url())
    assert totals["batches"] == 900 and acked_at_kill < 900, (acked_at_kill, totals)
    # Usage: the killed host's stack ledger rows are adopted by the other host: every
    # stored event and session counted once.
    settle(rig.primary.url(), [account["account_id"]], timeout=60)
    counted = check_counted_once(rig.primary.url(), account["account_id"])
    assert counted["stored"] == totals["events"] + 6
    # HAProxy took the dead host out; any request caught by the kill was retried and
    # succeeded on the other host.
    assert wait_for(lambda: rig.haproxy.servers_up() == {"host0": False, "host1": True}, timeout=10,
                    what="haproxy to mark host0 down")
    retried = [b for b in load.all_batches() if len(b.attempts) > 1]
    assert retried, "no batch was in flight at the kill"
    assert all(b.attempts[-1][0] == 201 for b in retried)
    print(f"\nkill -9 of host0 after {acked_at_kill} acknowledged batches: {totals}; "
          f"{len(retried)} batches retried, statuses {sorted({a[0] or 0 for b in retried for a in b.attempts})}")
    rig.hosts[0].start(timeout=60)
    wait_for(lambda: all(rig.haproxy.servers_up().values()), timeout=30, what="host0 back in haproxy")


def test_primary_restart_under_load_answers_503_with_retry_after(rig):
    account = rig.account()
    load = TrackerLoad(rig.port, account, clients=4, batches=100, events=10, give_up=90).start()
    wait_for(lambda: load.acked >= 80, timeout=60, what="80 batches acknowledged")
    rig.primary.stop()
    down_at = time.monotonic()
    try:
        refusals = wait_for(lambda: [a for b in load.all_batches() for a in b.attempts if a[0] != 201] or None,
                            timeout=30, what="a refused batch while the primary is down")
        time.sleep(max(0.0, 3.0 - (time.monotonic() - down_at)))
    finally:
        rig.primary.start()
    load.join(timeout=120)
    totals = load.check_stored(rig.primary.url())
    refusals = [a for b in load.all_batches() for a in b.attempts if a[0] != 201]
    assert refusals
    assert {status for status, _ in refusals} == {503}, refusals[:10]
    assert all(retry_after and int(retry_after) > 0 for _, retry_after in refusals), refusals[:10]
    settle(rig.primary.url(), [account["account_id"]], timeout=60)
    counted = check_counted_once(rig.primary.url(), account["account_id"])
    assert counted["stored"] == totals["events"] + 4
    print(f"\nprimary restarted under load: {len(refusals)} answers 503 + Retry-After, then {totals}")
