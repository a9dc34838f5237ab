"""Dashboard statistics benchmark: 30-day queries from the roll-ups against the same
answers computed from the raw events, at 10 million events.

What it does, all in one run on this machine:

1. starts its own throw-away TimescaleDB cluster (fsync off: this measures reads; the
   generation time is reported but is not the point), migrates it;
2. generates the data server-side (INSERT ... SELECT over generate_series, one day per
   statement, with a progress bar): a few accounts, sessions spread over 90 days with
   their referrers, devices, browsers and OS, and events (types, pages on a skewed
   popularity curve) — 10 million by default;
3. refreshes the roll-ups with the scheduler's own code (the first, full refresh, then
   a steady-state one) and times both;
4. for the largest account and the last 30 days, runs every dashboard query twice — from
   the roll-ups (hindsight.queries.traffic, what GET /api/v1/stats/... runs) and from the
   raw rows (events, sessions) — checks that both give the same answer, and times them
   (median of several runs after a warm-up); also times the HTTP endpoints in-process;
5. times the dashboard's overview for each of its ranges (the page in-process, logged in),
   and its slowest network endpoints from the network roll-ups against the same answer
   computed from the raw network events (percentiles checked within their 5 % bound);
6. writes its section of docs/BENCHMARKS.md (the ingestion benchmark writes another).

    .venv/bin/python bench/stats.py              # 10 M events, a few minutes on 2 cores
    .venv/bin/python bench/stats.py --quick      # 200 k events, does not touch the doc

tests/test_stats_bench.py runs `run_bench` on a small data set against the test cluster.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "BENCHMARKS.md"
BEGIN, END = "<!-- bench/stats.py: begin -->", "<!-- bench/stats.py: end -->"
sys.path.insert(0, str(ROOT / "backend"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as bench_common  # noqa: E402 - bench/ is not a package
from doc_sections import write_section as write_doc_section  # noqa: E402


@dataclass
class Config:
    events: int = 10_000_000
    days: int = 90
    accounts: int = 4
    paths: int = 300               # distinct pages per account
    events_per_session: int = 25   # on average (5 to 45)
    runs: int = 7                  # timed runs per query (after one warm-up)
    range_days: int = 30           # the dashboard's range

    @classmethod
    def quick(cls) -> Config:
        return cls(events=200_000, runs=3)


@dataclass
class Timing:
    name: str
    rollup_ms: list[float] = field(default_factory=list)
    raw_ms: list[float] = field(default_factory=list)
    api_ms: list[float] = field(default_factory=list)
    behind_ms: list[float] = field(default_factory=list)  # daily roll-ups a day behind
    rows: int = 0

    @property
    def rollup(self) -> float:
        return statistics.median(self.rollup_ms)

    @property
    def raw(self) -> float:
        return statistics.median(self.raw_ms)

    @property
    def api(self) -> float:
        return statistics.median(self.api_ms) if self.api_ms else float("nan")

    @property
    def behind(self) -> float:
        return statistics.median(self.behind_ms) if self.behind_ms else float("nan")

    @property
    def ratio(self) -> float:
        return self.raw / self.rollup


@dataclass
class Result:
    config: Config
    events: int = 0
    sessions: int = 0
    account_events: int = 0        # the measured account's events in the 30-day range
    generate_seconds: float = 0.0
    first_refresh_seconds: float = 0.0
    steady_refresh_seconds: float = 0.0
    timings: list[Timing] = field(default_factory=list)
    overview: list[dict] = field(default_factory=list)   # per range: page, endpoints roll-up / raw
    sizes: dict[str, str] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    loadavg: str = ""              # /proc/loadavg when the queries were timed
    visitors: list[dict] = field(default_factory=list)   # measure_visitors


# --------------------------------------------------------------------------- data

SESSIONS = """
INSERT INTO sessions (session_id, account_id, host, started_at, last_activity_at, created_at,
                      page_url, referrer, device_type, browser, os, event_count, visitor_id)
SELECT gen_random_uuid(), %(account_id)s, %(host)s, t.started_at,
       t.started_at + make_interval(secs => t.n * (5 + 25 * random())), t.started_at,
       'https://' || %(host)s || '/', r.referrer, c.device_type, c.browser, c.os, t.n,
       md5(%(host)s || t.v)::uuid
FROM (SELECT %(day)s::timestamptz + random() * INTERVAL '1 day' AS started_at,
             5 + floor(random() * (2 * %(per_session)s - 9))::int AS n,
             floor(random() * 10)::int AS r, floor(random() * 8)::int AS c,
             -- Visitors: a pool of a third as many as the account's sessions, some far more
             -- active than others, so many come back (unique visitors < sessions).
             floor(power(random(), 2) * %(visitors)s)::int AS v
      FROM generate_series(1, %(count)s)) AS t
JOIN (VALUES (0, NULL), (1, NULL), (2, NULL), (3, 'https://www.google.com/search?q=x'),
             (4, 'https://www.google.com/'), (5, 'https://news.ycombinator.com/item?id=1'),
             (6, 'https://t.co/x'), (7, 'https://www.reddit.com/r/webdev/'),
             (8, 'https://duckduckgo.com/'), (9, 'https://' || %(host)s || '/pricing'))
     AS r (i, referrer) ON r.i = t.r
JOIN (VALUES (0, 'desktop', 'Chrome', 'Windows'), (1, 'desktop', 'Chrome', 'Mac OS X'),
             (2, 'desktop', 'Firefox', 'Linux'), (3, 'mobile', 'Mobile Safari', 'iOS'),
             (4, 'mobile', 'Chrome Mobile', 'Android'), (5, 'tablet', 'Mobile Safari', 'iOS'),
             (6, 'desktop', 'Edge', 'Windows'), (7, 'bot', 'Googlebot', NULL))
     AS c (i, device_type, browser, os) ON c.i = t.c
