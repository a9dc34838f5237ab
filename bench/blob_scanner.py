"""What cutting blobs out of a DOM recording segment (hindsight.recording_blobs.extract)
costs against parsing the same segment (json.loads, which every upload does first), on
hostile segments that are tiny when gzipped and on a realistic one:

- 16 MiB of `"",` with one long literal (no full snapshot): the literal scan;
- a full snapshot whose node tree is 16 MiB of `[],`: the tree walk;
- the same with `"",`: the tree walk over literals;
- the test suite's page load (tests/test_recording_blobs.page_events) with 40 stylesheets.

Ratios (extract / parse, same process, medians), never absolute times, are the result.

    .venv/bin/python bench/blob_scanner.py            # writes its section of docs/BENCHMARKS.md
    .venv/bin/python bench/blob_scanner.py --quick    # one round, prints only
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import machine  # noqa: E402
from doc_sections import write_section  # noqa: E402

from hindsight import recording_blobs  # noqa: E402
from hindsight.ingestion import segments  # noqa: E402

DOC = ROOT / "docs" / "BENCHMARKS.md"
SECTION = "bench/blob_scanner.py"
SIZE = 16 * 1024 * 1024 - 4096   # segments.MAX_JSON_BYTES, less the envelope


def hostile(kind: str) -> tuple[bytes, set[int]]:
    ts = int(time.time() * 1000)
    n = SIZE // 3
    if kind == "literals":
        head = f'[{{"type":3,"timestamp":{ts},"data":{{"x":"{"a" * 1100}","v":['
        return head.encode() + b'"",' * n + b'""]}}]', set()
    head = f'[{{"type":2,"timestamp":{ts},"data":{{"node":['
    item = b"[]," if kind == "tree" else b'"",'
    return head.encode() + item * n + item[:-1] + b"]}}]", {0}


def realistic() -> tuple[bytes, set[int]]:
    from test_recording_blobs import css, page_events
    events: list = []
    for i in range(40):
        events += page_events(int(time.time() * 1000) + i * 1000, css(f"l{i}", 120), css(f"s{i}", 80), f"page {i}")
    text = json.dumps(events, ensure_ascii=False, separators=(",", ":")).encode()
    return text, {i for i, e in enumerate(events) if e["type"] == 2}


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds = 1 if args.quick else 3
    cases = [("16 MiB of `\"\",` + one 1 KiB literal, no snapshot", *hostile("literals")),
             ("full snapshot, node tree of 16 MiB of `[],`", *hostile("tree")),
             ("full snapshot, node tree of 16 MiB of `\"\",`", *hostile("tree-literals")),
             ("40 page loads (tests' page_events), realistic", *realistic())]
    rows = []
    for name, text, snapshots in cases:
        parse = statistics.median(timed(lambda t=text: json.loads(t)) for _ in range(rounds))
        cut = statistics.median(timed(lambda t=text, s=snapshots: recording_blobs.extract(t, snapshots=s))
                                for _ in range(rounds))
        rows.append((name, len(text), len(gzip.compress(text)), parse, cut))
        print(f"{name}: parse {parse * 1000:.0f} ms, extract {cut * 1000:.0f} ms, ratio {cut / parse:.2f}", flush=True)
    body = "\n".join([
        "## Recording blobs: the scanner on hostile segments (H6, attack round 2)",
        "",
        f"Command: `.venv/bin/python bench/blob_scanner.py` — {datetime.now(UTC):%Y-%m-%d}, {machine(python=True)},"
        f" {rounds} rounds, medians. extract = `recording_blobs.extract` (what an upload runs after parsing);"
        " parse = `json.loads` of the same bytes, in the same process.",
        "",
        "| segment | JSON | gzip | parse | extract | extract / parse |",
        "|---|---|---|---|---|---|",
        *(f"| {n} | {j / 2**20:.1f} MiB | {g / 1024:.0f} KiB | {p * 1000:,.0f} ms | {c * 1000:,.0f} ms | **{c / p:.2f}** |"
          for n, j, g, p, c in rows),
        "",
        "Before the fix (same machine, one run, loaded): the first row was 9.6 s against a 1.5 s parse (6.5x: one"
        " Python step per literal) and the second 21.3 s against 6.3 s (3.4x: one Python step per token, unbounded);"
        " now the literal scan runs in one regular expression (possessive, no backtracking) and the tree walk stops"
        f" after {recording_blobs.MAX_TREE_TOKENS:,} tokens (then only literals are cut: space, never a read).",
        "An upload no longer gets that far with the second row: its 5.6 million brackets are over"
        f" `segments.MAX_CONTAINERS` ({segments.MAX_CONTAINERS:,}), a 413 before parsing (the parse was 415 MiB"
        " of memory). The realistic row is mostly the gzip of each blob (its own stream), as before.",
    ])
    if not args.quick:
        write_section(DOC, SECTION, body)


if __name__ == "__main__":
    main()
