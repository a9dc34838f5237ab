"""A person's right of access and to be forgotten: export their data as JSON, then erase it
(sessions, events, recordings, screenshots and the images nobody references any more), with
an audit row that never holds the erased data, and roll-ups that stop counting it — via the
admin API and `hindsight erase`; on the timescale edition also inside compressed chunks."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import timedelta

import falcon.testing
import pytest
from lifecycle_support import add_events, add_screenshot, add_session, connect, fresh_database, new_account
from psycopg import sql

from hindsight import cli
from hindsight.app import create_app, prepare_database
from hindsight.db import create_pool
from hindsight.lifecycle import JobRunner, lifecycle_jobs
from hindsight.principals import hash_api_key
from hindsight.queries.erasure import make_admin_key
from hindsight.queries.tenancy import create_api_key
from hindsight.settings import Settings


def populate(conn, account_id, host, now):
    """Person P (user u-42): two sessions, events, a recording, a journey, a pending ledger
    row, one image of their own and one shared with person Q (one session)."""
    people = {"P": [], "Q": []}
    for who, n in (("P", 2), ("Q", 1)):
        for i in range(n):
            start = now - timedelta(days=3, hours=i + (5 if who == "Q" else 0))
            sid = add_session(conn, account_id, host, start)
            if who == "P":
                conn.execute("UPDATE sessions SET user_id = 'u-42' WHERE session_id = %s", (sid,))
            add_events(conn, sid, account_id, host,
                       [(start + timedelta(seconds=s), kind, f"https://{host}/p{s}")
                        for s, kind in ((1, "session_start"), (2, "page_view"), (3, "click"), (9, "page_view"))])
            add_screenshot(conn, sid, account_id, host, start + timedelta(seconds=2), b"shared-image")
            people[who].append(sid)
    p1 = people["P"][0]
    add_screenshot(conn, p1, account_id, host, now - timedelta(days=3), b"p-only-image")
    data = gzip.compress(json.dumps([{"type": 2, "data": {"secret": "typed text"}}]).encode())
    conn.execute("INSERT INTO recording_segments (session_id, session_started_at, segment, account_id, host, "
                 "started_at, ended_at, event_count, full_snapshot, data, gzip_bytes, json_bytes) "
                 "SELECT session_id, started_at, 0, account_id, host, started_at, started_at, 1, true, %s, %s, 50 "
                 "FROM sessions WHERE session_id = %s", (data, len(data), p1))
    journey = conn.execute("INSERT INTO journeys (session_id, account_id, host, user_id, step_count) "
                           "VALUES (%s, %s, %s, 'u-42', 1) RETURNING journey_id", (p1, account_id, host)).fetchone()
    conn.execute("INSERT INTO journey_steps (journey_id, step, step_type, seq, event, page_url, \"timestamp\") "
                 "VALUES (%s, 1, 'page', 1, '{}', %s, now())", (journey["journey_id"], f"https://{host}/p2"))
    conn.execute("INSERT INTO stack_pending (account_id, host, session_id, pages, total) VALUES (%s, %s, %s, 1, 1)",
                 (account_id, host, p1))
    return people


def event_totals(conn, account_id):
    """What the roll-up views count for the account, against the raw rows."""
    rolled = conn.execute("SELECT coalesce(sum(events), 0)::int AS n FROM events_daily WHERE account_id = %s",
                          (account_id,)).fetchone()["n"]
    sessions = conn.execute("SELECT coalesce(sum(sessions), 0)::int AS n FROM sessions_daily "
                            "WHERE account_id = %s AND dimension = 'browser'", (account_id,)).fetchone()["n"]
    raw = conn.execute("SELECT count(*)::int AS n FROM events WHERE account_id = %s", (account_id,)).fetchone()["n"]
    return rolled, sessions, raw


@pytest.fixture(scope="module")
def world(cluster):
    with fresh_database(cluster.url(), "erase") as url:
        settings = Settings(database_url=url, rate_limit_per_minute=0, pool_max=2)
        pool = create_pool(settings)
        prepare_database(pool)
        with connect(url) as conn:
            now = conn.execute("SELECT now() AS t").fetchone()["t"]
            account_id, host = new_account(conn)
            people = populate(conn, account_id, host, now)
            admin_key = create_api_key(conn, account_id)
            make_admin_key(conn, hash_api_key(admin_key))
            plain_key = create_api_key(conn, account_id)
        JobRunner(url, lifecycle_jobs(settings)).run("refresh_rollups", force=True)
        client = falcon.testing.TestClient(create_app(settings, pool))
        yield {"url": url, "client": client, "account_id": account_id, "people": people,
               "admin": admin_key, "plain": plain_key}
        pool.close()


def post(world, path, body, key="admin"):
    return world["client"].simulate_post(path, json=body, headers={"Authorization": f"Bearer {world[key]}"})


def test_export_then_erase_a_user_then_a_session_by_the_cli(world, monkeypatch, capsys):
    url, account_id, people = world["url"], world["account_id"], world["people"]
    with connect(url) as conn:
        assert event_totals(conn, account_id) == (12, 3, 12)
    # Only an admin key may read or erase a person's data.
    assert post(world, "/api/v1/admin/export", {"user_id": "u-42"}, key="plain").status_code == 403
    assert post(world, "/api/v1/admin/erase", {"user_id": "u-42", "session_id": str(uuid.uuid4())}).status_code == 400

    exported = post(world, "/api/v1/admin/export", {"user_id": "u-42"})
    assert exported.status_code == 200, exported.json
    doc = exported.json
    assert {s["session_id"] for s in doc["sessions"]} == {str(s) for s in people["P"]}
    assert len(doc["events"]) == 8 and len(doc["screenshots"]) == 3 and len(doc["journeys"]) == 1
    assert doc["recording_segments"][0]["events"] == [{"type": 2, "data": {"secret": "typed text"}}]

    with connect(url) as conn:  # a batch of P's in the pipeline view's traces
        conn.execute("INSERT INTO pipeline_traces (request_id, account_id, session_id, path, status, received_at, "
                     "duration_ms) VALUES ('req-p', %s, %s, '/api/v1/track', 201, now(), 1)",
                     (account_id, people["P"][0]))
        conn.commit()
        # The heatmaps' scroll-depth roll-up names P's sessions (refreshed by the fixture).
        assert conn.execute("SELECT count(*) AS n FROM heatmap_depths_hourly_store WHERE session_id = ANY(%s)",
                            (people["P"],)).fetchone()["n"] == 4   # 2 sessions x 2 pages
    erased = post(world, "/api/v1/admin/erase", {"user_id": "u-42"})
    assert erased.status_code == 200, erased.json
    rows = erased.json["rows"]
    assert rows["sessions"] == 2 and rows["events"] == 8 and rows["screenshots"] == 3
    assert rows["screenshot_images"] == 1          # the shared image stays: Q's screenshot uses it
    assert rows["recording_segments"] == 1 and rows["journeys"] == 1 and rows["stack_pending"] >= 1
    assert rows["pipeline_traces"] == 1
    assert "events_daily" in erased.json["rollups"] and "sessions_daily" in erased.json["rollups"]
    assert "heatmap_depths_hourly" in erased.json["rollups"]   # rewritten (test_heatmap_rollups.py)
    with connect(url) as conn:
        for table in ("sessions", "events", "screenshots", "recording_segments", "journeys", "stack_pending",
                      "pipeline_traces", "heatmap_depths_hourly_store"):
            left = conn.execute(sql.SQL("SELECT count(*) AS n FROM {} WHERE session_id = ANY(%s)").format(
                sql.Identifier(table)), (people["P"],)).fetchone()["n"]
            assert left == 0, table
        images = conn.execute("SELECT count(*) AS n FROM screenshot_images").fetchone()["n"]
        assert images == 1
        # The roll-ups count only Q now, without waiting for a refresh.
        assert event_totals(conn, account_id) == (4, 1, 4)
        audit = conn.execute("SELECT * FROM erasure_audit WHERE account_id = %s", (account_id,)).fetchall()
        assert len(audit) == 1 and audit[0]["selector_kind"] == "user_id"
        assert audit[0]["actor"].startswith("api key ") and audit[0]["sessions"] == 2
        assert "u-42" not in json.dumps(audit[0], default=str)
    # Erasing again deletes nothing.
    assert post(world, "/api/v1/admin/erase", {"user_id": "u-42"}).json["rows"] == {"sessions": 0}

    # The CLI: export, then erase Q's session.
    monkeypatch.setenv("HINDSIGHT_DATABASE_URL", url)
    q_session = str(people["Q"][0])
    assert cli.main(["export", "--account", str(account_id), "--session-id", q_session]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [s["session_id"] for s in printed["sessions"]] == [q_session] and len(printed["events"]) == 4
    assert cli.main(["erase", "--account", str(account_id), "--session-id", q_session]) == 0
    assert json.loads(capsys.readouterr().out)["rows"]["sessions"] == 1
    with connect(url) as conn:
        assert event_totals(conn, account_id) == (0, 0, 0)
        assert conn.execute("SELECT count(*) AS n FROM screenshot_images").fetchone()["n"] == 0
        actors = [r["actor"] for r in conn.execute("SELECT actor FROM erasure_audit ORDER BY erasure_id")]
        assert actors[-1] == "cli"
    # `hindsight keys create --admin` makes a key that may erase.
    assert cli.main(["keys", "create", "--account", str(account_id), "--admin"]) == 0
    key = capsys.readouterr().out.strip()
    assert post({**world, "new": key}, "/api/v1/admin/erase", {"user_id": "nobody"}, key="new").status_code == 200


def test_tsl_erasure_reaches_into_compressed_chunks(tsl_url):
    with fresh_database(tsl_url, "erasetsl") as url:
        with connect(url) as conn:
            now = conn.execute("SELECT now() AS t").fetchone()["t"]
            account_id, host = new_account(conn)
            people = populate(conn, account_id, host, now)
            for name in ("events_hourly_cagg", "events_daily_cagg"):
                conn.execute(f"CALL refresh_continuous_aggregate('{name}', NULL, now() - INTERVAL '1 hour')")
            chunks = conn.execute("SELECT compress_chunk(c, true) FROM show_chunks('events') c").fetchall()
            assert chunks
            compressed = conn.execute("SELECT count(*) AS n FROM timescaledb_information.chunks "
                                      "WHERE hypertable_name = 'events' AND is_compressed").fetchone()["n"]
            assert compressed >= 1
            assert event_totals(conn, account_id)[0] == 12
        from hindsight import erasure

        with connect(url, ) as conn:
            conn.autocommit = True
            result = erasure.erase(conn, account_id, "user_id", "u-42", actor="test")
            assert result["rows"]["events"] == 8
            assert result["rollups"]["events_daily_cagg"] == "refreshed"
            left = conn.execute("SELECT count(*) AS n FROM events WHERE session_id = ANY(%s)",
                                (people["P"],)).fetchone()["n"]
            assert left == 0
            assert event_totals(conn, account_id) == (4, 1, 4)