"""

# A session's events: the first is session_start, the others by a fixed mix of types,
# on pages with a skewed popularity (page k is about k^-2/3 as popular as page 0).
# Network events time one of 40 endpoints per site (log-normal durations around each
# endpoint's own median; 5 % fail).
EVENTS = """
INSERT INTO events (session_id, seq, "timestamp", account_id, host, event_type, page_url,
                    target_selector, viewport_x, viewport_y, event_data)
SELECT s.session_id, i, s.started_at + (s.last_activity_at - s.started_at) * (i::float8 / s.event_count),
       s.account_id, s.host, e.event_type,
       'https://' || s.host || '/p' || floor(power(random(), 3) * %(paths)s)::int
           || CASE WHEN random() < 0.1 THEN '?utm_source=x' ELSE '' END,
       CASE WHEN e.event_type = 'click' THEN 'button.cta' END,
       floor(random() * 1280)::int, floor(random() * 800)::int,
       CASE WHEN e.event_type = 'network' THEN jsonb_build_object(
           'kind', 'fetch', 'method', CASE WHEN d.endpoint %% 4 = 0 THEN 'POST' ELSE 'GET' END,
           'url', 'https://' || s.host || '/api/r' || d.endpoint,
           'status', CASE WHEN random() < 0.05 THEN 500 ELSE 200 END,
           'duration_ms', round(exp(3.4 + (d.endpoint %% 7) * 0.35
                                    + 0.7 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()))))
       END
FROM sessions s
CROSS JOIN LATERAL generate_series(0, s.event_count - 1) AS i
CROSS JOIN LATERAL (SELECT random() + 0 * i AS r, floor(power(random() + 0 * i, 2) * 40)::int AS endpoint) AS d
CROSS JOIN LATERAL (SELECT CASE
        WHEN i = 0 THEN 'session_start' WHEN d.r < 0.30 THEN 'mouse_move'
        WHEN d.r < 0.45 THEN 'scroll' WHEN d.r < 0.60 THEN 'click' WHEN d.r < 0.72 THEN 'page_view'
        WHEN d.r < 0.80 THEN 'input' WHEN d.r < 0.88 THEN 'keypress' WHEN d.r < 0.92 THEN 'visibility'
        WHEN d.r < 0.97 THEN 'network' WHEN d.r < 0.98 THEN 'error' ELSE 'custom' END AS event_type) AS e
WHERE s.account_id = ANY(%(accounts)s) AND s.started_at >= %(day)s
  AND s.started_at < %(day)s::timestamptz + INTERVAL '1 day'
"""


# What the ingestion counts per session as it stores a batch (bounces read it).
PAGE_VIEW_COUNTS = """
UPDATE sessions s SET page_view_count = c.n
FROM (SELECT session_id, count(*) AS n FROM events
      WHERE event_type = 'page_view' AND "timestamp" >= %(day)s
        AND "timestamp" < %(day)s::timestamptz + INTERVAL '2 days'
      GROUP BY session_id) AS c
WHERE s.session_id = c.session_id AND s.started_at >= %(day)s
  AND s.started_at < %(day)s::timestamptz + INTERVAL '1 day'
"""


def progress(done: int, total: int, started: float, label: str) -> None:
    width = 30
    filled = int(width * done / total) if total else width
    elapsed = time.monotonic() - started
    rate = done / elapsed if elapsed > 0 else 0
    eta = (total - done) / rate if rate else 0
    sys.stderr.write(f"\r  [{'#' * filled}{'.' * (width - filled)}] {100 * done / total:5.1f}%  "
                     f"{done:,}/{total:,} {label}  {elapsed:5.0f} s (eta {eta:4.0f} s) ")
    sys.stderr.flush()
    if done >= total:
        sys.stderr.write("\n")


def generate(conn, config: Config, now: datetime, show_progress: bool = True) -> list[dict]:
    """Accounts, sessions and events over `config.days` days before `now`; return the accounts."""
    from hindsight.queries.tenancy import create_account

    weights = [2 ** -(i) for i in range(config.accounts)]
    weights = [w / sum(weights) for w in weights]
    accounts = []
    for i, weight in enumerate(weights):
        account = create_account(conn, f"Bench {i}", f"bench{i}.example", None)
        accounts.append({**account, "weight": weight})
    sessions_total = config.events // config.events_per_session
    first_day = (now - timedelta(days=config.days)).replace(hour=0, minute=0, second=0, microsecond=0)
    days = [first_day + timedelta(days=d) for d in range(config.days + 1)]
    started, done = time.monotonic(), 0
    ids = [a["account_id"] for a in accounts]
    for day in days:
        for account in accounts:
            count = max(1, round(sessions_total * account["weight"] / len(days)))
            conn.execute(SESSIONS, {"account_id": account["account_id"], "host": account["domain"],
                                    "day": day, "count": count, "per_session": config.events_per_session,
                                    "visitors": max(1, round(count * len(days) / 3))})
        # Nothing in the future: the last day stops at `now`.
        conn.execute("DELETE FROM sessions WHERE started_at > %s", (now - timedelta(minutes=1),))
        conn.execute("UPDATE sessions SET last_activity_at = least(last_activity_at, %s) "
                     "WHERE started_at >= %s AND last_activity_at > %s", (now, day, now))
        done += conn.execute(EVENTS, {"accounts": ids, "day": day, "paths": config.paths}).rowcount
        conn.execute(PAGE_VIEW_COUNTS, {"day": day})
        conn.commit()
        if show_progress:
            progress(min(done, config.events), config.events, started, "events")
    if show_progress and done < config.events:
        progress(config.events, config.events, started, "events")
    conn.execute("ANALYZE")
    conn.commit()
    return accounts


# --------------------------------------------------------------------------- queries

RAW_SERIES = """
SELECT time_bucket(%(width)s, "timestamp") AS bucket, count(*) AS events,
       count(*) FILTER (WHERE event_type = 'session_start') AS sessions,
       count(*) FILTER (WHERE event_type = 'page_view') AS page_views,
       count(*) FILTER (WHERE event_type = 'click') AS clicks,
       count(*) FILTER (WHERE event_type = 'error') AS errors
