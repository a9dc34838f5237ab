"""The two TimescaleDB editions: `hindsight migrate` sets up the server's variant, and
the timescale (TSL) edition's SQL is checked here as far as an apache server allows.

- The timescale files are run statement by statement against an apache-edition
  database holding roll-up history: the statements only TSL can run must fail with
  the license error (so they parse, and their functions and arguments resolve), every
  other statement must succeed, and with each continuous aggregate stood in for by a
  plain view over the same query (what a real-time aggregate with nothing
  materialized returns), the dashboard's views must show exactly what they showed
  before the upgrade.
- The queries /health and the retention job run on TSL only also run here (the
  information views exist, empty, on the apache edition).
- With HINDSIGHT_TEST_TSL_URL naming a timescale-edition server (e.g. the
  timescale/timescaledb image), the same files run there for real: a new database,
  and an apache-edition database upgraded by one migrate.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta

import falcon.testing
import psycopg
import pytest
from lifecycle_support import (
    add_events,
    add_session,
    connect,
    directs,
    fresh_database,
    new_account,
    views,
)

from hindsight.app import create_app
from hindsight.db import create_pool
from hindsight.lifecycle import JobRunner, lifecycle_jobs, retention, status
from hindsight.migrate import (
    MIGRATIONS_DIR,
    NO_TRANSACTION,
    MigrationError,
    _statements,
    discover,
    migrate,
)
from hindsight.settings import Settings

EDITIONS_DIR = MIGRATIONS_DIR.parent / "editions"
TSL_URL = os.environ.get("HINDSIGHT_TEST_TSL_URL", "")
TSL_ONLY = re.compile(r"timescaledb\.compress|add_compression_policy|add_retention_policy|"
                      r"add_continuous_aggregate_policy|refresh_continuous_aggregate")
CAGG = re.compile(r"^CREATE MATERIALIZED VIEW (\w+)\s+WITH \(timescaledb\.continuous[^)]*\) AS\s+(.*?)\s+"
                  r"WITH NO DATA$", re.S)


def code(statement: str) -> str:
    return "\n".join(line for line in statement.splitlines() if not line.strip().startswith("--")).strip()


def with_history(url: str, now_offset_days: int = 10, *, tsl: bool = False) -> list:
    """Two accounts with 10 days of events, roll-ups refreshed, and B's raw events older
    than 7 days removed by retention: the roll-ups are the only record of those.
    (`tsl`: the schema is the timescale edition's, whose aggregates are refreshed too.)"""
    settings = Settings(database_url=url)
    with connect(url) as conn:
        now = conn.execute("SELECT now() AS t").fetchone()["t"]
        accounts = []
        for i, days in enumerate((None, 7)):
            account, host = new_account(conn, retention_days=days)
            accounts.append(account)
            for h in range(0, now_offset_days * 24, 5):
                start = now - timedelta(hours=h, minutes=13 * i)
                sid = add_session(conn, account, host, start, browser=("Firefox", "Chrome")[h % 2],
                                  referrer="https://www.example.org/" if h % 3 else None, created_at=start)
                add_events(conn, sid, account, host, [
                    (start, "session_start", f"https://{host}/"),
                    (start + timedelta(seconds=5), "page_view", f"https://{host}/p{h % 4}?x=1"),
                    (start + timedelta(seconds=9), "click", f"https://{host}/p{h % 4}"),
                    (start + timedelta(seconds=11), ("error", "scroll")[h % 2], f"https://{host}/p{h % 4}"),
                ])
    runner = JobRunner(url, lifecycle_jobs(settings))
    assert runner.run("refresh_rollups", force=True)["ran"]
    if tsl:
        _refresh_caggs(url)
    with connect(url) as conn:
        assert views(conn, accounts) == directs(conn, accounts)
        before = views(conn, accounts)
    result = runner.run("retention", force=True)["result"]
    assert result["events_deleted"] > 0
    with connect(url) as conn:
        assert views(conn, accounts) == before
        assert views(conn, accounts) != directs(conn, accounts)  # history the raw rows lost
    return accounts


def test_migrate_sets_up_the_servers_edition_and_records_it(db_url):
    with connect(db_url) as conn:
        edition = conn.execute("SHOW timescaledb.license").fetchone()["timescaledb.license"]
        rows = conn.execute("SELECT edition, version, name FROM schema_editions ORDER BY 1, 2").fetchall()
    assert edition == "apache"
    assert [(r["edition"], r["version"]) for r in rows] == [("apache", m.version)
                                                            for m in discover(EDITIONS_DIR / "apache")]
    assert migrate(db_url) == []  # idempotent


def test_a_changed_edition_file_and_a_downgrade_are_refused(cluster, tmp_path):
    with fresh_database(cluster.url(), "lced") as url:
        migrations = tmp_path / "migrations"
        migrations.mkdir()
        for m in discover():
            (migrations / m.path.name).write_text(m.sql)
        apache = tmp_path / "editions" / "apache"
        apache.mkdir(parents=True)
        for m in discover(EDITIONS_DIR / "apache"):
            (apache / m.path.name).write_text(m.sql + "\n-- edited\n")
        with pytest.raises(MigrationError, match="apache/0001_apache_rollups.sql changed"):
            migrate(url, migrations)
        with connect(url) as conn:
            conn.execute("INSERT INTO schema_editions VALUES ('timescale', 1, 'x', 'y')")
        with pytest.raises(MigrationError, match="set up for TimescaleDB's timescale edition"):
            migrate(url)


def test_the_timescale_files_fail_on_apache_only_where_tsl_is_needed_and_leave_nothing_half_done(cluster):
    with fresh_database(cluster.url(), "lctx") as url:
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="license"):
            migrate(url, edition="timescale")
        with connect(url) as conn:
            assert conn.execute("SELECT count(*) AS n FROM schema_editions WHERE edition = 'timescale'"
                                ).fetchone()["n"] == 0
            assert conn.execute("SELECT to_regclass('events_hourly') IS NOT NULL AS ok").fetchone()["ok"]


