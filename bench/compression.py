"""Compression of the events hypertable on TimescaleDB's timescale edition: the segment-by
and order-by columns chosen by measurement, and the dashboard read on compressed chunks.

What it does, all in one run, against a timescale-edition server (it needs one: the apache
edition has no compression):

1. creates its own database on that server (dropped at the end), migrates it, and pauses
   the policies (so nothing compresses, drops or refreshes behind the measurements);
2. generates the data server-side, one day per statement: sessions of 4 accounts (each half
   the size of the previous) over 90 days, and their events as tracker.js records them —
   page views with titles, clicks with their element and coordinates, masked inputs, key
   presses, scrolls, mouse moves, visibility changes, network timings (40 endpoints per
   site, log-normal durations), errors with stacks, custom events — each with its page URL
   and received_at; 3 million events by default (the issue measured 3.46 M);
3. for each candidate (segment-by, order-by), compresses every chunk older than 7 days with
   it (decompressing the previous candidate's first) and measures: bytes before / after
   (`chunk_compression_stats`), the size per million events, the time to compress, and the
   replay's first-frame data (`GET /dashboard/sessions/{id}?format=json`: facts, markers,
   first 500 events) for a session that started 20 days ago, through the real app in-process;
4. with the settings of sql/editions/timescale/0003 (the last candidate), times every
   dashboard page on compressed chunks, next to the same pages before any compression: the
   overview for each range (and its slowest-endpoints query from the network roll-ups
   against the raw-event query it replaces), the sessions list (plain, with errors, filtered
   by page URL), the replay page and its data, a heatmap;
5. writes its section of docs/BENCHMARKS.md.

    .venv/bin/python bench/compression.py --url postgresql://postgres@127.0.0.1:55432/postgres
    .venv/bin/python bench/compression.py --quick ...   # 300 k events, does not touch the doc

The server: --url (any database of it), else HINDSIGHT_TEST_TSL_URL, else
HINDSIGHT_TEST_TSL_BINDIR (a throw-away cluster of those binaries; tests/lifecycle_support.py).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "BENCHMARKS.md"
sys.path.insert(0, str(ROOT / "backend"))
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as bench_common  # noqa: E402 - bench/ is not a package
from doc_sections import write_section as write_doc_section  # noqa: E402

SECTION = "bench/compression.py"
REPLAY_TARGET_MS = 300.0
PAGE_TARGET_MS = 100.0
EMAIL, PASSWORD = "bench@example.org", "bench password 123"


@dataclass(frozen=True)
class Candidate:
    segmentby: str
    orderby: str
    note: str


CANDIDATES = (
    Candidate("session_id", '"timestamp", seq', "timescale/0001: one segment per session"),
    Candidate("account_id, host, event_type", 'session_id, "timestamp", seq', "a segment per event type"),
    Candidate("account_id, host", '"timestamp", session_id, seq', "by account, time first"),
    Candidate("account_id", 'host, session_id, "timestamp", seq', "by account only"),
    Candidate("account_id, host", 'session_id, "timestamp", seq', "timescale/0003: by account and host"),
)


@dataclass
class Config:
    events: int = 3_000_000
    days: int = 90
    accounts: int = 4
    paths: int = 300
    runs: int = 15
    warmup: int = 2
    replay_age_days: int = 20
    compress_after_days: int = 7

    @classmethod
    def quick(cls) -> Config:
        return cls(events=300_000, runs=5, warmup=1)


@dataclass
class Timing:
    name: str
    ms: list[float] = field(default_factory=list)

    @property
    def p50(self) -> float:
        return statistics.median(self.ms)

    @property
    def p95(self) -> float:
        ordered = sorted(self.ms)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


@dataclass
class Measured:
    candidate: Candidate
    chunks: int = 0
    events: int = 0                  # in the compressed chunks
    bytes_before: int = 0
    bytes_after: int = 0
    compress_seconds: float = 0.0
    replay: Timing = field(default_factory=lambda: Timing("replay first-frame data"))

    @property
    def ratio(self) -> float:
        return self.bytes_before / self.bytes_after

    def per_million(self, size: int) -> float:
        return size / 2**20 / (self.events / 1e6)


@dataclass
class Result:
    config: Config
    events: int = 0
    sessions: int = 0
    generate_seconds: float = 0.0
    replay_session_events: int = 0
    candidates: list[Measured] = field(default_factory=list)
    pages_before: list[Timing] = field(default_factory=list)   # nothing compressed
    pages_after: list[Timing] = field(default_factory=list)    # the chosen settings
    settings: dict[str, str] = field(default_factory=dict)
    loadavg: str = ""


# --------------------------------------------------------------------------- data

SESSIONS = """
INSERT INTO sessions (session_id, account_id, host, started_at, last_activity_at, created_at, page_url,
                      referrer, user_agent, screen_width, screen_height, viewport_width, viewport_height,
                      device_type, browser, os, language, timezone, event_count)
