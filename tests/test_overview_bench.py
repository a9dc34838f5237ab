"""bench/overview.py in miniature against the test cluster: bench/stats.py's generator at
20 k events, the roll-ups refreshed, every range timed three ways (HEAD's code imported from
a `git archive`, this code on one and on two connections: the last two checked equal by the
bench), the whole page, and its section written. No timing is asserted."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from lifecycle_support import fresh_database
from psycopg.rows import dict_row

ROOT = Path(__file__).resolve().parents[1]


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_overview_benchmark_runs_against_a_revision_and_writes_its_section(cluster, tmp_path):
    if subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True).returncode:
        pytest.fail("bench/overview.py needs the git history (a clone)")
    stats, bench = load("stats"), load("overview")
    from hindsight.lifecycle import rollups

    with fresh_database(cluster.url(), "ovbench") as url:
        with psycopg.connect(url, row_factory=dict_row) as conn:
            now = conn.execute("SELECT now() AS t").fetchone()["t"]
            conn.commit()
            stats.generate(conn, stats.Config(events=20_000, days=40, accounts=2), now, show_progress=False)
        with psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
            rollups.refresh_all(conn, datetime.now(UTC), "apache")
        rows, load_average, _ = bench.measure(url, "HEAD", runs=1, log=lambda *a: None)
    assert [r.range for r in rows] == ["1h", "24h", "7d", "30d", "90d"]
    for r in rows:
        assert all(len(r.wall[w]) == 1 and r.cpu[w][0] >= 0 for w in bench.WAYS)
        assert r.page_ms > 0
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("# Benchmarks\n\nother section\n")
    text = bench.render(rows, "HEAD", load_average, "test data", 1, "bench/overview.py --test")
    bench.write_section(doc, "bench/overview.py apache", text)
    bench.write_section(doc, "bench/overview.py apache", text)  # replaced, not appended twice
    out = doc.read_text()
    assert out.count("<!-- bench/overview.py apache: begin -->") == 1 and "other section" in out
    assert "| 90d |" in out
