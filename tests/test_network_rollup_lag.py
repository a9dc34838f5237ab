"""The slowest endpoints while the network roll-ups' watermarks disagree (Apache edition).

`refresh_all` commits each roll-up on its own, weekly before 28-day: between the two commits
(and for as long as a 28-day refresh keeps failing) the 28-day watermark can be mid-week while
the weekly one has passed that week. A review of stop 22 found two wrong answers there, each
tested here against plain SQL over the raw rows:
- read in one snapshot, the current 28-day block so far was read up to its mid-week watermark
  and the weeks after it from the next week on: the days in between were read from nowhere
  (hindsight.queries.rollup_rows, `params`);
- an erasure's rewrite of a 28-day block ending mid-week below the weekly watermark took that
  whole week from the weekly store and its days again (hindsight.lifecycle.rollups,
  NETWORK_4WEEKLY's source).
And refreshes at random times, stopped after a random roll-up, against the raw rows.
"""

from __future__ import annotations

import math
import random
from contextlib import contextmanager
from datetime import timedelta

from lifecycle_support import add_events, add_session, connect, fresh_database, network, new_account, view

from hindsight import erasure
from hindsight.lifecycle import rollups
from hindsight.queries import rollup_rows, traffic

HOUR, DAY = timedelta(hours=1), timedelta(days=1)
NETWORK = [r for r in rollups.APACHE_ROLLUPS if r.name.startswith("network_")]


def _requests(conn, rnd, now, days: int, count: int):
    account, host = new_account(conn)
    sid = add_session(conn, account, host, now - timedelta(days=days + 5))
    add_events(conn, sid, account, host, [
        (now - timedelta(hours=rnd.uniform(0.05, 24 * days)), "network", f"https://{host}/",
         network("GET", f"https://{host}/api/{rnd.randint(1, 3)}", int(math.exp(rnd.uniform(0, 6)))))
        for _ in range(count)])
    return account


def _raw(conn, account, rng) -> dict:
    return {(r["method"], r["url"]): (r["requests"], r["failures"]) for r in conn.execute("""
        SELECT nullif(hindsight_network_method(event_data), '') AS method,
               nullif(hindsight_network_url(event_data), '') AS url, count(*) AS requests,
               count(*) FILTER (WHERE hindsight_network_failed(event_data)) AS failures
        FROM events WHERE account_id = %s AND event_type = 'network' AND "timestamp" >= %s AND "timestamp" < %s
          AND hindsight_network_duration(event_data) IS NOT NULL
        GROUP BY 1, 2""", (account, rng.start, rng.end))}


def _read(conn, account, rng) -> dict:
    return {(r["method"], r["url"]): (r["requests"], r["failures"])
            for r in traffic.slowest_endpoints(conn, account, rng.start, rng.end, 50)}


@contextmanager
def between_the_commits(cluster, seed: int):
    """A database of its own with 75 days of one account's requests, every network roll-up
    refreshed on the Wednesday of a block's second week (40 days ago), then all but the
    28-day one on the Tuesday of its third (refresh_all between its two commits); yields
    (conn, account, the block's start, that Tuesday)."""
    with fresh_database(cluster.url(), "netlag") as url, connect(url) as conn:
        now = conn.execute("SELECT now() AS t").fetchone()["t"]
        account = _requests(conn, random.Random(seed), now, 75, 3000)
        block = rollup_rows.block_floor(now - timedelta(days=40))
        first, second = block + timedelta(days=9, hours=5), block + timedelta(days=15, hours=5)
        for r in NETWORK:
            rollups.refresh(conn, r, first)
        for r in NETWORK:
            if r.name != "network_4weekly":
                rollups.refresh(conn, r, second)
        yield conn, account, block, second


def test_the_current_block_so_far_is_not_read_past_days_nobody_reads(cluster):
    with between_the_commits(cluster, 5) as (conn, account, block, second):
        marks = {r["rollup"]: r["materialized_until"] for r in conn.execute(
            "SELECT rollup, materialized_until FROM rollup_watermarks WHERE rollup LIKE 'network%'")}
        # The state the review found: the 28-day watermark mid-week, below the weekly one.
        assert marks["network_4weekly"] != rollup_rows.week_floor(marks["network_4weekly"])
        assert marks["network_4weekly"] < marks["network_weekly"]
        rng = traffic.Range(block - timedelta(days=10), traffic._floor(second, HOUR))
        for enter in (conn.transaction, lambda: rollup_rows.snapshot(conn)):
            with enter():
                raw = _raw(conn, account, rng)
                assert sum(n for n, _ in raw.values()) > 500
                assert _read(conn, account, rng) == raw


def test_an_erasure_rewrite_ending_mid_week_keeps_the_block_right(cluster):
    with between_the_commits(cluster, 6) as (conn, account, block, _):
        before = {k: v for k, v in view(conn, "network_4weekly", [account]).items() if k[0] == block}
        assert before
        # An erasure of nothing in the block's second week: its roll-ups are recomputed.
        erasure.refresh_range(conn, block + timedelta(days=8), block + timedelta(days=8, hours=1))
        after = {k: v for k, v in view(conn, "network_4weekly", [account]).items() if k[0] == block}
        assert after == before


def test_refreshes_at_random_times_stopped_anywhere_answer_as_the_raw_rows(cluster):
    rnd = random.Random(11)
    with fresh_database(cluster.url(), "netlag") as url:
        with connect(url) as conn:
            now = conn.execute("SELECT now() AS t").fetchone()["t"]
            account = _requests(conn, rnd, now, 125, 2500)
            t, cases, wrong = now - timedelta(days=100), 0, []
            while t < now - DAY:
                t = min(t + timedelta(hours=rnd.choice([5, 13, 29, 50, 77, 170])), now - HOUR)
                for r in NETWORK[:rnd.randint(1, len(NETWORK))]:  # refresh_all's order, stopped after one
                    rollups.refresh(conn, r, t)
                for _ in range(3):
                    start = traffic._floor(t - timedelta(hours=rnd.uniform(24, 24 * 95)), HOUR)
                    rng = traffic.Range(start, traffic._ceil(t, HOUR))
                    for mode, enter in (("read committed", conn.transaction),
                                        ("snapshot", lambda: rollup_rows.snapshot(conn))):
                        with enter():
                            cases += 1
                            got, raw = _read(conn, account, rng), _raw(conn, account, rng)
                            if got != raw:
                                wrong.append((mode, rng.start, rng.end, sum(n for n, _ in got.values()),
                                              sum(n for n, _ in raw.values())))
            assert cases > 100
            assert not wrong, f"{len(wrong)} of {cases} reads differ from the raw rows: {wrong[:3]}"
