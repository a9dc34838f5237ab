"""Retention on the apache edition: exactly what is past its age goes (per account),
everything else stays — including whatever is still referenced — and the roll-ups
keep counting what was removed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from lifecycle_support import (
    add_events,
    add_image,
    add_screenshot,
    add_session,
    connect,
    directs,
    fresh_database,
    new_account,
    views,
)

from hindsight.lifecycle import JobRunner, lifecycle_jobs
from hindsight.lifecycle.retention import MIN_RETENTION_DAYS, default_days
from hindsight.settings import Settings

AGES_DAYS = (1, 9, 11, 29, 31, 59, 61, 90)


@pytest.fixture
def lc_url(cluster):
    with fresh_database(cluster.url(), "lcret") as url:
        yield url


def floor_hour(t):
    return t.replace(minute=0, second=0, microsecond=0)


def snapshot(conn) -> dict:
    return {
        "events": {(r["session_id"], r["seq"]) for r in conn.execute("SELECT session_id, seq FROM events")},
        "sessions": {r["session_id"] for r in conn.execute("SELECT session_id FROM sessions")},
        "screenshots": {r["screenshot_id"] for r in conn.execute("SELECT screenshot_id FROM screenshots")},
        "images": {bytes(r["content_hash"]) for r in conn.execute("SELECT content_hash FROM screenshot_images")},
    }


def test_retention_removes_exactly_what_is_past_its_age_and_keeps_everything_else(lc_url):
    settings = Settings(database_url=lc_url, events_retention_days=30, rollup_retention_days=730)
    runner = JobRunner(lc_url, lifecycle_jobs(settings))
    with connect(lc_url) as conn:
        now = conn.execute("SELECT now() AS t").fetchone()["t"]
        a, host_a = new_account(conn)                     # the default: 30 days
        b, host_b = new_account(conn, retention_days=10)  # shorter
        c, host_c = new_account(conn, retention_days=60)  # longer: the chunks follow this one
        cutoff = {a: floor_hour(now - timedelta(days=30)), b: floor_hour(now - timedelta(days=10)),
                  c: floor_hour(now - timedelta(days=60))}
        hosts = {a: host_a, b: host_b, c: host_c}
        event_ts: dict[tuple, object] = {}    # (session, seq) -> (account, timestamp)
        session_events: dict = {}             # session -> [timestamps]
        screenshot_of: dict[int, tuple] = {}  # id -> (account, session, timestamp, image)

        def session(account, times, created_at=None, kinds=("page_view", "click")):
            sid = add_session(conn, account, hosts[account], min(times) if times else now - timedelta(days=40),
                              created_at=created_at if created_at is not None else min(times))
            events = [(ts, kinds[i % len(kinds)], f"https://{hosts[account]}/p{i % 3}") for i, ts in enumerate(times)]
            add_events(conn, sid, account, hosts[account], events)
            for i, ts in enumerate(times):
                event_ts[(sid, i)] = (account, ts)
            session_events[sid] = list(times)
            return sid

        def shot(account, sid, ts, image: bytes, image_age_days: float = 40):
            sid_ = add_screenshot(conn, sid, account, hosts[account], ts, image,
                                  image_created_at=now - timedelta(days=image_age_days))
            screenshot_of[sid_] = (account, sid, ts, image)

        sessions_by_age = {}
        for account in (a, b, c):
            for age in AGES_DAYS:
                t = now - timedelta(days=age, minutes=7)
                sessions_by_age[(account, age)] = session(account, [t, t + timedelta(minutes=2)])
            edge = cutoff[account]
            session(account, [edge])                                   # exactly at the cutoff: kept
            session(account, [edge - timedelta(microseconds=1)])       # just before it: gone
            spanning = session(account, [edge - timedelta(minutes=30), edge + timedelta(minutes=30)])
            shot(account, spanning, edge - timedelta(minutes=30), b"early-" + str(account).encode())
            shot(account, spanning, edge + timedelta(minutes=30), b"late-" + str(account).encode())
        # A session with no events yet, started long ago but created a moment ago: kept.
        waiting = add_session(conn, a, host_a, now - timedelta(days=45))
        session_events[waiting] = []
        # Images: one shared by an expiring screenshot (A, 31 days) and a kept one (C, 11
        # days); one only used by the expiring one; one unreferenced but new; one
        # unreferenced and old.
        shot(a, sessions_by_age[(a, 31)], now - timedelta(days=31), b"shared")
        shot(c, sessions_by_age[(c, 11)], now - timedelta(days=11), b"shared")
        shot(a, sessions_by_age[(a, 31)], now - timedelta(days=31), b"only-expiring")
        fresh_image = add_image(conn, b"unreferenced-new")
        add_image(conn, b"unreferenced-old", created_at=now - timedelta(days=2))

        accounts = [a, b, c]
        assert runner.run("refresh_rollups", force=True)["ran"]
        assert views(conn, accounts) == directs(conn, accounts)
        # Roll-up history beyond and within the roll-up retention (730 days).
        for age in (800, 700):
            conn.execute("INSERT INTO events_hourly_store VALUES (time_bucket(INTERVAL '1 hour', %s::timestamptz), "
                         "%s, %s, 'click', 5)", (now - timedelta(days=age), a, host_a))
            conn.execute("INSERT INTO sessions_daily_store VALUES (time_bucket(INTERVAL '1 day', %s::timestamptz), "
                         "%s, %s, 'browser', 'Lynx', 2)", (now - timedelta(days=age), a, host_a))
        rollups_before = views(conn, accounts)
        before = snapshot(conn)
        hashes = {bytes(r["content_hash"]): bytes(r["image_data"])
                  for r in conn.execute("SELECT content_hash, image_data FROM screenshot_images")}

        result = runner.run("retention", force=True)["result"]

        after = snapshot(conn)
        kept_events = {k for k, (account, ts) in event_ts.items() if ts >= cutoff[account]}
        assert after["events"] == kept_events
        assert before["events"] - after["events"] == set(event_ts) - kept_events
        kept_sessions = {s for s, times in session_events.items()
                         if not times or any((s, i) in kept_events for i in range(len(times)))}
        assert after["sessions"] == kept_sessions
        kept_shots = {i for i, (account, sid, ts, _) in screenshot_of.items()
                      if ts >= cutoff[account] and sid in kept_sessions}
        assert after["screenshots"] == kept_shots
        used = {screenshot_of[i][3] for i in kept_shots}
        assert {hashes[h] for h in after["images"]} == used | {b"unreferenced-new"}
        assert fresh_image in after["images"]
        assert result["chunks_dropped"] >= 2 and result["longest_retention_days"] == 60
        assert result["events_deleted"] > 0 and result["sessions_deleted"] > 0
        # only-expiring, unreferenced-old and the three accounts' early boundary shots
        assert result["images_deleted"] == len(before["images"] - after["images"]) == 5

        # The roll-ups still count what retention removed (only the 800-day-old rows went).
        rollups_after = views(conn, accounts)
        assert runner.run("refresh_rollups", force=True)["ran"]
        assert views(conn, accounts) == rollups_after
        for name in ("events_daily", "pages_hourly", "pages_daily"):
            assert rollups_after[name] == rollups_before[name], name
        old = now - timedelta(days=800)
        assert rollups_before["events_hourly"] - rollups_after["events_hourly"] == {
            k: 1 for k in rollups_before["events_hourly"] if k[0] < old}
        assert sum(1 for k in rollups_before["events_hourly"] if k[0] < old) == 1
        assert sum(1 for k in rollups_after["events_hourly"] if k[0] < now - timedelta(days=600)) == 1
        assert sum(1 for k in rollups_after["sessions_daily"] if k[0] < now - timedelta(days=600)) == 1

        # A second run finds nothing more to remove.
        again = runner.run("retention", force=True)["result"]
        assert (again["events_deleted"], again["sessions_deleted"], again["screenshots_deleted"],
                again["images_deleted"]) == (0, 0, 0, 0)
        assert snapshot(conn) == after


def test_the_default_retention_is_never_shorter_than_the_refresh_windows():
    assert default_days(3) == MIN_RETENTION_DAYS == 7
    assert default_days(30) == 30
