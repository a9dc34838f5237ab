"""Statistics-stack benchmark: monitor cycle time, memory per stack, rebuild and flush cost.

What it does, all in one run on this machine:

1. starts its own throw-away TimescaleDB cluster (durable commits: fsync on), migrates it;
2. for 1 000, 10 000 and 100 000 active stacks (each holding 10 events, below the
   threshold, none idle) with one ledger row each in `stack_pending`:
   - memory: tracemalloc around building a registry of that many stacks (the stack
     objects, the keys they keep alive and the registry's own structures);
   - rebuild: the first monitor cycle of a fresh process, which reads the ledger and
     restores every stack (what a restart after kill -9 costs);
   - cycle: then `--cycles` monitor cycles with nothing to flush, timed one by one, and
     the in-memory part alone (due list and idle walk, no database);
3. flush: stacks of 50 real events (1 session start, page views, clicks, other events)
   stored through the ingestion statement, then flushed one by one (journey steps,
   counter row, usage, limit check in one transaction): time per flush;
4. writes its section of docs/BENCHMARKS.md (other sections are kept).

    .venv/bin/python bench/stacks.py            # about a minute
    .venv/bin/python bench/stacks.py --quick    # smoke run (does not rewrite the doc)
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import statistics
import sys
import time
import tracemalloc
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "backend"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as bench_common  # noqa: E402 - bench/ is not a package
from doc_sections import write_section as write_doc_section  # noqa: E402

from hindsight.db import connect, create_pool  # noqa: E402
from hindsight.migrate import migrate  # noqa: E402
from hindsight.queries import events as event_queries  # noqa: E402
from hindsight.queries.tenancy import create_account  # noqa: E402
from hindsight.settings import Settings  # noqa: E402
from hindsight.stacks.registry import BYTES_PER_STACK, Registry  # noqa: E402
from hindsight.stacks.service import StatisticsStacks  # noqa: E402

DOC = ROOT / "docs" / "BENCHMARKS.md"
HEADING = "## Statistics stacks: monitor cycle, memory, rebuild, flush"
SIZES = (1_000, 10_000, 100_000)


def keys_for(n: int) -> list[tuple[uuid.UUID, str]]:
    return [(uuid.uuid4(), f"site-{i}.example.com") for i in range(n)]


def measure_memory(n: int) -> float:
    """Bytes per stack: the registry, its stacks and the key objects they keep alive."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    registry = Registry(threshold=50, memory_limit_bytes=2**40, clock=time.time)
    for account_id, host in keys_for(n):
        registry.add(account_id, host, uuid.uuid4(), pages=3, clicks=5, other=2)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(registry) == n
    return (after - before) / n


def fill_ledger(url: str, keys: list[tuple[uuid.UUID, str]]) -> None:
    with connect(url) as conn:
        conn.execute("TRUNCATE stack_pending")
        with conn.cursor().copy("COPY stack_pending (account_id, host, session_id, pages, clicks, total) "
                                "FROM STDIN") as copy:
            for account_id, host in keys:
                copy.write_row((account_id, host, uuid.uuid4(), 3, 5, 10))
        conn.commit()
        conn.execute("ANALYZE stack_pending")
        conn.commit()