FROM events WHERE account_id = %(account_id)s AND "timestamp" >= %(start)s AND "timestamp" < %(end)s
GROUP BY 1 ORDER BY 1
"""
RAW_EVENT_TYPES = """
SELECT event_type, count(*) AS events FROM events
WHERE account_id = %(account_id)s AND "timestamp" >= %(start)s AND "timestamp" < %(end)s
GROUP BY event_type ORDER BY events DESC, event_type
"""
RAW_PAGES = """
SELECT host, hindsight_url_path(page_url) AS path,
       count(*) FILTER (WHERE event_type = 'page_view') AS page_views,
       count(*) FILTER (WHERE event_type = 'click') AS clicks,
       count(*) FILTER (WHERE event_type = 'error') AS errors
FROM events
WHERE account_id = %(account_id)s AND "timestamp" >= %(start)s AND "timestamp" < %(end)s
  AND page_url IS NOT NULL AND event_type IN ('page_view', 'click', 'error')
GROUP BY 1, 2 ORDER BY page_views DESC, clicks DESC, host, path LIMIT %(limit)s
"""
RAW_BREAKDOWN = """
SELECT nullif(coalesce({expr}, ''), '') AS value, count(*) AS sessions, sum(count(*)) OVER () AS total
FROM sessions
WHERE account_id = %(account_id)s AND started_at >= %(start)s AND started_at < %(end)s
GROUP BY 1 ORDER BY sessions DESC, value LIMIT %(limit)s
"""
BREAKDOWN_EXPR = {"referrer": "hindsight_referrer_host(referrer, host)", "device_type": "device_type",
                  "browser": "browser", "os": "os"}


def _timed(fn, runs: int) -> tuple[list[float], object]:
    fn()  # warm-up
    times, answer = [], None
    for _ in range(runs):
        started = time.perf_counter()
        answer = fn()
        times.append((time.perf_counter() - started) * 1000)
    return times, answer


def _zero_filled(rows: list[dict], rng, width: timedelta) -> list[tuple]:
    by_bucket = {r["bucket"]: r for r in rows}
    out, t = [], rng.start
    while t < rng.end:
        r = by_bucket.get(t, {})
        out.append((t, *(int(r.get(k, 0)) for k in ("events", "sessions", "page_views", "clicks", "errors"))))
        t += width
    return out


def measure(url: str, account: dict, now: datetime, config: Config,
            expected: dict | None = None) -> tuple[list[Timing], dict]:
    """Each dashboard query from the roll-ups and from the raw rows: same answer, timed.

    With `expected` (the answers of an earlier pass), the raw queries are not run again:
    the roll-up answers are checked against those."""
    import falcon.testing
    import psycopg
    from psycopg.rows import dict_row

    from hindsight.app import create_app, prepare_database
    from hindsight.db import create_pool
    from hindsight.queries import traffic as stats
    from hindsight.queries.tenancy import create_api_key
    from hindsight.settings import Settings

    account_id = account["account_id"]
    start = now - timedelta(days=config.range_days)
    hours, days = stats.hour_range(start, now), stats.day_range(start, now)
    timings: list[Timing] = []
    with psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
        key = create_api_key(conn, str(account_id))

        def in_transaction(fn):
            # Like the API: one transaction per request (the queries SET LOCAL in it).
            def call():
                with conn.transaction():
                    return fn()
            return call

        settings = Settings(database_url=url, pool_max=2, rate_limit_per_minute=0, lifecycle_jobs=False)
        pool = create_pool(settings)
        prepare_database(pool)
        client = falcon.testing.TestClient(create_app(settings, pool))
        api_params = {"from": start.isoformat(), "to": now.isoformat()}

        def api(path: str, **params):
            def call():
                resp = client.simulate_get(path, params={**api_params, **params},
                                           headers={"Authorization": f"Bearer {key}"})
                assert resp.status_code == 200, resp.json
                return resp.json
            return call

        answers: dict = {}

        def run(name, rollup, raw, compare, api_call):
            timing = Timing(name)
            timing.rollup_ms, got = _timed(in_transaction(rollup), config.runs)
            got_c = compare(got)
            if expected is None:
                timing.raw_ms, want = _timed(in_transaction(raw), config.runs)
                want_c = compare(want)
            else:
                want_c = expected[name]
            answers[name] = want_c
            if got_c != want_c:
                raise AssertionError(f"{name}: roll-up answer differs from the raw answer:\n"
                                     f"{got_c[:5]}\n{want_c[:5]}")
            timing.api_ms, _ = _timed(api_call, config.runs)
            timing.rows = len(got_c)
            timings.append(timing)

        for interval, rng, width in (("day", days, timedelta(days=1)), ("hour", hours, timedelta(hours=1))):
            run(f"series by {interval} ({len(_zero_filled([], rng, width))} points)",
                lambda i=interval, r=rng: stats.series(conn, account_id, r, i),
                lambda r=rng, w=width: conn.execute(RAW_SERIES, {"width": w, "account_id": account_id,
                                                                 "start": r.start, "end": r.end}).fetchall(),
                lambda rows, r=rng, w=width: (_zero_filled(rows, r, w) if rows and "bucket" in rows[0]
                                              else rows),
                api("/api/v1/stats/series", interval=interval))
        params = {"account_id": account_id, "start": hours.start, "end": hours.end}
        run("event types",
            lambda: stats.event_types(conn, account_id, hours),
            lambda: conn.execute(RAW_EVENT_TYPES, params).fetchall(),
            lambda rows: [(r["event_type"], int(r["events"])) for r in rows],
            api("/api/v1/stats/event-types"))
        run("top 10 pages",
            lambda: stats.top_pages(conn, account_id, hours, 10),
            lambda: conn.execute(RAW_PAGES, {**params, "limit": 10}).fetchall(),
            lambda rows: [(r["host"], r["path"], int(r["page_views"]), int(r["clicks"]), int(r["errors"]))
                          for r in rows],
            api("/api/v1/stats/pages", limit=10))
        for dimension, path in (("referrer", "referrers"), ("device_type", "devices"),
                                ("browser", "browsers"), ("os", "os")):
            raw_sql = RAW_BREAKDOWN.format(expr=BREAKDOWN_EXPR[dimension])
            run(f"{path} (top 10)",
                lambda d=dimension: stats.breakdown(conn, account_id, d, days, 10),
                lambda q=raw_sql: conn.execute(q, {"account_id": account_id, "start": days.start,
                                                   "end": days.end, "limit": 10}).fetchall(),
                lambda res: ([(r["value"], int(r["sessions"])) for r in res["data"]] + [int(res["total"])]
                             if isinstance(res, dict) else
                             [(r["value"], int(r["sessions"])) for r in res] + [int(res[0]["total"]) if res else 0]),
                api(f"/api/v1/stats/{path}", limit=10))
        pool.close()
    return timings, answers


# --------------------------------------------------------------------------- visitors
# Unique visitors and the visit numbers (sql/migrations/0023, hindsight.queries.visitors)
# against the same numbers from the raw rows. Counts and sums must be equal; unique visitors
# come from HyperLogLog sketches and are reported with their error against COUNT(DISTINCT).

RAW_VISITS = """
SELECT count(DISTINCT visitor_id) AS visitors, count(*) AS sessions,
       count(*) FILTER (WHERE page_view_count <= 1) AS bounces,
       sum(extract(epoch FROM greatest(last_activity_at - started_at, INTERVAL '0'))) AS duration_s,
       sum(page_view_count) AS page_views
