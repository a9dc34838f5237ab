"""Statistics stacks against the real database, with a clock the test moves: what is
flushed when, exactly what a flush writes, usage, the monthly limit and switching back on."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import psycopg
import pytest
from stacks_rig import INTERNAL_KEY, counted, flag, make_rig, steps, token_row

from conftest import token_flow
from hindsight.stacks.registry import BYTES_PER_STACK, MEMORY, THRESHOLD, Registry


@pytest.fixture
def rig(settings, pool, db_url):
    return make_rig(settings, pool, db_url, stacks_event_threshold=10, stacks_idle_seconds=1800)


def test_threshold_flush_writes_exact_journey_counter_and_usage(rig, db_url):
    site = rig.site()
    rig.monitor()  # first cycle: rebuilds from the ledger (whatever other tests left)
    session = rig.session(site)
    kinds = ["page_view", "mouse_move", "click", "scroll", "click", "page_view", "input", "click"]
    rig.events(site, session, kinds)  # 1 session + 8 events: one short of the threshold
    assert counted(db_url, site.account_id)["counters"] == []
    rig.flush_due()
    assert counted(db_url, site.account_id)["counters"] == []  # nothing due yet

    rig.events(site, session, ["mouse_move"])  # the 10th event reaches the threshold
    assert rig.flush_due() == {"flushed": 1}
    done = counted(db_url, site.account_id)
    assert done["counters"] == [{"host": site.domain, "session_events": 1, "page_events": 2,
                                 "click_events": 3, "other_events": 4, "total_events": 10}]
    assert [(u["service"], u["amount"], u["host"]) for u in done["usage"]] == [("statistics", 10, site.domain)]
    assert done["usage"][0]["period_start"] == rig.clock.now.date().replace(day=1)
    assert done["period_total"] == 10 and done["pending"] == 0
    origin = site.origin
    assert steps(db_url, session) == [
        (1, "session", None, f"{origin}/"),
        (2, "page", 0, f"{origin}/p0"),
        (3, "click", 2, f"{origin}/p2"),
        (4, "click", 4, f"{origin}/p4"),
        (5, "page", 5, f"{origin}/p5"),
        (6, "click", 7, f"{origin}/p7"),
    ]
    # The stack was removed: the next event starts a new one.
    assert rig.stacks.registry.get((uuid.UUID(site.account_id), site.domain)) is None


def test_step_json_is_the_stored_event(rig, db_url):
    site = rig.site()
    session = rig.session(site)
    rig.events(site, session, ["click"] * 9)
    rig.flush_due()
    from hindsight.db import connect

    with connect(db_url) as conn:
        rows = conn.execute(
            "SELECT s.step_type, s.event FROM journey_steps s JOIN journeys j USING (journey_id) "
            "WHERE j.session_id = %s ORDER BY s.step", (session,)).fetchall()
        journey = conn.execute("SELECT account_id, host, step_count FROM journeys WHERE session_id = %s",
                               (session,)).fetchone()
    assert rows[0]["step_type"] == "session" and rows[0]["event"]["page_url"] == f"{site.origin}/"
    click = rows[1]["event"]
    assert click["event_type"] == "click" and click["seq"] == 0 and click["page_url"] == f"{site.origin}/p0"
    assert "account_id" not in click and "host" not in click
    assert (str(journey["account_id"]), journey["host"], journey["step_count"]) == (site.account_id, site.domain, 10)


def test_idle_flush_after_the_idle_threshold_only(rig, db_url):
    site = rig.site()
    session = rig.session(site)
    rig.events(site, session, ["page_view", "click"])
    rig.monitor()
    rig.clock.advance(minutes=29)
    rig.monitor()
    assert counted(db_url, site.account_id)["counters"] == []
    rig.clock.advance(minutes=2)
    cycle = rig.monitor()
    assert cycle["processed"] >= 1
    done = counted(db_url, site.account_id)
    assert [c["total_events"] for c in done["counters"]] == [3]
    assert done["usage_total"] == 3 and done["pending"] == 0
    health = rig.client.simulate_get("/api/health/stacks").json
    assert health["idle_monitor_statistics"]["idle_triggered_flushes_last_hour"] >= 1


def test_events_move_a_stack_back_from_idle(rig, db_url):
    site = rig.site()
    session = rig.session(site)
    rig.monitor()
    rig.clock.advance(minutes=20)
    rig.events(site, session, ["click"])
    rig.clock.advance(minutes=20)  # 40 min since the session, 20 since the last event
    rig.monitor()
    assert counted(db_url, site.account_id)["counters"] == []
    rig.clock.advance(minutes=11)
    rig.monitor()
    assert [c["total_events"] for c in counted(db_url, site.account_id)["counters"]] == [2]


def test_empty_stacks_are_skipped_and_counted(rig, db_url):
    site = rig.site()
    rig.monitor()
    resp = rig.client.simulate_post("/api/token", json={"account_id": site.account_id, "host": site.domain},
                                    headers={"Authorization": f"Bearer {INTERNAL_KEY}"})
    assert resp.status_code == 201, resp.json
    key = (uuid.UUID(site.account_id), site.domain)
    assert rig.stacks.registry.get(key).total == 0  # the seed's token creates an empty stack
    rig.clock.advance(minutes=31)
    cycle = rig.monitor()
    assert cycle["empty_skipped"] >= 1
    assert rig.stacks.registry.get(key) is None
    assert counted(db_url, site.account_id)["counters"] == []  # nothing written for it
    health = rig.client.simulate_get("/api/health/stacks").json
    assert health["idle_monitor_statistics"]["empty_stacks_skipped_last_hour"] >= 1


def test_resent_batch_is_counted_once(rig, db_url):
    site = rig.site()
    session = rig.session(site)
    rig.events(site, session, ["click", "click", "mouse_move"], seqs=[0, 1, 2])
    rig.events(site, session, ["click", "click", "mouse_move"], seqs=[0, 1, 2])  # the same batch again
    key = (uuid.UUID(site.account_id), site.domain)
    assert rig.stacks.registry.get(key).total == 4
    rig.clock.advance(minutes=31)
    rig.monitor()
    done = counted(db_url, site.account_id)
    assert done["usage_total"] == 4 == done["stored"]
    assert [s[1:3] for s in steps(db_url, session)] == [("session", None), ("click", 0), ("click", 1)]


def test_journey_steps_continue_across_flushes(rig, db_url):
    site = rig.site()
    session = rig.session(site)
    rig.events(site, session, ["click", "page_view"])
    rig.clock.advance(minutes=31)
    rig.monitor()
    rig.events(site, session, ["click", "scroll", "click"])
    rig.clock.advance(minutes=31)
    rig.monitor()
    assert [s[:3] for s in steps(db_url, session)] == [
        (1, "session", None), (2, "click", 0), (3, "page", 1), (4, "click", 2), (5, "click", 4)]
    assert [c["total_events"] for c in counted(db_url, site.account_id)["counters"]] == [3, 3]


def test_limit_switches_the_account_off_then_set_limit_and_enable(rig, db_url):
    from hindsight.db import connect
    from hindsight.queries.usage import enable, set_limit

    site = rig.site(limit=15)
    session = rig.session(site)
    rig.events(site, session, ["click"] * 9)
    rig.flush_due()  # 10 events: under the limit of 15
    assert flag(db_url, site.account_id, site.domain)["enabled"] is True
    rig.events(site, session, ["click"] * 10)
    rig.flush_due()  # 20 events: at or over 15
    done = counted(db_url, site.account_id)
    assert done["period_total"] == 20 == done["stored"]
    assert flag(db_url, site.account_id, site.domain) == {"enabled": False, "disabled_reason": "usage_limit"}
    assert token_row(db_url, site.token)["revoked_at"] is not None
    assert rig.stacks.registry.get((uuid.UUID(site.account_id), site.domain)) is None

    # From now on the token gets a clear 403, and so does the token flow.
    refused = rig.events(site, session, ["click"], expect=403)
    assert "Statistics are disabled for this host" in refused.json["description"]
    assert rig.session(site, expect=403) == ""
    account = {"account_id": site.account_id, "widget_id": site.widget_id}
    widgets = rig.client.simulate_get(f"/site/account/{site.account_id}/widgets", headers={"Origin": site.origin})
    jwt = widgets.json["widgets"][0]["token"]
    stats = rig.client.simulate_get(f"/site/widget/{site.widget_id}/account_statistics",
                                    headers={"Authorization": f"Bearer {jwt}", "Origin": site.origin})
    assert stats.status_code == 403

    # `enable` while still at the limit: on, but the next flush switches it off again.
    with connect(db_url) as conn:
        result = enable(conn, uuid.UUID(site.account_id), None, rig.clock.now)
    assert result["at_limit"] is True and result["enabled_hosts"] == [site.domain]
    # The old token stays revoked (401: fetch a new one); the normal flow gives a new one.
    assert rig.events(site, session, ["click"], expect=401).json["description"].startswith("This statistics token was revoked")
    site.token = token_flow(rig.client, account, site.origin)
    rig.events(site, session, ["click"])
    rig.clock.advance(minutes=31)
    rig.monitor()
    assert flag(db_url, site.account_id, site.domain)["enabled"] is False
    rig.events(site, session, ["click"], expect=403)
    rig.clock.advance(minutes=-31)  # back to real time: PyJWT checks the widget JWT's iat with it

    # Raising the limit switches it back on at once; a new token works.
    with connect(db_url) as conn:
        result = set_limit(conn, uuid.UUID(site.account_id), 1000, rig.clock.now)
    assert result["enabled_hosts"] == [site.domain] and result["used_this_month"] == 21
    site.token = token_flow(rig.client, account, site.origin)
    rig.events(site, session, ["click"])
    assert flag(db_url, site.account_id, site.domain)["enabled"] is True


def test_a_new_month_switches_hosts_back_on(settings, pool, db_url):
    rig = make_rig(settings, pool, db_url, stacks_event_threshold=5,
                   statistics_token_ttl_seconds=20 * 365 * 24 * 3600)
    site = rig.site(limit=5)  # the token flow on the real clock (PyJWT checks it)
    rig.clock.now = datetime(2031, 1, 31, 23, 0, tzinfo=UTC)
    session = rig.session(site)
    rig.events(site, session, ["click"] * 4)
    rig.flush_due()
    assert flag(db_url, site.account_id, site.domain)["enabled"] is False
    rig.monitor()
    assert flag(db_url, site.account_id, site.domain)["enabled"] is False  # still January
    rig.clock.advance(hours=2)  # February, UTC
    rig.monitor()
    assert flag(db_url, site.account_id, site.domain) == {"enabled": True, "disabled_reason": None}
    done = counted(db_url, site.account_id)
    assert [str(u["period_start"]) for u in done["usage"]] == ["2031-01-01"]


def test_the_limit_switches_off_every_host_of_the_account(rig, db_url):
    from hindsight.db import connect
    from hindsight.queries.tenancy import add_domain

    site = rig.site(limit=10)
    add_domain_name = f"second-{uuid.uuid4().hex[:6]}.example"
    with connect(db_url) as conn:
        add_domain(conn, uuid.UUID(site.account_id), add_domain_name)
    second = type(site)(site.account_id, add_domain_name, site.widget_id, "", f"https://{add_domain_name}")
    issued = rig.client.simulate_post("/api/token", json={"account_id": site.account_id, "host": second.domain},
                                      headers={"Authorization": f"Bearer {INTERNAL_KEY}"})
    assert issued.status_code == 201, issued.json
    second.token = issued.json["token"]
    s2 = rig.session(second)
    rig.events(second, s2, ["click"] * 3)  # pending on the second host
    session = rig.session(site)
    rig.events(site, session, ["click"] * 9)
    rig.flush_due()
    assert flag(db_url, site.account_id, site.domain)["enabled"] is False
    assert flag(db_url, site.account_id, second.domain)["enabled"] is False
    rig.events(second, s2, ["click"], expect=403)
    rig.flush_due()  # the second host's stack was dropped and its events counted
    done = counted(db_url, site.account_id)
    assert done["pending"] == 0 and done["usage_total"] == done["stored"] == 14


def test_a_restart_rebuilds_the_stacks_from_the_ledger(settings, pool, db_url):
    first = make_rig(settings, pool, db_url, stacks_event_threshold=10)
    site = first.site()
    session = first.session(site)
    first.events(site, session, ["click", "page_view", "mouse_move"])
    # "Crash": the first process is gone with its stacks; a new one starts.
    second = make_rig(settings, pool, db_url, stacks_event_threshold=10)
    key = (uuid.UUID(site.account_id), site.domain)
    assert second.stacks.registry.get(key) is None
    second.monitor()
    rebuilt = second.stacks.registry.get(key)
    assert rebuilt.counters() == {"sessions": 1, "pages": 1, "clicks": 1, "other": 1, "total": 4}
    site_on_second = site
    second.events(site_on_second, session, ["click"] * 6)  # 4 + 6: the threshold, counted across the restart
    assert second.flush_due()["flushed"] >= 1
    done = counted(db_url, site.account_id)
    assert done["usage_total"] == 10 == done["stored"] and done["pending"] == 0


def test_two_processes_share_a_token(settings, pool, db_url):
    a = make_rig(settings, pool, db_url, stacks_event_threshold=100)
    b = make_rig(settings, pool, db_url, stacks_event_threshold=100)
    site = a.site()
    session = a.session(site)
    a.events(site, session, ["click"] * 5)
    b.events(site, session, ["page_view"] * 7)
    key = (uuid.UUID(site.account_id), site.domain)
    assert a.stacks.registry.get(key).total == 6 and b.stacks.registry.get(key).total == 7
    result = a.stacks.flush_now(key, "idle")  # takes every row of the key, b's too
    assert result.total == 13 and (result.sessions, result.clicks, result.pages) == (1, 5, 7)
    later = b.stacks.flush_now(key, "idle")  # b's copy was counted already
    assert later.empty
    done = counted(db_url, site.account_id)
    assert done["usage_total"] == 13 == done["stored"] and len(done["counters"]) == 1
    assert [s[1] for s in steps(db_url, session)] == ["session"] + ["click"] * 5 + ["page"] * 7


def test_a_token_revoked_in_one_process_is_dropped_by_the_others_within_one_cycle(settings, pool, db_url):
    a = make_rig(settings, pool, db_url, stacks_event_threshold=100)
    b = make_rig(settings, pool, db_url, stacks_event_threshold=100)
    b.monitor()
    site = a.site()
    session = a.session(site)
    b.events(site, session, ["click"] * 3)
    key = (uuid.UUID(site.account_id), site.domain)
    resp = a.client.simulate_delete(f"/api/token/{site.token}",
                                    headers={"Authorization": f"Bearer {INTERNAL_KEY}"})
    assert resp.status_code == 204
    assert b.events(site, session, ["click"], expect=401).status_code == 401  # refused by b at once
    assert b.stacks.registry.get(key) is not None
    b.monitor()  # one cycle later b has dropped it (and counted what it had)
    assert b.stacks.registry.get(key) is None
    a.flush_due()
    done = counted(db_url, site.account_id)
    assert done["usage_total"] == 4 == done["stored"] and done["pending"] == 0


def test_memory_limit_flushes_the_largest_stacks_early(settings, pool, db_url):
    rig = make_rig(settings, pool, db_url, stacks_event_threshold=1000,
                   stacks_memory_limit_mb=3.5 * BYTES_PER_STACK / 2**20)
    rig.monitor()
    rig.stacks.registry.take_idle(float("inf"))  # start from no stacks (others' rebuilt ones)
    sites = [rig.site() for _ in range(4)]
    sizes = [2, 6, 4, 1]
    for site, n in zip(sites, sizes, strict=True):
        session = rig.session(site)
        rig.events(site, session, ["click"] * n)
    # The fourth stack went over 3.5 stacks' worth: the largest are flushed early, down
    # to 80% of the limit (2 stacks), and nothing is dropped.
    assert rig.stacks.registry.due_count() == 2
    rig.flush_due()
    assert counted(db_url, sites[1].account_id)["usage_total"] == 7
    assert counted(db_url, sites[2].account_id)["usage_total"] == 5
    for site in (sites[0], sites[3]):
        assert counted(db_url, site.account_id)["counters"] == []
    rig.clock.advance(minutes=31)
    rig.monitor()
    for site, n in zip(sites, sizes, strict=True):
        done = counted(db_url, site.account_id)
        assert done["usage_total"] == n + 1 == done["stored"]


def test_registry_relief_picks_the_largest_and_never_loses_counts():
    now = [0.0]
    reg = Registry(threshold=10_000, memory_limit_bytes=10 * BYTES_PER_STACK, clock=lambda: now[0])
    accounts = [uuid.uuid4() for _ in range(11)]
    for i, account in enumerate(accounts):
        reg.add(account, "h", None, clicks=i + 1)
    due = reg.take_due()
    # 11 stacks over a limit of 10: down to 80% of it, the largest first.
    assert [(k[0], reason, s.total) for k, reason, s in due] == [
        (accounts[10 - i], MEMORY, 11 - i) for i in range(3)]
    assert len(reg) == 8
    key, reason, stack = due[0]
    reg.put_back(key, reason, stack)  # its flush failed: back, and due again
    assert reg.get(key).total == 11 and [k for k, _, _ in reg.take_due()] == [key]


def test_registry_threshold_and_idle_order():
    now = [100.0]
    reg = Registry(threshold=3, memory_limit_bytes=2**30, clock=lambda: now[0])
    a, b = uuid.uuid4(), uuid.uuid4()
    reg.add(a, "h", None, pages=1)
    now[0] = 200.0
    reg.add(b, "h", None, pages=1)
    now[0] = 300.0
    reg.add(a, "h", None, clicks=2)  # a: 3 events, due; and now the most recent
    assert [(k[0], r) for k, r, _ in reg.take_due()] == [(a, THRESHOLD)]
    reg.add(a, "h", None, clicks=1)
    idle, empty = reg.take_idle(cutoff=250.0)
    assert [s.account_id for s in idle] == [b] and empty == 0
    assert reg.get((a, "h")).total == 1


def test_health_document_has_the_seed_fields(rig):
    rig.monitor()
    resp = rig.client.simulate_get("/api/health/stacks")
    assert resp.status_code == 200
    doc = resp.json
    assert doc["status"] in ("healthy", "degraded")
    assert set(doc["statistics_server"]) >= {
        "active_stacks", "total_events_in_memory", "memory_usage_mb", "memory_limit_mb",
        "memory_utilization_percent", "oldest_stack_age_minutes", "database_connection_status"}
    assert set(doc["idle_monitor_statistics"]) >= {
        "monitor_interval_seconds", "last_monitor_run", "stacks_processed_last_cycle",
        "idle_triggered_flushes_last_hour", "event_triggered_flushes_last_hour",
        "empty_stacks_skipped_last_hour", "average_cycle_processing_time_ms"}
    assert set(doc["flush_statistics"]) >= {
        "failed_flushes_last_hour", "flush_success_rate_percent", "average_batch_size"}
    assert doc["statistics_server"]["database_connection_status"] == "connected"
    assert doc["idle_monitor_statistics"]["monitor_interval_seconds"] == 60.0
    assert doc["idle_monitor_statistics"]["last_monitor_run"] == rig.clock.now.isoformat()
    assert isinstance(doc["ledger"]["pending_events"], int)


@pytest.mark.slow
def test_a_database_outage_keeps_the_stacks_and_loses_nothing():
    """Its own cluster, stopped and started again: the monitor neither fails nor drops."""
    from conftest import start_cluster
    from hindsight.app import prepare_database
    from hindsight.db import create_pool
    from hindsight.migrate import migrate
    from hindsight.settings import Settings

    server = start_cluster()
    pool = None
    try:
        url = server.url()
        migrate(url)
        settings = Settings(database_url=url, rate_limit_per_minute=0, pool_min=1, pool_max=2,
                            pool_timeout=0.5)
        pool = create_pool(settings)
        prepare_database(pool)
        rig = make_rig(settings, pool, url, stacks_event_threshold=5)
        rig.monitor()
        site = rig.site()
        session = rig.session(site)
        rig.events(site, session, ["click"] * 4)
        key = (uuid.UUID(site.account_id), site.domain)
        assert rig.stacks.registry.due_count() == 1

        server.terminate()  # the data directory stays
        assert rig.flush_due() == {"flushed": 0}
        rig.clock.advance(minutes=31)
        assert rig.monitor()["processed"] == 0
        assert rig.stacks.registry.get(key).total == 5 and rig.stacks.registry.due_count() == 1
        health = rig.client.simulate_get("/api/health/stacks")
        assert health.status_code == 503
        assert health.json["statistics_server"]["database_connection_status"] == "unreachable"
        assert health.json["flush_statistics"]["failed_flushes_last_hour"] >= 1

        server.start()
        deadline = time.monotonic() + 30
        while True:
            try:
                psycopg.connect(url).close()
                break
            except psycopg.OperationalError:
                assert time.monotonic() < deadline
                time.sleep(0.1)
        pool.check()
        # The pool reconnects in the background: the due run (every quarter second in a
        # server) retries until the database answers; the key stays due until then.
        flushed = 0
        while not flushed:
            flushed = rig.flush_due()["flushed"]
            assert flushed or rig.stacks.registry.due_count() == 1
            assert time.monotonic() < deadline + 30, "the stack was never flushed after the restart"
            time.sleep(0 if flushed else 0.2)
        assert flushed == 1 and rig.stacks.registry.due_count() == 0
        done = counted(url, site.account_id)
        assert done["usage_total"] == 5 == done["stored"] and done["pending"] == 0
    finally:
        if pool is not None:
            pool.close(timeout=2)
        server.stop()
