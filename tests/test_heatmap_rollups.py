"""The heatmap roll-ups (sql/migrations/0033): what the heatmap page and picture read equals
what the raw events say — before any refresh, after one, after late events and a second
refresh (never counted twice) — and erasure and retention clean them, on both editions
(the timescale edition's case with the events' chunks compressed)."""

from __future__ import annotations

import random
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from lifecycle_support import connect, fresh_database, new_account
from psycopg.types.json import Jsonb

from hindsight import erasure
from hindsight.dashboard import heatmap
from hindsight.lifecycle import JobRunner, lifecycle_jobs, retention
from hindsight.lifecycle import rollups as rollup_module
from hindsight.queries import heatmap_sources as sources
from hindsight.queries import traffic
from hindsight.settings import Settings

PAGES = ("/", "/pricing?x=1", "/#/cart", "/docs#install", "/x/y?z=1#!/r/s")
SELECTORS = ("button.buy", "a.nav", None)
# event_data.o as tracker.js sends it, and what a hostile client might: only two finite
# numbers under 1e7 count (heatmap.click_offset).
OFFSETS = ([3.4, 7.6], [0, 0], ["a", 1], [1e9, 2], [1, 2, 3], None)


def add_session(conn, account, host, started, width, height, user=None) -> uuid.UUID:
    sid = uuid.uuid4()
    conn.execute("INSERT INTO sessions (session_id, account_id, host, started_at, last_activity_at, "
                 "viewport_width, viewport_height, user_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                 (sid, account, host, started, started, width, height, user))
    return sid


def add(conn, sid, account, host, seq, ts, kind, url, **cols) -> None:
    data = cols.pop("event_data", None)
    names = ["session_id", "seq", '"timestamp"', "account_id", "host", "event_type", "page_url", "event_data",
             *cols]
    conn.execute(f"INSERT INTO events ({', '.join(names)}) VALUES ({', '.join(['%s'] * len(names))})",  # noqa: S608
                 (sid, seq, ts, account, host, kind, url, None if data is None else Jsonb(data), *cols.values()))


def fill(conn, account, host, now, rnd: random.Random, *, sessions: int, hours: float, user=None) -> list:
    ids = []
    for _ in range(sessions):
        start = now - timedelta(hours=rnd.uniform(0.1, hours))
        sid = add_session(conn, account, host, start, rnd.choice([390, 1280, 0]), rnd.choice([700, 900]), user)
        ids.append(sid)
        for seq in range(rnd.randint(2, 14)):
            ts = min(start + timedelta(minutes=seq * rnd.uniform(0, 9)), now - timedelta(seconds=1))
            url = f"https://{host}{rnd.choice(PAGES)}"
            kind = rnd.choice(("click", "click", "page_view", "scroll", "scroll", "mouse_move"))
            if kind == "click":
                offset = rnd.choice(OFFSETS)
                data = {"o": offset} if offset is not None else None
                if rnd.random() < 0.15:
                    data = {**(data or {}), "rage": 3}
                add(conn, sid, account, host, seq, ts, kind, url, event_data=data,
                    viewport_x=rnd.randint(0, 1300), viewport_y=rnd.randint(0, 800),
                    scroll_x=rnd.choice([None, 0, 5]), scroll_y=rnd.choice([None, 0, 1200]),
                    target_selector=rnd.choice(SELECTORS))
            elif kind == "scroll":
                add(conn, sid, account, host, seq, ts, kind, url, scroll_y=rnd.randint(0, 4000),
                    target_selector=rnd.choice([None, None, "div.inner"]))
            else:
                add(conn, sid, account, host, seq, ts, kind, url)
    return ids


def raw_bins(conn, account, path, start, end) -> Counter:
    """The raw clicks of a page, binned as the roll-up documents it (4 px position bins,
    whole-px offsets), in Python from the rows themselves."""
    rows = conn.execute(
        """SELECT e.viewport_x + coalesce(e.scroll_x, 0) AS x, e.viewport_y + coalesce(e.scroll_y, 0) AS y,
                  coalesce(s.viewport_width, 0) AS w, e.target_selector AS sel, e.event_data
           FROM events e JOIN sessions s USING (session_id)
           WHERE e.account_id = %s AND e.event_type = 'click' AND e."timestamp" >= %s AND e."timestamp" < %s
             AND hindsight_url_path(e.page_url) = %s""", (account, start, end, path)).fetchall()
    out: Counter = Counter()
    for r in rows:
        data = r["event_data"] or {}
        offset = heatmap.click_offset(data.get("o"))
        whole = None if offset is None else (round(offset[0]), round(offset[1]))
        rage = str(data.get("rage", "false")) not in ("false", "0", "False")
        out[(r["w"], r["sel"], whole, r["x"] // 4 * 4 + 2, r["y"] // 4 * 4 + 2, rage)] += 1
    return out


def rolled_bins(conn, params) -> Counter:
    out: Counter = Counter()
    for r in sources.heatmap_clicks(conn, params):
        whole = None if r["offset_x"] is None else (r["offset_x"], r["offset_y"])
        out[(r["viewport_width"], r["selector"], whole, r["x"], r["y"], r["rage"])] += r["clicks"]
    return out


RAW_DEPTHS = """
SELECT max(coalesce(e.scroll_y, 0)) + coalesce(max(s.viewport_height), 0) AS deepest
FROM events e JOIN sessions s ON s.session_id = e.session_id
WHERE e.event_type IN ('page_view', 'scroll') AND e.target_selector IS NULL
  AND e.account_id = %s AND e."timestamp" >= %s AND e."timestamp" < %s AND hindsight_url_path(e.page_url) = %s
GROUP BY e.session_id ORDER BY 1
"""


def check_equal(conn, accounts, now) -> int:
    """Every page of every account, over 3 days and over the last 5 hours: bins, totals and
    depths equal to the raw rows'. Returns the clicks compared."""
    compared = 0
    for account in accounts:
        for days in (3, 5 / 24):
            hours = traffic.hour_range(now - timedelta(days=days), now)
            for url in PAGES:
                path = conn.execute("SELECT hindsight_url_path(%s::text) AS p", (url,)).fetchone()["p"]
                params = sources.page_params(account, path, None, hours.start, hours.end)
                want = raw_bins(conn, account, path, hours.start, hours.end)
                assert rolled_bins(conn, params) == want, (account, path, days)
                summary = sources.heatmap_summary(conn, params)
                assert sum(r["clicks"] for r in summary) == sum(want.values())
                assert sum(r["rage_clicks"] for r in summary) == sum(n for k, n in want.items() if k[5])
                assert sum(r["with_offset"] or 0 for r in summary) == sum(n for k, n in want.items() if k[2])
                depths = [r["deepest"] for r in conn.execute(RAW_DEPTHS, (account, hours.start, hours.end, path))]
                assert sources.scroll_depths(conn, params) == depths, (account, path, days)
                compared += sum(want.values())
    return compared


@pytest.fixture
def hm_url(cluster):
    with fresh_database(cluster.url(), "heatroll") as url:
        yield url


def test_the_heatmap_rollups_equal_the_raw_events_before_and_after_refreshes_and_late_events(hm_url):
    rnd = random.Random(7)
    runner = JobRunner(hm_url, lifecycle_jobs(Settings(database_url=hm_url)))
    with connect(hm_url) as conn:
        now = conn.execute("SELECT now() AS t").fetchone()["t"]
        (a, host_a), (b, host_b) = new_account(conn), new_account(conn)
        fill(conn, a, host_a, now, rnd, sessions=40, hours=60)
        fill(conn, b, host_b, now, rnd, sessions=15, hours=30)
        conn.commit()
        assert check_equal(conn, [a, b], now) > 50           # nothing refreshed: all from the raw rows
        runner.run("refresh_rollups", force=True)
        stored = conn.execute("SELECT coalesce(sum(clicks), 0) AS n FROM heatmap_clicks_hourly_store").fetchone()["n"]
        assert stored > 50
        assert conn.execute("SELECT count(*) AS n FROM heatmap_depths_hourly_store").fetchone()["n"] > 10
        check_equal(conn, [a, b], now)
        # Late events: clicks and a deeper scroll 20 hours ago (inside the 2-day window a
        # refresh re-reads), in hours the store already holds.
        late = now - timedelta(hours=20)
        sid = add_session(conn, a, host_a, late, 1280, 900)
        for seq in range(5):
            add(conn, sid, a, host_a, seq, late, "click", f"https://{host_a}/", viewport_x=100, viewport_y=200,
                target_selector="button.buy", event_data={"o": [2, 3]})
        add(conn, sid, a, host_a, 9, late, "scroll", f"https://{host_a}/", scroll_y=9000)
        conn.commit()
        hours = traffic.hour_range(now - timedelta(days=3), now)
        params = sources.page_params(a, "/", None, hours.start, hours.end)
        assert rolled_bins(conn, params) != raw_bins(conn, a, "/", hours.start, hours.end)   # not yet
        runner.run("refresh_rollups", force=True)
        runner.run("refresh_rollups", force=True)            # twice: replaced, never added to
        assert check_equal(conn, [a, b], now) > 55
        assert 9900 in sources.scroll_depths(conn, params)
        # Per host: another host's clicks are not this one's.
        assert rolled_bins(conn, {**params, "host": "elsewhere.example"}) == Counter()


def erase_and_check(url: str, *, compress: bool) -> None:
    rnd = random.Random(3)
    with connect(url) as conn:
        now = conn.execute("SELECT now() AS t").fetchone()["t"]
        account, host = new_account(conn)
        # 3 days old: inside the stores, outside the refresh's 2-day window.
        then = now - timedelta(days=3)
        gone = fill(conn, account, host, then, rnd, sessions=6, hours=3, user="u-7")
        kept = fill(conn, account, host, then, rnd, sessions=6, hours=3)
        conn.commit()
        for rollup in rollup_module.HEATMAP_ROLLUPS:
            rollup_module.refresh(conn, rollup, now)
        conn.commit()
        if compress:
            assert conn.execute("SELECT compress_chunk(c, true) FROM show_chunks('events') c").fetchall()
            conn.commit()

        def stored(ids):
            return conn.execute("SELECT count(*) AS n FROM heatmap_depths_hourly_store WHERE session_id = ANY(%s)",
                                (ids,)).fetchone()["n"]

        assert stored(gone) > 0 and stored(kept) > 0
        before = conn.execute("SELECT sum(clicks) AS n FROM heatmap_clicks_hourly_store WHERE account_id = %s",
                              (account,)).fetchone()["n"]
        conn.autocommit = True
        result = erasure.erase(conn, account, "user_id", "u-7", actor="test")
        assert result["rollups"]["heatmap_clicks_hourly"]["rows"] >= 0
        assert stored(gone) == 0 and stored(kept) > 0
        after = conn.execute("SELECT sum(clicks) AS n FROM heatmap_clicks_hourly_store WHERE account_id = %s",
                             (account,)).fetchone()["n"]
        raw = conn.execute("SELECT count(*) AS n FROM events WHERE account_id = %s AND event_type = 'click' "
                           "AND page_url IS NOT NULL", (account,)).fetchone()["n"]
        assert after == raw < before
        check_equal(conn, [account], now)


def test_erasure_rewrites_the_heatmap_rollups(hm_url):
    erase_and_check(hm_url, compress=False)


def test_tsl_erasure_rewrites_the_heatmap_rollups_over_compressed_chunks(tsl_url):
    with fresh_database(tsl_url, "heatrolltsl") as url:
        erase_and_check(url, compress=True)


def test_retention_drops_scroll_depth_rows_with_their_events(hm_url):
    with connect(hm_url) as conn:
        now = conn.execute("SELECT now() AS t").fetchone()["t"]
        short, host = new_account(conn, retention_days=7)
        long_, host_l = new_account(conn, retention_days=60)
        for account, h in ((short, host), (long_, host_l)):
            conn.execute("INSERT INTO heatmap_depths_hourly_store VALUES (time_bucket(INTERVAL '1 hour', %s::timestamptz), "
                         "%s, %s, '/', %s, 900)", (now - timedelta(days=20), account, h, uuid.uuid4()))
        conn.commit()
        done = retention.expire_screenshots_and_sessions(conn, now, 30)
        assert done["heatmap_depth_rows_deleted"] == 1
        left = [r["account_id"] for r in conn.execute("SELECT account_id FROM heatmap_depths_hourly_store")]
        assert left == [long_]