FROM sessions WHERE account_id = %(account_id)s AND started_at >= %(start)s AND started_at < %(end)s
"""
RAW_VISITORS_BY_DAY = """
SELECT time_bucket(INTERVAL '1 day', started_at) AS bucket, count(DISTINCT visitor_id) AS visitors
FROM sessions WHERE account_id = %(account_id)s AND started_at >= %(start)s AND started_at < %(end)s
GROUP BY 1 ORDER BY 1
"""
RAW_VISITORS_BY_BROWSER = """
SELECT coalesce(browser, '') AS value, count(DISTINCT visitor_id) AS visitors
FROM sessions WHERE account_id = %(account_id)s AND started_at >= %(start)s AND started_at < %(end)s
GROUP BY 1
"""
# The overview's four breakdowns with their visitors (visitors.breakdowns, one statement).
RAW_BREAKDOWNS = """
SELECT d.dimension, nullif(d.value, '') AS value, count(*) AS sessions, count(DISTINCT s.visitor_id) AS visitors,
       sum(count(*)) OVER (PARTITION BY d.dimension) AS total
FROM sessions s
CROSS JOIN LATERAL (VALUES ('referrer', coalesce(hindsight_referrer_host(s.referrer, s.host), '')),
                           ('device_type', coalesce(s.device_type, '')), ('browser', coalesce(s.browser, '')),
                           ('os', coalesce(s.os, ''))) AS d (dimension, value)
WHERE s.account_id = %(account_id)s AND s.started_at >= %(start)s AND s.started_at < %(end)s
GROUP BY 1, 2
"""
# Time on page: the gap to the session's next page view (its last activity after its last
# one), at most 30 minutes; an exit: a page view with no next one.
RAW_PAGE_VISITS = """
WITH pv AS (
    SELECT session_id, "timestamp" AS t, host, hindsight_url_path(page_url) AS path,
           lead("timestamp") OVER (PARTITION BY session_id ORDER BY "timestamp", seq) AS next_t
    FROM events
    WHERE account_id = %(account_id)s AND event_type = 'page_view' AND page_url IS NOT NULL
      AND "timestamp" >= %(start)s AND "timestamp" < %(end)s::timestamptz + INTERVAL '1 day'
), entries AS (
    SELECT host, hindsight_url_path(page_url) AS path, count(*) AS entries,
           count(*) FILTER (WHERE page_view_count <= 1) AS bounces
    FROM sessions WHERE account_id = %(account_id)s AND started_at >= %(start)s AND started_at < %(end)s
    GROUP BY 1, 2
), views AS (
    SELECT pv.host, pv.path, count(*) AS page_views, count(DISTINCT s.visitor_id) AS visitors,
           count(*) FILTER (WHERE pv.next_t IS NULL) AS exits,
           sum(extract(epoch FROM least(greatest(coalesce(pv.next_t, s.last_activity_at, pv.t) - pv.t,
                                                 INTERVAL '0'), INTERVAL '30 minutes'))) AS time_on_page_s
    FROM pv JOIN sessions s USING (session_id)
    WHERE pv.t < %(end)s
    GROUP BY 1, 2
)
SELECT coalesce(v.host, e.host) AS host, coalesce(v.path, e.path) AS path, coalesce(v.page_views, 0) AS page_views,
       coalesce(v.visitors, 0) AS visitors, coalesce(v.exits, 0) AS exits,
       coalesce(v.time_on_page_s, 0) AS time_on_page_s, coalesce(e.entries, 0) AS entries,
       coalesce(e.bounces, 0) AS bounces
