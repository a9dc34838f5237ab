"""Helpers for the lifecycle tests: throw-away databases, rows written straight into
the tables (with chosen timestamps), direct aggregates over the raw rows, and the
timescale-edition server the TSL tests run on when one is configured."""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from hindsight.migrate import migrate
from hindsight.queries.tenancy import create_account

# ----------------------------------------------------------- the timescale-edition server

TSL_URL_ENV = "HINDSIGHT_TEST_TSL_URL"        # a running timescale-edition server (any database)
TSL_BINDIR_ENV = "HINDSIGHT_TEST_TSL_BINDIR"  # or its binaries: the tests start a cluster of their own
NO_TSL = (f"timescale edition not tested: neither {TSL_URL_ENV} (the URL of a timescale-edition "
          f"server) nor {TSL_BINDIR_ENV} (its binaries, e.g. /opt/pg15full/bin) is set; "
          "see docs/operations.md, 'Testing against the timescale edition'")
TSL_MARK = "tsl"  # every test that uses the tsl_url fixture carries it (tests/conftest.py)


def server_description(url: str) -> str:
    """'PostgreSQL 15.20, TimescaleDB 2.28.3 (timescale edition)': what the TSL tests ran on.
    Refuses a server that does not run the timescale edition."""
    with psycopg.connect(url, autocommit=True) as conn:
        license_ = conn.execute("SHOW timescaledb.license").fetchone()[0]
        version = conn.execute("SHOW server_version").fetchone()[0].split()[0]
        tsdb = conn.execute("SELECT default_version FROM pg_available_extensions "
                            "WHERE name = 'timescaledb'").fetchone()[0]
    if license_ != "timescale":
        raise RuntimeError(f"{url} runs TimescaleDB's {license_} edition; the TSL tests need the "
                           "timescale edition (timescaledb.license = 'timescale')")
    return f"PostgreSQL {version}, TimescaleDB {tsdb} (timescale edition)"


def _tsl_cluster(bindir: Path):
    """A throw-away cluster of the timescale-edition binaries in `bindir`."""
    import testing.postgresql

    from hindsight import pgcluster

    bins = {name: str(bindir / name) for name in ("initdb", "postgres")}
    if os.geteuid() == 0:  # as pgcluster.binaries() does: run them as postgres
        wrappers = Path(tempfile.mkdtemp(prefix="hindsight-tslbin-"))
        for name in bins:
            (wrappers / name).write_text(pgcluster._WRAPPER.format(real=bindir / name))
            (wrappers / name).chmod(0o755)
            bins[name] = str(wrappers / name)
    # Policies are background workers: room for them (PostgreSQL's default of 8 worker
    # processes leaves TimescaleDB's jobs "failed to start"), as /opt/pg15full/start-cluster.sh.
    options = " ".join(pgcluster.SERVER_OPTIONS) + (" -c timescaledb.license=timescale"
                                                     " -c max_worker_processes=27"
                                                     " -c timescaledb.max_background_workers=16")
    return testing.postgresql.Postgresql(initdb=bins["initdb"], postgres=bins["postgres"],
                                         postgres_args=f"-h 127.0.0.1 -F -c logging_collector=off {options}")


@contextmanager
def tsl_server() -> Iterator[str | None]:
    """The URL of the configured timescale-edition server (None when there is none)."""
    url = os.environ.get(TSL_URL_ENV, "").strip()
    bindir = os.environ.get(TSL_BINDIR_ENV, "").strip()
    if url:
        yield url
    elif bindir:
        cluster = _tsl_cluster(Path(bindir))
        try:
            yield cluster.url()
        finally:
            cluster.stop()
    else:
        yield None


def tsl_summary(reports: list, description: str | None) -> str | None:
    """One line for pytest's terminal summary: whether the TSL tests ran, on what, or why not."""
    tsl = [r for r in reports if TSL_MARK in getattr(r, "keywords", {})
           and (r.when == "call" or r.outcome == "skipped" or (r.when == "setup" and r.failed))]
    if not tsl:
        return None
    outcomes = Counter(r.outcome for r in tsl)
    counts = ", ".join(f"{n} {outcome}" for outcome, n in sorted(outcomes.items()))
    if description is not None:
        return f"timescale-edition tests: {counts}, on {description}"
    reasons = {r.longrepr[2].removeprefix("Skipped: ") for r in tsl
               if r.outcome == "skipped" and isinstance(r.longrepr, tuple)}
    return f"timescale-edition tests: {counts} — " + ("; ".join(sorted(reasons)) or "no server")


