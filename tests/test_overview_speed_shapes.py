"""The overview's faster query shapes (issue 12) give the answers of the shapes they replaced,
and of plain SQL over the raw rows: the four breakdowns with their visitors in one statement
(hindsight.queries.visitors.breakdowns), a page list with its visitors merged in the same
statement (`pages(..., paths=...)`), the visitor series read from the stores (not the views).

Correctness only, never timing (bench/stats.py times them). The data: test_visitor_stats's
world (two small accounts with sessions over a week, roll-ups refreshed, then sessions in the
newest minutes that only the raw rows hold) in this module's own database."""

from __future__ import annotations

from datetime import timedelta

import pytest
from lifecycle_support import connect
from psycopg import sql
from test_visitor_stats import world  # noqa: F401 - the module's data (a fixture)

from hindsight.queries import traffic
from hindsight.queries import visitors as visitor_stats

DIMENSIONS = traffic.DIMENSIONS


def _ranges(world):  # noqa: F811 - the fixture's value
    now = world["now"]
    start = now - timedelta(days=4, hours=5, minutes=3)
    return traffic.hour_range(start, now + timedelta(minutes=5)), traffic.day_range(start, now + timedelta(minutes=5))


def _one_by_one(conn, account_id, days, limit, host=None) -> dict:
    """What the overview ran before: per attribute, traffic.breakdown then its visitors."""
    out = {}
    for dim in DIMENSIONS:
        result = traffic.breakdown(conn, account_id, dim, days, limit, host)
        counts = visitor_stats.breakdown_visitors(conn, account_id, dim, days, [r["value"] for r in result["data"]],
                                                  host)
        out[dim] = {"total": result["total"], "data": [{**r, "visitors": counts[r["value"]]} for r in result["data"]]}
    return out


@pytest.mark.parametrize("limit", [8, 1])
def test_breakdowns_in_one_statement_equal_the_breakdowns_one_by_one_and_the_raw_sessions(world, limit):  # noqa: F811
    _, days = _ranges(world)
    a = world["a"]
    with connect(world["url"]) as conn, conn.transaction():
        together = visitor_stats.breakdowns(conn, a["id"], DIMENSIONS, days, limit)
        assert together == _one_by_one(conn, a["id"], days, limit)
        # Only a host's sessions; a host with none has empty breakdowns.
        assert visitor_stats.breakdowns(conn, a["id"], DIMENSIONS, days, limit, a["host"]) == together
        assert visitor_stats.breakdowns(conn, a["id"], DIMENSIONS, days, limit, "elsewhere.example") == {
            d: {"total": 0, "data": []} for d in DIMENSIONS}
        for dim in DIMENSIONS:
            column = (sql.SQL("hindsight_referrer_host(referrer, host)") if dim == "referrer"
                      else sql.Identifier(dim))
            want = conn.execute(sql.SQL("""
                SELECT nullif(coalesce({}, ''), '') AS value, count(*) AS sessions,
                       count(DISTINCT visitor_id) AS visitors, sum(count(*)) OVER () AS total
                FROM sessions WHERE account_id = %s AND started_at >= %s AND started_at < %s
                GROUP BY 1 ORDER BY sessions DESC, value LIMIT %s""").format(column),
                (a["id"], days.start, days.end, limit)).fetchall()
            got = together[dim]
            assert got["total"] == want[0]["total"] > 0
            assert got["data"] == [{"value": r["value"], "sessions": r["sessions"], "visitors": r["visitors"]}
                                   for r in want]


def test_a_page_list_with_its_visitors_in_one_statement_equals_the_two_step_answer(world):  # noqa: F811
    hours, _ = _ranges(world)
    a = world["a"]
    with connect(world["url"]) as conn, conn.transaction():
        every = visitor_stats.pages(conn, a["id"], hours, 100)
        paths = sorted(r["path"] for r in every)[:3]
        merged = visitor_stats.pages(conn, a["id"], hours, 100, paths=paths)
        assert len(merged) == 3 and all(r["visitors"] > 0 for r in merged)
        assert merged == [r for r in every if r["path"] in paths]
        assert visitor_stats.pages(conn, a["id"], hours, 100, a["host"], paths=paths) == merged


@pytest.mark.parametrize("interval", ["hour", "day"])
def test_the_visitor_series_from_the_stores_equals_distinct_visitors_per_bucket(world, interval):  # noqa: F811
    hours, days = _ranges(world)
    rng, width = (hours, timedelta(hours=1)) if interval == "hour" else (days, timedelta(days=1))
    a = world["a"]
    with connect(world["url"]) as conn, conn.transaction():
        got = visitor_stats.series(conn, a["id"], rng, interval)
        want = {r["bucket"]: (r["visitors"], r["bounces"]) for r in conn.execute("""
            SELECT time_bucket(%s, started_at) AS bucket, count(DISTINCT visitor_id) AS visitors,
                   count(*) FILTER (WHERE page_view_count <= 1) AS bounces
            FROM sessions WHERE account_id = %s AND started_at >= %s AND started_at < %s GROUP BY 1""",
            (width, a["id"], rng.start, rng.end))}
        # Every bucket of the range, in order; those with sessions as the raw rows say.
        assert [r["bucket"] for r in got] == [rng.start + i * width for i in range((rng.end - rng.start) // width)]
        assert {r["bucket"]: (r["visitors"], r["bounces"]) for r in got if r["visitors"]} == want
        # The newest sessions, after the roll-ups' watermark, are in it (computed at query time).
        watermark = conn.execute("SELECT materialized_until AS t FROM rollup_watermarks "
                                 "WHERE rollup = 'visits_hourly'").fetchone()["t"]
        assert any(b + width > watermark for b in want)