SELECT gen_random_uuid(), %(account_id)s, %(host)s, t.started_at,
       t.started_at + make_interval(secs => t.n * (3 + 20 * random())), t.started_at,
       'https://' || %(host)s || '/', (ARRAY[NULL, NULL, 'https://www.google.com/', 'https://t.co/x',
                                             'https://news.ycombinator.com/item?id=1'])[1 + t.c %% 5],
       (ARRAY['Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36',
              'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148',
              'Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0'])[1 + t.c %% 3],
       (ARRAY[1920, 390, 2560])[1 + t.c %% 3], (ARRAY[1080, 844, 1440])[1 + t.c %% 3],
       (ARRAY[1400, 390, 1280])[1 + t.c %% 3], (ARRAY[900, 700, 1000])[1 + t.c %% 3],
       (ARRAY['desktop', 'mobile', 'desktop'])[1 + t.c %% 3], (ARRAY['Chrome', 'Mobile Safari', 'Firefox'])[1 + t.c %% 3],
       (ARRAY['Windows', 'iOS', 'Linux'])[1 + t.c %% 3], 'en-US', 'Europe/Berlin', t.n
FROM (SELECT %(day)s::timestamptz + random() * INTERVAL '1 day' AS started_at,
             -- 5 to 85 events, about 32 on average: most visits are short, a few long
             5 + floor(power(random(), 2) * 81)::int AS n, floor(random() * 1000)::int AS c
      FROM generate_series(1, %(count)s)) AS t
"""

# Each session's events in time order: a session_start, then a page view every 8 events
# (the page a visitor is on, on a skewed popularity curve), and a mix of the other types.
EVENTS = """
INSERT INTO events (session_id, seq, "timestamp", account_id, host, event_type, page_url,
                    target_element, target_selector, target_tag, target_id, target_class,
                    viewport_x, viewport_y, screen_x, screen_y, scroll_x, scroll_y,
                    input_value, input_masked, key_pressed, mouse_button, click_count, event_data, received_at)