def wait_for(condition, timeout: float = 60.0, interval: float = 0.2):
    """Poll `condition()` until it returns something true; return that (or fail)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"still false after {timeout} s: {condition}")
        time.sleep(interval)


# ----------------------------------------------------------------- databases and rows


@contextmanager
def fresh_database(server_url: str, prefix: str = "lc", **migrate_kwargs):
    """A new, migrated database on the server of `server_url`; dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    admin = server_url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = server_url.rsplit("/", 1)[0] + "/" + name
    try:
        migrate(url, **migrate_kwargs)
        yield url
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def connect(url: str) -> psycopg.Connection:
    return psycopg.connect(url, autocommit=True, row_factory=dict_row)


def new_account(conn: psycopg.Connection, retention_days: int | None = None) -> tuple[uuid.UUID, str]:
    domain = f"site-{uuid.uuid4().hex[:8]}.example"
    account = create_account(conn, "Lifecycle", domain, None)
    if retention_days is not None:
        conn.execute("UPDATE accounts SET events_retention_days = %s WHERE account_id = %s",
                     (retention_days, account["account_id"]))
    return uuid.UUID(str(account["account_id"])), domain


def add_session(conn: psycopg.Connection, account_id: uuid.UUID, host: str, started_at: datetime, *,
                referrer: str | None = None, device_type: str | None = "desktop",
                browser: str | None = "Firefox", os: str | None = "Linux",
                created_at: datetime | None = None) -> uuid.UUID:
    session_id = uuid.uuid4()
    conn.execute(
        """
        INSERT INTO sessions (session_id, account_id, host, started_at, last_activity_at, referrer,
                              device_type, browser, os, created_at)
        VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, coalesce(%s, now()))
        """, (session_id, account_id, host, started_at, started_at, referrer, device_type, browser,
              os, created_at))
    return session_id


def add_events(conn: psycopg.Connection, session_id: uuid.UUID, account_id: uuid.UUID, host: str,
               events: list[tuple], first_seq: int = 0) -> int:
    """Store (timestamp, event_type, page_url[, event_data]) events once each (re-sent
    seqs are skipped)."""
    rows = [(session_id, first_seq + i, e[0], account_id, host, e[1], e[2],
             Jsonb(e[3]) if len(e) > 3 else None)
            for i, e in enumerate(events)]
    with conn.cursor() as cur:
        cur.executemany(
            'INSERT INTO events (session_id, seq, "timestamp", account_id, host, event_type, page_url, '
            "event_data) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING", rows)
    if events:
        conn.execute("UPDATE sessions SET last_activity_at = greatest(last_activity_at, %s), "
                     "event_count = event_count + %s WHERE session_id = %s",
                     (max(e[0] for e in events), len(events), session_id))
    return len(rows)


def network(method: str, url: str, duration_ms, status=200) -> dict:
    """The event_data of a network event, as tracker.js sends it."""
    return {"kind": "fetch", "method": method, "url": url, "status": status, "duration_ms": duration_ms}


def add_screenshot(conn: psycopg.Connection, session_id: uuid.UUID, account_id: uuid.UUID, host: str,
                   ts: datetime, content: bytes, *, image_created_at: datetime | None = None) -> int:
    import hashlib

    digest = hashlib.sha256(content).digest()
    conn.execute(
        "INSERT INTO screenshot_images (content_hash, image_data, image_format, image_width, "
        "image_height, file_size, created_at) VALUES (%s, %s, 'png', 1, 1, %s, coalesce(%s, now())) "
        "ON CONFLICT (content_hash) DO NOTHING", (digest, content, len(content), image_created_at))
    return conn.execute(
        'INSERT INTO screenshots (session_id, account_id, host, "timestamp", content_hash) '
        "VALUES (%s, %s, %s, %s, %s) RETURNING screenshot_id",
        (session_id, account_id, host, ts, digest)).fetchone()["screenshot_id"]


def add_image(conn: psycopg.Connection, content: bytes, created_at: datetime | None = None) -> bytes:
    import hashlib

    digest = hashlib.sha256(content).digest()
    conn.execute(
        "INSERT INTO screenshot_images (content_hash, image_data, image_format, image_width, "
        "image_height, file_size, created_at) VALUES (%s, %s, 'png', 1, 1, %s, coalesce(%s, now()))",
        (digest, content, len(content), created_at))
    return digest


# ----------------------------------------------------------------- direct aggregates

# What each roll-up holds, from the raw rows, per bucket width.
_EVENTS = """
        SELECT time_bucket(INTERVAL '{width}', "timestamp") AS bucket, account_id, host, event_type, count(*) AS n
        FROM events WHERE account_id = ANY(%s) GROUP BY 1, 2, 3, 4"""
