"""bench/stats.py in miniature against the test cluster: the data it generates, its
roll-up refresh and every dashboard query it times — with the roll-up answers checked
equal to the raw answers (run_bench raises otherwise). No timing is asserted."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from lifecycle_support import fresh_database

BENCH = Path(__file__).resolve().parents[1] / "bench" / "stats.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_stats", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_the_stats_benchmark_runs_and_its_answers_agree(cluster, tmp_path):
    bench = load_bench()
    config = bench.Config(events=20_000, days=40, accounts=3, runs=1)
    with fresh_database(cluster.url(), "lcbench") as url:
        result = bench.run_bench(url, config, show_progress=False)
    assert 15_000 < result.events < 25_000 and result.sessions > 0
    names = [t.name for t in result.timings]
    assert names[:2] == ["series by day (31 points)", "series by hour (721 points)"]
    assert {"event types", "top 10 pages", "referrers (top 10)", "devices (top 10)", "browsers (top 10)",
            "os (top 10)"} <= set(names)
    assert all(t.rollup_ms and t.raw_ms and t.api_ms and t.behind_ms and t.rows > 0 for t in result.timings)

    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("# Benchmarks\n\n## Ingestion\n\nother section\n")
    section = bench.render(result, "bench/stats.py --test")
    bench.write_section(doc, section)
    bench.write_section(doc, section)  # replaced, not appended twice
    text = doc.read_text()
    assert text.count(bench.BEGIN) == 1 and "other section" in text and "| top 10 pages |" in text
