"""GET /api/v1/stats/...: the dashboard's numbers, read from the roll-ups, equal the same
numbers computed from the raw rows; analyst key only, one account's data only.

The module runs its own database and app (the roll-ups are refreshed here, and rows are
written with chosen timestamps)."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta

import falcon.testing
import pytest
from lifecycle_support import add_events, add_session, connect, fresh_database, new_account
from psycopg import sql

from hindsight.app import create_app, prepare_database
from hindsight.db import create_pool
from hindsight.lifecycle import JobRunner, lifecycle_jobs
from hindsight.queries.tenancy import create_api_key
from hindsight.settings import Settings

TYPES = ("page_view", "page_view", "click", "click", "click", "scroll", "error", "input")
PAGES = ("/", "/pricing", "/docs?page=2", "/blog/post-1", "/signup#form")
REFERRERS = (None, "https://www.google.com/search?q=x", "https://news.ycombinator.com/item",
             "https://t.co/abc", None)
CLIENTS = (("desktop", "Firefox", "Linux"), ("mobile", "Mobile Safari", "iOS"),
           ("desktop", "Chrome", "Windows"), ("tablet", "Chrome", "Android"), (None, None, None))


@pytest.fixture(scope="module")
def world(cluster):
    """Two accounts with a week of sessions and events, the roll-ups refreshed."""
    with fresh_database(cluster.url(), "lcstats") as url:
        settings = Settings(database_url=url, rate_limit_per_minute=0, pool_max=2)
        pool = create_pool(settings)
        prepare_database(pool)
        rnd = random.Random(7)
        with connect(url) as conn:
            now = conn.execute("SELECT now() AS t").fetchone()["t"]
            accounts = {}
            for name in ("a", "b"):
                account_id, host = new_account(conn)
                accounts[name] = {"id": account_id, "host": host,
                                  "key": create_api_key(conn, str(account_id))}
                for _ in range(80 if name == "a" else 10):
                    start = now - timedelta(hours=rnd.uniform(0, 7 * 24))
                    device, browser, os_ = rnd.choice(CLIENTS)
                    sid = add_session(conn, account_id, host, start, referrer=rnd.choice(REFERRERS),
                                      device_type=device, browser=browser, os=os_)
                    events = [(start, "session_start", f"https://{host}/")]
                    events += [(min(now, start + timedelta(seconds=40 * i)), rnd.choice(TYPES),
                                f"https://{host}{rnd.choice(PAGES)}") for i in range(1, rnd.randint(2, 15))]
                    add_events(conn, sid, account_id, host, events)
        JobRunner(url, lifecycle_jobs(settings)).run("refresh_rollups", force=True)
        client = falcon.testing.TestClient(create_app(settings, pool))
        yield {"url": url, "client": client, "now": now, **accounts}
        pool.close()


def get(world, path, account="a", **params):
    headers = {"Authorization": f"Bearer {world[account]['key']}"}
    return world["client"].simulate_get(path, params=params, headers=headers)


def raw(world, sql, *params):
    with connect(world["url"]) as conn:
        return conn.execute(sql, params).fetchall()


def span(resp):
    return datetime.fromisoformat(resp.json["from"]), datetime.fromisoformat(resp.json["to"])


@pytest.mark.parametrize("interval,width", [("hour", timedelta(hours=1)), ("day", timedelta(days=1))])
def test_series_equals_the_raw_counts_bucket_by_bucket(world, interval, width):
    since = world["now"] - timedelta(days=5, minutes=17)
    resp = get(world, "/api/v1/stats/series", interval=interval, **{"from": since.isoformat()})
    assert resp.status_code == 200, resp.json
    start, end = span(resp)
    assert start <= since < start + width and end - width < world["now"] <= end
    rows = resp.json["data"]
    assert len(rows) == (end - start) / width  # one row per bucket, zeros included
    expected = {r["bucket"]: r for r in raw(world, """
        SELECT time_bucket(%s, "timestamp") AS bucket,
               count(*) AS events, count(*) FILTER (WHERE event_type = 'session_start') AS sessions,
               count(*) FILTER (WHERE event_type = 'page_view') AS page_views,
               count(*) FILTER (WHERE event_type = 'click') AS clicks,
               count(*) FILTER (WHERE event_type = 'error') AS errors
        FROM events WHERE account_id = %s AND "timestamp" >= %s AND "timestamp" < %s GROUP BY 1""",
        width, world["a"]["id"], start, end)}
    zero = {"events": 0, "sessions": 0, "page_views": 0, "clicks": 0, "errors": 0}
    for row in rows:
        bucket = datetime.fromisoformat(row["bucket"])
        want = expected.get(bucket, zero)
        assert {k: row[k] for k in zero} == {k: want[k] for k in zero}, bucket
    assert sum(r["events"] for r in rows) > 100


def test_totals_pages_and_event_types_equal_the_raw_counts_over_an_uneven_range(world):
    since = world["now"] - timedelta(days=4, hours=5, minutes=3)
    until = world["now"] - timedelta(hours=7, minutes=41)
    params = {"from": since.isoformat(), "to": until.isoformat()}
    types = get(world, "/api/v1/stats/event-types", **params)
    assert types.status_code == 200, types.json
    start, end = span(types)
    assert (start, end) == (since.replace(minute=0, second=0, microsecond=0),
                            until.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1))
    expected = {r["event_type"]: r["n"] for r in raw(world, """
        SELECT event_type, count(*) AS n FROM events
        WHERE account_id = %s AND "timestamp" >= %s AND "timestamp" < %s GROUP BY 1""",
        world["a"]["id"], start, end)}
    assert {r["event_type"]: r["events"] for r in types.json["data"]} == expected
    assert [r["events"] for r in types.json["data"]] == sorted(expected.values(), reverse=True)

    pages = get(world, "/api/v1/stats/pages", limit=100, **params)
    assert pages.status_code == 200, pages.json
    expected_pages = {(r["path"]): (r["v"], r["c"], r["e"]) for r in raw(world, """
        SELECT hindsight_url_path(page_url) AS path, count(*) FILTER (WHERE event_type = 'page_view') AS v,
               count(*) FILTER (WHERE event_type = 'click') AS c, count(*) FILTER (WHERE event_type = 'error') AS e
        FROM events WHERE account_id = %s AND "timestamp" >= %s AND "timestamp" < %s
          AND event_type IN ('page_view', 'click', 'error') GROUP BY 1""", world["a"]["id"], start, end)}
    got = {r["path"]: (r["page_views"], r["clicks"], r["errors"]) for r in pages.json["data"]}
    assert got == expected_pages
    assert {"/pricing", "/docs", "/signup"} <= set(got)  # query strings and fragments are not paths
    assert all(r["host"] == world["a"]["host"] for r in pages.json["data"])
    top = get(world, "/api/v1/stats/pages", limit=2, **params).json["data"]
    assert [r["path"] for r in top] == [r["path"] for r in pages.json["data"][:2]]
    assert top[0]["page_views"] == max(v for v, _, _ in expected_pages.values())


@pytest.mark.parametrize("path,dimension", [("referrers", "referrer"), ("devices", "device_type"),
                                            ("browsers", "browser"), ("os", "os")])
def test_breakdowns_count_sessions_started_in_the_range(world, path, dimension):
    since = world["now"] - timedelta(days=3, hours=2)
    resp = get(world, f"/api/v1/stats/{path}", **{"from": since.isoformat()})
    assert resp.status_code == 200, resp.json
    start, end = span(resp)
    assert start.hour == 0 and end.hour == 0 and resp.json["dimension"] == dimension
    column = sql.SQL("hindsight_referrer_host(referrer, host)") if dimension == "referrer" else sql.Identifier(
        dimension)
    expected = Counter({r["v"]: r["n"] for r in raw(world, sql.SQL("""
        SELECT {} AS v, count(*) AS n FROM sessions
        WHERE account_id = %s AND started_at >= %s AND started_at < %s GROUP BY 1""").format(column),
        world["a"]["id"], start, end)})
    assert {r["value"]: r["sessions"] for r in resp.json["data"]} == expected
    assert resp.json["total"] == sum(expected.values()) > 0
    if dimension == "referrer":
        assert "google.com" in expected and None in expected  # www. dropped; direct is null


def test_an_account_sees_only_its_own_numbers_and_a_key_is_required(world):
    a = get(world, "/api/v1/stats/event-types", "a").json["data"]
    b = get(world, "/api/v1/stats/event-types", "b").json["data"]
    expected_b = {r["event_type"]: r["n"] for r in raw(
        world, "SELECT event_type, count(*) AS n FROM events WHERE account_id = %s GROUP BY 1", world["b"]["id"])}
    assert {r["event_type"]: r["events"] for r in b} == expected_b
    assert sum(r["events"] for r in a) > sum(r["events"] for r in b)
    other_host = get(world, "/api/v1/stats/series", "b", host=world["a"]["host"]).json["data"]
    assert sum(r["events"] for r in other_host) == 0
    own_host = get(world, "/api/v1/stats/series", "b", host=world["b"]["host"]).json["data"]
    assert sum(r["events"] for r in own_host) == sum(expected_b.values())
    for path in ("series", "event-types", "pages", "referrers", "devices", "browsers", "os"):
        resp = world["client"].simulate_get(f"/api/v1/stats/{path}")
        assert resp.status_code == 401, path
        resp = world["client"].simulate_get(f"/api/v1/stats/{path}", headers={"Authorization": "Bearer nope"})
        assert resp.status_code == 401, path


@pytest.mark.parametrize("path,params,field", [
    ("series", {"interval": "minute"}, "interval"),
    ("series", {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}, "from"),
    ("series", {"interval": "hour", "from": "2025-01-01T00:00:00Z", "to": "2025-12-01T00:00:00Z"}, "from"),
    ("pages", {"from": "2020-01-01T00:00:00Z", "to": "2025-01-01T00:00:00Z"}, "from"),
    ("pages", {"limit": "0"}, "limit"),
    ("browsers", {"from": "yesterday"}, "from"),
    ("os", {"colour": "blue"}, "colour"),
])
def test_bad_parameters_are_named(world, path, params, field):
    resp = get(world, f"/api/v1/stats/{path}", **params)
    assert resp.status_code == 400, resp.json
    assert field in resp.json["fields"]


def test_events_sent_through_the_ingestion_api_show_up_in_the_stats(client, site, session_id):
    """The shared app: what the tracker sends is counted at once (the newest hour is
    computed from raw events at query time, whatever the refresh job has done)."""
    from conftest import now_iso

    batch = [{"seq": i, "timestamp": now_iso(-i), "event_type": kind, "page_url": f"{site.origin}/shop?x={i}"}
             for i, kind in enumerate(["page_view", "click", "click", "error"])]
    sent = client.simulate_post("/api/v1/track", json={"session_id": session_id, "events": batch},
                                headers=site.write_headers())
    assert sent.status_code in (200, 201), sent.json
    types = client.simulate_get("/api/v1/stats/event-types", headers=site.read_headers()).json["data"]
    assert {r["event_type"]: r["events"] for r in types} == {"page_view": 1, "click": 2, "error": 1}
    pages = client.simulate_get("/api/v1/stats/pages", headers=site.read_headers()).json["data"]
    assert [(r["path"], r["page_views"], r["clicks"], r["errors"]) for r in pages] == [("/shop", 1, 2, 1)]
    hourly = client.simulate_get("/api/v1/stats/series", params={"interval": "hour"},
                                 headers=site.read_headers()).json["data"]
    assert sum(r["clicks"] for r in hourly) == 2 and len(hourly) in (720, 721)
