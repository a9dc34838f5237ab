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
    # Whole weeks only: the weekly watermark is a Monday, at or before the daily one.
    week = marks["visits_weekly"].astimezone(UTC)
    assert week.weekday() == 0 and (week.hour, week.minute) == (0, 0)
    assert week <= marks["visits_daily"] and marks["page_visits_weekly"] <= marks["page_visits_daily"]


def _thirty_days(weeks):
    now = weeks["now"]
    return traffic.hour_range(now - timedelta(days=30), now), traffic.day_range(now - timedelta(days=30), now)


def test_a_long_range_reads_whole_weeks_and_equals_the_raw_rows(weeks):
    hours, days = _thirty_days(weeks)
    a = weeks["id"]
    with connect(weeks["url"]) as conn, conn.transaction():
        params = visitor_stats._params(conn, a, days, None, ("visits",))
        assert params["visits_week0"] < params["visits_wcut"]  # the weekly store is read
        summary = visitor_stats.summary(conn, a, days)
        want = conn.execute("""
            SELECT count(DISTINCT visitor_id) AS visitors, count(*) AS sessions,
                   count(*) FILTER (WHERE page_view_count <= 1) AS bounces
            FROM sessions WHERE account_id = %s AND started_at >= %s AND started_at < %s""",
            (a, days.start, days.end)).fetchone()
        assert (summary["visitors"], summary["sessions"], summary["bounces"]) == (
            want["visitors"], want["sessions"], want["bounces"])
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
    with connect(weeks["url"]) as conn, conn.transaction():
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
