"""The weekly visitor roll-ups (sql/migrations/0031: visits_weekly, page_visits_weekly) hold
what the daily ones hold, per week; a range's whole weeks read from them give the answers of
the daily rows and of plain SQL over the raw rows; a refresh after a late session rewrites
the week it fell in.

The data: one account's visitors over 40 days (several sessions each, page views), in the
module's own database; roll-ups refreshed by the scheduler's job."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from lifecycle_support import connect, fresh_database, new_account
from psycopg import sql
from test_visitor_stats import ENTRIES, PAGE_VISITS, _visit

from hindsight import timerange
from hindsight.dashboard import overview
from hindsight.lifecycle import JobRunner, lifecycle_jobs
from hindsight.queries import traffic
from hindsight.queries import visitors as visitor_stats
from hindsight.settings import Settings

CAP = 1800.0
DIMENSIONS = traffic.DIMENSIONS


@pytest.fixture(scope="module")
def weeks(cluster):
    with fresh_database(cluster.url(), "vweek") as url:
        settings = Settings(database_url=url, rate_limit_per_minute=0, pool_max=2)
        rnd = random.Random(31)
        with connect(url) as conn:
            now = conn.execute("SELECT now() AS t").fetchone()["t"]
            account_id, host = new_account(conn)
            visitors = [uuid.uuid4() for _ in range(90)]
            for visitor in visitors:
                for _ in range(rnd.randint(1, 4)):
                    _visit(conn, rnd, account_id, host, visitor, now - timedelta(hours=rnd.uniform(2, 40 * 24)), now)
            runner = JobRunner(url, lifecycle_jobs(settings))
            runner.run("refresh_rollups", force=True)
            # After the refresh: sessions of the last minutes (raw rows only), some returning.
            for visitor in [*visitors[:4], uuid.uuid4()]:
                _visit(conn, rnd, account_id, host, visitor, now - timedelta(minutes=rnd.uniform(1, 40)), now)
        yield {"url": url, "now": now, "id": account_id, "host": host, "runner": runner}


def _without_weeks(monkeypatch):
    """The readers as before 0031: daily rows for every whole day."""
    params = visitor_stats._params
    monkeypatch.setattr(visitor_stats, "_params", lambda *a, **k: params(*a, **{**k, "weeks": False}))


def _week_rows_equal_their_days(conn, prefix: str, keys: tuple[str, ...]) -> int:
    """Every weekly row: the sums and the visitors of its week's daily rows. Returns the rows."""
    query = sql.SQL("""
        WITH d AS (
            SELECT time_bucket(INTERVAL '7 days', bucket) AS bucket, account_id, {keys},
                   sum(page_views)::bigint AS page_views, hll_cardinality(hll_union_agg(visitors)) AS visitors
            FROM {daily}
            WHERE bucket < (SELECT materialized_until FROM rollup_watermarks WHERE rollup = {weekly_name})
            GROUP BY 1, 2, {keys}
        )
        SELECT w.bucket, w.page_views AS w_views, d.page_views AS d_views,
               hll_cardinality(w.visitors) AS w_visitors, d.visitors AS d_visitors
        FROM {weekly} w FULL JOIN d USING (bucket, account_id, {keys})""").format(
        keys=sql.SQL(", ").join(map(sql.Identifier, keys)), daily=sql.Identifier(f"{prefix}_daily_store"),
        weekly=sql.Identifier(f"{prefix}_weekly_store"), weekly_name=sql.Literal(f"{prefix}_weekly"))
    rows = conn.execute(query).fetchall()
    assert rows
    for r in rows:
        assert (r["w_views"], r["w_visitors"]) == (r["d_views"], r["d_visitors"]), r
    return len(rows)


def test_weekly_rows_hold_their_days(weeks):
    with connect(weeks["url"]) as conn:
        assert _week_rows_equal_their_days(conn, "visits", ("host", "dimension", "value")) > 20
        assert _week_rows_equal_their_days(conn, "page_visits", ("host", "path")) > 10
        marks = {r["rollup"]: r["materialized_until"] for r in conn.execute("SELECT * FROM rollup_watermarks")}
    # The current week so far too (a partial week): the weekly watermark is the daily one,
    # a whole hour (the rows above hold their days up to it, today's partial day included).
    week = marks["visits_weekly"].astimezone(UTC)
    assert (week.minute, week.second) == (0, 0)
    assert week == marks["visits_daily"] and marks["page_visits_weekly"] == marks["page_visits_daily"]