def measure_cycles(url: str, pool, n: int, cycles: int) -> dict:
    keys = keys_for(n)
    fill_ledger(url, keys)
    stacks = StatisticsStacks(pool, threshold=50, idle_seconds=1800, interval_seconds=60,
                              memory_limit_bytes=2**40, clock=lambda: datetime.now(UTC))
    started = time.perf_counter()
    first = stacks.monitor_cycle()  # a fresh process: rebuilds every stack from the ledger
    rebuild_ms = (time.perf_counter() - started) * 1000
    assert len(stacks.registry) >= n and first["processed"] == 0, first
    times = []
    for _ in range(cycles):
        started = time.perf_counter()
        result = stacks.monitor_cycle()
        times.append((time.perf_counter() - started) * 1000)
        assert result["processed"] == 0 and result["active_stacks"] >= n, result
    memory_only = []
    now = time.time()
    for _ in range(cycles):
        started = time.perf_counter()
        stacks.registry.take_due()
        stacks.registry.take_idle(now - 1800)
        memory_only.append((time.perf_counter() - started) * 1000)
    # For comparison: what a monitor that visits every stack (the seed's loop) costs.
    started = time.perf_counter()
    visited = sum(1 for s in list(stacks.registry._stacks.values())
                  if s.total >= 50 or s.updated_at < now - 1800)
    full_scan_ms = (time.perf_counter() - started) * 1000
    assert visited == 0
    return {"n": n, "rebuild_ms": rebuild_ms, "cycle_ms": statistics.median(times),
            "cycle_p95_ms": sorted(times)[max(0, int(len(times) * 0.95) - 1)],
            "memory_part_ms": statistics.median(memory_only), "full_scan_ms": full_scan_ms}


def measure_flush(url: str, pool, stacks_n: int) -> dict:
    """Stacks of 50 stored events each, flushed one by one."""
    kinds = ["page_view"] * 8 + ["click"] * 16 + ["mouse_move"] * 12 + ["scroll"] * 13  # + 1 session
    now = datetime.now(UTC)
    keys = []
    with connect(url) as conn:
        conn.execute("TRUNCATE stack_pending")
        conn.commit()
        for i in range(stacks_n):
            account = create_account(conn, f"Bench {i}", f"flush-{i}-{uuid.uuid4().hex[:6]}.example", None)
            account_id, host = uuid.UUID(account["account_id"]), account["domain"]
            session_id = uuid.uuid4()
            with conn.transaction():
                conn.execute("INSERT INTO sessions (session_id, account_id, host, started_at, last_activity_at, "
                             "page_url) VALUES (%s, %s, %s, %s, %s, %s)",
                             (session_id, account_id, host, now, now, f"https://{host}/"))
                events = [{"seq": s, "timestamp": now + timedelta(milliseconds=s), "event_type": k,
                           "page_url": f"https://{host}/p{s % 5}", "viewport_x": s, "viewport_y": s}
                          for s, k in enumerate(kinds)]
                batch = event_queries.encode_batch(events)
                event_queries.insert_batch(conn, session_id, account_id, host, batch)
            keys.append((account_id, host))
    stacks = StatisticsStacks(pool, threshold=50, idle_seconds=1800, interval_seconds=60,
                              memory_limit_bytes=2**40, clock=lambda: datetime.now(UTC))
    times = []
    for key in keys:
        started = time.perf_counter()
        result = stacks.flush_now(key, "threshold")
        times.append((time.perf_counter() - started) * 1000)
        assert result is not None and result.total == 50 and result.steps == 25, result
    with connect(url) as conn:
        left = conn.execute("SELECT count(*) AS n FROM stack_pending").fetchone()["n"]
    assert left == 0
    return {"stacks": stacks_n, "flush_ms": statistics.median(times),
            "flush_p95_ms": sorted(times)[max(0, int(len(times) * 0.95) - 1)],
            "events_per_s": 50 * stacks_n / (sum(times) / 1000)}