FROM views v FULL JOIN entries e ON e.host = v.host AND e.path = v.path
ORDER BY page_views DESC, exits DESC, host, path
LIMIT %(limit)s
"""


def _error(estimate: float, exact: float) -> float:
    return abs(estimate - exact) / exact if exact else float(estimate != 0)


def measure_visitors(url: str, account: dict, now: datetime, config: Config) -> list[dict]:
    """The visitor queries from the roll-ups and from the raw rows: counts and sums equal,
    unique visitors within their error (reported), both timed."""
    import psycopg
    from psycopg.rows import dict_row

    from hindsight.queries import traffic
    from hindsight.queries import visitors as visitor_stats

    account_id = account["account_id"]
    start = now - timedelta(days=config.range_days)
    hours, days = traffic.hour_range(start, now), traffic.day_range(start, now)
    out: list[dict] = []
    with psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:

        def in_transaction(fn):
            def call():
                with conn.transaction():
                    return fn()
            return call

        def run(name, rollup, raw, check) -> None:
            rollup_ms, got = _timed(in_transaction(rollup), config.runs)
            raw_ms, want = _timed(in_transaction(raw), max(1, config.runs // 3))
            errors, exact = check(got, want)
            out.append({"name": name, "rollup_ms": statistics.median(rollup_ms),
                        "raw_ms": statistics.median(raw_ms), "max_error": max(errors, default=0.0),
                        "exact": exact})

        params = {"account_id": account_id, "start": hours.start, "end": hours.end}

        def check_summary(got, want):
            want = want[0]
            assert (got["sessions"], got["bounces"]) == (want["sessions"], want["bounces"]), (got, want)
            assert got["avg_session_duration_s"] == round(float(want["duration_s"]) / want["sessions"], 1)
            assert got["pages_per_session"] == round(float(want["page_views"]) / want["sessions"], 4)
            return [_error(got["visitors"], want["visitors"])], int(want["visitors"])

        run("visitors, sessions, bounce rate, duration, pages/session",
            lambda: visitor_stats.summary(conn, account_id, hours),
            lambda: conn.execute(RAW_VISITS, params).fetchall(), check_summary)

        def check_days(got, want):
            by_day = {r["bucket"]: r["visitors"] for r in want}
            got_days = {r["bucket"]: r["visitors"] for r in got if r["visitors"] or r["bucket"] in by_day}
            assert set(got_days) == set(by_day), (len(got_days), len(by_day))
            return [_error(got_days[d], by_day[d]) for d in by_day], sum(by_day.values())

        run(f"visitors by day ({(days.end - days.start).days} points)",
            lambda: visitor_stats.series(conn, account_id, days, "day"),
            lambda: conn.execute(RAW_VISITORS_BY_DAY, {**params, "start": days.start, "end": days.end}).fetchall(),
            check_days)

        def check_browsers(got, want):
            exact = {(r["value"] or None): r["visitors"] for r in want}
            assert set(got) == set(exact)
            return [_error(got[v], exact[v]) for v in exact], sum(exact.values())

        browsers = [r["value"] or None for r in conn.execute(RAW_VISITORS_BY_BROWSER, {
            **params, "start": days.start, "end": days.end}).fetchall()]
        run("visitors by browser",
            lambda: visitor_stats.breakdown_visitors(conn, account_id, "browser", days, browsers),
            lambda: conn.execute(RAW_VISITORS_BY_BROWSER, {**params, "start": days.start,
                                                           "end": days.end}).fetchall(),
            check_browsers)

        def check_breakdowns(got, want):
            errors, exact = [], 0
            for dim, result in got.items():
                rows = sorted((r for r in want if r["dimension"] == dim),
                              key=lambda r: (-r["sessions"], r["value"] is None, r["value"] or ""))[:8]
                assert result["total"] == (rows[0]["total"] if rows else 0), dim
                assert [(r["value"], r["sessions"]) for r in result["data"]] == [
                    (r["value"], r["sessions"]) for r in rows], dim
                errors += [_error(g["visitors"], w["visitors"]) for g, w in zip(result["data"], rows, strict=True)]
                exact += sum(r["visitors"] for r in rows)
            return errors, exact

        run("sessions and visitors by referrer, device, browser and OS (the overview's four, one statement)",
            lambda: visitor_stats.breakdowns(conn, account_id, traffic.DIMENSIONS, days, 8),
            lambda: conn.execute(RAW_BREAKDOWNS, {**params, "start": days.start, "end": days.end}).fetchall(),
            check_breakdowns)

        def check_pages(got, want):
            assert [(r["host"], r["path"]) for r in got] == [(r["host"], r["path"]) for r in want]
            errors = []
            for g, w in zip(got, want, strict=True):
                assert (g["page_views"], g["exits"], g["entries"], g["bounces"]) == (
                    w["page_views"], w["exits"], w["entries"], w["bounces"]), (g, w)
                assert abs(g["avg_time_on_page_s"] - float(w["time_on_page_s"]) / w["page_views"]) <= 0.05
                errors.append(_error(g["visitors"], w["visitors"]))
            return errors, sum(w["visitors"] for w in want)

        run("top 10 pages: visitors, time on page, entries, bounces, exits",
            lambda: visitor_stats.pages(conn, account_id, hours, 10),
            lambda: conn.execute(RAW_PAGE_VISITS, {**params, "limit": 10}).fetchall(), check_pages)
        top10 = sorted({r["path"] for r in conn.execute(RAW_PAGE_VISITS, {**params, "limit": 10}).fetchall()})
        run("the same for given paths (the overview's top pages, visitors merged in one statement)",
            lambda: visitor_stats.pages(conn, account_id, hours, 10, paths=top10),
            lambda: conn.execute(RAW_PAGE_VISITS, {**params, "limit": 10}).fetchall(), check_pages)
    return out


# --------------------------------------------------------------------------- run


def run_bench(url: str, config: Config, show_progress: bool = True) -> Result:
    """Generate, refresh, measure against the database at `url` (migrated, empty)."""
    import psycopg
    from psycopg.rows import dict_row

    from hindsight.lifecycle import rollups

    result = Result(config)
    with psycopg.connect(url, row_factory=dict_row) as conn:
        now = conn.execute("SELECT now() AS t").fetchone()["t"]
        conn.commit()
        started = time.monotonic()
        accounts = generate(conn, config, now, show_progress)
        result.generate_seconds = time.monotonic() - started
    with psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
        started = time.monotonic()
        rollups.refresh_all(conn, now, "apache")
        result.first_refresh_seconds = time.monotonic() - started
        started = time.monotonic()
        rollups.refresh_all(conn, now + timedelta(minutes=5), "apache")
        result.steady_refresh_seconds = time.monotonic() - started
        conn.execute("ANALYZE")
        result.events = conn.execute("SELECT count(*) AS n FROM events").fetchone()["n"]
        result.sessions = conn.execute("SELECT count(*) AS n FROM sessions").fetchone()["n"]
        biggest = accounts[0]
        result.account_events = conn.execute(
            'SELECT count(*) AS n FROM events WHERE account_id = %s AND "timestamp" >= %s',
            (biggest["account_id"], now - timedelta(days=config.range_days))).fetchone()["n"]
        for name in ("events", "sessions", "events_hourly_store", "events_daily_store", "pages_hourly_store",
                     "pages_daily_store", "pages_weekly_store", "network_hourly_store", "network_daily_store", "network_weekly_store", "network_4weekly_store",
                     "sessions_daily_store", "visits_hourly_store", "visits_daily_store",
                     "page_visits_hourly_store", "page_visits_daily_store"):
            result.sizes[name] = conn.execute(
                "SELECT pg_size_pretty(coalesce(hypertable_size(to_regclass(%(t)s)), "
                "pg_total_relation_size(to_regclass(%(t)s)))) AS s", {"t": name}).fetchone()["s"]
        for name in ("server_version", "timescaledb.license", "shared_buffers", "work_mem", "fsync"):
            result.settings[name] = conn.execute(f"SHOW {name}").fetchone()[name]
        result.settings["timescaledb"] = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone()["extversion"]
    result.loadavg = _loadavg()
    result.visitors = measure_visitors(url, biggest, now, config)
    result.timings, answers = measure(url, biggest, now, config)
    # The daily roll-ups leave today to query time: just before midnight that is a whole
    # day. Measure that worst case too, with their watermarks a day further back.
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("UPDATE rollup_watermarks SET materialized_until = materialized_until - INTERVAL '1 day' "
                     "WHERE rollup IN ('events_daily', 'pages_daily', 'sessions_daily')")
    behind, _ = measure(url, biggest, now, config, expected=answers)
    for timing, late in zip(result.timings, behind, strict=True):
        timing.behind_ms = late.rollup_ms
    result.overview = measure_overview(url, biggest, config)
    # As deployed: raw events past the default retention (30 days) are gone, the roll-ups
    # keep the 90 days. The overview again, pages only (the raw answers are gone too).
    from hindsight.lifecycle import retention
    with psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
        retention.run(conn, now, events_retention_days=30, rollup_retention_days=730, schema_edition="apache")
        conn.execute("VACUUM ANALYZE events")
    for row, retained in zip(result.overview, measure_overview(url, biggest, config, compare=False), strict=True):
        row["page_retained_ms"] = retained["page_ms"]
    return result


# The slowest endpoints' answer computed from the raw network events: exact nearest-rank
# percentiles (what the roll-up's estimates are checked against).
RAW_ENDPOINTS = """
SELECT coalesce(left(e.event_data->>'method', 16), '') AS method, coalesce(left(e.event_data->>'url', 500), '') AS url,
       count(*) AS requests,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY (e.event_data->>'duration_ms')::float8) AS p50_ms,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY (e.event_data->>'duration_ms')::float8) AS p95_ms,
       count(*) FILTER (WHERE coalesce((e.event_data->>'status')::numeric, 0) NOT BETWEEN 1 AND 399) AS failures
