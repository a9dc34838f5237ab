"""The heatmap page and the sessions list's "page URL contains" filter on a large database:
the statements they ran before (raw events) against what they run now (the heatmap
roll-ups of sql/migrations/0033; the page views' trigram index of 0034), alternated in one process,
and each page through the real app in-process (server time, logged in).

It runs against an existing, populated database (it needs millions of events: make one
with bench/stats.py's generator or bench/compression.py --keep, or copy a shared one with
`CREATE DATABASE x TEMPLATE y`) and writes into it: the heatmap roll-ups are refreshed
first (their first refresh reads every click once; its time is reported) and a dashboard
user is added when the bench's is missing.

    .venv/bin/python bench/heatmap_pages.py --url postgresql://postgres@127.0.0.1:55432/mycopy
    .venv/bin/python bench/heatmap_pages.py --url ... --rebuild   # time the roll-ups' first refresh again
    .venv/bin/python bench/heatmap_pages.py --url ... --quick    # 3 runs, does not touch the doc
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from psycopg import sql

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "BENCHMARKS.md"
sys.path.insert(0, str(ROOT / "backend"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as bench_common  # noqa: E402 - bench/ is not a package
from doc_sections import write_section  # noqa: E402

SECTION = "bench/heatmap_pages.py"
TARGET_MS = 200.0

# ---------------------------------------------------------------- the statements before

OLD_MATCH = """
    e.account_id = %(account_id)s AND e."timestamp" >= %(start)s AND e."timestamp" < %(end)s
    AND hindsight_url_path(e.page_url) = %(path)s
    AND (%(host)s::text IS NULL OR e.host = %(host)s)
"""
OLD_CLICKS = sql.SQL("""
SELECT e.viewport_x + coalesce(e.scroll_x, 0) AS x, e.viewport_y + coalesce(e.scroll_y, 0) AS y,
       coalesce(s.viewport_width, 0) AS viewport_width,
       (e.event_type = 'click' AND coalesce(e.event_data->>'rage', 'false') NOT IN ('false', '0')) AS rage,
       e.target_selector AS selector, e.event_data -> 'o' AS "offset"
FROM events e
JOIN sessions s ON s.session_id = e.session_id
WHERE e.event_type = 'click' AND e.viewport_x IS NOT NULL AND e.viewport_y IS NOT NULL
  AND {m}
ORDER BY e."timestamp" DESC
LIMIT 50000
""").format(m=sql.SQL(OLD_MATCH))
OLD_FINGERPRINT = sql.SQL("""
SELECT count(*) AS clicks, min(e."timestamp") AS first_click, max(e."timestamp") AS last_click
FROM events e WHERE e.event_type = 'click' AND {m}
""").format(m=sql.SQL(OLD_MATCH))
OLD_DEPTHS = sql.SQL("""
SELECT e.session_id, max(coalesce(e.scroll_y, 0)) + coalesce(max(s.viewport_height), 0) AS deepest
FROM events e
JOIN sessions s ON s.session_id = e.session_id
WHERE e.event_type IN ('page_view', 'scroll') AND e.target_selector IS NULL
  AND {m}
GROUP BY e.session_id
""").format(m=sql.SQL(OLD_MATCH))
OLD_CONTAINS = """
SELECT session_id FROM sessions
WHERE account_id = %(account_id)s AND started_at >= %(start)s AND session_id IN (
    SELECT p.session_id FROM sessions p WHERE p.account_id = %(account_id)s AND strpos(p.page_url, %(q)s) > 0
    UNION
    SELECT e.session_id FROM events e WHERE e.account_id = %(account_id)s AND e.event_type = 'page_view'
      AND strpos(e.page_url, %(q)s) > 0 AND e."timestamp" >= %(start)s - interval '1 day')
