"""bench/funnels.py's core on a small data set: the funnel query's counts equal the same
greedy rule computed in Python from the raw rows (run_bench asserts it), per visitor and per
session. No timing is asserted: speed lives in docs/BENCHMARKS.md."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from lifecycle_support import fresh_database

BENCH = Path(__file__).resolve().parent.parent / "bench" / "funnels.py"


def test_small_bench_agrees_with_the_python_rule(cluster):
    sys.path.insert(0, str(BENCH.parent))
    spec = importlib.util.spec_from_file_location("bench_funnels", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    config = module.stats_bench.Config(events=30_000, runs=1, days=40)
    with fresh_database(cluster.url(), "benchfun") as url:
        result = module.run_bench(url, config, show_progress=False)
    assert result.counts["visitor"][0] > 0 and result.counts["session"][0] > 0
    assert result.counts["visitor"][0] <= result.counts["session"][0]  # visitors group sessions
    names = [t.name for t in result.timings]
    assert "4-step funnel per visitor" in names and any("rate" in n for n in names)
    assert "| 4-step funnel per visitor |" in module.render(result, "test")
