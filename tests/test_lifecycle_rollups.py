"""Roll-ups on the apache edition (the scheduler's refresh): they equal a direct aggregate
over the raw rows — after late events, after repeated refreshes, after retention — and
two schedulers running at once do the work once. Each test uses its own
database per test, so no other test's data or server process touches these rows."""

from __future__ import annotations

import math
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
    network,
    new_account,
    view,
    views,
)

from hindsight.lifecycle import JobRunner, lifecycle_jobs
from hindsight.lifecycle import rollups as rollup_module
from hindsight.lifecycle.jobs import LOCK_CLASS, Job
from hindsight.queries import traffic
from hindsight.scheduler import Scheduler
from hindsight.settings import Settings

TYPES = ("session_start", "page_view", "click", "click", "mouse_move", "scroll", "error", "custom", "network")
PATHS = ("/", "/pricing", "/docs/a?ref=x", "/docs/b#top", "/checkout")
ENDPOINTS = (("GET", "/api/cart"), ("POST", "/api/order"), ("GET", "/api/search"))


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
            kind = rnd.choice(TYPES)
            page = f"https://{host}{rnd.choice(PATHS)}" if rnd.random() < 0.9 else None
            if kind == "network":
                method, path = rnd.choice(ENDPOINTS)
                events.append((min(ts, now), kind, page, network(method, f"https://{host}{path}",
                                                                 round(rnd.lognormvariate(5, 1)),
                                                                 rnd.choice([200, 200, 200, 404, 0]))))
            else:
                events.append((min(ts, now), kind, page))
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
    # Every roll-up the scheduler refreshes (other issues add theirs), among them these.
    from hindsight.lifecycle.rollups import APACHE_ROLLUPS
    assert set(rollups) == {r.name for r in APACHE_ROLLUPS} >= {
        "events_hourly", "pages_hourly", "events_daily", "pages_daily", "pages_weekly", "sessions_daily", "network_hourly",
        "network_daily", "network_weekly", "visits_hourly", "visits_daily", "page_visits_hourly",
        "page_visits_daily", "visits_weekly", "page_visits_weekly"}
    assert all(r["materialized_until"] and r["lag_seconds"] >= 0 for r in rollups.values())


# ------------------------------------------------------------ network durations

def nearest_rank(values: list[int], p: float) -> int:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p * len(ordered))) - 1]


def within_bound(estimate: float, exact: int) -> bool:
    """The error bound the roll-up promises (sql/migrations/0021): 5 %, or 1 ms at most 1 ms."""
    return abs(estimate - exact) <= max(0.05 * exact, 1.0 if exact <= 1 else 0.0) + 1e-9


