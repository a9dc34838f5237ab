"""The 28-day network roll-up (sql/migrations/0038) and the slowest endpoints read from it.

A long range's slowest endpoints read whole 28-day blocks from `network_4weekly`, the weeks
around them from `network_weekly`, and, in one snapshot, the current block so far (its
weeks and the days after them: a partial row, `Rollup.partial`) instead of those weeks and
days (issue 12: the 90-day overview). Here, on a database of its own with ~120 days of
network requests of two accounts, refreshed at several times in the past:
- the Apache edition's stores path equals the views path and plain SQL over the raw rows
  (requests and failures exactly, percentiles within 0021's bound) for the overview's ranges
  and random ones, in one snapshot and out of one, and the ranges do read whole and partial
  blocks;
- the view `network_4weekly` holds what the raw rows say, before and after an erasure's
  refresh of the old blocks (hindsight.erasure.refresh_range);
- on a timescale-edition server (skipped without one): the continuous aggregate exists with
  its policies, and the reader of the aggregates' materialized rows equals the views'.
"""

from __future__ import annotations

import math
import random
from datetime import timedelta

import pytest
from lifecycle_support import (
    add_events,
    add_session,
    connect,
    direct,
    fresh_database,
    network,
    new_account,
    view,
    wait_for,
)

from hindsight import erasure
from hindsight.lifecycle import rollups
from hindsight.queries import rollup_rows, traffic

HOUR, DAY = timedelta(hours=1), timedelta(days=1)
DAYS = 120


def _history(conn, rnd, now, accounts) -> None:
    """Network requests of each account over DAYS days: a few endpoints, log-spread durations,
    some failures; the first account has 4 times the requests."""
    for n, (account, host) in enumerate(accounts):
        sid = add_session(conn, account, host, now - timedelta(days=DAYS + 1))
        add_events(conn, sid, account, host, [
            (now - timedelta(hours=rnd.uniform(0.05, 24 * DAYS)), "network", f"https://{host}/",
             network(rnd.choice(["GET", "POST"]), f"https://{host}/api/{rnd.randint(1, 5)}",
                     int(math.exp(rnd.uniform(0, 8))), status=rnd.choice([200, 200, 200, 500])))
            for _ in range(1600 if n == 0 else 400)])


def _refresh(url, t) -> None:
    with connect(url) as conn:
        for r in rollups.APACHE_ROLLUPS:
            if r.name.startswith("network_"):
                rollups.refresh(conn, r, t)


def _raw(conn, account, rng) -> dict:
    return {(r["method"], r["url"]): r for r in conn.execute("""
        SELECT nullif(hindsight_network_method(event_data), '') AS method,
               nullif(hindsight_network_url(event_data), '') AS url, count(*) AS requests,
               count(*) FILTER (WHERE hindsight_network_failed(event_data)) AS failures,
               percentile_disc(0.95) WITHIN GROUP (ORDER BY hindsight_network_duration(event_data)) AS p95
        FROM events WHERE account_id = %s AND event_type = 'network' AND "timestamp" >= %s AND "timestamp" < %s
          AND hindsight_network_duration(event_data) IS NOT NULL
        GROUP BY 1, 2""", (account, rng.start, rng.end))}


def _through_views(conn, account, rng):
    real = traffic._stores
    traffic._stores = lambda conn, prefix: False
    try:
        return traffic.slowest_endpoints(conn, account, rng.start, rng.end, 50)
    finally:
        traffic._stores = real


@pytest.fixture(scope="module")
def history(cluster):
    with fresh_database(cluster.url(), "nw4w") as url:
        rnd = random.Random(28)
        with connect(url) as conn:
            now = conn.execute("SELECT now() AS t").fetchone()["t"]
            accounts = [new_account(conn), new_account(conn)]
            _history(conn, rnd, now, accounts)
        yield {"url": url, "now": now, "a": accounts[0][0], "accounts": [a for a, _ in accounts]}