FROM events e
WHERE e.account_id = %(account_id)s AND e.event_type = 'network'
  AND e."timestamp" >= %(start)s AND e."timestamp" < %(end)s
  AND jsonb_typeof(e.event_data->'duration_ms') = 'number'
GROUP BY 1, 2
"""


def measure_overview(url: str, account: dict, config: Config, compare: bool = True) -> list[dict]:
    """Per overview range: the page, and (`compare`) its slowest endpoints from the roll-ups vs the
    raw rows."""
    import uuid

    import compression as bench_compression  # its logged-in in-process dashboard
    import psycopg
    from psycopg.rows import dict_row

    from hindsight import timerange
    from hindsight.logins.users import create_user
    from hindsight.queries import traffic

    with psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
        if conn.execute("SELECT count(*) AS n FROM dashboard_users WHERE email = %s",
                        (bench_compression.EMAIL,)).fetchone()["n"] == 0:
            create_user(conn, bench_compression.EMAIL, bench_compression.PASSWORD,
                        uuid.UUID(str(account["account_id"])))
    app = bench_compression.Dashboard(url)
    out = []
    try:
        with psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
            for preset, span in timerange.PRESETS.items():
                page, _ = _timed(app.get("/dashboard/overview", range=preset), config.runs)
                if not compare:
                    out.append({"range": preset, "page_ms": statistics.median(page)})
                    continue
                now = datetime.now(UTC)
                hours = traffic.hour_range(now - span, now)
                params = {"account_id": account["account_id"], "start": hours.start, "end": hours.end}

                def rollup(s=now - span, e=now):
                    with conn.transaction():
                        return traffic.slowest_endpoints(conn, account["account_id"], s, e, limit=1000)

                rollup_ms, got = _timed(rollup, config.runs)
                raw_ms, want = _timed(lambda p=params: conn.execute(RAW_ENDPOINTS, p).fetchall(), config.runs)
                _check_endpoints(preset, got, want)
                out.append({"range": preset, "page_ms": statistics.median(page),
                            "rollup_ms": statistics.median(rollup_ms), "raw_ms": statistics.median(raw_ms),
                            "endpoints": len(want)})
    finally:
        app.close()
    return out


def _check_endpoints(preset: str, got: list[dict], want: list[dict]) -> None:
    """Same endpoints, requests and failures; percentiles within the roll-up's 5 % bound."""
    exact = {((r["method"] or None), (r["url"] or None)): r for r in want}
    estimated = {(r["method"], r["url"]): r for r in got}
    if set(exact) != set(estimated):
        raise AssertionError(f"{preset}: the roll-up's endpoints differ from the raw ones")
    for key, row in exact.items():
        est = estimated[key]
        if (est["requests"], est["failures"]) != (row["requests"], row["failures"]):
            raise AssertionError(f"{preset} {key}: counts differ: {est} vs {row}")
        for column in ("p50_ms", "p95_ms"):
            if abs(est[column] - row[column]) > max(0.05 * row[column], 1.0) + 1e-9:
                raise AssertionError(f"{preset} {key}: {column} {est[column]} is not within 5 % of {row[column]}")


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


