"""Helpers for the lifecycle tests: throw-away databases, rows written straight into
the tables (with chosen timestamps), and direct aggregates over the raw rows."""

from __future__ import annotations

import uuid
from collections import Counter
from contextlib import contextmanager
from datetime import datetime, timedelta

import psycopg
from psycopg.rows import dict_row

from hindsight.migrate import migrate
from hindsight.queries.tenancy import create_account


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
               events: list[tuple[datetime, str, str | None]], first_seq: int = 0) -> int:
    """Store (timestamp, event_type, page_url) events once each (re-sent seqs are skipped)."""
    rows = [(session_id, first_seq + i, ts, account_id, host, kind, url)
            for i, (ts, kind, url) in enumerate(events)]
    with conn.cursor() as cur:
        cur.executemany(
            'INSERT INTO events (session_id, seq, "timestamp", account_id, host, event_type, page_url) '
            "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING", rows)
    if events:
        conn.execute("UPDATE sessions SET last_activity_at = greatest(last_activity_at, %s), "
                     "event_count = event_count + %s WHERE session_id = %s",
                     (max(ts for ts, _, _ in events), len(events), session_id))
    return len(rows)


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

DIRECT = {
    "events_hourly": """
        SELECT time_bucket(INTERVAL '1 hour', "timestamp") AS bucket, account_id, host, event_type, count(*) AS n
        FROM events WHERE account_id = ANY(%s) GROUP BY 1, 2, 3, 4""",
    "events_daily": """
        SELECT time_bucket(INTERVAL '1 day', "timestamp") AS bucket, account_id, host, event_type, count(*) AS n
        FROM events WHERE account_id = ANY(%s) GROUP BY 1, 2, 3, 4""",
    "pages_hourly": """
        SELECT time_bucket(INTERVAL '1 hour', "timestamp") AS bucket, account_id, host,
               hindsight_url_path(page_url) AS path, count(*) FILTER (WHERE event_type = 'page_view') AS v,
               count(*) FILTER (WHERE event_type = 'click') AS c, count(*) FILTER (WHERE event_type = 'error') AS e
        FROM events WHERE account_id = ANY(%s) AND page_url IS NOT NULL
          AND event_type IN ('page_view', 'click', 'error') GROUP BY 1, 2, 3, 4""",
    "pages_daily": """
        SELECT time_bucket(INTERVAL '1 day', "timestamp") AS bucket, account_id, host,
               hindsight_url_path(page_url) AS path, count(*) FILTER (WHERE event_type = 'page_view') AS v,
               count(*) FILTER (WHERE event_type = 'click') AS c, count(*) FILTER (WHERE event_type = 'error') AS e
        FROM events WHERE account_id = ANY(%s) AND page_url IS NOT NULL
          AND event_type IN ('page_view', 'click', 'error') GROUP BY 1, 2, 3, 4""",
    "sessions_daily": """
        SELECT time_bucket(INTERVAL '1 day', started_at) AS bucket, account_id, host, d.dimension, d.value,
               count(*) AS n
        FROM sessions CROSS JOIN LATERAL (VALUES
            ('referrer', coalesce(hindsight_referrer_host(referrer, host), '')),
            ('device_type', coalesce(device_type, '')), ('browser', coalesce(browser, '')),
            ('os', coalesce(os, ''))) AS d (dimension, value)
        WHERE account_id = ANY(%s) GROUP BY 1, 2, 3, 4, 5""",
}

VIEW = {
    "events_hourly": "SELECT bucket, account_id, host, event_type, events AS n FROM events_hourly "
                     "WHERE account_id = ANY(%s)",
    "events_daily": "SELECT bucket, account_id, host, event_type, events AS n FROM events_daily "
                    "WHERE account_id = ANY(%s)",
    "pages_hourly": "SELECT bucket, account_id, host, path, page_views AS v, clicks AS c, errors AS e "
                    "FROM pages_hourly WHERE account_id = ANY(%s)",
    "pages_daily": "SELECT bucket, account_id, host, path, page_views AS v, clicks AS c, errors AS e "
                   "FROM pages_daily WHERE account_id = ANY(%s)",
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
