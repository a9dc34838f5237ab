"""Roll-ups on the apache edition (the scheduler's refresh): they equal a direct aggregate
over the raw rows — after late events, after repeated refreshes, after retention — and
two schedulers running at once do the work once. Each test uses its own
database per test, so no other test's data or server process touches these rows."""

from __future__ import annotations

import random
import threading
import time
from datetime import datetime, timedelta

import pytest
from lifecycle_support import (
    add_events,
    add_session,
    connect,
    direct,
    directs,
    fresh_database,
    new_account,
    view,
    views,
)

from hindsight.lifecycle import JobRunner, lifecycle_jobs
from hindsight.lifecycle import rollups as rollup_module
from hindsight.lifecycle.jobs import LOCK_CLASS, Job
from hindsight.scheduler import Scheduler
from hindsight.settings import Settings

TYPES = ("session_start", "page_view", "click", "click", "mouse_move", "scroll", "error", "custom")
PATHS = ("/", "/pricing", "/docs/a?ref=x", "/docs/b#top", "/checkout")


@pytest.fixture
def lc_url(cluster):
    # Its own database per test: data written with old timestamps after a refresh is
    # "late" (see the window), so each test starts from an empty roll-up history.
    with fresh_database(cluster.url(), "lcroll") as url:
        yield url


@pytest.fixture
def runner(lc_url):
    return JobRunner(lc_url, lifecycle_jobs(Settings(database_url=lc_url)))


def fill(conn, account, host, now, *, days: float, sessions: int, seed: int) -> None:
    """Sessions spread over the last `days`, each with a few events on a few pages."""
    rnd = random.Random(seed)
    for _ in range(sessions):
        start = now - timedelta(hours=rnd.uniform(0, days * 24))
        sid = add_session(conn, account, host, start, referrer=rnd.choice([None, "https://news.example/x"]),
                          browser=rnd.choice(["Firefox", "Chrome", None]), os=rnd.choice(["Linux", "iOS"]))
        events = [(start, "session_start", f"https://{host}/")]
        for i in range(rnd.randint(1, 12)):
            ts = start + timedelta(seconds=30 * i + rnd.uniform(0, 20))
            events.append((min(ts, now), rnd.choice(TYPES), f"https://{host}{rnd.choice(PATHS)}"
                           if rnd.random() < 0.9 else None))
        add_events(conn, sid, account, host, events)


def refresh(runner: JobRunner) -> dict:
    return runner.run("refresh_rollups", force=True)


def test_rollups_equal_a_direct_aggregate_and_a_refresh_never_counts_twice(lc_url, runner):
    with connect(lc_url) as conn:
        now = conn.execute("SELECT now() AS t").fetchone()["t"]
        a, host_a = new_account(conn)
        b, host_b = new_account(conn)
        fill(conn, a, host_a, now, days=6, sessions=60, seed=1)
        fill(conn, b, host_b, now, days=3, sessions=30, seed=2)
        accounts = [a, b]

        # Before any refresh the views compute everything from the raw rows.
        assert views(conn, accounts) == directs(conn, accounts)

        first = refresh(runner)
        assert first["ran"] and first["result"]["events_hourly"]["rows"] > 0
        assert conn.execute("SELECT count(*) AS n FROM events_hourly_store").fetchone()["n"] > 0
        expected = directs(conn, accounts)
        assert views(conn, accounts) == expected

        # Refreshing again (and again) replaces buckets: nothing is counted twice.
        for _ in range(2):
            again = refresh(runner)
            assert again["result"]["events_hourly"]["replaced"] == again["result"]["events_hourly"]["rows"]
            assert views(conn, accounts) == expected

        # A re-sent batch is stored once, and so counted once.
        sid = conn.execute("SELECT session_id FROM events WHERE account_id = %s LIMIT 1", (a,)).fetchone()
        old = conn.execute('SELECT "timestamp", event_type, page_url FROM events WHERE session_id = %s '
                           "ORDER BY seq", (sid["session_id"],)).fetchall()
        add_events(conn, sid["session_id"], a, host_a, [(r["timestamp"], r["event_type"], r["page_url"])
                                                         for r in old])
        refresh(runner)
        assert views(conn, accounts) == expected


