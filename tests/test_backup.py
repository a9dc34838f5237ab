"""scripts/backup.sh and scripts/restore.sh: a round trip into a new database keeps every
row, the hypertables and their chunks, the roll-ups and the migration ledgers."""

from __future__ import annotations

import subprocess
import uuid
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from lifecycle_support import (
    add_events,
    add_screenshot,
    add_session,
    connect,
    fresh_database,
    new_account,
    views,
)
from psycopg import sql

from hindsight.lifecycle import JobRunner, lifecycle_jobs
from hindsight.migrate import migrate
from hindsight.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
TABLES = ("accounts", "domains", "widgets", "api_keys", "jwt_signing_keys", "sessions", "events",
          "screenshots", "screenshot_images", "schema_migrations", "schema_editions", "lifecycle_jobs",
          "rollup_watermarks", "events_hourly_store", "pages_daily_store", "sessions_daily_store")


def script(name: str, url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(ROOT / "scripts" / name), "-d", url, *args],
                          capture_output=True, text=True, timeout=120)


def counts(url: str) -> dict:
    with connect(url) as conn:
        out = {t: conn.execute(sql.SQL("SELECT count(*) AS n FROM {}").format(sql.Identifier(t))).fetchone()["n"]
               for t in TABLES}
        out["chunks"] = conn.execute(
            "SELECT hypertable_name, num_chunks FROM timescaledb_information.hypertables ORDER BY 1").fetchall()
        out["images"] = conn.execute("SELECT md5(string_agg(encode(image_data, 'hex'), ',' ORDER BY content_hash)) "
                                     "AS h FROM screenshot_images").fetchone()["h"]
    return out


@pytest.mark.slow
def test_backup_and_restore_round_trip(cluster, tmp_path):
    with fresh_database(cluster.url(), "lcbak") as url:
        with connect(url) as conn:
            now = conn.execute("SELECT now() AS t").fetchone()["t"]
            accounts = []
            for _ in range(2):
                account, host = new_account(conn)
                accounts.append(account)
                for day in range(5):
                    start = now - timedelta(days=day, hours=3)
                    sid = add_session(conn, account, host, start, referrer="https://example.org/")
                    add_events(conn, sid, account, host, [(start + timedelta(seconds=i), t, f"https://{host}/x")
                                                          for i, t in enumerate(("page_view", "click", "error"))])
                    add_screenshot(conn, sid, account, host, start, f"image-{day}".encode())
        runner = JobRunner(url, lifecycle_jobs(Settings(database_url=url)))
        runner.run("refresh_rollups", force=True)
        with connect(url) as conn:
            rollups = views(conn, accounts)
        before = counts(url)
        assert before["events"] == 30 and before["events_hourly_store"] > 0

        backup = tmp_path / "hindsight.dump"
        made = script("backup.sh", url, str(backup))
        assert made.returncode == 0, made.stderr
        assert backup.stat().st_size > 0 and "TimescaleDB 2." in made.stdout
        assert not (tmp_path / "hindsight.dump.partial").exists()

        target = f"lcrestore_{uuid.uuid4().hex[:8]}"
        admin = cluster.url().rsplit("/", 1)[0] + "/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{target}"')
        restored_url = cluster.url().rsplit("/", 1)[0] + "/" + target
        try:
            done = script("restore.sh", restored_url, str(backup))
            assert done.returncode == 0, done.stderr
            assert counts(restored_url) == before
            with connect(restored_url) as conn:
                assert views(conn, accounts) == rollups
                assert conn.execute("SHOW timescaledb.restoring").fetchone()["timescaledb.restoring"] == "off"
            assert migrate(restored_url) == []  # the ledgers came along: nothing to apply
            # The restored database works: new events are stored and counted.
            with connect(restored_url) as conn:
                sid = add_session(conn, accounts[0], "x.example", now)
                add_events(conn, sid, accounts[0], "x.example", [(now, "click", "https://x.example/")])
                assert conn.execute("SELECT count(*) AS n FROM events").fetchone()["n"] == 31
            assert JobRunner(restored_url, lifecycle_jobs(Settings(database_url=restored_url))).run(
                "refresh_rollups", force=True)["ran"]

            again = script("restore.sh", restored_url, str(backup))
            assert again.returncode == 1 and "not empty" in again.stderr
        finally:
            with psycopg.connect(admin, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{target}" WITH (FORCE)')


def test_backup_without_a_database_says_so(tmp_path):
    result = subprocess.run(["bash", str(ROOT / "scripts" / "backup.sh"), str(tmp_path / "x.dump")],
                            capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"}, timeout=30)
    assert result.returncode == 2 and "HINDSIGHT_DATABASE_URL" in result.stderr
