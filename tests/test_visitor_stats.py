"""Unique visitors, bounce rate, session duration, pages per session, entry and exit pages and
time on page from the visitor roll-ups (sql/migrations/0023) equal the same numbers computed
with plain SQL over the raw rows — over uneven ranges that mix daily and hourly buckets, the
store (refreshed) and the newest hours (computed at query time).

The module runs its own database and app, and writes rows with chosen timestamps."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

import falcon.testing
import pytest
from lifecycle_support import add_events, add_session, connect, fresh_database, new_account
from psycopg import sql

from hindsight.app import create_app, prepare_database
from hindsight.db import create_pool
from hindsight.lifecycle import JobRunner, lifecycle_jobs
from hindsight.queries.tenancy import create_api_key
from hindsight.settings import Settings

PAGES = ("/", "/pricing", "/docs?page=2", "/blog/post-1", "/signup#form")
REFERRERS = (None, "https://www.google.com/search?q=x", "https://t.co/abc")
CLIENTS = (("desktop", "Firefox", "Linux"), ("mobile", "Mobile Safari", "iOS"), (None, None, None))
# Gaps between page views: some longer than the 30-minute cap.
GAPS = (5, 20, 45, 90, 300, 1500, 2400, 4000)
CAP = 1800.0


@pytest.fixture(scope="module")
def world(cluster):
    """Two accounts: visitors with several sessions over a week; roll-ups refreshed, then
    more sessions in the newest hour (counted from the raw rows at query time)."""
    with fresh_database(cluster.url(), "vstats") as url:
        settings = Settings(database_url=url, rate_limit_per_minute=0, pool_max=2)
        pool = create_pool(settings)
        prepare_database(pool)
        rnd = random.Random(14)
        with connect(url) as conn:
            now = conn.execute("SELECT now() AS t").fetchone()["t"]
            accounts = {}
            for name, n_visitors in (("a", 70), ("b", 6)):
                account_id, host = new_account(conn)
                accounts[name] = {"id": account_id, "host": host, "key": create_api_key(conn, str(account_id))}
                visitors = [uuid.uuid4() for _ in range(n_visitors)]
                for visitor in visitors:
                    for _ in range(rnd.randint(1, 4)):
                        _visit(conn, rnd, account_id, host, visitor,
                               now - timedelta(hours=rnd.uniform(2, 6.5 * 24)), now)
            # An account with more visitors than a sketch keeps exactly (2,560): 30,000 sessions
            # of 12,000 visitors over three days, no events.
            account_id, host = new_account(conn)
            accounts["c"] = {"id": account_id, "host": host, "key": create_api_key(conn, str(account_id))}
            conn.execute("""
                INSERT INTO sessions (session_id, account_id, host, started_at, last_activity_at, visitor_id)
                SELECT gen_random_uuid(), %(a)s, %(h)s, t, t, md5(%(h)s || (i %% 12000))::uuid
                FROM generate_series(1, 30000) AS i,
                     LATERAL (SELECT %(now)s::timestamptz - INTERVAL '3 days' * (i / 30000.0) - INTERVAL '2 hours'
                                     AS t) AS x""", {"a": account_id, "h": host, "now": now})
            JobRunner(url, lifecycle_jobs(settings)).run("refresh_rollups", force=True)
            watermark = conn.execute("SELECT min(materialized_until) AS t FROM rollup_watermarks "
                                     "WHERE rollup LIKE '%%visits_hourly'").fetchone()["t"]
            assert watermark is not None and watermark > now - timedelta(hours=3)
            # After the refresh: sessions of the newest minutes, some by visitors seen before.
            a = accounts["a"]
            for visitor in [*rnd.sample(visitors_of(conn, a["id"]), 5), uuid.uuid4(), uuid.uuid4()]:
                _visit(conn, rnd, a["id"], a["host"], visitor, now - timedelta(minutes=rnd.uniform(1, 20)), now)
        client = falcon.testing.TestClient(create_app(settings, pool))
        yield {"url": url, "client": client, "now": now, **accounts}
        pool.close()


def visitors_of(conn, account_id) -> list[uuid.UUID]:
    return [r["visitor_id"] for r in conn.execute(
        "SELECT DISTINCT visitor_id FROM sessions WHERE account_id = %s", (account_id,))]


def _visit(conn, rnd, account_id, host, visitor, start, now) -> None:
    device, browser, os_ = rnd.choice(CLIENTS)
    sid = add_session(conn, account_id, host, start, referrer=rnd.choice(REFERRERS), device_type=device,
                      browser=browser, os=os_)
    t, events = start, []
    for i in range(rnd.choice((1, 1, 2, 3, 5))):
        if i:
            t += timedelta(seconds=rnd.choice(GAPS))
        events.append((min(t, now), "page_view", f"https://{host}{rnd.choice(PAGES)}"))
        if rnd.random() < 0.5:  # activity after a page view: the last one's time on page
            events.append((min(t + timedelta(seconds=rnd.choice(GAPS)), now), "click", events[-1][2]))
    add_events(conn, sid, account_id, host, sorted(events))
    views = [e for e in events if e[1] == "page_view"]
    conn.execute("UPDATE sessions SET visitor_id = %s, page_url = %s, page_view_count = %s WHERE session_id = %s",
                 (visitor, views[0][2], len(views), sid))


def get(world, path, account="a", **params):
    headers = {"Authorization": f"Bearer {world[account]['key']}"}
    resp = world["client"].simulate_get(path, params=params, headers=headers)
    assert resp.status_code == 200, resp.json
    return resp.json


def raw(world, query, *params):
    with connect(world["url"]) as conn:
        return conn.execute(query, params).fetchall()


def bounds(answer):
    from datetime import datetime

    return datetime.fromisoformat(answer["from"]), datetime.fromisoformat(answer["to"])


def uneven(world):
    return {"from": (world["now"] - timedelta(days=4, hours=5, minutes=3)).isoformat(),
            "to": (world["now"] + timedelta(minutes=5)).isoformat()}


def test_the_visitor_summary_equals_the_raw_sessions(world):
    answer = get(world, "/api/v1/stats/visitors", **uneven(world))
    start, end = bounds(answer)
    want = raw(world, """
        SELECT count(DISTINCT visitor_id) AS visitors, count(*) AS sessions,
               count(*) FILTER (WHERE page_view_count <= 1) AS bounces,
               avg(extract(epoch FROM last_activity_at - started_at)) AS duration,
               avg(page_view_count) AS pages
        FROM sessions WHERE account_id = %s AND started_at >= %s AND started_at < %s""",
        world["a"]["id"], start, end)[0]
    assert answer["visitors"] == want["visitors"] > 20
    assert answer["sessions"] == want["sessions"] > answer["visitors"]  # visitors come back
    assert answer["bounces"] == want["bounces"] > 0
    assert answer["bounce_rate"] == round(want["bounces"] / want["sessions"], 4)
    assert answer["avg_session_duration_s"] == pytest.approx(float(want["duration"]), abs=0.06)
    assert answer["pages_per_session"] == pytest.approx(float(want["pages"]), abs=1e-4)


@pytest.mark.parametrize("interval,width", [("hour", timedelta(hours=1)), ("day", timedelta(days=1))])
def test_visitors_in_the_series_equal_distinct_visitors_per_bucket(world, interval, width):
    answer = get(world, "/api/v1/stats/series", interval=interval, **uneven(world))
    start, end = bounds(answer)
    want = {r["bucket"]: r for r in raw(world, """
        SELECT time_bucket(%s, started_at) AS bucket, count(DISTINCT visitor_id) AS visitors,
               count(*) FILTER (WHERE page_view_count <= 1) AS bounces
        FROM sessions WHERE account_id = %s AND started_at >= %s AND started_at < %s GROUP BY 1""",
        width, world["a"]["id"], start, end)}
    from datetime import datetime

    got = {datetime.fromisoformat(r["bucket"]): (r["visitors"], r["bounces"]) for r in answer["data"]}
    assert {b: v for b, v in got.items() if v != (0, 0)} == {b: (r["visitors"], r["bounces"])
                                                            for b, r in want.items()}
    # A sum of the buckets' visitors counts a returning visitor once per bucket.
    total = get(world, "/api/v1/stats/visitors", **uneven(world))["visitors"]
    if interval == "day":
        assert sum(v for v, _ in got.values()) > total


PAGE_VISITS = """
WITH pv AS (
    SELECT session_id, "timestamp" AS t, hindsight_url_path(page_url) AS path,
           lead("timestamp") OVER (PARTITION BY session_id ORDER BY "timestamp", seq) AS next_t
    FROM events WHERE account_id = %s AND event_type = 'page_view' AND page_url IS NOT NULL
)
SELECT pv.path, count(*) AS page_views, count(DISTINCT s.visitor_id) AS visitors,
       count(*) FILTER (WHERE next_t IS NULL) AS exits,
       sum(least(greatest(extract(epoch FROM coalesce(next_t, s.last_activity_at) - pv.t), 0), %s)) AS seconds
