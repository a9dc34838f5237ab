"""What observing the pipeline costs ingestion (issue 13): the pool's connection check and
the pipeline traces, as ratios against the same app without them, in one process.

One throw-away durable cluster; three apps built in this process (falcon.testing, each
with its own pool), posting the same kind of batches (50 events, POST /api/v1/track):

- `reference`: HINDSIGHT_POOL_CHECK=false, HINDSIGHT_PIPELINE_TRACES=false
- `pool check`: the check on checkout (one empty query per checkout)
- `check + traces`: also every batch traced (and the traces written by `observe.flush`,
  whose time is counted in that app's time)

Rounds interleave the three (the order rotates each round), so a slow spell of a shared
machine hits all of them; each round's ratio is events/s of the app / events/s of the
reference in that round, and the median round's is reported. bench/ingest.py measures the
whole server against a COPY; this isolates the two costs it cannot separate from noise.

    .venv/bin/python bench/observe.py            # 7 rounds x 60 batches per app
    .venv/bin/python bench/observe.py --quick    # smoke run (writes no doc)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import falcon.testing

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "BENCHMARKS.md"
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as bench_common  # noqa: E402 - bench/ is not a package
from doc_sections import write_section  # noqa: E402

CONFIGS = {"reference": {"pool_check": False, "pipeline_traces": False},
           "pool check": {"pool_check": True, "pipeline_traces": False},
           "check + traces": {"pool_check": True, "pipeline_traces": True}}
EVENTS_PER_BATCH = 50


def build(url: str, overrides: dict):
    from hindsight.app import create_app, prepare_database
    from hindsight.db import create_pool
    from hindsight.scheduler import Scheduler
    from hindsight.settings import Settings

    settings = Settings(database_url=url, rate_limit_per_minute=0, pool_min=2, pool_max=4,
                        log_level="warning", **overrides)
    pool = create_pool(settings)
    prepare_database(pool)
    scheduler = Scheduler()  # not started: the bench runs observe.flush itself
    return falcon.testing.TestClient(create_app(settings, pool, scheduler=scheduler)), scheduler, pool


def site(client, url: str) -> dict:
    from hindsight.db import connect
    from hindsight.queries.tenancy import create_account

    with connect(url) as conn:
        account = create_account(conn, "bench", f"bench-{uuid.uuid4().hex[:8]}.example", None)
    origin = f"https://{account['domain']}"
    jwt = client.simulate_get(f"/site/account/{account['account_id']}/widgets",
                              headers={"Origin": origin}).json["widgets"][0]["token"]
    token = client.simulate_get(f"/site/widget/{account['widget_id']}/account_statistics",
                                headers={"Authorization": f"Bearer {jwt}", "Origin": origin}).json["token"]
    return {"origin": origin, "headers": {"Authorization": f"Bearer {token}", "Origin": origin}}


def one_round(client, scheduler, traced: bool, s: dict, batches: int) -> tuple[float, float]:
    """Post `batches` batches on a fresh session; return events per second and this
    process's CPU time per batch in µs (the app's own work: the database's is elsewhere)."""
    resp = client.simulate_post("/api/v1/sessions", json={"page_url": f"{s['origin']}/"}, headers=s["headers"])
    sid = resp.json["session_id"]
    base = datetime.now(UTC) - timedelta(minutes=5)
    bodies = [{"session_id": sid, "events": [
        {"seq": b * EVENTS_PER_BATCH + i, "event_type": "click" if i % 3 else "page_view",
         "timestamp": (base + timedelta(milliseconds=b * EVENTS_PER_BATCH + i)).isoformat(),
         "page_url": f"{s['origin']}/p{i % 5}"}
        for i in range(EVENTS_PER_BATCH)]} for b in range(batches)]
    started, cpu = time.perf_counter(), time.process_time()
    for body in bodies:
        r = client.simulate_post("/api/v1/track", json=body, headers=s["headers"])
        assert r.status_code == 201, r.text
    if traced:
        scheduler.run_now("observe.flush")  # writing the traces is part of their cost
    return (batches * EVENTS_PER_BATCH / (time.perf_counter() - started),
            (time.process_time() - cpu) / batches * 1e6)


def checkout_cost(url: str, rounds: int = 10, n: int = 500) -> dict[bool, tuple[float, float]]:
    """One pool checkout with and without the check: (CPU µs, wall µs), medians of rounds."""
    from hindsight.db import create_pool
    from hindsight.settings import Settings

    pools = {check: create_pool(Settings(database_url=url, pool_min=1, pool_max=1, pool_check=check))
             for check in (False, True)}
    samples: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for _ in range(rounds):
        for check, pool in pools.items():
            cpu, wall = time.process_time(), time.perf_counter()
            for _ in range(n):
                with pool.connection():
                    pass
            samples[check].append(((time.process_time() - cpu) / n * 1e6, (time.perf_counter() - wall) / n * 1e6))
    for pool in pools.values():
        pool.close()
    return {check: (statistics.median(x[0] for x in v), statistics.median(x[1] for x in v))
            for check, v in samples.items()}