def test_late_events_within_the_window_are_counted_and_older_ones_wait_for_a_manual_refresh(lc_url, runner):
    with connect(lc_url) as conn:
        now = conn.execute("SELECT now() AS t").fetchone()["t"]
        a, host = new_account(conn)
        fill(conn, a, host, now, days=5, sessions=20, seed=3)
        refresh(runner)
        # An event 30 hours late: its hour is materialized already, so the view lags
        # until the next refresh, which re-reads the last two days and counts it.
        late = now - timedelta(hours=30)
        sid = add_session(conn, a, host, late)
        add_events(conn, sid, a, host, [(late, "click", f"https://{host}/late")])
        assert view(conn, "pages_hourly", [a]) != direct(conn, "pages_hourly", [a])
        refresh(runner)
        assert views(conn, [a]) == directs(conn, [a])

        # Three days late is outside the refresh window (the same on the timescale
        # edition, whose policies re-read the same two days): not counted by the job...
        older = now - timedelta(days=3, hours=2)
        sid = add_session(conn, a, host, older)  # sessions_daily re-reads 4 days: counted
        add_events(conn, sid, a, host, [(older, "click", f"https://{host}/older")])
        refresh(runner)
        assert view(conn, "pages_hourly", [a]) != direct(conn, "pages_hourly", [a])
        # ...but a refresh of that period, as docs/operations.md tells a DBA, counts it.
        with conn.transaction():
            conn.execute("UPDATE rollup_watermarks SET materialized_until = now() - INTERVAL '4 days' "
                         "WHERE rollup IN ('events_hourly', 'pages_hourly')")
        refresh(runner)
        assert views(conn, [a]) == directs(conn, [a])


def test_the_first_refresh_starts_at_the_oldest_row_and_an_empty_source_is_fine(cluster):
    with fresh_database(cluster.url(), "lcfirst") as url, connect(url) as conn:
        now = conn.execute("SELECT now() AS t").fetchone()["t"]
        empty = rollup_module.refresh(conn, rollup_module.EVENTS_HOURLY, now)
        assert empty["rows"] == 0 and empty["from"] == empty["to"]
        conn.execute("DELETE FROM rollup_watermarks")
        a, host = new_account(conn)
        fill(conn, a, host, now - timedelta(days=20), days=2, sessions=10, seed=4)
        result = rollup_module.refresh_all(conn, now, "apache")
        oldest = conn.execute("SELECT time_bucket(INTERVAL '1 hour', min(\"timestamp\")) AS t FROM events"
                              ).fetchone()["t"]
        assert datetime.fromisoformat(result["events_hourly"]["from"]) == oldest < now - timedelta(days=19)
        assert views(conn, [a]) == directs(conn, [a])


def test_two_schedulers_running_at_once_do_the_work_once(lc_url):
    settings = Settings(database_url=lc_url)
    with connect(lc_url) as conn:
        now = conn.execute("SELECT now() AS t").fetchone()["t"]
        a, host = new_account(conn)
        fill(conn, a, host, now, days=2, sessions=10, seed=5)
        conn.execute("INSERT INTO lifecycle_jobs (job_name, interval_seconds) VALUES ('refresh_rollups', 300) "
                     "ON CONFLICT (job_name) DO UPDATE SET next_run_at = now()")
        conn.execute("UPDATE lifecycle_jobs SET next_run_at = now() WHERE job_name = 'refresh_rollups'")
        runs_before = conn.execute("SELECT runs FROM lifecycle_jobs WHERE job_name = 'refresh_rollups'"
                                   ).fetchone()["runs"]

    # Two processes' schedulers (each with its own runner), ticking every 20 ms.
    schedulers = []
    for _ in range(2):
        runner = JobRunner(lc_url, lifecycle_jobs(settings))
        scheduler = Scheduler()
        scheduler.every("refresh_rollups", 0.02, lambda r=runner: r.run("refresh_rollups"), first_delay=0)
        schedulers.append(scheduler)
    for scheduler in schedulers:
        scheduler.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ticks = [s.status()[0]["runs"] for s in schedulers]
            if min(ticks) >= 10:
                break
            time.sleep(0.05)
    finally:
        for scheduler in schedulers:
            scheduler.stop()
    assert min(s.status()[0]["runs"] for s in schedulers) >= 10, "both schedulers ticked"
    ran = [s.status()[0]["last_result"] for s in schedulers]
    with connect(lc_url) as conn:
        row = conn.execute("SELECT runs, next_run_at > now() AS later FROM lifecycle_jobs "
                           "WHERE job_name = 'refresh_rollups'").fetchone()
        assert row["runs"] == runs_before + 1 and row["later"]
        assert views(conn, [a]) == directs(conn, [a])
    # The last tick of each found the job done (or, at the very end, the other one
    # still finishing its run): neither ran it a second time.
    assert all(r in ({"ran": False, "reason": "not due"},
                     {"ran": False, "reason": "another process is running it"}) for r in ran), ran


