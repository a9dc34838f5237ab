"""Funnels and custom events benchmark: a 4-step funnel over 30 days at 10 million events,
and the custom-event reads (names, a property's values, a rate, a series), from the raw rows.

What it does, all in one run on this machine:

1. starts its own throw-away TimescaleDB cluster and generates bench/stats.py's data (the
   same `generate`: sessions over 90 days, 10 million events by default), then gives the
   sessions visitor ids (about 1.5 sessions per visitor) and the custom events names and
   properties (signup {plan}, widget_impression / widget_click {mapping_id});
2. for the largest account and the last 30 days, times (median of several runs after a
   warm-up) the funnel `/p0` -> `/p1*` -> signup(plan=pro) -> `/p2` within a day, per visitor
   and per session (hindsight.funnels: what GET /api/v1/funnels/{id}/results runs), the
   drop-offs of step 3 (the sessions list with replay links), and the custom-event reads;
3. checks the funnel's counts against the same greedy rule computed in Python from the raw
   rows, and reports each time as a ratio to a reference measured in the same run: one
   scan of the rows the funnel reads (count of the account's page views and custom events
   in the range);
4. writes its section of docs/BENCHMARKS.md.

    .venv/bin/python bench/funnels.py            # 10 M events, a few minutes on 2 cores
    .venv/bin/python bench/funnels.py --quick    # 200 k events, does not touch the doc
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "BENCHMARKS.md"
sys.path.insert(0, str(ROOT / "backend"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as bench_common  # noqa: E402 - bench/ is not a package
import stats as stats_bench  # noqa: E402
from doc_sections import write_section  # noqa: E402

TARGET_SECONDS = 2.0
FUNNEL = {"per": "visitor", "window_seconds": 86400, "steps": [
    {"kind": "page", "path": "/p0"}, {"kind": "page", "path": "/p1*"},
    {"kind": "event", "name": "signup", "filters": {"plan": "pro"}}, {"kind": "page", "path": "/p2"}]}

# Visitor ids: sessions of an account grouped two or three to a visitor (by a hash of the id).
VISITORS = """
UPDATE sessions SET visitor_id = md5(account_id::text || ':' || (abs(hashtext(session_id::text)) %% %(visitors)s))::uuid
WHERE account_id = %(account_id)s
"""
# Custom events get a name and properties: half impressions, a tenth clicks, the rest signups.
CUSTOM = """
UPDATE events SET event_data = CASE
    WHEN seq %% 10 < 5 THEN jsonb_build_object('name', 'widget_impression', 'props',
                                               jsonb_build_object('mapping_id', seq %% 7))
    WHEN seq %% 10 = 5 THEN jsonb_build_object('name', 'widget_click', 'props',
                                               jsonb_build_object('mapping_id', seq %% 7))
    ELSE jsonb_build_object('name', 'signup', 'props',
                            jsonb_build_object('plan', CASE WHEN seq %% 3 = 0 THEN 'pro' ELSE 'free' END))
