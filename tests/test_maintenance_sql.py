"""sql/maintenance/*.sql: each runs with `psql -f` against a real database with data, on
this (apache) edition, and its timescale-edition part runs too (forced on: the views and
functions it reads exist, empty, on the apache edition)."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
from lifecycle_support import add_events, add_session, connect, fresh_database, new_account

from hindsight.lifecycle import JobRunner, lifecycle_jobs
from hindsight.settings import Settings

MAINTENANCE = Path(__file__).resolve().parents[1] / "sql" / "maintenance"
FILES = sorted(MAINTENANCE.glob("*.sql"))
PSQL = shutil.which("psql") or "/usr/bin/psql"


@pytest.fixture(scope="module")
def dba_url(cluster):
    with fresh_database(cluster.url(), "lcdba") as url:
        with connect(url) as conn:
            now = conn.execute("SELECT now() AS t").fetchone()["t"]
            account, host = new_account(conn)
            for day in range(4):
                start = now - timedelta(days=day, minutes=5)
                sid = add_session(conn, account, host, start)
                add_events(conn, sid, account, host, [(start, "page_view", f"https://{host}/"),
                                                      (start, "click", f"https://{host}/")])
        runner = JobRunner(url, lifecycle_jobs(Settings(database_url=url)))
        runner.run("refresh_rollups", force=True)
        runner.run("retention", force=True)
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