def measure_ledger_overhead(url: str, batches: int) -> dict:
    """What the ledger row costs ingestion: the batch statement with and without its
    `ledger` CTE (the same statement otherwise), each batch in its own committed
    transaction, the two variants alternating."""
    now = datetime.now(UTC)
    times: dict[str, list[float]] = {"with": [], "without": []}
    with connect(url) as conn:
        sql = event_queries.INSERT_BATCH
        sql = sql if isinstance(sql, str) else sql.as_string(conn)
        start, end = sql.index("), ledger AS ("), sql.index("\n)\nUPDATE sessions")
        variants = {"with": sql, "without": sql[:start] + sql[end:]}
        assert "stack_pending" not in variants["without"]
        account = create_account(conn, "Ingest", f"ingest-{uuid.uuid4().hex[:6]}.example", None)
        account_id, host = uuid.UUID(account["account_id"]), account["domain"]
        sessions = []
        for _ in range(batches // 10 + 1):
            session_id = uuid.uuid4()
            conn.execute("INSERT INTO sessions (session_id, account_id, host, started_at, last_activity_at) "
                         "VALUES (%s, %s, %s, %s, %s)", (session_id, account_id, host, now, now))
            sessions.append(session_id)
        conn.commit()
        kinds = ["mouse_move", "click", "scroll", "page_view", "input"] * 10
        for b in range(batches):
            for name in (("with", "without") if b % 2 else ("without", "with")):
                session_id = sessions[b // 10]
                base = (b % 10) * 100 + (0 if name == "with" else 50)
                events = [{"seq": base + i, "timestamp": now + timedelta(milliseconds=base + i),
                           "event_type": k, "page_url": "https://x/p", "viewport_x": i} for i, k in enumerate(kinds)]
                params = {"session_id": session_id, "account_id": account_id, "host": host,
                          "strip_query": False, **event_queries.encode_batch(events)}
                started = time.perf_counter()
                conn.execute(variants[name], params, prepare=True)
                conn.commit()
                times[name].append((time.perf_counter() - started) * 1000)
    with_ms, without_ms = statistics.median(times["with"]), statistics.median(times["without"])
    return {"batches": batches, "with_ms": with_ms, "without_ms": without_ms}


def machine() -> str:
    return f"{bench_common.cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}"


def render(rows: list[dict], memory: dict[int, float], flush: dict, ingest: dict, command: str,
           versions: str) -> str:
    lines = [
        HEADING,
        "",
        f"Measured by `{command}` on {datetime.now(UTC):%Y-%m-%d} ({machine()}; {versions}).",
        "",
        "Each stack holds 10 events (below the threshold of 50) and none is idle, so a cycle has "
        "nothing to flush. A cycle is the whole scheduler task: the due list, the idle walk, "
        "plus its three database look-ups (tokens revoked since the last cycle, hosts to switch "
        "back on, ledger rows nobody flushed); the in-memory part is the due list and idle walk "
        "alone. Stacks are kept least recently updated first, so the idle walk stops at the first "
        "stack that is not idle: a cycle costs what it flushes, not how many stacks there are. "
        "For comparison, one pass over every stack (the seed's loop) is shown too. Rebuild is "
        "the first cycle of a fresh process (after a restart or kill -9): it reads the ledger, "
        "one row per stack here, and restores every stack.",
        "",
        "| active stacks | monitor cycle, median (p95) | in-memory part | one pass over every stack "
        "| rebuild from the ledger | memory per stack | memory, all stacks |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        per = memory[r["n"]]
        lines.append(
            f"| {r['n']:,} | {r['cycle_ms']:.2f} ms ({r['cycle_p95_ms']:.2f} ms) | {r['memory_part_ms'] * 1000:.1f} µs "
            f"| {r['full_scan_ms']:.1f} ms | {r['rebuild_ms']:.0f} ms | {per:.0f} bytes "
            f"| {per * r['n'] / 2**20:.1f} MB |")
    lines += [
        "",
        f"Target: a cycle under 50 ms at 100 000 stacks with nothing to flush (the seed reports "
        f"15.3 ms for 245 stacks). The memory accounting of the health page and of "
        f"`HINDSIGHT_STACKS_MEMORY_LIMIT_MB` uses {BYTES_PER_STACK} bytes per stack "
        f"(`BYTES_PER_STACK` in backend/hindsight/stacks/registry.py), checked against these "
        f"measurements.",
        "",
        f"Flush: {flush['stacks']} stacks of 50 stored events each (1 session start, 8 page views, "
        f"16 clicks, 25 other events: 25 journey steps), flushed one at a time — take the ledger "
        f"rows, write the journey and its steps, a counter row, the usage and the running total, "
        f"check the limit, commit (fsync on).",
        "",
        "| flush of a 50-event stack, median (p95) | events counted per second, one flush at a time |",
        "|---|---|",
        f"| {flush['flush_ms']:.1f} ms ({flush['flush_p95_ms']:.1f} ms) | {flush['events_per_s']:,.0f} |",
        "",
        f"What the ledger costs ingestion: the batch statement of POST /api/v1/track (50 events) "
        f"plus its commit, with its `ledger` CTE (one `stack_pending` row per batch) and without "
        f"it, {ingest['batches']} batches each, alternating; medians. The end-to-end ratio against "
        f"COPY is the ingestion benchmark's (bench/ingest.py).",
        "",
        "| statement + commit, with the ledger row | without | difference |",
        "|---|---|---|",
        f"| {ingest['with_ms']:.3f} ms | {ingest['without_ms']:.3f} ms "
        f"| {ingest['with_ms'] - ingest['without_ms']:+.3f} ms "
        f"({100 * (ingest['with_ms'] / ingest['without_ms'] - 1):+.1f}%) |",
        "",
    ]
    return "\n".join(lines)


def write_section(doc: Path, section: str) -> None:
    """Replace this benchmark's section of the document (or append it); keep the others."""
    write_doc_section(doc, "bench/stacks.py", section)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes, no doc")
    parser.add_argument("--cycles", type=int, default=30, help="timed monitor cycles per size")
    parser.add_argument("--output", type=Path, default=None,
                        help="where to write the section (default docs/BENCHMARKS.md; --quick: nowhere)")
    args = parser.parse_args(argv)
    sizes = (1_000, 5_000) if args.quick else SIZES
    cycles = 5 if args.quick else args.cycles
    output = args.output if args.output else (None if args.quick else DOC)

    cluster = bench_common.start_cluster(durable=True)
    try:
        url = cluster.url()
        migrate(url)
        with connect(url) as conn:
            versions = "PostgreSQL {} + TimescaleDB {} ({})".format(
                conn.execute("SHOW server_version").fetchone()["server_version"],
                conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")
                .fetchone()["extversion"],
                conn.execute("SHOW timescaledb.license").fetchone()["timescaledb.license"])
        pool = create_pool(Settings(database_url=url, pool_max=2))
        try:
            memory = {n: measure_memory(n) for n in sizes}
            rows = []
            for n in sizes:
                rows.append(measure_cycles(url, pool, n, cycles))
                r = rows[-1]
                print(f"{n:>7,} stacks: cycle {r['cycle_ms']:.2f} ms (p95 {r['cycle_p95_ms']:.2f}), "
                      f"in-memory {r['memory_part_ms'] * 1000:.1f} µs, full scan {r['full_scan_ms']:.1f} ms, "
                      f"rebuild {r['rebuild_ms']:.0f} ms, {memory[n]:.0f} bytes/stack")
            flush = measure_flush(url, pool, 20 if args.quick else 200)
            print(f"flush of a 50-event stack: {flush['flush_ms']:.1f} ms (p95 {flush['flush_p95_ms']:.1f}), "
                  f"{flush['events_per_s']:,.0f} events/s")
            ingest = measure_ledger_overhead(url, 50 if args.quick else 400)
            print(f"ingestion statement + commit, 50 events: {ingest['with_ms']:.3f} ms with the ledger row, "
                  f"{ingest['without_ms']:.3f} ms without")
        finally:
            pool.close()
    finally:
        cluster.stop()
    if output:
        command = ".venv/bin/python bench/stacks.py" + ("".join(" " + a for a in (argv or sys.argv[1:])))
        write_section(output, render(rows, memory, flush, ingest, command, versions))
        print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