def test_a_job_another_process_holds_is_skipped_and_threads_racing_run_it_once(lc_url, runner):
    job = next(j for j in runner.jobs if j.name == "refresh_rollups")
    with connect(lc_url) as other:
        other.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_CLASS, job.lock_key))
        assert runner.run("refresh_rollups", force=True) == {"ran": False,
                                                              "reason": "another process is running it"}
        other.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_CLASS, job.lock_key))
        other.execute("UPDATE lifecycle_jobs SET next_run_at = now() WHERE job_name = 'refresh_rollups'")

    barrier = threading.Barrier(4)
    results: list[dict] = []

    def go():
        r = JobRunner(lc_url, lifecycle_jobs(Settings(database_url=lc_url)))
        barrier.wait()
        results.append(r.run("refresh_rollups"))

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r["ran"] for r in results) == 1, results


def test_a_failing_job_records_its_error_and_the_next_success_keeps_it_readable(lc_url):
    calls = []

    def flaky(conn, now):
        calls.append(now)
        if len(calls) == 1:
            conn.execute("SELECT 1 / 0")
        return {"ok": True}

    runner = JobRunner(lc_url, [Job("flaky", 60, flaky)])
    with pytest.raises(Exception, match="division by zero"):
        runner.run("flaky")
    with connect(lc_url) as conn:
        row = conn.execute("SELECT * FROM lifecycle_jobs WHERE job_name = 'flaky'").fetchone()
        assert (row["runs"], row["failures"], row["last_status"]) == (1, 1, "failure")
        assert "division by zero" in row["last_error"] and row["next_run_at"] > row["last_finished_at"]
        conn.execute("UPDATE lifecycle_jobs SET next_run_at = now() WHERE job_name = 'flaky'")
    assert runner.run("flaky") == {"ran": True, "result": {"ok": True}}
    with connect(lc_url) as conn:
        row = conn.execute("SELECT * FROM lifecycle_jobs WHERE job_name = 'flaky'").fetchone()
        assert (row["runs"], row["failures"], row["last_status"]) == (2, 1, "success")
        assert row["last_result"] == {"ok": True} and "division by zero" in row["last_error"]


def test_health_shows_the_edition_compression_jobs_and_freshness(lc_url, runner):
    import falcon.testing

    from hindsight.app import create_app
    from hindsight.db import create_pool

    def broken(conn, now):
        raise RuntimeError("disk full, say")

    with pytest.raises(RuntimeError):
        JobRunner(lc_url, [Job("broken", 60, broken)]).run("broken")
    assert refresh(runner)["ran"]
    settings = Settings(database_url=lc_url, pool_max=2)
    pool = create_pool(settings)
    try:
        health = falcon.testing.TestClient(create_app(settings, pool)).simulate_get("/health").json
    finally:
        pool.close()
    assert health["status"] == "ok"
    assert health["timescaledb"]["edition"] == "apache"
    assert health["timescaledb"]["compression"]["state"] == "unavailable"
    lifecycle = health["lifecycle"]
    assert lifecycle["schema_edition"] == "apache" and "warning" not in lifecycle and "policies" not in lifecycle
    jobs = {j["job_name"]: j for j in lifecycle["jobs"]}
    assert jobs["refresh_rollups"]["last_status"] == "success" and jobs["refresh_rollups"]["runs"] == 1
    assert jobs["broken"]["last_status"] == "failure"
    assert jobs["broken"]["last_error"] == "RuntimeError: disk full, say"
    rollups = {r["rollup"]: r for r in lifecycle["rollups"]}
    assert set(rollups) == {"events_hourly", "pages_hourly", "events_daily", "pages_daily", "sessions_daily"}
    assert all(r["materialized_until"] and r["lag_seconds"] >= 0 for r in rollups.values())
