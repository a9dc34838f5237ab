"""bench/dashboard.py's core on the test cluster with a small data set: it generates what it
says, logs in through the real form, every timed request answers 200, and the report names
the targets. No timing is asserted: speed lives in docs/BENCHMARKS.md."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from hindsight.db import connect

BENCH = Path(__file__).resolve().parent.parent / "bench" / "dashboard.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_dashboard", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_quick_dashboard_bench_runs_end_to_end(db_url):
    bench = load_bench()
    config = bench.Config(sessions=3000, other_sessions=500, runs=2, warmup=1)
    result = bench.run_bench(db_url, config)
    names = [t.name for t in result.timings]
    assert names[0] == "Sessions list, page 1 (HTML)" and names[-1].startswith("Replay first frame")
    assert all(len(t.ms) == config.runs and min(t.ms) > 0 for t in result.timings)
    with connect(db_url) as conn:
        counts = conn.execute(
            "SELECT count(*) AS sessions, (SELECT max(event_count) FROM sessions s JOIN accounts a USING "
            "(account_id) WHERE a.name = 'Dashboard bench') AS events FROM sessions s JOIN accounts a USING (account_id) "
            "WHERE a.name = 'Dashboard bench'").fetchone()
        shots = conn.execute("SELECT count(*) AS rows FROM screenshots s "
                             "JOIN accounts a USING (account_id) WHERE a.name = 'Dashboard bench'").fetchone()
    assert counts["sessions"] == 3001 and counts["events"] == 1000
    assert shots["rows"] == 20
    text = bench.render(result, "smoke")
    assert "Targets: sessions list under 100 ms" in text and "replay first frame under 300 ms" in text