def test_slowest_endpoints_from_blocks_equal_the_views_and_the_raw_rows(history):
    url, now, a = history["url"], history["now"], history["a"]
    rnd = random.Random(4)
    wrong, read = [], {"whole blocks": 0, "partial block": 0}
    # Refreshed as the scheduler would have, at times where the current block holds days only
    # (4 days after its start), weeks and days, and again now.
    young = rollup_rows.block_floor(now - timedelta(days=12)) + timedelta(days=4, hours=5)
    for t in sorted({now - timedelta(days=30), young, now - timedelta(days=9), now - HOUR, now}):
        _refresh(url, t)
        with connect(url) as conn:
            ranges = [traffic.hour_range(now - timedelta(days=d), now) for d in (90, 30, 7, 1)]
            # Ranges ending now that start around the block current at `t` (with or without a
            # whole week before it, on a Monday or not).
            block = rollup_rows.block_floor(traffic._floor(t, DAY))
            ranges += [traffic.Range(block + DAY * k, traffic._ceil(now, HOUR)) for k in (-10, -8, -3, 0, 2)
                       if block + DAY * k < now]
            for _ in range(12):
                start = traffic._floor(now - timedelta(hours=rnd.uniform(0, 24 * (DAYS - 2))), HOUR)
                ranges.append(traffic.Range(start, min(traffic._ceil(now, HOUR),
                                                       start + DAY * rnd.choice([1, 8, 29, 57, 90]))))
            for rng in ranges:
                for enter in (conn.transaction, lambda: rollup_rows.snapshot(conn)):
                    with enter():
                        marks = rollup_rows.params(conn, a, rng, None, ("network",))
                        if marks["network_block0"] < marks["network_block1"]:
                            read["whole blocks" if marks["network_bend"] == marks["network_block1"]
                                 else "partial block"] += 1
                        stores = traffic.slowest_endpoints(conn, a, rng.start, rng.end, 50)
                        views = _through_views(conn, a, rng)
                        if stores != views:
                            wrong.append(("stores != views", t, rng, stores[:2], views[:2]))
                        raw = _raw(conn, a, rng)
                        got = {(r["method"], r["url"]): r for r in stores}
                        if set(got) != set(raw):
                            wrong.append(("endpoints", t, rng, sorted(got), sorted(raw)))
                            continue
                        for key, r in got.items():
                            exact = raw[key]
                            if (r["requests"], r["failures"]) != (exact["requests"], exact["failures"]):
                                wrong.append(("counts", t, rng, key, r, dict(exact)))
                            elif not abs(r["p95_ms"] - exact["p95"]) <= max(1.0, 0.05 * exact["p95"]):
                                wrong.append(("p95", t, rng, key, r["p95_ms"], exact["p95"]))
    assert not wrong, wrong[:5]
    # The ranges read whole blocks, and (in one snapshot) the current block so far.
    assert read["whole blocks"] > 0 and read["partial block"] > 0, read


def test_the_28_day_view_holds_the_raw_rows_before_and_after_an_erasures_refresh(history):
    url, now, accounts = history["url"], history["now"], history["accounts"]
    _refresh(url, now)
    with connect(url) as conn:
        assert view(conn, "network_4weekly", accounts) == direct(conn, "network_4weekly", accounts)
        stored = conn.execute("SELECT count(*) AS n FROM network_4weekly_store WHERE bucket < %s",
                              (rollup_rows.block_floor(now - timedelta(days=40)),)).fetchone()["n"]
        assert stored > 0
        # An erasure of an old day's requests: every roll-up's buckets around it recomputed.
        day = traffic._floor(now - timedelta(days=70), DAY)
        gone = conn.execute("""DELETE FROM events WHERE account_id = %s AND event_type = 'network'
                               AND "timestamp" >= %s AND "timestamp" < %s""",
                            (accounts[0], day, day + DAY)).rowcount
        assert gone > 0
        assert view(conn, "network_4weekly", accounts) != direct(conn, "network_4weekly", accounts)
        done = erasure.refresh_range(conn, day, day + DAY - timedelta(seconds=1))
        assert done["network_4weekly"]["rows"] > 0, done
        assert view(conn, "network_4weekly", accounts) == direct(conn, "network_4weekly", accounts)


# ------------------------------------------------------------ on a timescale-edition server

def test_tsl_the_aggregates_materialized_rows_answer_as_the_views(tsl_url):
    with fresh_database(tsl_url, "nw4wtsl") as url:
        rnd = random.Random(7)
        with connect(url) as conn:
            now = conn.execute("SELECT now() AS t").fetchone()["t"]
            accounts = [new_account(conn), new_account(conn)]
            _history(conn, rnd, now, accounts)
            for name in ("network_hourly_cagg", "network_daily_cagg", "network_weekly_cagg", "network_4weekly_cagg"):
                wait_for(lambda n=name: _refreshed(conn, n), timeout=60)
            jobs = {r["proc_name"] for r in conn.execute(
                "SELECT proc_name FROM timescaledb_information.jobs WHERE hypertable_name = 'network_4weekly_cagg'")}
            assert jobs == {"policy_refresh_continuous_aggregate", "policy_retention"}
            a = accounts[0][0]
            assert traffic._materialized(conn) is not None
            assert view(conn, "network_4weekly", [a]) == direct(conn, "network_4weekly", [a])
            wrong = []
            for days in (90, 60, 30, 7, 1):
                rng = traffic.hour_range(now - timedelta(days=days), now)
                got = traffic.slowest_endpoints(conn, a, rng.start, rng.end, 50)
                real = traffic._materialized
                traffic._materialized = lambda conn: None  # through the views
                try:
                    views = traffic.slowest_endpoints(conn, a, rng.start, rng.end, 50)
                finally:
                    traffic._materialized = real
                if got != views or not got:
                    wrong.append((days, got[:2], views[:2]))
            assert not wrong, wrong


def _refreshed(conn, name: str) -> bool:
    import psycopg

    try:
        conn.execute(f"CALL refresh_continuous_aggregate('{name}', NULL, now() - INTERVAL '1 hour')")
        return True
    except psycopg.errors.LockNotAvailable:  # its policy is refreshing it: try again
        return False