# --------------------------------------------------------------------------- report


def render(result: Result, command: str) -> str:
    c, st = result.config, result.settings
    slowest = max(max(t.rollup, t.behind) for t in result.timings)
    lines = [
        BEGIN,
        "## Dashboard statistics: roll-ups against raw events",
        "",
        "Written by `bench/stats.py`; run it again rather than editing this section.",
        "",
        f"- Command: `{command}`",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {bench_common.machine()}; load average when the queries were timed: {result.loadavg} "
        "(other work on the machine shares its 2 cores)",
        f"- Database: PostgreSQL {st.get('server_version')}, TimescaleDB {st.get('timescaledb')} "
        f"({st.get('timescaledb.license')} edition: roll-ups refreshed by Hindsight's scheduler code), "
        f"its own throw-away cluster, shared_buffers={st.get('shared_buffers')}, "
        f"work_mem={st.get('work_mem')}, fsync={st.get('fsync')} (a read benchmark)",
        f"- Data: {result.events:,} events in {result.sessions:,} sessions over {c.days} days, "
        f"{c.accounts} accounts (each half the size of the previous), {c.paths} pages per account, "
        f"generated server-side in {result.generate_seconds:.0f} s",
        f"- Measured: the largest account, the last {c.range_days} days ({result.account_events:,} of its "
        f"events); each query once to warm up, then the median of {c.runs} runs; every roll-up answer "
        "was checked equal to the raw answer in the same run",
        f"- Roll-up refresh (the `refresh_rollups` job): first, over all {c.days} days: "
        f"{result.first_refresh_seconds:.1f} s; steady state (re-reads the last 2-4 days): "
        f"{result.steady_refresh_seconds:.1f} s",
        "",
        f"| {c.range_days}-day query | roll-ups | raw rows | raw / roll-ups | via the API (in-process) "
        "| roll-ups, daily ones a day behind |",
        "|---|---|---|---|---|---|",
    ]
    for t in result.timings:
        lines.append(f"| {t.name} | **{t.rollup:.1f} ms** | {t.raw:,.0f} ms | {t.ratio:,.0f}x | {t.api:.1f} ms "
                     f"| {t.behind:.1f} ms |")
    lines += [
        "",
        f"Slowest dashboard query from the roll-ups: **{slowest:.1f} ms**, in either column (target: under "
        f"100 ms at 10 M events){' — met' if slowest < 100 else ' — NOT met'}. The last column: the daily "
        "roll-ups leave today's buckets to query time (computed from the hourly roll-up and the raw rows of "
        "the last hour), so their queries cost more as the UTC day goes on; with the daily watermarks moved "
        "a day back, a reader pays for a whole day and more — the worst the day can do.",
        "",
        "### Visitors: HyperLogLog sketches against exact counts",
        "",
        "Unique visitors from the visitor roll-ups (`hll` sketches merged over the range: "
        "`hll_union_agg`, sql/migrations/0023) against `count(DISTINCT visitor_id)` over the raw rows, "
        "the same account and range; sessions, bounces, durations, page views, entries, exits and time on "
        "page were checked equal (time on page within 0.05 s) in the same run. Error: the largest "
        "|estimate - exact| / exact among the query's numbers.",
        "",
        f"| {c.range_days}-day query | roll-ups | raw rows | raw / roll-ups | exact visitors (sum) | "
        "largest error of unique visitors |",
        "|---|---|---|---|---|---|",
        *[f"| {v['name']} | **{v['rollup_ms']:.1f} ms** | {v['raw_ms']:,.0f} ms | "
          f"{v['raw_ms'] / v['rollup_ms']:,.0f}x | {v['exact']:,} | {100 * v['max_error']:.2f} % |"
          for v in result.visitors],
        "",
        f"Largest error: **{100 * max((v['max_error'] for v in result.visitors), default=0):.2f} %** "
        f"(target: at most 1 %){' — met' if all(v['max_error'] <= 0.01 for v in result.visitors) else ' — NOT met'}; "
        f"slowest visitor query: **{max((v['rollup_ms'] for v in result.visitors), default=0):.1f} ms** "
        f"(target: under 100 ms){' — met' if all(v['rollup_ms'] < 100 for v in result.visitors) else ' — NOT met'}. "
        "A sketch is exact up to 2,560 visitors (a list of hashes) and has a standard error of 0.57 % above "
        "(2^15 registers).",
        "",
        "### The overview, per range",
        "",
        "`GET /dashboard/overview?range=…` through the app in-process (logged in; series, totals, top pages,",
        "breakdowns, slowest endpoints, pages with errors), and its slowest network endpoints computed from the",
        "network roll-ups against the same answer from the raw network events — every endpoint, requests and",
        "failures equal, p50 and p95 within the roll-ups' 5 % bound (checked in the run). Medians of "
        f"{c.runs} runs.",
        "",
        "| range | overview page, 90 days of raw events kept | the same, raw events past the default "
        "30-day retention dropped | slowest endpoints: roll-ups | raw rows | raw / roll-ups |",
        "|---|---|---|---|---|---|",
        *[f"| {o['range']} | {o['page_ms']:.1f} ms | **{o['page_retained_ms']:.1f} ms** | {o['rollup_ms']:.1f} ms | "
          f"{o['raw_ms']:,.0f} ms | {o['raw_ms'] / o['rollup_ms']:,.0f}x |" for o in result.overview],
        "",
        f"Slowest overview range as deployed (raw events kept 30 days, roll-ups 2 years): "
        f"**{max((o['page_retained_ms'] for o in result.overview), default=0):.1f} ms** (target: under 100 ms at "
        f"10 M events){' — met' if all(o['page_retained_ms'] < 100 for o in result.overview) else ' — NOT met'}. "
        "After the session check the page runs seven statements (plus one read of the visitor roll-ups' "
        "watermarks), pipelined: the events "
        "series, the visitor series, the two page lists, the top pages' visitors, the visitor summary, the "
        "four breakdowns with their visitors (one statement), the slowest endpoints; visitors of whole weeks "
        "come from the weekly visitor roll-ups (sql/migrations/0031); on this edition the "
        "buckets after each roll-up's watermark (this hour, today, this week) are computed from the raw rows "
        "when they are read, where the timescale edition reads its continuous aggregates (bench/compression.py's "
        "section times the same page there). Where the time goes, per statement: docs/DECISIONS.md, "
        "\"The overview's statements\".",
        "",
        "Sizes: " + ", ".join(f"`{k}` {v}" for k, v in result.sizes.items()) + ".",
        "",
        "Referrers, devices, browsers and OS come from `sessions`; they are read from their own",
        "daily roll-up (`sessions_daily`), which is why they stay fast: the raw column is what",
        "grouping the account's sessions of the period costs.",
        END,
    ]
    return "\n".join(lines) + "\n"


