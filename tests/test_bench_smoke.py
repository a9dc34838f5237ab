"""The ingestion benchmark's core, in quick mode, on the test cluster: it runs end to end
(gunicorn, the site flow, psql \\copy, the in-process profile) and every row it claims to
have sent is in the database, once. No timing is asserted: speed lives in docs/BENCHMARKS.md."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "ingest.py"


def load_bench(path: Path = BENCH):
    spec = importlib.util.spec_from_file_location(f"bench_{path.stem}", path)
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


@pytest.mark.slow
def test_quick_recording_bench_stores_what_it_sent_and_times_the_replay(db_url):
    """bench/recording.py --quick: a short visit recorded by tracker.js in Chromium, its
    segments posted again and COPYed, a long recording built from it and replayed."""
    bench = load_bench(BENCH.with_name("recording.py"))
    config = bench.Config.quick_config()

    result = bench.run_bench(db_url, config, log=lambda *args: None)

    rec = result.recorded
    assert [s.number for s in rec.segments] == list(range(len(rec.segments)))
    assert rec.segments[0].full_snapshot and rec.minutes > 0
    assert rec.json_bytes > rec.stored_bytes > 0 and rec.wire_bytes > 0
    assert len(result.ingestion.api) == len(result.ingestion.copy) == 1
    assert result.ingestion.api[0].segments == config.sessions * len(rec.segments)
    assert bench.verify(db_url, result.ingestion.expected) == []
    assert result.long.minutes >= config.replay_minutes and result.long.seek_points >= 1
    [run] = result.replay
    assert 0 < run.first_ms < 60_000 and 0 < run.seek_ms < 60_000
    text = bench.render(result, "smoke") + bench.render_replay(bench.replay_result(result), "smoke")
    assert "ratio API / COPY" in text and "**first frame**" in text
    # The traced page load: the main thread's time before the first frame, by kind.
    assert result.trace["busy"] > 0 and result.trace["scripts"] and "Chromium's trace" in text