def test_network_percentiles_from_the_rollups_are_within_five_percent_of_the_exact_ones(lc_url, runner):
    rnd = random.Random(12)
    with connect(lc_url) as conn:
        now = conn.execute("SELECT now() AS t").fetchone()["t"]
        a, host = new_account(conn)
        b, host_b = new_account(conn)
        sent: list[tuple[datetime, str, str, int, bool]] = []   # what account a's pages measured
        endpoints = [("GET", f"https://{host}/api/items"), ("POST", f"https://{host}/api/cart"),
                     ("GET", f"https://{host}/api/flat"), ("GET", f"https://{host}/api/fast")]
        for _ in range(300):
            start = now - timedelta(hours=rnd.uniform(0, 10 * 24))
            sid = add_session(conn, a, host, start)
            events = []
            for i in range(4):
                method, url = rnd.choice(endpoints)
                path = url.split(host, 1)[1]
                duration = (250 if path == "/api/flat" else rnd.choice([0, 1, 2]) if path == "/api/fast"
                            else round(rnd.lognormvariate(5.5, 1.2)))
                status = rnd.choice([200, 200, 201, 304, 404, 500, 0])
                ts = min(start + timedelta(seconds=i), now)
                events.append((ts, "network", f"https://{host}/", network(method, url, duration, status)))
                sent.append((ts, method, url, duration, not 1 <= status <= 399))
            add_events(conn, sid, a, host, events)
            other = add_session(conn, b, host_b, start)   # another tenant's, slower: never mixed in
            add_events(conn, other, b, host_b, [(start, "network", None,
                                                  network("GET", f"https://{host}/api/items", 99_000))])
        # What a hostile page may send: nothing here may break a refresh.
        sid = add_session(conn, a, host, now - timedelta(hours=2))
        for seq, data in enumerate(['{"duration_ms": "slow", "method": "GET", "url": "x"}',
                                    '{"duration_ms": -5, "method": "GET", "url": "x"}',
                                    '{"duration_ms": 1e400, "method": "GET", "url": "https://e/huge"}',
                                    '{"duration_ms": 3, "status": "teapot"}',
                                    '{"duration_ms": 1e-400, "url": "https://e/tiny"}',
                                    '{"duration_ms": 40, "method": "PUT", "url": "https://e/' + "a" * 5000 + '"}']):
            conn.execute('INSERT INTO events (session_id, seq, "timestamp", account_id, host, event_type, event_data) '
                         "VALUES (%s, %s, %s, %s, %s, 'network', %s::jsonb)",
                         (sid, seq, now - timedelta(hours=2), a, host, data))
        hostile = [("GET", "https://e/huge", 2147483647, True), ("", "", 3, True), ("", "https://e/tiny", 0, True),
                   ("PUT", "https://e/" + "a" * 490, 40, True)]
        sent += [(now - timedelta(hours=2), m, u, d, f) for m, u, d, f in hostile]

        def check(start: datetime, end: datetime) -> int:
            hours = traffic.hour_range(start, end)
            expected: dict[tuple, list] = {}
            for ts, method, url, duration, failed in sent:
                if hours.start <= ts < hours.end:
                    expected.setdefault((method or None, url or None), []).append((duration, failed))
            got = {(r["method"], r["url"]): r for r in traffic.slowest_endpoints(
                conn, a, start, end, limit=100)}
            assert set(got) == set(expected)
            for key, measured in expected.items():
                durations = [d for d, _ in measured]
                row = got[key]
                assert row["requests"] == len(measured) and row["failures"] == sum(f for _, f in measured)
                for p, column in ((0.5, "p50_ms"), (0.95, "p95_ms")):
                    assert within_bound(row[column], nearest_rank(durations, p)), (key, p, row[column])
                if len(set(durations)) == 1:
                    assert row["p50_ms"] == row["p95_ms"] == durations[0]  # one value: exact
            ordered = [r["p95_ms"] for r in got.values()]
            assert ordered == sorted(ordered, reverse=True)
            return len(got)

        for refreshed in (False, True):
            if refreshed:
                assert refresh(runner)["result"]["network_hourly"]["rows"] > 0
                for store in ("network_daily_store", "network_weekly_store"):
                    assert conn.execute(f"SELECT count(*) AS n FROM {store}").fetchone()["n"] > 0  # noqa: S608
                assert views(conn, [a, b]) == directs(conn, [a, b])
            for days in (90, 30, 14, 8):      # weekly rows, daily rows around them, hourly ends
                assert check(now - timedelta(days=days), now) == 8
            assert check(now - timedelta(days=1), now) >= 4           # hourly rows only


def test_the_overviews_page_lists_are_the_top_pages_and_the_pages_with_errors(lc_url, runner):
    with connect(lc_url) as conn:
        now = conn.execute("SELECT now() AS t").fetchone()["t"]
        a, host = new_account(conn)
        fill(conn, a, host, now, days=20, sessions=80, seed=7)
        refresh(runner)
        for days in (1, 7, 30):
            rng = traffic.hour_range(now - timedelta(days=days), now)
            top, errors = traffic.page_lists(conn, a, rng, 3)
            assert top == traffic.top_pages(conn, a, rng, 3) and len(top) == 3
            want = conn.execute("""
                SELECT host, hindsight_url_path(page_url) AS path, count(*) FILTER (WHERE event_type = 'error') AS errors,
                       count(*) FILTER (WHERE event_type = 'page_view') AS page_views
                FROM events WHERE account_id = %s AND "timestamp" >= %s AND "timestamp" < %s AND page_url IS NOT NULL
                GROUP BY 1, 2 HAVING count(*) FILTER (WHERE event_type = 'error') > 0
                ORDER BY errors DESC, host, path LIMIT 3""", (a, rng.start, rng.end)).fetchall()
            assert errors == want and errors