def _summary_equals_the_raw_rows(conn, a, rng) -> dict:
    """The summary's visitors, sessions and bounces against plain SQL over the sessions."""
    summary = visitor_stats.summary(conn, a, rng)
    want = conn.execute("""
        SELECT count(DISTINCT visitor_id) AS visitors, count(*) AS sessions,
               count(*) FILTER (WHERE page_view_count <= 1) AS bounces
        FROM sessions WHERE account_id = %s AND started_at >= %s AND started_at < %s""",
        (a, rng.start, rng.end)).fetchone()
    assert (summary["visitors"], summary["sessions"], summary["bounces"]) == (
        want["visitors"], want["sessions"], want["bounces"])
    return summary


def _thirty_days(weeks):
    now = weeks["now"]
    return traffic.hour_range(now - timedelta(days=30), now), traffic.day_range(now - timedelta(days=30), now)


def test_a_long_range_reads_whole_weeks_and_equals_the_raw_rows(weeks):
    hours, days = _thirty_days(weeks)
    a = weeks["id"]
    with connect(weeks["url"]) as conn, conn.transaction():
        params = visitor_stats._params(conn, a, days, None, ("visits",))
        assert params["visits_week0"] < params["visits_wcut"]  # the weekly store is read
        summary = _summary_equals_the_raw_rows(conn, a, days)
        assert summary["sessions"] > summary["visitors"] > 40
        pages = visitor_stats.pages(conn, a, hours, 100)
        views = {r["path"]: r for r in conn.execute(PAGE_VISITS, (a, CAP, hours.start, hours.end)).fetchall()}
        entries = {r["path"]: r for r in conn.execute(ENTRIES, (a, hours.start, hours.end)).fetchall()}
        assert {p["path"] for p in pages} == set(views)
        for p in pages:
            v, e = views[p["path"]], entries.get(p["path"], {"entries": 0, "bounces": 0})
            assert (p["page_views"], p["visitors"], p["exits"]) == (v["page_views"], v["visitors"], v["exits"])
            assert (p["entries"], p["bounces"]) == (e["entries"], e["bounces"])
            assert p["avg_time_on_page_s"] == pytest.approx(float(v["seconds"]) / v["page_views"], abs=0.06)
        got = visitor_stats.breakdowns(conn, a, DIMENSIONS, days, 8)
        browsers = conn.execute("""
            SELECT nullif(coalesce(browser, ''), '') AS value, count(*) AS sessions,
                   count(DISTINCT visitor_id) AS visitors
            FROM sessions WHERE account_id = %s AND started_at >= %s AND started_at < %s
            GROUP BY 1 ORDER BY sessions DESC, value""", (a, days.start, days.end)).fetchall()
        assert got["browser"]["data"] == [dict(r) for r in browsers]


@pytest.mark.parametrize("preset", list(timerange.PRESETS))
def test_the_overview_with_weeks_equals_the_overview_from_days(weeks, preset, monkeypatch):
    end = datetime.now(UTC)
    start = end - timerange.PRESETS[preset]
    with connect(weeks["url"]) as conn, visitor_stats.snapshot(conn):
        with_weeks = overview.numbers(conn, weeks["id"], start, end)
        _without_weeks(monkeypatch)
        from_days = overview.numbers(conn, weeks["id"], start, end)
    assert with_weeks == from_days
    assert with_weeks["visitors"]["visitors"] > 0


def test_a_late_session_is_counted_in_its_week_after_the_next_refresh(weeks):
    """A session stored after the refresh, dated 36 hours back (inside the hourly roll-ups'
    2-day late window): the next refresh rewrites its hour, its day and, if that day is in a
    closed week (the week began less than 36 hours ago), the week."""
    a, now = weeks["id"], weeks["now"]
    late = now - timedelta(hours=36)
    _, days = _thirty_days(weeks)
    with connect(weeks["url"]) as conn:
        before = visitor_stats.summary(conn, a, days)
        _visit(conn, random.Random(5), a, weeks["host"], uuid.uuid4(), late, now)
        # And the last closed week's rows made stale, as if its days had changed since.
        for store in ("visits_weekly_store", "page_visits_weekly_store"):
            assert conn.execute(sql.SQL("UPDATE {0} SET page_views = page_views + 100, visitors = NULL "
                                        "WHERE bucket = (SELECT max(bucket) FROM {0})").format(
                sql.Identifier(store))).rowcount > 0
        weeks["runner"].run("refresh_rollups", force=True)
        with conn.transaction():
            after = visitor_stats.summary(conn, a, days)
        assert (after["visitors"], after["sessions"]) == (before["visitors"] + 1, before["sessions"] + 1)
        _week_rows_equal_their_days(conn, "visits", ("host", "dimension", "value"))
        _week_rows_equal_their_days(conn, "page_visits", ("host", "path"))


