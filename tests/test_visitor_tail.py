"""hindsight_visits(since, until, account, dimensions) (sql/migrations/0039): the visitor
roll-up's newest hours for the dimensions a reader needs only — the same rows, sketches
included, as the three-argument function's (0023) for those dimensions, for any subset; and
the readers that pass their dimensions answer as plain SQL over the raw sessions does."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

import pytest
from lifecycle_support import connect, fresh_database, new_account
from test_visitor_stats import _visit

from hindsight.queries import traffic
from hindsight.queries import visitors as visitor_stats

ALL = ["all", "referrer", "device_type", "browser", "os", "entry_page"]


@pytest.fixture(scope="module")
def recent(cluster):
    """Two accounts' sessions over the last 6 hours, no roll-up refreshed (all of it is tail)."""
    with fresh_database(cluster.url(), "vtail") as url:
        rnd = random.Random(39)
        with connect(url) as conn:
            now = conn.execute("SELECT now() AS t").fetchone()["t"]
            a, host = new_account(conn)
            b, host_b = new_account(conn)
            for account, h, n in ((a, host, 50), (b, host_b, 10)):
                for _ in range(n):
                    _visit(conn, rnd, account, h, uuid.uuid4(), now - timedelta(minutes=rnd.uniform(1, 360)), now)
        yield {"url": url, "now": now, "a": a}


ROWS = """
SELECT bucket, account_id, host, dimension, value, sessions, visitors::text AS visitors, bounces,
       round(duration_s::numeric, 6) AS duration_s, page_views
FROM {call} ORDER BY 1, 2, 3, 4, 5"""


@pytest.mark.parametrize("dimensions", [["all"], ["entry_page"], ["referrer", "device_type", "browser", "os"],
                                        ALL, ["os", "all"], [], ["nonsense"]])
def test_the_dimensions_asked_are_the_three_argument_functions_rows(recent, dimensions):
    since, until, a = recent["now"] - timedelta(hours=7), recent["now"] + timedelta(minutes=1), recent["a"]
    with connect(recent["url"]) as conn:
        every = conn.execute(ROWS.format(call="hindsight_visits(%s, %s, %s)"), (since, until, a)).fetchall()
        some = conn.execute(ROWS.format(call="hindsight_visits(%s, %s, %s, %s)"), (since, until, a, dimensions)).fetchall()
        # Of every account (account NULL), as the three-argument one does.
        everyone = conn.execute(ROWS.format(call="hindsight_visits(%s, %s, NULL, %s)"), (since, until, dimensions))
        assert {r["account_id"] for r in everyone} >= ({a} if dimensions and dimensions != ["nonsense"] else set())
        empty = conn.execute(ROWS.format(call="hindsight_visits(%s, %s, %s, %s)"), (until, since, a, dimensions))
        assert empty.fetchall() == []
    assert len(every) > 6 * 5
    assert some == [r for r in every if r["dimension"] in dimensions]


def test_the_readers_that_ask_for_their_dimensions_equal_the_raw_sessions(recent):
    """Everything after the (absent) watermarks is tail: the summary, the series, a breakdown,
    the entry pages and a breakdown's visitors, each through its dimensions only."""
    a, now = recent["a"], recent["now"]
    rng = traffic.hour_range(now - timedelta(hours=7), now + timedelta(hours=1))
    with connect(recent["url"]) as conn, visitor_stats.snapshot(conn):
        raw = conn.execute("""
            SELECT count(DISTINCT visitor_id) AS visitors, count(*) AS sessions,
                   count(*) FILTER (WHERE page_view_count <= 1) AS bounces
            FROM sessions WHERE account_id = %s""", (a,)).fetchone()
        summary = visitor_stats.summary(conn, a, rng)
        assert (summary["visitors"], summary["sessions"], summary["bounces"]) == (
            raw["visitors"], raw["sessions"], raw["bounces"]) and raw["sessions"] == 50
        assert sum(r["bounces"] for r in visitor_stats.series(conn, a, rng, "hour")) == raw["bounces"]
        browsers = visitor_stats.breakdowns(conn, a, ("browser", "os"), rng, 8)
        want = conn.execute("""
            SELECT nullif(coalesce(browser, ''), '') AS value, count(*) AS sessions,
                   count(DISTINCT visitor_id) AS visitors
            FROM sessions WHERE account_id = %s GROUP BY 1 ORDER BY sessions DESC, value""", (a,)).fetchall()
        assert browsers["browser"]["data"] == [dict(r) for r in want]
        names = [r["value"] for r in want]
        assert visitor_stats.breakdown_visitors(conn, a, "browser", rng, names) == {
            r["value"]: r["visitors"] for r in want}
        entries = {p["path"]: p["entries"] for p in visitor_stats.pages(conn, a, rng, 100) if p["entries"]}
        want_entries = {r["path"]: r["n"] for r in conn.execute("""
            SELECT hindsight_url_path(page_url) AS path, count(*) AS n FROM sessions
            WHERE account_id = %s GROUP BY 1""", (a,))}
        assert entries == want_entries