def test_no_transaction_files_are_split_into_their_statements():
    refresh = discover(EDITIONS_DIR / "timescale")[1]
    assert refresh.sql.startswith(NO_TRANSACTION)
    statements = [code(s) for s in _statements(refresh.sql)]
    assert len(statements) == 4 and all(s.startswith("CALL refresh_continuous_aggregate(") for s in statements)
    assert _statements("-- c\nSELECT 1;\n\n-- only a comment;\nSELECT 2;  \n") == ["-- c\nSELECT 1", "SELECT 2"]


def test_the_timescale_sql_upgrades_an_apache_database_without_losing_or_doubling_history(cluster):
    with fresh_database(cluster.url(), "lcup") as url:
        accounts = with_history(url)
        with connect(url) as conn:
            before = views(conn, accounts)
            license_errors, caggs = [], []
            for migration in discover(EDITIONS_DIR / "timescale"):
                for statement in (code(s) for s in _statements(migration.sql)):
                    cagg = CAGG.match(statement)
                    if cagg:  # a continuous aggregate with nothing materialized = its query
                        caggs.append(cagg.group(1))
                        conn.execute(f"CREATE VIEW {cagg.group(1)} AS {cagg.group(2)}")
                        continue
                    try:
                        with conn.transaction():
                            conn.execute(statement)
                    except psycopg.errors.FeatureNotSupported as ex:
                        assert "license" in str(ex), statement
                        license_errors.append(statement)
            assert license_errors and all(TSL_ONLY.search(s) for s in license_errors)
            # Every TSL-only statement was refused for the license, nothing else failed.
            tsl_only = [code(s) for m in discover(EDITIONS_DIR / "timescale")
                        for s in _statements(m.sql) if TSL_ONLY.search(s)]
            assert license_errors == tsl_only
            assert caggs == ["events_hourly_cagg", "pages_hourly_cagg", "events_daily_cagg", "pages_daily_cagg"]
            after = views(conn, accounts)
            assert after == before
            # The archive now holds only what no raw event can recount.
            assert conn.execute("SELECT count(*) AS n FROM events_hourly_store").fetchone()["n"] > 0
            assert conn.execute("""
                SELECT count(*) AS n FROM events_hourly_store s WHERE EXISTS (
                    SELECT 1 FROM events e WHERE e.account_id = s.account_id AND e.host = s.host
                      AND e."timestamp" >= s.bucket AND e."timestamp" < s.bucket + INTERVAL '1 hour')
                """).fetchone()["n"] == 0