@pytest.mark.parametrize("preset", list(timerange.PRESETS))
def test_the_overview_on_two_connections_equals_the_overview_on_one(weeks, preset):
    """With a spare connection the overview's statements run in two groups at once
    (hindsight.side_by_side): the same numbers, and the second group ran on the spare (its
    readers' SET LOCAL is visible in the spare's transaction)."""
    end = datetime.now(UTC)
    start = end - timerange.PRESETS[preset]
    with connect(weeks["url"]) as conn, connect(weeks["url"]) as spare:
        with visitor_stats.snapshot(conn):
            on_one = overview.numbers(conn, weeks["id"], start, end)
        with visitor_stats.snapshot(conn, spare) as shared:
            assert shared is spare  # one snapshot on both
            on_two = overview.numbers(conn, weeks["id"], start, end, shared)
            ran_there = spare.execute("SHOW max_parallel_workers_per_gather").fetchone()
    assert on_two == on_one
    assert on_one["visitors"]["visitors"] > 0 and on_one["top_pages"]
    assert ran_there["max_parallel_workers_per_gather"] == "0"


# ------------------------------------------------------------------ partial days
# The daily visitor roll-ups also hold today so far (Rollup.partial): a refresh at 15:30 stores
# the day's row up to 14:00 (its watermark inside the day), readers take that one row instead
# of its 14 hourly ones, and the next day's refresh replaces it with the whole day. Refreshes
# here run at fixed times in the past (the raw rows after them are the readers' tail), so the
# partial day is there whatever the time of day the test runs.

@pytest.fixture(scope="module")
def partial(cluster):
    with fresh_database(cluster.url(), "vpart") as url:
        rnd = random.Random(47)
        with connect(url) as conn:
            now = conn.execute("SELECT now() AS t").fetchone()["t"]
            day = traffic._floor(now - timedelta(days=3), timedelta(days=1))
            account_id, host = new_account(conn)
            visitors = [uuid.uuid4() for _ in range(60)]
            for visitor in visitors:  # sessions over 12 days, many on `day` itself
                for _ in range(rnd.randint(1, 3)):
                    _visit(conn, rnd, account_id, host, visitor, now - timedelta(hours=rnd.uniform(1, 12 * 24)), now)
                _visit(conn, rnd, account_id, host, visitor, day + timedelta(hours=rnd.uniform(0.2, 23.8)), now)
        yield {"url": url, "now": now, "day": day, "id": account_id}


def _refresh_at(url, t):
    from hindsight.lifecycle import rollups
    with connect(url) as conn:
        for rollup in rollups.VISITOR_ROLLUPS:
            rollups.refresh(conn, rollup, t)
        return {r["rollup"]: r["materialized_until"] for r in conn.execute("SELECT * FROM rollup_watermarks")}


def _equal_to_the_raw_rows(url, a, days, per_day=True):
    with connect(url) as conn, visitor_stats.snapshot(conn):  # one snapshot: partial rows are read
        params = visitor_stats._params(conn, a, days, None, ("visits", "page_visits"))
        _summary_equals_the_raw_rows(conn, a, days)
        pages = {p["path"]: p for p in visitor_stats.pages(conn, a, days, 100)}
        views = {r["path"]: r for r in conn.execute(PAGE_VISITS, (a, CAP, days.start, days.end)).fetchall()}
        assert set(pages) == set(views)
        for path, v in views.items():
            assert (pages[path]["page_views"], pages[path]["visitors"]) == (v["page_views"], v["visitors"])
        if not per_day:  # a range of whole hours: no series per day
            return params
        per_day = {r["bucket"]: r["visitors"] for r in visitor_stats.series(conn, a, days, "day")}
        want_days = {r["d"]: r["visitors"] for r in conn.execute("""
            SELECT time_bucket(INTERVAL '1 day', started_at) AS d, count(DISTINCT visitor_id) AS visitors
            FROM sessions WHERE account_id = %s AND started_at >= %s AND started_at < %s GROUP BY 1""",
            (a, days.start, days.end))}
        got_days = {d: v for d, v in per_day.items() if v}
        assert got_days == want_days, (sorted(got_days.items()), sorted(want_days.items()))
    return params


