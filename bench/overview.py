"""The overview's numbers, A/B against a git revision's code, in one process on one database.

    .venv/bin/python bench/overview.py --against HEAD                 # its own 10 M events
    .venv/bin/python bench/overview.py --url URL --against REV --runs 9   # a database with data

For every range of the page (1h ... 90d) it times `hindsight.dashboard.overview.numbers` —
the page's statements, what the page waits for — three ways, alternated run by run so that
load on the machine hits all three alike:

- `ref`: the code of `--against` (a `git archive` of its backend/, imported under another
  package name), on one connection, as that revision's page ran it;
- `one`: this tree's code on one connection (its statements one after another);
- `two`: this tree's code with a spare connection (its two halves at once, as the page runs
  them under `hindsight serve`).

Beside the wall-clock medians it reports the server's CPU time (the backends' utime + stime
from /proc, summed over both connections, per run): the work done, which load on a shared
machine hides less than it hides wall-clock time. Writes its section of docs/BENCHMARKS.md
unless --output says otherwise. With no --url it generates `--events` events (bench/stats.py's
generator) in a throw-away cluster and refreshes the roll-ups first.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "backend"))
sys.path.insert(0, str(ROOT / "bench"))

import common as bench_common  # noqa: E402
from doc_sections import write_section  # noqa: E402

DOC = ROOT / "docs" / "BENCHMARKS.md"
WAYS = ("ref", "one", "two")


@dataclass
class Row:
    range: str
    wall: dict[str, list[float]] = field(default_factory=lambda: {w: [] for w in WAYS})
    cpu: dict[str, list[float]] = field(default_factory=lambda: {w: [] for w in WAYS})
    page_ms: float = 0.0


def reference_package(revision: str) -> tuple[object, Path]:
    """That revision's hindsight package, imported as `hindsight_ref` (its imports are relative)."""
    tree = Path(tempfile.mkdtemp(prefix="hindsight-bench-ref-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "backend/hindsight"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    (tree / "backend" / "hindsight").rename(tree / "hindsight_ref")
    sys.path.insert(0, str(tree))
    from prometheus_client import REGISTRY

    register = REGISTRY.register
    REGISTRY.register = lambda collector: None  # its metrics' names are this tree's too
    try:
        return importlib.import_module("hindsight_ref.dashboard.overview"), tree
    finally:
        REGISTRY.register = register


def backend_cpu_ms(pids: list[int]) -> float:
    """utime + stime of PostgreSQL backends (this machine's /proc), in ms."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total * 1000 / tick


def measure(url: str, revision: str, runs: int, log=print) -> tuple[list[Row], str, object]:
    import psycopg
    from psycopg.rows import dict_row

    from hindsight import timerange
    from hindsight.dashboard import overview

    ref, tree = reference_package(revision)
    conn = psycopg.connect(url, row_factory=dict_row)
    spare = psycopg.connect(url, row_factory=dict_row)
    pids = [conn.info.backend_pid, spare.info.backend_pid]
    account = conn.execute("SELECT account_id FROM events_daily GROUP BY 1 ORDER BY sum(events) DESC "
                           "LIMIT 1").fetchone()["account_id"]
    conn.rollback()
    ways = {"ref": lambda s, e: ref.numbers(conn, account, s, e),
            "one": lambda s, e: overview.numbers(conn, account, s, e),
            "two": lambda s, e: overview.numbers(conn, account, s, e, spare)}
    rows = []
    try:
        for preset, span in timerange.PRESETS.items():
            row = Row(preset)
            now = datetime.now(UTC)
            answers = {}
            for way, run in ways.items():  # a warm-up each, and the answers compared
                answers[way] = run(now - span, now)
                conn.rollback()
                spare.rollback()
            if answers["one"] != answers["two"]:
                raise AssertionError(f"{preset}: one and two connections answer differently")
            for _ in range(runs):
                for way, run in ways.items():
                    now = datetime.now(UTC)
                    cpu0, t0 = backend_cpu_ms(pids), time.perf_counter()
                    run(now - span, now)
                    conn.rollback()
                    spare.rollback()
                    row.wall[way].append((time.perf_counter() - t0) * 1000)
                    row.cpu[way].append(backend_cpu_ms(pids) - cpu0)
            log(f"  {preset:4s} " + "  ".join(f"{w} {statistics.median(row.wall[w]):6.1f} ms "
                                               f"(cpu {statistics.mean(row.cpu[w]):5.1f})" for w in WAYS))
            rows.append(row)
    finally:
        conn.close()
        spare.close()
        shutil.rmtree(tree, ignore_errors=True)
    pages = _pages(url, account, runs)
    for row in rows:
        row.page_ms = pages[row.range]
    load = open("/proc/loadavg").read().split()[:3]
    return rows, " / ".join(load), account


def _pages(url: str, account, runs: int) -> dict[str, float]:
    """The whole page (GET /dashboard/overview, logged in, this tree's in-process app as
    bench/stats.py times it: its two read connections, template, session check): median ms."""
    import stats

    return {r["range"]: r["page_ms"] for r in stats.measure_overview(
        url, {"account_id": account}, stats.Config(runs=runs), compare=False)}


def generated(events: int, run):
    """`run(url)` on a throw-away cluster holding bench/stats.py's data (roll-ups refreshed)."""
    import psycopg
    import stats
    from psycopg.rows import dict_row

    from hindsight.lifecycle import rollups

    def load(url: str):
        config = stats.Config(events=events)
        with psycopg.connect(url, row_factory=dict_row) as conn:
            now = conn.execute("SELECT now() AS t").fetchone()["t"]
            conn.commit()
            stats.generate(conn, config, now, show_progress=False)
        with psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
            rollups.refresh_all(conn, datetime.now(UTC), "apache")
            rollups.refresh_all(conn, datetime.now(UTC) + timedelta(minutes=1), "apache")
            conn.execute("ANALYZE")
        return run(url)

    return bench_common.on_read_cluster(load)


def render(rows: list[Row], revision: str, load: str, events: str, runs: int, command: str,
           edition: str = "apache") -> str:
    def med(xs):
        return statistics.median(xs)

    lines = [
        f"## The overview's statements, {edition} edition: A/B against an earlier revision",
        "",
        "Written by `bench/overview.py`; run it again rather than editing this section.",
        "",
        f"- Command: `{command}`",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; machine: {bench_common.machine()}; "
        f"load average at the end: {load}",
        f"- Data: {events}; the biggest account; ranges ending now. Each way run {runs} times, the three "
        "alternated run by run; medians of wall-clock time, means of the server's CPU time (both backends).",
        f"- `ref`: the code of `{revision}` on one connection; `one`: this code on one connection; `two`: this "
        "code with a spare connection, its two halves at once (what the page does). The whole page: "
        "GET /dashboard/overview of this tree's in-process app, logged in (bench/stats.py's measure), median.",
        "",
        "| range | ref | one | two | two ÷ ref | server CPU ref | one | two | the whole page |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r.range} | {med(r.wall['ref']):.1f} ms | {med(r.wall['one']):.1f} ms | "
                     f"**{med(r.wall['two']):.1f} ms** | {med(r.wall['two']) / med(r.wall['ref']):.2f} | "
                     f"{statistics.mean(r.cpu['ref']):.1f} ms | {statistics.mean(r.cpu['one']):.1f} ms | "
                     f"{statistics.mean(r.cpu['two']):.1f} ms | **{r.page_ms:.0f} ms** |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a migrated database with data and refreshed roll-ups")
    parser.add_argument("--events", type=int, default=10_000_000, help="events to generate without --url")
    parser.add_argument("--against", default="HEAD", help="the reference revision (default HEAD)")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--about", default="", help="what the --url database holds (for the doc)")
    parser.add_argument("--edition", default="apache", choices=("apache", "timescale"),
                        help="the database's edition (its own section of the doc; default apache)")
    parser.add_argument("--output", type=Path, default=DOC)
    args = parser.parse_args(argv)

    def run(url: str):
        return measure(url, args.against, args.runs)

    rows, load, _ = run(args.url) if args.url else generated(args.events, run)
    events = (args.about or "the database given (--url)") if args.url else \
        f"{args.events:,} generated events (bench/stats.py's generator)"
    given = argv if argv is not None else sys.argv[1:]
    command = " ".join([".venv/bin/python bench/overview.py", *given])
    write_section(args.output, f"bench/overview.py {args.edition}",
                  render(rows, args.against, load, events, args.runs, command, args.edition))
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