_PAGES = """
        SELECT time_bucket(INTERVAL '{width}', "timestamp") AS bucket, account_id, host,
               hindsight_url_path(page_url) AS path, count(*) FILTER (WHERE event_type = 'page_view') AS v,
               count(*) FILTER (WHERE event_type = 'click') AS c, count(*) FILTER (WHERE event_type = 'error') AS e
        FROM events WHERE account_id = ANY(%s) AND page_url IS NOT NULL
          AND event_type IN ('page_view', 'click', 'error') GROUP BY 1, 2, 3, 4"""
_NETWORK = """
        SELECT time_bucket(INTERVAL '{width}', "timestamp") AS bucket, account_id, host,
               hindsight_network_method(event_data) AS method, hindsight_network_url(event_data) AS url,
               hindsight_duration_bucket(hindsight_network_duration(event_data)) AS duration_bucket,
               count(*) AS n, count(*) FILTER (WHERE hindsight_network_failed(event_data)) AS f,
               min(hindsight_network_duration(event_data)) AS lo, max(hindsight_network_duration(event_data)) AS hi
        FROM events WHERE account_id = ANY(%s) AND event_type = 'network'
          AND hindsight_network_duration(event_data) IS NOT NULL GROUP BY 1, 2, 3, 4, 5, 6"""
_WIDTHS = {"hourly": "1 hour", "daily": "1 day", "weekly": "7 days", "4weekly": "28 days"}

DIRECT = {
    **{f"events_{w}": _EVENTS.format(width=_WIDTHS[w]) for w in ("hourly", "daily")},
    **{f"pages_{w}": _PAGES.format(width=_WIDTHS[w]) for w in ("hourly", "daily", "weekly")},
    **{f"network_{w}": _NETWORK.format(width=_WIDTHS[w]) for w in ("hourly", "daily", "weekly", "4weekly")},
    "sessions_daily": """
        SELECT time_bucket(INTERVAL '1 day', started_at) AS bucket, account_id, host, d.dimension, d.value,
               count(*) AS n
        FROM sessions CROSS JOIN LATERAL (VALUES
            ('referrer', coalesce(hindsight_referrer_host(referrer, host), '')),
            ('device_type', coalesce(device_type, '')), ('browser', coalesce(browser, '')),
            ('os', coalesce(os, ''))) AS d (dimension, value)
        WHERE account_id = ANY(%s) GROUP BY 1, 2, 3, 4, 5""",
}

# What the views hold, one row per key: on the timescale edition a key can appear twice in a
# view (its continuous aggregate's row and its archive's, timescale/0006), and readers sum.
_SUMS = {"events": "event_type, sum(events) AS n", "pages": "path, sum(page_views) AS v, sum(clicks) AS c, "
         "sum(errors) AS e", "network": "method, url, duration_bucket, sum(requests) AS n, sum(failures) AS f, "
         "min(min_ms) AS lo, max(max_ms) AS hi"}
_VIEW = """
        SELECT bucket, account_id, host, {sums} FROM {view} WHERE account_id = ANY(%s)
        GROUP BY bucket, account_id, host, {keys}"""
VIEW = {
    **{name: _VIEW.format(sums=_SUMS[name.split("_")[0]], view=name,
                          keys=_SUMS[name.split("_")[0]].split(", sum(")[0])
       for name in DIRECT if name.split("_")[0] in _SUMS},
    "sessions_daily": "SELECT bucket, account_id, host, dimension, value, sessions AS n FROM sessions_daily "
                      "WHERE account_id = ANY(%s)",
}


def _counter(rows) -> Counter:
    """Rows as a multiset of tuples; a key that appears twice (double counting) shows up."""
    return Counter(tuple(r.values()) for r in rows)


def direct(conn: psycopg.Connection, rollup: str, accounts: list[uuid.UUID]) -> Counter:
    return _counter(conn.execute(DIRECT[rollup], (accounts,)).fetchall())


def view(conn: psycopg.Connection, rollup: str, accounts: list[uuid.UUID]) -> Counter:
    # Rows whose counts are all zero carry nothing (a page with only other event types).
    return _counter(r for r in conn.execute(VIEW[rollup], (accounts,)).fetchall())


def views(conn: psycopg.Connection, accounts: list[uuid.UUID]) -> dict[str, Counter]:
    return {name: view(conn, name, accounts) for name in VIEW}


def directs(conn: psycopg.Connection, accounts: list[uuid.UUID]) -> dict[str, Counter]:
    return {name: direct(conn, name, accounts) for name in DIRECT}


def hours_ago(now: datetime, hours: float) -> datetime:
    return now - timedelta(hours=hours)