END
WHERE event_type = 'custom'
"""


@dataclass
class Timing:
    name: str
    ms: list[float] = field(default_factory=list)
    detail: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.ms)


@dataclass
class Result:
    config: stats_bench.Config
    events: int = 0
    account_rows: int = 0
    reference_ms: float = 0.0
    timings: list[Timing] = field(default_factory=list)
    counts: dict[str, list[int]] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)


def timed(fn, runs: int) -> tuple[list[float], object]:
    fn()  # warm-up
    out: list[float] = []
    answer = None
    for _ in range(runs):
        started = time.perf_counter()
        answer = fn()
        out.append((time.perf_counter() - started) * 1000)
    return out, answer


def greedy_in_python(conn, account_id, start, end, per: str) -> list[int]:
    """The funnel's rule (hindsight.queries.funnels) over the raw rows, in Python."""
    window = timedelta(seconds=FUNNEL["window_seconds"])
    unit = "e.session_id" if per == "session" else "coalesce(s.visitor_id, e.session_id)"
    rows = conn.execute(
        f"""SELECT {unit} AS unit, e."timestamp" AS ts,
                  e.event_type = 'page_view' AND hindsight_url_path(e.page_url) = '/p0' AS m1,
                  e.event_type = 'page_view' AND hindsight_url_path(e.page_url) LIKE '/p1%%' AS m2,
                  e.event_type = 'custom' AND e.event_data->>'name' = 'signup'
                      AND e.event_data->'props'->>'plan' = 'pro' AS m3,
                  e.event_type = 'page_view' AND hindsight_url_path(e.page_url) = '/p2' AS m4
           FROM events e JOIN sessions s ON s.session_id = e.session_id
           WHERE e.account_id = %s AND e.event_type IN ('page_view', 'custom')
             AND e."timestamp" >= %s AND e."timestamp" < %s""",  # noqa: S608 - a fixed expression
        (account_id, start, end + window)).fetchall()
    by_unit: dict = {}
    for r in rows:
        by_unit.setdefault(r["unit"], []).append(r)
    counts = [0, 0, 0, 0]
    for events in by_unit.values():
        events.sort(key=lambda r: r["ts"])
        firsts = [r for r in events if r["m1"] and r["ts"] < end]
        if not firsts:
            continue
        t0 = prev = firsts[0]["ts"]
        counts[0] += 1
        for k in (2, 3, 4):
            nxt = next((r for r in events if r[f"m{k}"] and prev <= r["ts"] <= t0 + window), None)
            if nxt is None:
                break
            counts[k - 1] += 1
            prev = nxt["ts"]
    return counts