def run(url: str, rounds: int, batches: int, log=print) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    from hindsight.migrate import migrate

    migrate(url)
    apps = {name: build(url, overrides) for name, overrides in CONFIGS.items()}
    sites = {name: site(app[0], url) for name, app in apps.items()}
    for name, (client, scheduler, _) in apps.items():  # warm up: connections, prepared statements
        one_round(client, scheduler, CONFIGS[name]["pipeline_traces"], sites[name], 5)
    rates: dict[str, list[float]] = {name: [] for name in apps}
    cpus: dict[str, list[float]] = {name: [] for name in apps}
    names = list(apps)
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for name in order:
            client, scheduler, _ = apps[name]
            rate, cpu = one_round(client, scheduler, CONFIGS[name]["pipeline_traces"], sites[name], batches)
            rates[name].append(rate)
            cpus[name].append(cpu)
        log(f"round {r + 1}: " + ", ".join(f"{n} {rates[n][-1]:,.0f} ev/s" for n in names))
    for _, _, pool in apps.values():
        pool.close()
    return rates, cpus


def render(rates: dict[str, list[float]], cpus: dict[str, list[float]], checkout: dict[bool, tuple[float, float]],
           command: str, machine: str) -> str:
    ref = rates["reference"]
    lines = ["## Pool check and pipeline traces: their cost on ingestion", "",
             f"Command: `{command}` (bench/observe.py). Machine: {machine}.", "",
             "Three apps in one process, each with its own pool, posting 50-event batches in "
             "interleaved rounds (the order rotates); the ratio is each round's events/s against the "
             "reference's in the same round, the median round's reported. In process and one batch at "
             "a time, so a batch's time is mostly its round trips and its durable commit: this shows "
             "what the check's extra round trip and the trace's bookkeeping add to one batch.", "",
             "The app's CPU per batch (this process's CPU time: parsing, validation, the middleware, "
             "psycopg; PostgreSQL's is not in it) is much less sensitive to other processes than the "
             "wall-clock rate.", "",
             "| app | median events/s | ratio to the reference (median of rounds) | rounds' ratios "
             "| app CPU per batch, median (ratio) |",
             "|---|---|---|---|---|"]
    ref_cpu = statistics.median(cpus["reference"])
    for name, values in rates.items():
        ratios = [v / r for v, r in zip(values, ref, strict=True)]
        lines.append(f"| {name} | {statistics.median(values):,.0f} | {statistics.median(ratios):.3f} | "
                     + ", ".join(f"{x:.2f}" for x in ratios)
                     + f" | {statistics.median(cpus[name]):,.0f} µs ({statistics.median(cpus[name]) / ref_cpu:.3f}) |")
    (cpu0, wall0), (cpu1, wall1) = checkout[False], checkout[True]
    lines += ["", "One pool checkout (500 in a row, median of 10 rounds), the check's own cost:", "",
              "| checkout | this process's CPU | wall clock |", "|---|---|---|",
              f"| without the check | {cpu0:,.0f} µs | {wall0:,.0f} µs |",
              f"| with the check (an empty query) | {cpu1:,.0f} µs | {wall1:,.0f} µs |",
              "", f"A batch takes one checkout: the check adds {cpu1 - cpu0:,.0f} µs of the worker's CPU to a "
              f"batch that costs the app {ref_cpu:,.0f} µs here ({(cpu1 - cpu0) / ref_cpu:.1%}), plus one "
              "round trip of latency."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: 2 rounds of 10 batches, no doc")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batches", type=int, default=60, help="batches per app per round")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    rounds, batches = (2, 10) if args.quick else (args.rounds, args.batches)
    output = args.output if args.output else (None if args.quick else DOC)
    cluster = bench_common.start_cluster(durable=True)
    try:
        rates, cpus = run(cluster.url(), rounds, batches)
        checkout = checkout_cost(cluster.url())
    finally:
        cluster.stop()
    command = ".venv/bin/python bench/observe.py" + (" " + " ".join(argv if argv is not None
                                                                    else sys.argv[1:])).rstrip()
    text = render(rates, cpus, checkout, command.strip(), bench_common.machine(python=True))
    print(text)
    if output:
        write_section(output, "bench/observe.py", text)
        print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
