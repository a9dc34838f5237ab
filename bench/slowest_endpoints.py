"""The overview's slowest network endpoints, A/B against a git revision, in one process.

    .venv/bin/python bench/slowest_endpoints.py --url URL --against REV [--edition timescale]

For every range of the overview (1h ... 90d) it runs `traffic.slowest_endpoints` for the
biggest account two ways, alternated run by run on one connection so that load on the
machine hits both alike:

- `ref`: the code of `--against` (a `git archive` of its backend/, bench/overview.py's
  `reference_package`) with the network functions as sql/migrations/0021 made them (STRICT:
  not inlined), restored inside the reference run's own transaction and rolled back after it;
- `new`: this tree's code on this database's schema.

It reports the server's CPU time of each statement (the backend's run time from
/proc/PID/schedstat, nanoseconds: a 10 ms tick is too coarse for a 20 ms statement), the
mean over the runs, and checks that both ways give the same answer. Both servers must be on
this machine. Writes its section of docs/BENCHMARKS.md (one per edition) unless --output
says otherwise.
"""

from __future__ import annotations

import argparse
import shlex
import shutil
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "backend"))
sys.path.insert(0, str(ROOT / "bench"))

import common as bench_common  # noqa: E402
from doc_sections import write_section  # noqa: E402
from overview import reference_package  # noqa: E402

DOC = ROOT / "docs" / "BENCHMARKS.md"
SECTION = "bench/slowest_endpoints.py"

# sql/migrations/0021's definitions (STRICT, so never inlined), for the reference runs only.
STRICT_FUNCTIONS = """
CREATE OR REPLACE FUNCTION hindsight_duration_bucket(duration_ms integer) RETURNS smallint
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN CASE WHEN duration_ms <= 1 THEN 0
                ELSE ceil(ln(duration_ms::float8) / ln(1.05::float8 / 0.95))::smallint
           END;
CREATE OR REPLACE FUNCTION hindsight_duration_estimate(duration_bucket smallint, min_ms integer, max_ms integer)
    RETURNS double precision
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    RETURN least(greatest(CASE WHEN duration_bucket = 0 THEN 1
                               ELSE 0.95 * power(1.05::float8 / 0.95, duration_bucket)
                          END, min_ms), max_ms);
"""


def cpu_ms(pid: int) -> float:
    """The backend's time on a CPU so far (/proc/PID/schedstat), in ms."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e6


def measure(url: str, revision: str, runs: int, log=print) -> tuple[list[dict], str]:
    import psycopg
    from psycopg.rows import dict_row

    from hindsight import timerange
    from hindsight.queries import rollup_rows, traffic

    overview_ref, tree = reference_package(revision)
    ref = sys.modules["hindsight_ref.queries.traffic"]
    conn = psycopg.connect(url, row_factory=dict_row)
    pid = conn.info.backend_pid
    account = conn.execute("SELECT account_id FROM events_daily GROUP BY 1 ORDER BY sum(events) DESC "
                           "LIMIT 1").fetchone()["account_id"]
    conn.rollback()

    def run_ref(start, end) -> tuple[list, float]:
        with conn.transaction(force_rollback=True):
            conn.execute(STRICT_FUNCTIONS)
            before = cpu_ms(pid)
            rows = ref.slowest_endpoints(conn, account, start, end)
            return rows, cpu_ms(pid) - before

    def run_new(start, end) -> tuple[list, float]:
        with rollup_rows.snapshot(conn):  # as the overview reads it
            before = cpu_ms(pid)
            rows = traffic.slowest_endpoints(conn, account, start, end)
            return rows, cpu_ms(pid) - before

    ways = {"ref": run_ref, "new": run_new}
    results = []
    try:
        for preset, span in timerange.PRESETS.items():
            cpu: dict[str, list[float]] = {w: [] for w in ways}
            now = datetime.now(UTC)
            answers = {w: run(now - span, now)[0] for w, run in ways.items()}  # a warm-up each
            if answers["ref"] != answers["new"]:
                raise AssertionError(f"{preset}: the two ways answer differently")
            for _ in range(runs):
                for way, run in ways.items():
                    cpu[way].append(run(now - span, now)[1])
            row = {"range": preset, **{w: statistics.mean(v) for w, v in cpu.items()}}
            log(f"  {preset:4s} ref {row['ref']:5.1f} ms  new {row['new']:5.1f} ms  "
                f"new ÷ ref {row['new'] / row['ref']:.2f}")
            results.append(row)
    finally:
        conn.close()
        shutil.rmtree(tree, ignore_errors=True)
    load = open("/proc/loadavg").read().split()[:3]
    return results, " / ".join(load)


def render(rows: list[dict], revision: str, load: str, about: str, runs: int, command: str, edition: str) -> str:
    lines = [
        f"## The overview's slowest network endpoints, {edition} edition: A/B against an earlier revision",
        "",
        "Written by `bench/slowest_endpoints.py`; run it again rather than editing this section.",
        "",
        f"- Command: `{command}`",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; machine: {bench_common.machine()}; "
        f"load average at the end: {load}",
        f"- Data: {about}; the biggest account; ranges ending now; the same answers both ways (checked).",
        f"- `ref`: `traffic.slowest_endpoints` of `{revision}` with the network functions of migration 0021 "
        "(STRICT, not inlined); `new`: this tree's. The server's CPU time of the statement "
        f"(/proc/PID/schedstat), mean of {runs} runs each, the two alternated run by run.",
        "",
        "| range | server CPU ref | new | new ÷ ref |",
        "|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['range']} | {r['ref']:.1f} ms | **{r['new']:.1f} ms** | {r['new'] / r['ref']:.2f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="a migrated database with data and refreshed roll-ups")
    parser.add_argument("--against", default="HEAD", help="the reference revision (default HEAD)")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--about", default="", help="what the database holds (for the doc)")
    parser.add_argument("--edition", default="apache", choices=("apache", "timescale"))
    parser.add_argument("--output", type=Path, default=DOC, help="doc to write the section into ('-': none)")
    args = parser.parse_args(argv)
    rows, load = measure(args.url, args.against, args.runs)
    given = argv if argv is not None else sys.argv[1:]
    shown = [a if not a.startswith("postgresql://") else "URL" for a in given]
    command = " ".join([".venv/bin/python bench/slowest_endpoints.py", *map(shlex.quote, shown)])
    body = render(rows, args.against, load, args.about or "see the command", args.runs, command, args.edition)
    if str(args.output) == "-":
        print(body)
    else:
        write_section(args.output, f"{SECTION} --edition {args.edition}", body)
        print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