def test_a_partial_day_is_stored_read_once_and_replaced_by_the_next_refresh(partial):
    url, day, a = partial["url"], partial["day"], partial["id"]
    marks = _refresh_at(url, day + timedelta(hours=15, minutes=30))
    assert marks["visits_daily"] == marks["page_visits_daily"] == day + timedelta(hours=14)
    assert marks["visits_hourly"] == day + timedelta(hours=14)
    with connect(url) as conn:
        stored = conn.execute("SELECT count(*) AS n FROM visits_daily_store WHERE account_id = %s AND bucket = %s "
                              "AND dimension = 'all'", (a, day)).fetchone()["n"]
    assert stored == 1  # the day so far: one row
    # A range over the partial day: its row is read (daily rows up to the next day, hours and
    # the raw tail from 14:00), and every answer equals plain SQL over the raw rows.
    days = traffic.day_range(partial["now"] - timedelta(days=10), partial["now"])
    params = _equal_to_the_raw_rows(url, a, days)
    assert params["visits_dcut"] == day + timedelta(hours=14)
    # The partial day's week is partial too: read as one weekly row when the range holds its
    # Monday (and then no daily row after it), else as its days.
    monday = day - timedelta(days=day.weekday())
    if days.start <= monday:
        assert params["visits_wend"] == monday + timedelta(days=7) == params["visits_dend"]
        assert params["visits_wcut"] == params["visits_dend"]
    else:
        assert params["visits_dend"] == day + timedelta(days=1)
    with connect(url) as conn:
        week_marks = {r["rollup"]: r["materialized_until"] for r in conn.execute(
            "SELECT * FROM rollup_watermarks WHERE rollup LIKE '%%_weekly'")}
    assert week_marks == {"visits_weekly": day + timedelta(hours=14), "page_visits_weekly": day + timedelta(hours=14)}
    # A range from the partial week's Monday: its row is read, answers equal the raw rows.
    from_monday = traffic.Range(monday, traffic._ceil(partial["now"], timedelta(days=1)))
    assert _equal_to_the_raw_rows(url, a, from_monday)["visits_wend"] == monday + timedelta(days=7)
    # A range that ends inside the partial day cannot use it: hourly rows, as before.
    inside = traffic.Range(day - timedelta(days=2), day + timedelta(hours=10))
    with connect(url) as conn, visitor_stats.snapshot(conn):
        cut = visitor_stats._params(conn, a, inside, None, ("visits",))
    assert cut["visits_dend"] == cut["visits_dcut"] == day
    _equal_to_the_raw_rows(url, a, inside, per_day=False)
    # The next day's refresh replaces the partial row with the whole day: nothing counted twice.
    marks = _refresh_at(url, day + timedelta(days=1, hours=3, minutes=30))
    assert marks["visits_daily"] == day + timedelta(days=1, hours=2)
    with connect(url) as conn:
        whole = conn.execute("SELECT sessions FROM visits_daily_store WHERE account_id = %s AND bucket = %s "
                             "AND dimension = 'all'", (a, day)).fetchone()["sessions"]
        want = conn.execute("SELECT count(*) AS n FROM sessions WHERE account_id = %s AND started_at >= %s "
                            "AND started_at < %s", (a, day, day + timedelta(days=1))).fetchone()["n"]
    assert whole == want > 20
    _equal_to_the_raw_rows(url, a, days)


def test_a_weekly_refresh_behind_the_daily_one_never_reads_its_partial_week_as_whole(partial):
    """The weekly roll-up's watermark inside a week the daily one has gone past (its refresh
    failed, say): readers take that week from the daily rows, whole weeks only from the store."""
    url, day, a = partial["url"], partial["day"], partial["id"]
    _refresh_at(url, day + timedelta(days=1, hours=3, minutes=30))  # the partial test's last state
    with connect(url) as conn:
        marks = {r["rollup"]: r["materialized_until"] for r in conn.execute("SELECT * FROM rollup_watermarks")}
        this_monday = traffic._floor(marks["visits_daily"], timedelta(days=1)) - timedelta(
            days=marks["visits_daily"].weekday())
        behind = this_monday - timedelta(days=3) + timedelta(hours=2)  # inside the week before
        conn.execute("UPDATE rollup_watermarks SET materialized_until = %s WHERE rollup LIKE '%%_weekly'", (behind,))
    try:
        days = traffic.day_range(partial["now"] - timedelta(days=30), partial["now"])
        params = _equal_to_the_raw_rows(url, a, days)
        assert params["visits_week0"] < params["visits_wend"]  # whole weeks are read
        monday = behind - timedelta(days=behind.weekday(), hours=behind.hour)
        # The weekly rows read, [week0, wend): none, or whole weeks ending by the week the
        # weekly watermark is in.
        assert params["visits_wend"] == params["visits_wcut"]
        assert params["visits_week0"] == params["visits_wend"] or params["visits_wend"] <= monday
    finally:
        _refresh_at(url, day + timedelta(days=1, hours=3, minutes=30))
