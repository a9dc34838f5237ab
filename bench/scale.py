"""Beyond one machine, the longer run (docs/SCALING.md; tests/test_scale.py is the short one).

The rig of tests/scale_support.py — a TimescaleDB primary (fsync on), its streaming replica
(pg_basebackup -R), PgBouncer in transaction pooling mode, two `hindsight serve` hosts
behind HAProxy — and, as the reference in the same run, one `hindsight serve` host
connected to the primary directly. Then:

1. rounds of the same tracker-like load through each (reference first, alternating):
   events per second, and the ratio balancer + pooler / one direct host (on 2 cores the
   two hosts share the cores: the ratio is the price of the extra hops, not a speed-up);
   the primary's WAL bytes per stored event (pg_current_wal_lsn before and after), and
   the replica's largest lag in /health meanwhile;
2. kill -9 of one host a third of the way through a longer load: every batch
   acknowledged, stored once, counted once in usage.

    .venv/bin/python bench/scale.py [--rounds 3] [--batches 150] [--no-write]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "backend"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as bench_common  # noqa: E402 - bench/ is not a package
from doc_sections import write_section  # noqa: E402
from scale_support import HOST_ENV, Rig, TrackerLoad, have_tools  # noqa: E402
from test_stacks_crash import check_counted_once, settle  # noqa: E402

from harness import ServeProcess, http_call, wait_for  # noqa: E402

CLIENTS = 8
EVENTS = 20


def wal_lsn(rig: Rig) -> int:
    return int(rig.primary.sql("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint")[0][0])


class LagSampler:
    """The largest `read_replica.lag_seconds` the hosts' /health reported meanwhile."""

    def __init__(self, ports: list[int]) -> None:
        self.ports, self.max_lag, self.samples = ports, 0.0, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.25):
            for port in self.ports:
                try:
                    status, _, body = http_call(port, "GET", "/health", timeout=5)
                except OSError:
                    continue
                if status == 200 and body["read_replica"].get("lag_seconds") is not None:
                    self.samples += 1
                    self.max_lag = max(self.max_lag, body["read_replica"]["lag_seconds"])

    def __enter__(self) -> LagSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def timed_load(port: int, account: dict, batches: int) -> tuple[float, dict]:
    load = TrackerLoad(port, account, clients=CLIENTS, batches=batches, events=EVENTS)
    started = time.perf_counter()
    load.start().join(timeout=600)
    elapsed = time.perf_counter() - started
    return elapsed, load.check_stored(account["db_url"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batches", type=int, default=150, help="batches per client and round")
    parser.add_argument("--kill-batches", type=int, default=500, help="batches per client of the kill -9 run")
    parser.add_argument("--no-write", action="store_true", help="print, do not touch docs/BENCHMARKS.md")
    args = parser.parse_args()
    if have_tools():
        print(have_tools(), file=sys.stderr)
        return 2
    rig = Rig(hosts=2, workers=1, durable=True)
    direct = None
    try:
        rig.start()
        env = {k: v for k, v in HOST_ENV.items() if k != "HINDSIGHT_DATABASE_POOLER"}
        direct = ServeProcess(rig.primary.url(), workers=1, env=env, log_dir=rig.root / "direct")
        direct.log_dir.mkdir(exist_ok=True)
        direct.start(timeout=60)
        rows = []
        for n in range(1, args.rounds + 1):
            account = {**rig.account(), "db_url": rig.primary.url()}
            t_ref, ref = timed_load(direct.port, account, args.batches)
            account = {**rig.account(), "db_url": rig.primary.url()}
            before = wal_lsn(rig)
            with LagSampler([h.port for h in rig.hosts]) as lag:
                t_scaled, scaled = timed_load(rig.port, account, args.batches)
            wal = wal_lsn(rig) - before
            rows.append({"round": n, "ref": ref["events"] / t_ref, "scaled": scaled["events"] / t_scaled,
                         "wal_per_event": wal / scaled["events"], "lag": lag.max_lag, "lag_samples": lag.samples})
            print(rows[-1], flush=True)

        # kill -9 of one host a third of the way through a longer load.
        account = rig.account()
        total = CLIENTS * args.kill_batches
        load = TrackerLoad(rig.port, account, clients=CLIENTS, batches=args.kill_batches, events=10,
                           give_up=120).start()
        wait_for(lambda: load.acked >= total // 3, timeout=300, what="a third of the batches")
        killed_at = load.acked
        rig.hosts[0].kill9()
        load.join(timeout=600)
        totals = load.check_stored(rig.primary.url())
        settle(rig.primary.url(), [account["account_id"]], timeout=120)
        counted = check_counted_once(rig.primary.url(), account["account_id"])
        retried = [b for b in load.all_batches() if len(b.attempts) > 1]
        kill = {"batches": total, "killed_at": killed_at, "events": totals["events"],
                "retried": len(retried), "statuses": sorted({a[0] or 0 for b in retried for a in b.attempts}),
                "answered_0": totals["events"] - totals["counted_by_2xx"], "usage": counted["stored"]}
        print(kill, flush=True)
        info = rig.primary.sql("SELECT version(), (SELECT extversion FROM pg_extension WHERE extname = 'timescaledb')")[0]
    finally:
        if direct is not None:
            direct.stop()
        rig.stop()

    median = lambda key: statistics.median(r[key] for r in rows)  # noqa: E731
    ratio = statistics.median(r["scaled"] / r["ref"] for r in rows)
    table = "\n".join(
        f"| {r['round']} | {r['ref']:,.0f} | {r['scaled']:,.0f} | {r['scaled'] / r['ref']:.2f} | "
        f"{r['wal_per_event']:,.0f} | {r['lag']:.3f} s ({r['lag_samples']} samples) |" for r in rows)
    body = f"""## Beyond one machine: two hosts behind HAProxy, PgBouncer, a streaming replica

- Command: `.venv/bin/python bench/scale.py --rounds {args.rounds} --batches {args.batches} --kill-batches {args.kill_batches}`
- Date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC
- Machine: {bench_common.machine()}
- Database: {info[0].split(' on ')[0]}, TimescaleDB {info[1]} (apache edition); a primary with fsync=on and its streaming replica (`pg_basebackup -R`), both on this machine's disk
- Topology (tests/scale_support.py, all on 127.0.0.1): HAProxy (round robin, health check on /health every 0.5 s) → two `hindsight serve --workers 1` hosts → PgBouncer 1.18 (transaction pooling; HINDSIGHT_DATABASE_POOLER=pgbouncer) → the primary; reads that tolerate lag on the replica. Reference, in the same run: one `hindsight serve --workers 1` host connected to the primary directly.
- Load: {CLIENTS} tracker-like clients, {args.batches} batches of {EVENTS} events each per round (every batch re-sent until a 2xx), reference first in each round.
- Everything shares 2 cores: the second host adds no CPU, so the ratio is the cost of the two extra hops (HAProxy, PgBouncer) and of a second process competing for the same cores, not a scale-out figure. On separate machines the API tier scales with hosts until the primary is the limit (docs/SCALING.md).

| round | one host, direct (events/s) | 2 hosts via HAProxy + PgBouncer (events/s) | ratio | primary's WAL per stored event (bytes) | replica's largest lag in /health |
|---|---|---|---|---|---|
{table}

Median ratio **{ratio:.2f}**; WAL **{median('wal_per_event'):,.0f} bytes per event** (median; batches of {EVENTS}: the event rows, their indexes, the session's counters, the stacks' ledger and flushes, full-page images after checkpoints).

kill -9 of one host after {kill['killed_at']:,} of {kill['batches']:,} acknowledged batches (10 events each): every batch acknowledged in the end, {kill['events']:,} events stored once, usage counted {kill['usage']:,} (events + sessions) — exactly once; {kill['retried']} batches retried (statuses seen: {kill['statuses']}), {kill['answered_0']} events in batches committed before their answer was lost (the re-send answered 0).
"""
    print(body)
    if not args.no_write:
        write_section(ROOT / "docs" / "BENCHMARKS.md", "bench/scale.py", body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
