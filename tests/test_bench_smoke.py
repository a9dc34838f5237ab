"""The ingestion benchmark's core, in quick mode, on the test cluster: it runs end to end
(gunicorn, the site flow, psql \\copy, the in-process profile) and every row it claims to
have sent is in the database, once. No timing is asserted: speed lives in docs/BENCHMARKS.md."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "ingest.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_ingest", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_quick_bench_stores_every_row_it_sent(db_url):
    bench = load_bench()
    config = bench.Config.quick()
    config.events, config.clients, config.workers = 500, 2, 1
    config.batches_per_session, config.profile_batches = 5, 6

    result = bench.run_bench(db_url, config, log=lambda *args: None)

    assert len(result.api) == len(result.copy) == 1
    api, ref = result.api[0], result.copy[0]
    assert api.events == ref.rows == 500
    assert len(api.latencies_ms) == 500 // config.batch_size
    # API sessions, their COPY twins, the warm-up and the profile's sessions.
    assert sum(result.api_sent.values()) == 500 + config.clients * config.warmup_batches * config.batch_size \
        + 2 * config.profile_batches * config.batch_size
    assert sum(result.sent.values()) == sum(result.api_sent.values()) + 500
    assert bench.verify(db_url, result) == []
    assert set(result.profile) >= {"JSON parse", "marshmallow validation", "request"}
    assert "ratio API / COPY" in bench.render(result, "smoke")

    # A run too short for /proc to count a single 10 ms tick still renders (CI once divided by 0).
    for r in result.api + result.copy:
        r.cpu = bench.CpuSplit()
    assert "n/a (too short to measure)" in bench.render(result, "smoke")