FROM pv JOIN sessions s USING (session_id)
WHERE pv.t >= %s AND pv.t < %s
GROUP BY pv.path
"""
ENTRIES = """
SELECT hindsight_url_path(page_url) AS path, count(*) AS entries,
       count(*) FILTER (WHERE page_view_count <= 1) AS bounces
FROM sessions WHERE account_id = %s AND started_at >= %s AND started_at < %s GROUP BY 1
"""


def test_pages_carry_visitors_time_on_page_bounce_and_exit_rates(world):
    answer = get(world, "/api/v1/stats/pages", limit=100, **uneven(world))
    start, end = bounds(answer)
    views = {r["path"]: r for r in raw(world, PAGE_VISITS, world["a"]["id"], CAP, start, end)}
    entries = {r["path"]: r for r in raw(world, ENTRIES, world["a"]["id"], start, end)}
    assert {r["path"] for r in answer["data"]} == set(views) == {"/", "/pricing", "/docs", "/blog/post-1", "/signup"}
    capped = raw(world, """
        SELECT count(*) AS n FROM (
            SELECT lead("timestamp") OVER (PARTITION BY session_id ORDER BY "timestamp", seq) - "timestamp" AS gap
            FROM events WHERE account_id = %s AND event_type = 'page_view') AS x
        WHERE gap > INTERVAL '30 minutes'""", world["a"]["id"])[0]["n"]
    assert capped > 0  # some gaps were longer than the cap, and were capped
    for row in answer["data"]:
        v, e = views[row["path"]], entries.get(row["path"], {"entries": 0, "bounces": 0})
        assert row["page_views"] == v["page_views"]
        assert row["visitors"] == v["visitors"] > 0
        assert row["exits"] == v["exits"]
        assert row["exit_rate"] == round(v["exits"] / v["page_views"], 4)
        assert row["avg_time_on_page_s"] == pytest.approx(float(v["seconds"]) / v["page_views"], abs=0.06)
        assert (row["entries"], row["bounces"]) == (e["entries"], e["bounces"])
        assert row["bounce_rate"] == (round(e["bounces"] / e["entries"], 4) if e["entries"] else None)
    assert any(0 < r["exit_rate"] < 1 for r in answer["data"])
    assert any(r["avg_time_on_page_s"] > 60 for r in answer["data"])


def test_entry_and_exit_pages_are_ordered_by_their_counts(world):
    entry = get(world, "/api/v1/stats/entry-pages", limit=3, **uneven(world))
    start, end = bounds(entry)
    entries = sorted((r["entries"] for r in raw(world, ENTRIES, world["a"]["id"], start, end)), reverse=True)
    assert [r["entries"] for r in entry["data"]] == entries[:3]
    exits = get(world, "/api/v1/stats/exit-pages", limit=100, **uneven(world))
    want = {r["path"]: r["exits"] for r in raw(world, PAGE_VISITS, world["a"]["id"], CAP, start, end)}
    assert {r["path"]: r["exits"] for r in exits["data"]} == {p: n for p, n in want.items() if n}
    assert [r["exits"] for r in exits["data"]] == sorted(want.values(), reverse=True)[:len(exits["data"])]


@pytest.mark.parametrize("path,dimension", [("referrers", "referrer"), ("devices", "device_type"),
                                            ("browsers", "browser"), ("os", "os")])
def test_breakdowns_count_visitors(world, path, dimension):
    answer = get(world, f"/api/v1/stats/{path}", **uneven(world))
    start, end = bounds(answer)
    column = sql.SQL("hindsight_referrer_host(referrer, host)") if dimension == "referrer" else sql.Identifier(
        dimension)
    want = {r["v"]: r["n"] for r in raw(world, sql.SQL("""
        SELECT {} AS v, count(DISTINCT visitor_id) AS n FROM sessions
        WHERE account_id = %s AND started_at >= %s AND started_at < %s GROUP BY 1""").format(column),
        world["a"]["id"], start, end)}
    assert {r["value"]: r["visitors"] for r in answer["data"]} == want
    assert all(r["sessions"] >= r["visitors"] > 0 for r in answer["data"])


def test_an_account_sees_only_its_own_visitors(world):
    b = get(world, "/api/v1/stats/visitors", "b")
    want = raw(world, "SELECT count(DISTINCT visitor_id) AS n FROM sessions WHERE account_id = %s",
               world["b"]["id"])[0]["n"]
    assert b["visitors"] == want == 6
    other_host = get(world, "/api/v1/stats/visitors", "b", host=world["a"]["host"])
    assert other_host["visitors"] == other_host["sessions"] == 0 and other_host["bounce_rate"] is None


def test_unique_visitors_beyond_a_sketchs_exact_range_stay_within_one_percent(world):
    answer = get(world, "/api/v1/stats/visitors", "c")
    start, end = bounds(answer)
    exact = raw(world, "SELECT count(DISTINCT visitor_id) AS n, count(*) AS s FROM sessions "
                "WHERE account_id = %s AND started_at >= %s AND started_at < %s", world["c"]["id"], start, end)[0]
    assert exact["n"] == 12000 and answer["sessions"] == exact["s"] == 30000
    assert abs(answer["visitors"] - exact["n"]) <= 0.01 * exact["n"], answer["visitors"]
    days = get(world, "/api/v1/stats/series", "c", interval="day")["data"]
    assert sum(r["visitors"] for r in days) > 1.2 * answer["visitors"]  # a sum counts returning visitors again
