"""The `hindsight` command line against real databases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest
import testing.postgresql

from hindsight.db import connect
from hindsight.migrate import discover, migrate
from hindsight.pgcluster import binaries

HINDSIGHT = str(Path(sys.executable).with_name("hindsight"))


def run(db_url: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HINDSIGHT_DATABASE_URL=db_url)
    return subprocess.run([HINDSIGHT, *args], env=env, capture_output=True, text=True, timeout=60)


def test_migrate_is_idempotent_and_recorded(db_url):
    result = run(db_url, "migrate")
    assert result.returncode == 0, result.stderr
    assert "up to date" in result.stdout
    with connect(db_url) as conn:
        versions = [r["version"] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]
        hyper = conn.execute("SELECT hypertable_name FROM timescaledb_information.hypertables").fetchall()
    assert versions == [m.version for m in discover()]
    assert {"hypertable_name": "events"} in hyper


def test_accounts_and_keys_create(db_url):
    created = run(db_url, "accounts", "create", "--name", "Shop", "--domain", "Shop.Example",
                  "--monthly-event-limit", "1000")
    assert created.returncode == 0, created.stderr
    account = json.loads(created.stdout)
    assert set(account) == {"account_id", "domain", "widget_id"}
    assert account["domain"] == "shop.example"
    key = run(db_url, "keys", "create", "--account", account["account_id"])
    assert key.returncode == 0, key.stderr
    api_key = key.stdout.strip()
    assert api_key.startswith("hsk_") and len(api_key) > 40
    with connect(db_url) as conn:
        row = conn.execute("SELECT a.monthly_event_limit, k.key_hash FROM accounts a "
                           "JOIN api_keys k USING (account_id) WHERE a.account_id = %s",
                           (account["account_id"],)).fetchone()
        widget = conn.execute("SELECT widget_type, active FROM widgets WHERE widget_id = %s",
                              (account["widget_id"],)).fetchone()
    assert row["monthly_event_limit"] == 1000
    assert api_key.encode() not in bytes(row["key_hash"])  # stored hashed
    assert widget == {"widget_type": "tracker", "active": True}
    missing = run(db_url, "keys", "create", "--account", "00000000-0000-0000-0000-000000000000")
    assert missing.returncode == 2 and "no account" in missing.stderr


def test_cli_without_database_url_says_so():
    env = {k: v for k, v in os.environ.items() if k != "HINDSIGHT_DATABASE_URL"}
    result = subprocess.run([HINDSIGHT, "migrate"], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and "HINDSIGHT_DATABASE_URL" in result.stderr


@pytest.mark.slow
def test_migrate_refuses_a_database_without_timescaledb_loaded():
    bins = binaries(Path(tempfile.mkdtemp(prefix="hindsight-pgbin-")))
    plain = testing.postgresql.Postgresql(initdb=bins.initdb, postgres=bins.postgres)
    try:
        result = run(plain.url(), "migrate")
        assert result.returncode == 2
        assert "shared_preload_libraries" in result.stderr
        with psycopg.connect(plain.url()) as conn:
            assert conn.execute("SELECT to_regclass('public.events')").fetchone()[0] is None
    finally:
        plain.stop()


def test_changed_migration_is_refused(db_url, tmp_path):
    for m in discover():
        (tmp_path / m.path.name).write_text(m.sql)
    first = sorted(tmp_path.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    from hindsight.migrate import MigrationError

    with pytest.raises(MigrationError, match="changed after it was applied"):
        migrate(db_url, tmp_path)


def test_concurrent_migrators_apply_each_file_once(cluster, tmp_path):
    import threading

    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE migrate_race")
    url = cluster.url().rsplit("/", 1)[0] + "/migrate_race"
    errors: list[Exception] = []

    def go():
        try:
            migrate(url)
        except Exception as ex:  # noqa: BLE001 - collected and asserted below
            errors.append(ex)

    threads = [threading.Thread(target=go) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with connect(url) as conn:
        assert conn.execute("SELECT count(*) AS n FROM schema_migrations").fetchone()["n"] == len(discover())