def prepare(url: str, config: stats_bench.Config, show_progress: bool = True):
    """bench/stats.py's data, with visitor ids and named custom events; (now, accounts)."""
    import psycopg
    from psycopg.rows import dict_row

    with psycopg.connect(url, row_factory=dict_row) as conn:
        now = conn.execute("SELECT now() AS t").fetchone()["t"]
        conn.commit()
        accounts = stats_bench.generate(conn, config, now, show_progress)
        for account in accounts:
            n = conn.execute("SELECT count(*) AS n FROM sessions WHERE account_id = %s",
                             (account["account_id"],)).fetchone()["n"]
            conn.execute(VISITORS, {"account_id": account["account_id"], "visitors": max(1, n * 2 // 3)})
        conn.execute(CUSTOM, {})
        conn.commit()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE events")
        conn.execute("VACUUM ANALYZE sessions")
    return now, accounts


def run_bench(url: str, config: stats_bench.Config, show_progress: bool = True) -> Result:
    import psycopg
    from psycopg.rows import dict_row

    from hindsight import funnels
    from hindsight.queries import custom_events

    result = Result(config)
    now, accounts = prepare(url, config, show_progress)
    biggest = accounts[0]
    account_id = biggest["account_id"]
    end = now
    start = end - timedelta(days=config.range_days)
    with psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
        result.events = conn.execute("SELECT count(*) AS n FROM events").fetchone()["n"]
        for name in ("server_version", "shared_buffers", "work_mem", "max_parallel_workers_per_gather"):
            result.settings[name] = conn.execute(f"SHOW {name}").fetchone()[name]

        def reference():
            return conn.execute(
                'SELECT count(*) AS n FROM events WHERE account_id = %s AND event_type IN (\'page_view\', \'custom\') '
                'AND "timestamp" >= %s AND "timestamp" < %s', (account_id, start, end)).fetchone()["n"]

        ms, rows = timed(reference, config.runs)
        result.reference_ms, result.account_rows = statistics.median(ms), int(rows)  # type: ignore[call-overload]
        segment = {"device_type": None, "browser": None, "referrer": None, "host": None}
        for per in ("visitor", "session"):
            definition = {**FUNNEL, "per": per}

            def funnel(definition=definition):
                with conn.transaction():
                    return funnels.results(conn, account_id, definition, start, end, segment)

            ms, answer = timed(funnel, config.runs)
            got = [s["count"] for s in answer["steps"]]  # type: ignore[index]
            want = greedy_in_python(conn, account_id, start, end, per)
            assert got == want, (per, got, want)
            result.counts[per] = got
            result.timings.append(Timing(f"4-step funnel per {per}", ms, " → ".join(f"{n:,}" for n in got)))
        mobile = {**segment, "device_type": "mobile"}
        def in_transaction(fn):
            def run():
                with conn.transaction():
                    return fn()
            return run

        ms, answer = timed(in_transaction(lambda: funnels.results(conn, account_id, FUNNEL, start, end, mobile)),
                           config.runs)
        result.timings.append(Timing("4-step funnel per visitor, mobile only", ms,
                                     " → ".join(f"{s['count']:,}" for s in answer["steps"])))  # type: ignore[index]
        ms, answer = timed(in_transaction(lambda: funnels.sessions_at(conn, account_id, FUNNEL, start, end, segment,
                                                                      3, "dropped", 50)), config.runs)
        result.timings.append(Timing("drop-offs at step 3 (50 newest, with replay links)", ms,
                                     f"{answer['total']:,} sessions"))  # type: ignore[index]
        reads = {
            "custom events: names": lambda: custom_events.names(conn, account_id, start, end, 50),
            "custom events: a property's values": lambda: custom_events.property_values(
                conn, account_id, "widget_impression", "mapping_id", start, end, 10),
            "custom events: click-through rate per mapping_id": lambda: custom_events.rate(
                conn, account_id, "widget_click", "widget_impression", "mapping_id", start, end, 20),
            "custom events: daily series of signup, plan=pro": lambda: custom_events.series(
                conn, account_id, "signup", start.replace(hour=0, minute=0, second=0, microsecond=0),
                end, timedelta(days=1), "plan", "pro"),
        }
        for name, fn in reads.items():
            ms, _ = timed(in_transaction(fn), config.runs)
            result.timings.append(Timing(name, ms))
    return result


def render(result: Result, command: str) -> str:
    c = result.config
    lines = [
        "## Funnels and custom events (bench/funnels.py)",
        "",
        f"Command: `{command}` — {bench_common.machine()}; PostgreSQL {result.settings.get('server_version')}, "
        f"shared_buffers {result.settings.get('shared_buffers')}, work_mem {result.settings.get('work_mem')}, "
        f"parallel workers per gather {result.settings.get('max_parallel_workers_per_gather')}; "
        "the funnel query sets work_mem to 32MB and jit off for itself.",
        "",
        f"Data: bench/stats.py's generator, {result.events:,} events over {c.days} days, "
        f"{c.accounts} accounts; the largest account's last {c.range_days} days hold "
        f"{result.account_rows:,} page views and custom events (what a funnel reads). Funnel: "
        "`/p0` → `/p1*` → `signup` (plan=pro) → `/p2`, within 1 day of the first step. Its counts "
        "equal the same greedy rule computed in Python from the raw rows (checked in the run).",
        "",
        f"Reference: one scan counting those rows, {result.reference_ms:.0f} ms (median of {c.runs}).",
        "",
        "| query (30 days, raw rows) | median | × reference | answer |",
        "|---|---:|---:|---|",
    ]
    for t in result.timings:
        lines.append(f"| {t.name} | {t.median:,.0f} ms | {t.median / result.reference_ms:.1f} | {t.detail} |")
    worst = max(t.median for t in result.timings if t.name.startswith("4-step"))
    verdict = "under" if worst < TARGET_SECONDS * 1000 else "OVER"
    lines += ["", f"Target: a 4-step funnel over 30 days at 10 M events under {TARGET_SECONDS:.0f} s — "
                  f"slowest variant {worst:,.0f} ms, {verdict} the target."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200k events, does not write the doc")
    parser.add_argument("--events", type=int, help="events to generate (default 10,000,000)")
    parser.add_argument("--output", type=Path, default=None, help="doc to write the section into")
    args = parser.parse_args(argv)
    config = stats_bench.Config.quick() if args.quick else stats_bench.Config(runs=5)
    if args.events:
        config.events = args.events
    output = args.output if args.output else (None if args.quick else DOC)
    result = bench_common.on_read_cluster(run_bench, config)
    given = argv if argv is not None else sys.argv[1:]
    command = " ".join([".venv/bin/python bench/funnels.py", *given])
    section = render(result, command)
    print(section)
    if output:
        write_section(output, "bench/funnels.py", section)
        print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