ORDER BY started_at DESC, session_id DESC LIMIT 50
"""


def timed(call, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        out.append((time.perf_counter() - started) * 1000)
    return out


def alternate(calls: dict, runs: int) -> dict[str, list[float]]:
    """Each call once per round, in turn (a slow spell of the machine hits both)."""
    out: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        call()   # warm
    for _ in range(runs):
        for name, call in calls.items():
            out[name] += timed(call, 1)
    return out


def ensure_user(url: str, account_id) -> None:
    import compression as bench_compression
    import psycopg
    from psycopg.rows import dict_row

    from hindsight.logins.users import create_user

    with psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
        row = conn.execute("SELECT account_id FROM dashboard_users WHERE email = %s",
                           (bench_compression.EMAIL,)).fetchone()
        if row is None:
            create_user(conn, bench_compression.EMAIL, bench_compression.PASSWORD, uuid.UUID(str(account_id)))
        elif str(row["account_id"]) != str(account_id):
            conn.execute("UPDATE dashboard_users SET account_id = %s WHERE email = %s",
                         (account_id, bench_compression.EMAIL))


def run(url: str, runs: int, rebuild: bool = False) -> dict:
    import compression as bench_compression
    import psycopg
    from psycopg.rows import dict_row

    from hindsight.lifecycle import rollups
    from hindsight.queries import heatmap_sources, traffic
    from hindsight.queries import sessions as session_queries
    from hindsight.schemas import SessionListQuerySchema

    result: dict = {"runs": runs, "rows": [], "refresh": {}}
    with psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
        account = conn.execute("SELECT account_id, count(*) AS n FROM sessions GROUP BY 1 ORDER BY 2 DESC "
                               "LIMIT 1").fetchone()["account_id"]
        now = datetime.now(UTC)
        result["events"] = conn.execute("SELECT count(*) AS n FROM events").fetchone()["n"]
        result["sessions"] = conn.execute("SELECT count(*) AS n FROM sessions").fetchone()["n"]
        result["edition"] = conn.execute("SELECT CASE WHEN count(*) > 0 THEN 'timescale' ELSE 'apache' END AS e "
                                         "FROM pg_settings WHERE name = 'timescaledb.license' "
                                         "AND setting = 'timescale'").fetchone()["e"]
        if rebuild:   # from nothing: the first refresh an upgraded deployment runs
            for rollup in rollups.HEATMAP_ROLLUPS:
                conn.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(rollup.store)))
                conn.execute("DELETE FROM rollup_watermarks WHERE rollup = %s", (rollup.name,))
        result["first_refresh"] = conn.execute(
            "SELECT count(*) = 0 AS first FROM rollup_watermarks WHERE rollup = ANY(%s)",
            ([r.name for r in rollups.HEATMAP_ROLLUPS],)).fetchone()["first"]
        for rollup in rollups.HEATMAP_ROLLUPS:
            started = time.perf_counter()
            done = rollups.refresh(conn, rollup, now)
            result["refresh"][rollup.name] = {"seconds": time.perf_counter() - started, "rows": done["rows"]}
        for rollup in rollups.HEATMAP_ROLLUPS:   # an hourly run: the last 2 days again
            started = time.perf_counter()
            rollups.refresh(conn, rollup, now)
            result["refresh"][rollup.name]["again_seconds"] = time.perf_counter() - started
        result["store_bytes"] = conn.execute(
            "SELECT sum(hypertable_size(h))::bigint AS b FROM unnest(ARRAY['heatmap_clicks_hourly_store', "
            "'heatmap_depths_hourly_store']::regclass[]) AS h").fetchone()["b"]
        conn.execute("ANALYZE heatmap_clicks_hourly_store")
        conn.execute("ANALYZE heatmap_depths_hourly_store")
        top = traffic.top_pages(conn, account, traffic.hour_range(now - timedelta(days=7), now), 1, None)[0]["path"]
        hours = traffic.hour_range(now - timedelta(days=7), now)
        old = {"account_id": account, "path": top, "host": None, "start": now - timedelta(days=7), "end": now}
        new = heatmap_sources.page_params(account, top, None, hours.start, hours.end)
        q = {"account_id": account, "start": now - timedelta(days=7), "q": "/p7"}
        contains = session_queries.page_statement(account, SessionListQuerySchema().load(
            {"limit": "50", "page_url": "/p7", "from": q["start"].isoformat()}))
        before = [r["session_id"] for r in conn.execute(OLD_CONTAINS, q).fetchall()]
        if [r["session_id"] for r in conn.execute(*contains).fetchall()] != before:
            raise AssertionError("the sessions filter's new statement finds other sessions")
        got_new = sum(r["clicks"] for r in heatmap_sources.heatmap_summary(conn, new))
        got_old = conn.execute(OLD_FINGERPRINT, {**old, "start": hours.start, "end": hours.end}).fetchone()["clicks"]
        if got_new != got_old:
            raise AssertionError(f"the roll-up counts {got_new} clicks of {top}, the raw events {got_old}")
        depths_old = sorted(r["deepest"] for r in conn.execute(OLD_DEPTHS, {**old, "start": hours.start,
                                                                             "end": hours.end}))
        if sorted(heatmap_sources.scroll_depths(conn, new)) != depths_old:
            raise AssertionError("the roll-up's scroll depths differ from the raw events'")
        result.update(page=top, clicks=got_new, depth_sessions=len(depths_old))
        ab = alternate({
            "clicks: raw (before)": lambda: conn.execute(OLD_CLICKS, old).fetchall(),
            "clicks: roll-up (the page's totals)": lambda: heatmap_sources.heatmap_summary(conn, new),
            "cache key: raw count (before)": lambda: conn.execute(OLD_FINGERPRINT, old).fetchall(),
            "scroll depths: raw (before)": lambda: conn.execute(OLD_DEPTHS, old).fetchall(),
            "scroll depths: roll-up": lambda: heatmap_sources.scroll_depths(conn, new),
            "page URL contains /p7, 7 days: before": lambda: conn.execute(OLD_CONTAINS, q).fetchall(),
            "page URL contains /p7, 7 days: now": lambda: conn.execute(*contains).fetchall(),
        }, runs)
        result["statements"] = {k: statistics.median(v) for k, v in ab.items()}
    ensure_user(url, account)
    app = bench_compression.Dashboard(url)
    try:
        pages = alternate({
            f"Heatmap page of {top}, 7 days": app.get("/dashboard/heatmaps", page=top, range="7d"),
            f"Heatmap page of {top}, 30 days": app.get("/dashboard/heatmaps", page=top, range="30d"),
            f"Heatmap picture of {top}, 7 days (cached)": app.get("/dashboard/heatmaps/image.png", page=top,
                                                                   range="7d"),
            "Sessions list, page URL contains /p7, 7 days": app.get("/dashboard/sessions", page_url="/p7",
                                                                     range="7d"),
            "Sessions list, page URL contains /p7, 30 days": app.get("/dashboard/sessions", page_url="/p7",
                                                                      range="30d"),
        }, runs)
        result["pages"] = {k: (statistics.median(v), sorted(v)[min(len(v) - 1, round(0.95 * (len(v) - 1)))])
                           for k, v in pages.items()}
    finally:
        app.close()
    return result


def render(r: dict, command: str) -> str:
    st = r["statements"]
    lines = [
        f"## Heatmaps and the sessions filter at {r['events']:,} events ({r['edition']} edition)",
        "",
        f"Written by `{SECTION}`; run it again rather than editing this section.",
        "",
        f"- Command: `{command}`",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {bench_common.machine()}; load average {_loadavg()} (other work shares its 2 cores)",
        f"- Data: {r['events']:,} events in {r['sessions']:,} sessions; the largest account; its top page of "
        f"the last 7 days, `{r['page']}`: {r['clicks']:,} clicks, {r['depth_sessions']:,} sessions with a "
        "scroll depth (both checked equal to the raw events in this run)",
        "- Heatmap roll-ups (sql/migrations/0033): "
        + ("first refresh (every click and page view once) " if r["first_refresh"] else
           "already materialized by an earlier run; a refresh ")
        + ", ".join(f"{k} {v['seconds']:.1f} s ({v['rows']:,} rows)" for k, v in r["refresh"].items())
        + "; an hourly refresh (the last 2 days again) "
        + ", ".join(f"{v['again_seconds']:.2f} s" for v in r["refresh"].values())
        + f"; stores {r['store_bytes'] / 1e6:.0f} MB",
        "",
        f"Statements, before (raw events) and now, alternated in one process, median of {r['runs']}:",
        "",
        "| statement | ms |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v:.1f} |" for k, v in st.items()]
    raw = st["clicks: raw (before)"] + st["cache key: raw count (before)"] + st["scroll depths: raw (before)"]
    now_ = st["clicks: roll-up (the page's totals)"] + st["scroll depths: roll-up"]
    lines += [
        "",
        f"The heatmap's reads: {raw:.0f} ms before, {now_:.0f} ms now (ratio {now_ / raw:.2f}).",
        "",
        f"Pages through the app in-process (server time), p50 / p95 of {r['runs']}:",
        "",
        "| page | p50 / p95 |",
        "|---|---|",
    ]
    lines += [f"| {k} | **{p50:.1f}** / {p95:.1f} ms |" for k, (p50, p95) in r["pages"].items()]
    worst = max(p95 for p50, p95 in r["pages"].values())
    lines += ["", f"Slowest of these at p95: {worst:.0f} ms (target < {TARGET_MS:.0f} ms: "
              f"{'met' if worst < TARGET_MS else 'NOT met'})."]
    return "\n".join(lines) + "\n"


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="a populated, migrated database (it writes into it)")
    parser.add_argument("--quick", action="store_true", help="3 runs, does not write the doc")
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--rebuild", action="store_true", help="empty the heatmap roll-ups first (a first refresh)")
    parser.add_argument("--section", default="", help="a suffix for the doc section (one per edition)")
    args = parser.parse_args(argv)
    from hindsight.migrate import migrate

    migrate(args.url)
    result = run(args.url, 3 if args.quick else args.runs, args.rebuild)
    given = [a if not a.startswith("postgresql://") else "URL" for a in (argv if argv is not None else sys.argv[1:])]
    command = " ".join([".venv/bin/python bench/heatmap_pages.py", *given])
    text = render(result, command)
    print(text)
    if not args.quick:
        write_section(DOC, SECTION + (f" {args.section}" if args.section else ""), text)
        print(f"wrote {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