def test_the_tsl_only_runtime_queries_run_here(db_url):
    with connect(db_url) as conn:
        for query in (status.POLICIES, status.COMPRESSION, status.CAGG_WATERMARKS):
            conn.execute(query).fetchall()
        assert conn.execute(retention.POLICY, {"relation": "events"}).fetchall() == []
        with pytest.raises(psycopg.errors.FeatureNotSupported, match="license"):
            retention.ensure_retention_policy(conn, "events_hourly_store", 730)
        assert status.compression(conn, "apache")["state"] == "unavailable"
        assert status.compression(conn, "timescale")["state"] == "not configured"


# ------------------------------------------------------------ a real TSL server

needs_tsl = pytest.mark.skipif(
    not TSL_URL, reason="HINDSIGHT_TEST_TSL_URL is not set: no timescale-edition server to run the "
                        "TSL SQL against for real (its SQL was checked on apache above; see docs/operations.md)")


def _refresh_caggs(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for name, end in (("events_hourly_cagg", "1 hour"), ("pages_hourly_cagg", "1 hour"),
                          ("events_daily_cagg", "1 day"), ("pages_daily_cagg", "1 day")):
            conn.execute(f"CALL refresh_continuous_aggregate('{name}', NULL, now() - INTERVAL '{end}')")


@needs_tsl
@pytest.mark.slow
def test_tsl_a_new_database_gets_compression_aggregates_and_policies():
    with fresh_database(TSL_URL, "lctsl") as url:
        with connect(url) as conn:
            assert conn.execute("SHOW timescaledb.license").fetchone()["timescaledb.license"] == "timescale"
            assert [r["edition"] for r in conn.execute("SELECT edition FROM schema_editions")] == [
                "timescale", "timescale"]
            caggs = {r["view_name"] for r in conn.execute(
                "SELECT view_name FROM timescaledb_information.continuous_aggregates")}
            assert caggs == {"events_hourly_cagg", "pages_hourly_cagg", "events_daily_cagg", "pages_daily_cagg"}
            procs = sorted(r["proc_name"] for r in status.policies(conn))
            assert procs.count("policy_refresh_continuous_aggregate") == 4
            assert procs.count("policy_retention") == 5 and procs.count("policy_compression") == 1
        accounts = with_history(url, tsl=True)
        settings = Settings(database_url=url, events_retention_days=45)
        runner = JobRunner(url, lifecycle_jobs(settings))
        result = runner.run("retention", force=True)["result"]
        assert result["events_policy"] == "updated"
        assert set(result["rollup_policies"].values()) == {"kept"}
        with connect(url) as conn:
            policy = conn.execute(retention.POLICY, {"relation": "events"}).fetchone()
            assert policy["drop_after"] == timedelta(days=45)
            before = views(conn, accounts)
            compressed = conn.execute(
                "SELECT count(compress_chunk(c)) AS n FROM show_chunks('events', older_than => INTERVAL '7 days') c"
            ).fetchone()["n"]
            assert compressed > 0
            assert views(conn, accounts) == before
        pool = create_pool(Settings(database_url=url, pool_max=2))
        try:
            health = falcon.testing.TestClient(create_app(settings, pool)).simulate_get("/health").json
        finally:
            pool.close()
        comp = health["timescaledb"]["compression"]
        assert comp["state"] == "enabled" and comp["compressed_chunks"] == compressed
        assert comp["bytes_before"] > 0 and comp["bytes_after"] > 0 and comp["ratio"] > 0
        assert {p["policy"] for p in health["lifecycle"]["policies"]} >= {"policy_compression"}
        assert all(p["last_error"] is None for p in health["lifecycle"]["policies"])


@needs_tsl
@pytest.mark.slow
def test_tsl_an_apache_database_is_upgraded_by_one_migrate():
    with fresh_database(TSL_URL, "lctslup", edition="apache") as url:
        accounts = with_history(url)
        with connect(url) as conn:
            before = views(conn, accounts)
        applied = migrate(url)
        assert [m.name for m in applied] == ["timescale_rollups", "timescale_first_refresh"]
        with connect(url) as conn:
            assert views(conn, accounts) == before
            assert conn.execute("SELECT count(*) AS n FROM timescaledb_information.continuous_aggregates"
                                ).fetchone()["n"] == 4
        assert migrate(url) == []