SELECT s.session_id, g.i, g.ts, s.account_id, s.host, k.kind, pg.url,
       CASE WHEN k.kind IN ('click', 'input') THEN el.element END,
       CASE WHEN k.kind IN ('click', 'input', 'keypress') THEN el.selector END,
       CASE WHEN k.kind IN ('click', 'input', 'keypress') THEN el.tag END,
       CASE WHEN k.kind IN ('click', 'input') THEN el.id END,
       CASE WHEN k.kind IN ('click', 'input') THEN el.class END,
       CASE WHEN k.kind IN ('click', 'mouse_move') THEN floor(g.r2 * s.viewport_width)::int END,
       CASE WHEN k.kind IN ('click', 'mouse_move') THEN floor(g.r3 * s.viewport_height)::int END,
       CASE WHEN k.kind = 'click' THEN floor(g.r2 * s.viewport_width)::int + 60 END,
       CASE WHEN k.kind = 'click' THEN floor(g.r3 * s.viewport_height)::int + 110 END,
       CASE WHEN k.kind IN ('click', 'scroll') THEN 0 END,
       CASE WHEN k.kind IN ('click', 'scroll') THEN (g.i %% 8) * 240 + floor(g.r3 * 200)::int END,
       CASE WHEN k.kind = 'input' THEN repeat('*', 3 + floor(g.r2 * 12)::int) END,
       CASE WHEN k.kind = 'input' THEN true END,
       CASE WHEN k.kind = 'keypress' THEN (ARRAY['Enter', 'Tab', 'Backspace', 'ArrowDown', 'Escape'])[1 + floor(g.r2 * 5)::int] END,
       CASE WHEN k.kind = 'click' THEN 0 END,
       CASE WHEN k.kind = 'click' THEN 1 END,
       CASE k.kind
           WHEN 'session_start' THEN jsonb_build_object(
               'user_agent', s.user_agent, 'screen_width', s.screen_width, 'screen_height', s.screen_height,
               'viewport_width', s.viewport_width, 'viewport_height', s.viewport_height, 'language', s.language,
               'timezone', s.timezone, 'referrer', s.referrer)
           WHEN 'page_view' THEN jsonb_build_object('nav', CASE WHEN g.i = 1 THEN 'load' ELSE 'push' END,
                                                    'title', 'Page ' || pg.n || ' - Shop', 'from', NULL)
           WHEN 'network' THEN jsonb_build_object(
               'kind', CASE WHEN ep.e %% 3 = 0 THEN 'xhr' ELSE 'fetch' END, 'method', ep.method,
               'url', 'https://' || s.host || ep.path,
               'status', CASE WHEN g.r3 < 0.02 THEN 500 WHEN g.r3 < 0.05 THEN 404 WHEN g.r3 < 0.06 THEN 0 ELSE 200 END,
               -- log-normal around the endpoint's own median
               'duration_ms', round(exp(ep.mu + 0.7 * sqrt(-2 * ln(1 - g.r4)) * cos(2 * pi() * g.r5))))
           WHEN 'error' THEN jsonb_build_object(
               'kind', 'error', 'message', 'TypeError: Cannot read properties of undefined (reading ''item' || (g.i %% 7) || ''')',
               'source', 'https://' || s.host || '/static/app.js', 'line', 100 + g.i %% 50, 'column', 17,
               'stack', 'TypeError: Cannot read properties of undefined\n    at render (https://' || s.host
                        || '/static/app.js:' || (100 + g.i %% 50) || ':17)\n    at update (https://' || s.host
                        || '/static/vendor.js:2:8812)')
           WHEN 'input' THEN jsonb_build_object('field_type', (ARRAY['text', 'email', 'search'])[1 + g.i %% 3])
           WHEN 'keypress' THEN CASE WHEN g.r3 < 0.2 THEN jsonb_build_object('ctrl', true, 'meta', false,
                                                                            'alt', false, 'shift', false) END
           WHEN 'visibility' THEN jsonb_build_object('state', CASE WHEN g.i %% 2 = 0 THEN 'hidden' ELSE 'visible' END)
           WHEN 'custom' THEN jsonb_build_object('name', 'checkout_step', 'props', jsonb_build_object('step', g.i %% 5))
           WHEN 'click' THEN CASE WHEN g.r3 < 0.01 THEN jsonb_build_object('rage', 3) END
       END,
       g.ts + make_interval(secs => 0.2 + g.r * 4)
FROM sessions s
CROSS JOIN LATERAL generate_series(0, s.event_count - 1) AS gi (i)
CROSS JOIN LATERAL (SELECT gi.i AS i,
                           s.started_at + (s.last_activity_at - s.started_at) * (gi.i::float8 / s.event_count) AS ts,
                           random() AS r, random() AS r2, random() AS r3, random() AS r4, random() AS r5) AS g
CROSS JOIN LATERAL (SELECT CASE
        WHEN g.i = 0 THEN 'session_start' WHEN g.i %% 8 = 1 THEN 'page_view'
        WHEN g.r < 0.34 THEN 'mouse_move' WHEN g.r < 0.51 THEN 'scroll' WHEN g.r < 0.67 THEN 'click'
        WHEN g.r < 0.75 THEN 'input' WHEN g.r < 0.82 THEN 'keypress' WHEN g.r < 0.90 THEN 'network'
        WHEN g.r < 0.94 THEN 'visibility' WHEN g.r < 0.96 THEN 'error' ELSE 'custom' END AS kind) AS k
CROSS JOIN LATERAL (SELECT p.n, 'https://' || s.host || '/p' || p.n
                                || CASE WHEN p.n %% 10 = 3 THEN '?utm_source=newsletter' ELSE '' END AS url
                    FROM (SELECT floor(power((hashtext(s.session_id::text || (g.i / 8)::text)::bigint + 2147483648)
                                             / 4294967296.0, 3) * %(paths)s)::int AS n) AS p) AS pg
CROSS JOIN LATERAL (SELECT e.element, e.selector, e.tag, e.id, e.class
                    FROM (VALUES (0, 'Add to cart', 'button.btn.btn-primary.add-to-cart', 'button', NULL, 'btn btn-primary add-to-cart'),
                                 (1, 'Search', 'input#search', 'input', 'search', 'form-control'),
                                 (2, 'Pricing', 'nav > ul > li:nth-child(3) > a', 'a', NULL, 'nav-link'),
                                 (3, 'E-mail', 'input[name="email"]', 'input', 'email', 'form-control'),
                                 (4, 'Next', 'div.pager > a.next', 'a', NULL, 'next'),
                                 (5, 'Card', 'div.card:nth-child(2) > a.card-link', 'a', NULL, 'card-link'))
                         AS e (i, element, selector, tag, id, class)
                    WHERE e.i = floor(g.r4 * 6)::int) AS el
CROSS JOIN LATERAL (SELECT x.e, CASE WHEN x.e %% 4 = 0 THEN 'POST' ELSE 'GET' END AS method,
                           '/api/' || (ARRAY['cart', 'search', 'items', 'user', 'orders', 'recommendations',
                                             'reviews', 'stock', 'prices', 'session'])[1 + x.e %% 10]
                                   || CASE WHEN x.e >= 10 THEN '/v' || (x.e / 10) ELSE '' END AS path,
                           3.4 + (x.e %% 7) * 0.35 AS mu
                    FROM (SELECT floor(power(g.r2, 2) * 40)::int AS e) AS x) AS ep
WHERE s.account_id = ANY(%(accounts)s) AND s.started_at >= %(day)s AND s.started_at < %(day)s::timestamptz + INTERVAL '1 day'
"""


def generate(conn, config: Config, now: datetime, show_progress: bool = True) -> dict:
    """Accounts, sessions and events over `config.days` days before `now`, a dashboard user."""
    import stats as bench_stats  # its progress bar

    from hindsight.logins.users import create_user
    from hindsight.queries.tenancy import create_account

    weights = [2 ** -i for i in range(config.accounts)]
    weights = [w / sum(weights) for w in weights]
    accounts = [create_account(conn, f"Compression bench {i}", f"shop{i}.example", None)
                for i in range(config.accounts)]
    conn.execute("ALTER TABLE sessions DISABLE TRIGGER USER")  # a bulk load is not traffic to count
    sessions_total = config.events // 32
    first_day = (now - timedelta(days=config.days)).replace(hour=0, minute=0, second=0, microsecond=0)
    days = [first_day + timedelta(days=d) for d in range(config.days + 1)]
    ids = [a["account_id"] for a in accounts]
    started, done = time.monotonic(), 0
    for day in days:
        for account, weight in zip(accounts, weights, strict=True):
            conn.execute(SESSIONS, {"account_id": account["account_id"], "host": account["domain"], "day": day,
                                    "count": max(1, round(sessions_total * weight / len(days)))})
        conn.execute("DELETE FROM sessions WHERE started_at > %s", (now - timedelta(minutes=1),))
        conn.execute("UPDATE sessions SET last_activity_at = least(last_activity_at, %s) "
                     "WHERE started_at >= %s AND last_activity_at > %s", (now, day, now))
        done += conn.execute(EVENTS, {"accounts": ids, "day": day, "paths": config.paths}).rowcount
        conn.commit()
        if show_progress:
            bench_stats.progress(min(done, config.events), config.events, started, "events")
    if show_progress and done < config.events:
        bench_stats.progress(config.events, config.events, started, "events")
    conn.execute("ALTER TABLE sessions ENABLE TRIGGER USER")
    # The sessions list and replay read these counters (the API keeps them as it stores events).
    conn.execute("""
        UPDATE sessions s SET page_view_count = c.page_views, click_count = c.clicks, error_count = c.errors
        FROM (SELECT session_id, count(*) FILTER (WHERE event_type = 'page_view') AS page_views,
                     count(*) FILTER (WHERE event_type = 'click') AS clicks,
                     count(*) FILTER (WHERE event_type = 'error') AS errors
              FROM events GROUP BY session_id) c
        WHERE c.session_id = s.session_id""")
    biggest = accounts[0]
    create_user(conn, EMAIL, PASSWORD, uuid.UUID(str(biggest["account_id"])))
    replay = conn.execute(
        "SELECT session_id, event_count FROM sessions WHERE account_id = %s AND started_at >= %s AND started_at < %s "
        "ORDER BY event_count DESC, session_id LIMIT 1",
        (biggest["account_id"], now - timedelta(days=config.replay_age_days + 1),
         now - timedelta(days=config.replay_age_days))).fetchone()
    conn.commit()
    return {"account": biggest, "replay": replay["session_id"], "replay_events": replay["event_count"]}


def materialize(url: str, now: datetime) -> None:
    """What the paused policies and the scheduler would have done by now: the roll-ups."""
    import psycopg
    from psycopg.rows import dict_row

    from hindsight.lifecycle import rollups

    with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
        for name in ("events_hourly_cagg", "pages_hourly_cagg", "network_hourly_cagg",
                     "events_daily_cagg", "pages_daily_cagg", "network_daily_cagg", "pages_weekly_cagg",
                     "network_weekly_cagg", "network_4weekly_cagg"):
            conn.execute(f"CALL refresh_continuous_aggregate('{name}', NULL, now() - INTERVAL '1 hour')")
        rollups.refresh_all(conn, now, "timescale")
        conn.execute("VACUUM ANALYZE")


# --------------------------------------------------------------------------- compression

def old_chunks(conn, config: Config) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT c::text FROM show_chunks('events', older_than => %s) c ORDER BY 1",
        (timedelta(days=config.compress_after_days),))]


def compress_with(url: str, candidate: Candidate, config: Config) -> Measured:
    """Recompress every chunk older than 7 days with `candidate`; its sizes and time."""
    import psycopg
    from psycopg import sql

    measured = Measured(candidate)
    with psycopg.connect(url, autocommit=True) as conn:
        chunks = old_chunks(conn, config)
        for chunk in chunks:
            conn.execute("SELECT decompress_chunk(%s::regclass, if_compressed => true)", (chunk,))
        conn.execute(sql.SQL("ALTER TABLE events SET (timescaledb.compress_segmentby = {}, "
                             "timescaledb.compress_orderby = {})").format(sql.Literal(candidate.segmentby),
                                                                          sql.Literal(candidate.orderby)))
        measured.events = conn.execute(
            'SELECT count(*) FROM events WHERE "timestamp" < (SELECT max(range_end) FROM timescaledb_information.chunks '
            "WHERE hypertable_name = 'events' AND range_end <= now() - %s)",
            (timedelta(days=config.compress_after_days),)).fetchone()[0]
        started = time.monotonic()
        for chunk in chunks:
            conn.execute("SELECT compress_chunk(%s::regclass)", (chunk,))
        measured.compress_seconds = time.monotonic() - started
        conn.execute("ANALYZE events")
        measured.chunks = len(chunks)
        measured.bytes_before, measured.bytes_after = conn.execute(
            "SELECT sum(before_compression_total_bytes)::bigint, sum(after_compression_total_bytes)::bigint "
            "FROM chunk_compression_stats('events') WHERE compression_status = 'Compressed'").fetchone()
    return measured


# --------------------------------------------------------------------------- the app

class Dashboard:
    """The real app in-process (falcon's TestClient), logged in as the bench's analyst."""

    def __init__(self, url: str) -> None:
        import falcon.testing

        from hindsight.app import create_app, prepare_database
        from hindsight.db import create_pool
        from hindsight.settings import Settings

        settings = Settings(database_url=url, rate_limit_per_minute=0, pool_max=4, lifecycle_jobs=False)
        self.pool = create_pool(settings)
        prepare_database(self.pool)
        self.client = falcon.testing.TestClient(create_app(settings, self.pool))
        self.cookies: dict[str, str] = {}
        login = self._keep(self.client.simulate_get("/dashboard/login"))
        token = re.search(r'name="csrf_token" value="([^"]+)"', login.text).group(1)
        done = self._keep(self.client.simulate_post(
            "/dashboard/login", cookies=self.cookies,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
            body=urllib.parse.urlencode({"email": EMAIL, "password": PASSWORD, "csrf_token": token})))
        assert done.status_code == 303, done.text

    def _keep(self, result):
        self.cookies.update({k: c.value for k, c in result.cookies.items() if c.value})
        return result

    def get(self, path: str, **params):
        def call():
            result = self.client.simulate_get(path, params=params or None, cookies=self.cookies)
            assert result.status_code == 200, (path, result.status_code, result.text[:300])
            return result
        return call

    def close(self) -> None:
        self.pool.close()


def timed(name: str, call, config: Config) -> Timing:
    timing = Timing(name)
    for _ in range(config.warmup):
        call()
    for _ in range(config.runs):
        started = time.perf_counter()
        call()
        timing.ms.append((time.perf_counter() - started) * 1000)
    return timing


# The overview's slowest endpoints before the network roll-ups: percentiles over raw events.
RAW_SLOWEST = """
SELECT e.event_data->>'method' AS method, e.event_data->>'url' AS url, count(*) AS requests,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY (e.event_data->>'duration_ms')::float8) AS p50_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY (e.event_data->>'duration_ms')::float8) AS p95_ms
FROM events e
WHERE e.account_id = %(account_id)s AND e.event_type = 'network'
  AND e."timestamp" >= %(start)s AND e."timestamp" < %(end)s
  AND jsonb_typeof(e.event_data->'duration_ms') = 'number'
GROUP BY 1, 2 ORDER BY p95_ms DESC NULLS LAST, requests DESC LIMIT 10
"""


def pages(url: str, data: dict, config: Config) -> list[Timing]:
    """Every dashboard page (and the overview's endpoints query, roll-up vs raw), timed."""
    import psycopg
    from psycopg.rows import dict_row

    from hindsight import timerange
    from hindsight.queries import traffic

    app = Dashboard(url)
    sid, account = data["replay"], data["account"]["account_id"]
    top = app.get("/dashboard/overview", range="30d", format="json")().json["top_pages"][0]["path"]
    out = []
    try:
        for preset in timerange.PRESETS:
            out.append(timed(f"Overview, {preset}", app.get("/dashboard/overview", range=preset), config))
        out += [
            timed("Sessions list, page 1", app.get("/dashboard/sessions"), config),
            timed("… with errors", app.get("/dashboard/sessions", has_errors="true"), config),
            timed("… page URL contains /p7, 7 days", app.get("/dashboard/sessions", page_url="/p7", range="7d"),
                  config),
            timed(f"Replay page, a {config.replay_age_days}-day-old session", app.get(f"/dashboard/sessions/{sid}"),
                  config),
            timed("… its first-frame data (JSON)", app.get(f"/dashboard/sessions/{sid}", format="json"), config),
            timed(f"Heatmap page of {top}, 7 days (its default)", app.get("/dashboard/heatmaps", page=top,
                                                                          range="7d"), config),
        ]
        with psycopg.connect(url, autocommit=True, row_factory=dict_row) as conn:
            now = datetime.now(UTC)
            for preset in ("30d", "90d"):
                start = now - timerange.PRESETS[preset]
                out.append(timed(f"Slowest endpoints, {preset}: network roll-ups",
                                 lambda s=start: traffic.slowest_endpoints(conn, account, s, now), config))
                out.append(timed(f"Slowest endpoints, {preset}: raw events (before)",
                                 lambda s=start: conn.execute(RAW_SLOWEST, {"account_id": account, "start": s,
                                                                            "end": now}).fetchall(), config))
    finally:
        app.close()
    return out


def replay_timing(url: str, data: dict, config: Config) -> Timing:
    app = Dashboard(url)
    try:
        return timed("replay first-frame data", app.get(f"/dashboard/sessions/{data['replay']}", format="json"),
                     config)
    finally:
        app.close()


# --------------------------------------------------------------------------- run

def run_bench(url: str, config: Config, candidates: tuple[Candidate, ...] = CANDIDATES,
              show_progress: bool = True) -> Result:
    """Generate, then measure each candidate, against the migrated, empty database at `url`."""
    import psycopg
    from psycopg.rows import dict_row

    result = Result(config)
    with psycopg.connect(url, row_factory=dict_row) as conn:
        conn.execute("SELECT alter_job(job_id, scheduled => false) FROM timescaledb_information.jobs "
                     "WHERE job_id >= 1000")
        now = conn.execute("SELECT now() AS t").fetchone()["t"]
        conn.commit()
        started = time.monotonic()
        data = generate(conn, config, now, show_progress)
        result.generate_seconds = time.monotonic() - started
        result.replay_session_events = data["replay_events"]
    materialize(url, now)
    with psycopg.connect(url, row_factory=dict_row, autocommit=True) as conn:
        result.events = conn.execute("SELECT count(*) AS n FROM events").fetchone()["n"]
        result.sessions = conn.execute("SELECT count(*) AS n FROM sessions").fetchone()["n"]
        for name in ("server_version", "timescaledb.license", "shared_buffers", "work_mem", "fsync"):
            result.settings[name] = conn.execute(f"SHOW {name}").fetchone()[name]
        result.settings["timescaledb"] = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone()["extversion"]
    result.loadavg = _loadavg()
    result.pages_before = pages(url, data, config)
    for candidate in candidates:
        measured = compress_with(url, candidate, config)
        measured.replay = replay_timing(url, data, config)
        result.candidates.append(measured)
        if show_progress:
            print(f"  {candidate.segmentby:30s} | {candidate.orderby:30s}: {measured.ratio:5.1f}x, "
                  f"{measured.per_million(measured.bytes_after):6.1f} MB per M events, compressed in "
                  f"{measured.compress_seconds:5.1f} s, replay p50 {measured.replay.p50:6.1f} ms", file=sys.stderr)
    result.pages_after = pages(url, data, config)
    return result


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


# --------------------------------------------------------------------------- report

def section_name(chosen_only: bool) -> str:
    """The candidates' run and the chosen settings' run (at another size) own a section each."""
    return SECTION + (" --chosen-only" if chosen_only else "")


def render(result: Result, command: str, chosen_only: bool = False) -> str:
    c, st = result.config, result.settings
    chosen = result.candidates[-1]
    per_session = next((m for m in result.candidates if m.candidate.segmentby == "session_id"), None)
    title = (f"Compression of events (timescale edition): the chosen settings at {c.events:,} events"
             if chosen_only else "Compression of events (timescale edition): segment-by and order-by")
    lines = [
        f"## {title}",
        "",
        f"Written by `{section_name(chosen_only)}`; run it again rather than editing this section.",
        "",
        f"- Command: `{command}`",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {bench_common.machine()}; load average when the pages were timed: {result.loadavg} "
        "(other work on the machine shares its 2 cores)",
        f"- Database: PostgreSQL {st.get('server_version')}, TimescaleDB {st.get('timescaledb')} "
        f"({st.get('timescaledb.license')} edition), shared_buffers={st.get('shared_buffers')}, "
        f"work_mem={st.get('work_mem')}, fsync={st.get('fsync')}; the bench's own database, policies paused",
        f"- Data: {result.events:,} events in {result.sessions:,} sessions over {c.days} days, {c.accounts} accounts "
        f"(each half the size of the previous), {c.paths} pages and 40 network endpoints per site, every column "
        f"tracker.js fills; generated server-side in {result.generate_seconds:.0f} s",
        f"- Compressed: the {chosen.chunks} daily chunks older than {c.compress_after_days} days "
        f"({chosen.events:,} events); sizes from `chunk_compression_stats` (table, indexes and TOAST)",
        f"- Replay: the first-frame data of the longest session that started {c.replay_age_days} days ago "
        f"({result.replay_session_events} events; `GET /dashboard/sessions/{{id}}?format=json` in-process: "
        f"facts, markers, first 500 events), {c.warmup} warm-up runs, then p50/p95 of {c.runs}",
        "",
        "| segment by | order by | ratio | MB per million events (before → after) | compress time | "
        "replay data p50 / p95 | |",
        "|---|---|---|---|---|---|---|",
    ]
    for m in result.candidates:
        lines.append(
            f"| `{m.candidate.segmentby}` | `{m.candidate.orderby}` | **{m.ratio:.1f}x** | "
            f"{m.per_million(m.bytes_before):.0f} → {m.per_million(m.bytes_after):.1f} | {m.compress_seconds:.0f} s | "
            f"{m.replay.p50:.1f} / {m.replay.p95:.1f} ms | {m.candidate.note} |")
    met_ratio = chosen.ratio >= 10
    met_replay = chosen.replay.p95 < REPLAY_TARGET_MS
    lines += [
        "",
        f"Chosen (sql/editions/timescale/0003): segment by `{chosen.candidate.segmentby}`, order by "
        f"`{chosen.candidate.orderby}`: **{chosen.ratio:.1f}x** (target ≥ 10x: {'met' if met_ratio else 'NOT met'}"
        + (f"; {per_session.ratio:.1f}x with one segment per session" if per_session else "") + "), "
        f"{chosen.per_million(chosen.bytes_after):.1f} MB per million events compressed, and the replay's first-frame "
        f"data of a {c.replay_age_days}-day-old session on compressed chunks in {chosen.replay.p95:.1f} ms at p95 "
        f"(target < {REPLAY_TARGET_MS:.0f} ms: {'met' if met_replay else 'NOT met'}).",
        "",
        "### The dashboard on compressed chunks",
        "",
        "Each page through the app in-process (server time, logged in), before any chunk was compressed and "
        f"with the chosen settings; p50 / p95 of {c.runs} runs. The overview reads the roll-ups only (its "
        "slowest endpoints the network roll-ups: the last rows show that query against the raw-event query it "
        "replaced).",
        "",
        "| page | nothing compressed | chunks > 7 days compressed |",
        "|---|---|---|",
    ]
    for before, after in zip(result.pages_before, result.pages_after, strict=True):
        lines.append(f"| {after.name} | {before.p50:.1f} / {before.p95:.1f} ms | **{after.p50:.1f}** / "
                     f"{after.p95:.1f} ms |")
    overview = [t for t in result.pages_after if t.name.startswith("Overview")]
    worst = max(overview, key=lambda t: t.p95)
    lines += [
        "",
        f"Slowest overview range on compressed chunks: {worst.name.split(', ')[1]}, {worst.p95:.1f} ms at p95 "
        f"(target < {PAGE_TARGET_MS:.0f} ms: {'met' if worst.p95 < PAGE_TARGET_MS else 'NOT met'}).",
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import psycopg
    from lifecycle_support import tsl_server

    from hindsight.migrate import migrate

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a timescale-edition server (any database on it)")
    parser.add_argument("--quick", action="store_true", help="300 k events, does not write the doc")
    parser.add_argument("--events", type=int, help="events to generate (default 3,000,000)")
    parser.add_argument("--chosen-only", action="store_true", help="only the settings of timescale/0003")
    parser.add_argument("--keep", action="store_true", help="keep the bench's database (to look into it)")
    parser.add_argument("--output", type=Path, default=None,
                        help=f"doc to write the section into (default {DOC.relative_to(ROOT)}; --quick: none)")
    args = parser.parse_args(argv)
    config = Config.quick() if args.quick else Config()
    if args.events:
        config.events = args.events
    output = args.output if args.output else (None if args.quick else DOC)
    candidates = CANDIDATES[-1:] if args.chosen_only else CANDIDATES

    with tsl_server() as configured:
        server = args.url or configured
        if not server:
            parser.error("needs a timescale-edition server: --url, HINDSIGHT_TEST_TSL_URL or HINDSIGHT_TEST_TSL_BINDIR")
        admin = server.rsplit("/", 1)[0] + "/postgres"
        name = f"bench_compression_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(admin, autocommit=True) as conn:
            if conn.execute("SHOW timescaledb.license").fetchone()[0] != "timescale":
                parser.error(f"{admin} does not run the timescale edition")
            conn.execute(f'CREATE DATABASE "{name}"')
        url = server.rsplit("/", 1)[0] + "/" + name
        try:
            migrate(url)
            result = run_bench(url, config, candidates)
        finally:
            if args.keep:
                print(f"kept: {url}", file=sys.stderr)
            else:
                with psycopg.connect(admin, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    if output:
        given = argv if argv is not None else sys.argv[1:]
        shown = [a if not a.startswith("postgresql://") else "URL" for a in given]
        command = " ".join([".venv/bin/python bench/compression.py", *shown])
        write_doc_section(output, section_name(args.chosen_only), render(result, command, args.chosen_only))
        print(f"wrote {output}")
    else:
        print(render(result, "(quick)"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
