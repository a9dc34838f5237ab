"""sql/maintenance/*.sql: each runs with `psql -f` against a real database with data, on
this (apache) edition, and its timescale-edition part runs too (forced on: the views and
functions it reads exist, empty, on the apache edition). With a timescale-edition server
(the tsl_url fixture, tests/conftest.py) they run there too, on compressed chunks,
continuous aggregates and policies, and what they show is checked.

Versions: the scripts must work on every TimescaleDB the docs name (docs/operations.md):
Debian's 2.19.3 apache edition (this suite), the compose image's 2.19.3 and the newest
release for PostgreSQL 15, 2.28.3 (timescale edition, when configured)."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from lifecycle_support import add_events, add_session, connect, fresh_database, network, new_account, wait_for

from hindsight.lifecycle import JobRunner, lifecycle_jobs, status
from hindsight.settings import Settings

MAINTENANCE = Path(__file__).resolve().parents[1] / "sql" / "maintenance"
FILES = sorted(MAINTENANCE.glob("*.sql"))
PSQL = shutil.which("psql") or "/usr/bin/psql"


def with_data(url: str, days: int = 4) -> None:
    """A session a day with a page view, a click and a network request; the jobs run once."""
    with connect(url) as conn:
        now = conn.execute("SELECT now() AS t").fetchone()["t"]
        account, host = new_account(conn)
        for day in range(days):
            start = now - timedelta(days=day, minutes=5)
            sid = add_session(conn, account, host, start)
            add_events(conn, sid, account, host, [(start, "page_view", f"https://{host}/"),
                                                  (start, "click", f"https://{host}/"),
                                                  (start, "network", f"https://{host}/",
                                                   network("GET", f"https://{host}/api", 120 + day))])
    runner = JobRunner(url, lifecycle_jobs(Settings(database_url=url)))
    runner.run("refresh_rollups", force=True)
    runner.run("retention", force=True)


@pytest.fixture(scope="module")
def dba_url(cluster):
    with fresh_database(cluster.url(), "lcdba") as url:
        with_data(url)
        yield url


def psql(url: str, path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([PSQL, "-X", "-v", "ON_ERROR_STOP=1", "-f", str(path), url],
                          capture_output=True, text=True, timeout=60)


def test_the_dba_scripts_are_the_ones_the_issue_asks_for():
    names = [f.name for f in FILES]
    for topic in ("connections", "sizes", "chunks", "jobs", "rollup_freshness", "slow_queries", "index_usage"):
        assert any(topic in n for n in names), topic


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_each_script_runs_with_psql_and_says_how_to_read_it(dba_url, path):
    text = path.read_text()
    assert text.startswith(f"-- {path.name}:")
    assert f"psql -X -f sql/maintenance/{path.name}" in text and "Read it like this" in text
    result = psql(dba_url, path)
    assert result.returncode == 0, result.stderr
    assert "ERROR" not in result.stderr
    headings = re.findall(r"^\\echo '(== [^']*)'$", text, re.M)
    shown = [h for h in headings if h in result.stdout]
    assert shown == headings or path.name in {"03_chunks.sql", "04_jobs.sql", "05_rollup_freshness.sql",
                                              "06_slow_queries.sql"}, result.stdout
    assert shown, result.stdout


def test_what_the_scripts_show_on_this_edition(dba_url):
    chunks = psql(dba_url, MAINTENANCE / "03_chunks.sql").stdout
    assert "_hyper_" in chunks and "unavailable (apache edition)" in chunks
    jobs = psql(dba_url, MAINTENANCE / "04_jobs.sql").stdout
    assert re.search(r"refresh_rollups\s*\|\s*success", jobs) and re.search(r"retention\s*\|\s*success", jobs)
    assert "none on the apache edition" in jobs
    fresh = psql(dba_url, MAINTENANCE / "05_rollup_freshness.sql").stdout
    assert all(name in fresh for name in ("events_hourly", "pages_daily", "sessions_daily"))
    indexes = psql(dba_url, MAINTENANCE / "07_index_usage.sql").stdout
    assert re.search(r"events_pkey\s*\|\s*4\s*\|", indexes)  # one per chunk: 4 days of events


@pytest.mark.parametrize("name", ["03_chunks.sql", "04_jobs.sql", "05_rollup_freshness.sql"])
def test_the_timescale_edition_part_runs_too(dba_url, name, tmp_path):
    text = (MAINTENANCE / name).read_text()
    assert "\\if :is_tsl" in text
    forced = tmp_path / name
    forced.write_text(text.replace("\\if :is_tsl", "\\if true"))
    result = psql(dba_url, forced)
    assert result.returncode == 0, result.stderr


def test_slow_queries_uses_pg_stat_statements_when_it_is_installed(cluster):
    with fresh_database(cluster.url(), "lcpgss") as url:
        without = psql(url, MAINTENANCE / "06_slow_queries.sql")
        assert without.returncode == 0 and "pg_stat_statements is not installed" in without.stdout
        with connect(url) as conn:
            conn.execute("CREATE EXTENSION pg_stat_statements")
        # This test server does not preload the library, so the query plans (its columns
        # exist) and then PostgreSQL says what is missing.
        with_it = psql(url, MAINTENANCE / "06_slow_queries.sql")
        assert "top 20 statements by total time" in with_it.stdout
        assert "must be loaded via" in with_it.stderr and "does not exist" not in with_it.stderr


# ------------------------------------------------------------ on a timescale-edition server

@pytest.fixture(scope="module")
def tsl_dba_url(tsl_url):
    """10 days of data, chunks older than 7 days compressed, the aggregates refreshed."""
    with fresh_database(tsl_url, "lcdbatsl") as url:
        with_data(url, days=10)
        with connect(url) as conn:
            compressed = conn.execute("SELECT count(compress_chunk(c)) AS n FROM show_chunks('events', "
                                      "older_than => INTERVAL '7 days') c").fetchone()["n"]
            assert compressed >= 2
            for name in ("events_hourly_cagg", "network_hourly_cagg", "events_daily_cagg", "network_daily_cagg",
                         "network_weekly_cagg"):
                wait_for(lambda n=name: _refreshed(conn, n), timeout=60)
        yield url


def _refreshed(conn, name: str) -> bool:
    try:
        conn.execute(f"CALL refresh_continuous_aggregate('{name}', NULL, now() - INTERVAL '1 hour')")
        return True
    except Exception as ex:  # a policy refreshing it right now: try again
        if "concurrent refresh" not in str(ex):
            raise
        return False


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_each_script_runs_on_the_timescale_edition(tsl_dba_url, path):
    result = psql(tsl_dba_url, path)
    assert result.returncode == 0, result.stderr
    assert "ERROR" not in result.stderr
    text = path.read_text()
    if "\\if :is_tsl" not in text:  # 06 branches on pg_stat_statements, not on the edition
        assert re.search(r"^== ", result.stdout, re.M), result.stdout
        return
    # Every heading outside the \else branch (the apache edition's) is shown.
    expected = re.findall(r"^\\echo '(== [^']*)'$", re.sub(r"\\else.*?\\endif", "", text, flags=re.S), re.M)
    shown = [h for h in expected if h in result.stdout]
    assert shown == expected, result.stdout


def test_what_the_scripts_show_on_the_timescale_edition(tsl_dba_url):
    chunks = psql(tsl_dba_url, MAINTENANCE / "03_chunks.sql").stdout
    assert re.search(r"_hyper_\d+_\d+_chunk \|[^|]+\|[^|]+\| t ", chunks), chunks   # compressed ones
    assert "unavailable" not in chunks
    jobs = psql(tsl_dba_url, MAINTENANCE / "04_jobs.sql").stdout
    for policy in ("policy_compression", "policy_retention", "policy_refresh_continuous_aggregate"):
        assert re.search(rf"{policy}\s*\|[^\n]*\| Success", jobs), (policy, jobs)
    assert "network_daily_cagg" in jobs
    fresh = psql(tsl_dba_url, MAINTENANCE / "05_rollup_freshness.sql").stdout
    assert all(name in fresh for name in ("events_hourly_cagg", "network_hourly_cagg", "network_daily_cagg"))
    indexes = psql(tsl_dba_url, MAINTENANCE / "07_index_usage.sql").stdout
    assert re.search(r"events_pkey\s*\|\s*1[01]\s*\|", indexes), indexes   # one per daily chunk
    compressed = re.search(r"compressed_chunks \|.*\n-+\+.*\n\s*(\d+) \|", indexes)
    assert compressed and int(compressed.group(1)) >= 2, indexes


def test_a_failed_policy_run_is_shown_with_what_it_means(tsl_dba_url):
    """What an unpatched TimescaleDB on PostgreSQL 15.20 records after every policy run (the row
    its background worker writes into the job history), as 04_jobs.sql and /health show it."""
    with connect(tsl_dba_url) as conn:
        job = conn.execute("SELECT job_id FROM timescaledb_information.jobs "
                           "WHERE proc_name = 'policy_compression'").fetchone()["job_id"]
        conn.execute(
            "INSERT INTO _timescaledb_internal.bgw_job_stat_history (job_id, pid, execution_start, "
            "execution_finish, succeeded, data) VALUES (%s, 4242, now() - INTERVAL '1 minute', now(), false, "
            """jsonb_build_object('job', jsonb_build_object('proc_name', 'policy_compression',
                   'proc_schema', '_timescaledb_functions'),
               'error_data', jsonb_build_object('sqlerrcode', '55000',
                   'message', 'cannot drop portal "" while it is being set up')))""", (job,))
        try:
            failures = status.policy_failures(conn)
            assert [f["job_id"] for f in failures] == [job]
            assert failures[0]["relation"] == "events" and "being set up" in failures[0]["error"]
            assert "the policy did its work" in failures[0]["known_cause"]
            jobs = psql(tsl_dba_url, MAINTENANCE / "04_jobs.sql").stdout
            assert re.search(rf"{job}\s*\| policy_compression\s*\|\s*0\s*\|\s*1\s*\|", jobs), jobs  # history
            assert "cannot drop portal" in jobs and "the work was done" in jobs
        finally:
            conn.execute("DELETE FROM _timescaledb_internal.bgw_job_stat_history WHERE pid = 4242")