def write_section(doc: Path, section: str) -> None:
    """Replace this benchmark's section of the doc (or add it), leaving the others alone."""
    write_doc_section(doc, "bench/stats.py", section.replace(BEGIN, "").replace(END, ""))


def summary(result: Result) -> str:
    rows = [f"  {t.name:32s} roll-ups {t.rollup:8.1f} ms   raw {t.raw:9.1f} ms   x{t.ratio:7.0f}   "
            f"api {t.api:6.1f} ms   a day behind {t.behind:6.1f} ms" for t in result.timings]
    rows += [f"  {v['name'][:32]:32s} roll-ups {v['rollup_ms']:8.1f} ms   raw {v['raw_ms']:9.1f} ms   "
             f"visitors error {100 * v['max_error']:.2f} % (exact {v['exact']:,})" for v in result.visitors]
    return "\n".join([f"{result.events:,} events, {result.sessions:,} sessions; generated in "
                      f"{result.generate_seconds:.0f} s; first refresh {result.first_refresh_seconds:.1f} s, "
                      f"steady refresh {result.steady_refresh_seconds:.1f} s", *rows])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200k events, does not write the doc")
    parser.add_argument("--events", type=int, help="events to generate (default 10,000,000)")
    parser.add_argument("--output", type=Path, default=None,
                        help=f"doc to write the section into (default {DOC.relative_to(ROOT)}; "
                             "--quick writes nothing unless given)")
    args = parser.parse_args(argv)
    config = Config.quick() if args.quick else Config()
    if args.events:
        config.events = args.events
    output = args.output if args.output else (None if args.quick else DOC)

    result = bench_common.on_read_cluster(run_bench, config)
    print(summary(result))
    if output:
        given = argv if argv is not None else sys.argv[1:]
        command = " ".join([".venv/bin/python bench/stats.py", *given])
        write_section(output, render(result, command))
        print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