def test_views_stay_whole_when_the_refresh_job_has_not_run_for_days(lc_url, runner):
    """apache/0003: a view's raw part is planned for the last 3 days; the older events after a
    watermark left behind by a stopped job are read through hindsight_*_behind."""
    with connect(lc_url) as conn:
        now = conn.execute("SELECT now() AS t").fetchone()["t"]
        a, host = new_account(conn)
        fill(conn, a, host, now, days=9, sessions=90, seed=9)
        refresh(runner)
        # As if the job had stopped 5 days ago (and again 2 hours ago: nothing behind).
        for behind in ("5 days", "2 hours"):
            with conn.transaction():
                conn.execute(f"UPDATE rollup_watermarks SET materialized_until = time_bucket("  # noqa: S608
                             f"CASE WHEN rollup LIKE '%%4weekly' THEN INTERVAL '28 days' "
                             f"WHEN rollup LIKE '%%weekly' THEN INTERVAL '7 days' WHEN rollup LIKE '%%daily' "
                             f"THEN INTERVAL '1 day' ELSE INTERVAL '1 hour' END, now() - INTERVAL '{behind}')")
            assert views(conn, [a]) == directs(conn, [a]), behind
            behind_rows = conn.execute(
                "SELECT count(*) AS n FROM hindsight_events_behind(hindsight_rollup_watermark('events_hourly'), "
                "now() - INTERVAL '3 days')").fetchone()["n"]
            assert (behind_rows > 0) == (behind == "5 days")


def test_a_page_path_or_referrer_too_long_for_an_index_is_cut_and_the_refresh_goes_on(lc_url, runner):
    # 1,000 CJK characters (3 bytes each in UTF-8): within the API's 2,048-character URL limit,
    # beyond what one btree entry holds (about 2,700 bytes). Random, so the index cannot
    # compress them (repetitive text would fit and hide the fault).
    rnd = random.Random(7)
    long_text = "".join(chr(rnd.randrange(0x4E00, 0x9FFF)) for _ in range(1000))
    with connect(lc_url) as conn:
        now = conn.execute("SELECT now() AS t").fetchone()["t"]
        account, host = new_account(conn)
        start = now - timedelta(hours=50)  # a whole day before today: in the daily store too
        sid = add_session(conn, account, host, start, referrer=f"https://{long_text}.example/x")
        add_events(conn, sid, account, host, [
            (start, "session_start", f"https://{host}/"),
            (start + timedelta(seconds=1), "page_view", f"https://{host}/{long_text}"),
            (start + timedelta(seconds=2), "click", f"https://{host}/{long_text}#/route/{long_text}"),
        ])
        first = refresh(runner)
        assert first["ran"] and first.get("error") is None, first
        pages = conn.execute("SELECT DISTINCT path FROM pages_hourly_store WHERE account_id = %s",
                             (account,)).fetchall()
        paths = sorted(r["path"] for r in pages)
        # (The click's hash route comes after the first 400 characters: the same page.)
        assert paths == ["/" + long_text[:399]], [len(p) for p in paths]
        referrers = conn.execute(
            "SELECT value FROM sessions_daily_store WHERE account_id = %s AND dimension = 'referrer'",
            (account,)).fetchall()
        assert [len(r["value"]) for r in referrers] == [253]
        # The views still equal the direct aggregate over the raw rows.
        assert views(conn, [account]) == directs(conn, [account])
        # And the next refresh runs too (before the cut, every later one failed).
        assert refresh(runner)["ran"]
