"""bench/stacks.py keeps running (smoke run: small sizes, its own cluster, no doc written)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "stacks.py"


@pytest.mark.slow
def test_the_stacks_benchmark_runs(capsys, tmp_path):
    spec = importlib.util.spec_from_file_location("bench_stacks", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_stacks"] = module
    spec.loader.exec_module(module)
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("# Benchmarks\n\n## Someone else's section\n\nkept\n")
    assert module.main(["--quick", "--cycles", "3", "--output", str(doc)]) == 0
    out = capsys.readouterr().out
    assert "5,000 stacks: cycle" in out and "flush of a 50-event stack" in out
    text = doc.read_text()
    assert "## Someone else's section\n\nkept" in text and module.HEADING in text
    assert module.main(["--quick", "--cycles", "3", "--output", str(doc)]) == 0
    assert doc.read_text().count(module.HEADING) == 1  # rewritten in place, not appended
