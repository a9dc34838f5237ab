"""Dashboard statistics, read from the roll-ups — never from the raw events.

Time ranges are whole UTC hours (`hour_range`) or whole UTC days (`day_range`), the
buckets of the roll-ups. Totals over a range read the daily roll-up for its whole days
and the hourly one for the hours at either end, so a 30-day total reads about 30 rows
per group, not 720. Breakdowns by session attributes (referrer, device type, browser,
OS) read `sessions_daily` and count the sessions started in the range's days.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from psycopg import sql

from ..db import Conn

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
DIMENSIONS = ("referrer", "device_type", "browser", "os")


@dataclass(frozen=True)
class Range:
    """[start, end): both on bucket boundaries."""

    start: datetime
    end: datetime

    def whole_days(self) -> tuple[datetime, datetime]:
        """The whole days inside the range, [first, last); empty (first == last) if none."""
        first, last = _ceil(self.start, DAY), _floor(self.end, DAY)
        return (first, last) if first < last else (self.start, self.start)


def _floor(t: datetime, width: timedelta) -> datetime:
    t = t.astimezone(UTC)
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + ((t - epoch) // width) * width


def _ceil(t: datetime, width: timedelta) -> datetime:
    floor = _floor(t, width)
    return floor if floor == t else floor + width


def hour_range(start: datetime, end: datetime) -> Range:
    return Range(_floor(start, HOUR), _ceil(end, HOUR))


def day_range(start: datetime, end: datetime) -> Range:
    return Range(_floor(start, DAY), _ceil(end, DAY))


def _serial(conn: Conn) -> None:
    # These read a few thousand roll-up rows: starting parallel workers costs more than
    # it saves (measured in bench/stats.py). LOCAL: only this request's transaction.
    conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")


def _host(host: str | None) -> sql.Composable:
    return sql.SQL("AND host = %(host)s") if host is not None else sql.SQL("")


# One row per bucket of the range (zero when nothing happened), with the event types
# the dashboard charts. Sessions are counted by their session_start event.
SERIES = """
WITH r AS (
    SELECT bucket, sum(events) AS events,
           sum(events) FILTER (WHERE event_type = 'session_start') AS sessions,
           sum(events) FILTER (WHERE event_type = 'page_view') AS page_views,
           sum(events) FILTER (WHERE event_type = 'click') AS clicks,
           sum(events) FILTER (WHERE event_type = 'error') AS errors
    FROM {rollup}
    WHERE account_id = %(account_id)s AND bucket >= %(start)s AND bucket < %(end)s {host}
    GROUP BY bucket
)
SELECT g.bucket, coalesce(r.events, 0)::bigint AS events, coalesce(r.sessions, 0)::bigint AS sessions,
       coalesce(r.page_views, 0)::bigint AS page_views, coalesce(r.clicks, 0)::bigint AS clicks,
       coalesce(r.errors, 0)::bigint AS errors
FROM generate_series(%(start)s::timestamptz, %(end)s::timestamptz - %(width)s * INTERVAL '1 second',
                     %(width)s * INTERVAL '1 second') AS g (bucket)
LEFT JOIN r ON r.bucket = g.bucket
ORDER BY g.bucket
"""


def series(conn: Conn, account_id: uuid.UUID, rng: Range, interval: str,
           host: str | None = None) -> list[dict]:
    """Events, sessions, page views, clicks and errors per hour or per day."""
    rollup, width = ("events_hourly", HOUR) if interval == "hour" else ("events_daily", DAY)
    query = sql.SQL(SERIES).format(rollup=sql.Identifier(rollup), host=_host(host))
    _serial(conn)
    return conn.execute(query, {"account_id": account_id, "start": rng.start, "end": rng.end,
                                "width": int(width.total_seconds()), "host": host}).fetchall()


# Rows of a daily roll-up for the range's whole days + its hourly twin for the ends.
_SPLIT = """
    SELECT {columns} FROM {daily}
    WHERE account_id = %(account_id)s AND bucket >= %(day0)s AND bucket < %(day1)s {host}
    UNION ALL
    SELECT {columns} FROM {hourly}
    WHERE account_id = %(account_id)s AND bucket >= %(start)s AND bucket < %(day0)s {host}
    UNION ALL
    SELECT {columns} FROM {hourly}
    WHERE account_id = %(account_id)s AND bucket >= %(day1)s AND bucket < %(end)s {host}
"""


def _split(prefix: str, columns: str, host: str | None) -> sql.Composable:
    return sql.SQL(_SPLIT).format(columns=sql.SQL(columns), daily=sql.Identifier(f"{prefix}_daily"),
                                  hourly=sql.Identifier(f"{prefix}_hourly"), host=_host(host))


def _split_params(account_id: uuid.UUID, rng: Range, host: str | None, **more) -> dict:
    day0, day1 = rng.whole_days()
    return {"account_id": account_id, "start": rng.start, "end": rng.end, "day0": day0,
            "day1": day1, "host": host, **more}


def event_types(conn: Conn, account_id: uuid.UUID, rng: Range,
                host: str | None = None) -> list[dict]:
    """Events per type over the range, most frequent first."""
    query = sql.SQL("SELECT event_type, sum(events)::bigint AS events FROM ({rows}) AS x "
                    "GROUP BY event_type ORDER BY events DESC, event_type").format(
        rows=_split("events", "event_type, events", host))
    _serial(conn)
    return conn.execute(query, _split_params(account_id, rng, host)).fetchall()


def top_pages(conn: Conn, account_id: uuid.UUID, rng: Range, limit: int,
              host: str | None = None) -> list[dict]:
    """The most viewed pages (host + path) with their clicks and errors."""
    query = sql.SQL(
        "SELECT host, path, sum(page_views)::bigint AS page_views, sum(clicks)::bigint AS clicks, "
        "sum(errors)::bigint AS errors FROM ({rows}) AS x GROUP BY host, path "
        "ORDER BY page_views DESC, clicks DESC, host, path LIMIT %(limit)s").format(
        rows=_split("pages", "host, path, page_views, clicks, errors", host))
    _serial(conn)
    return conn.execute(query, _split_params(account_id, rng, host, limit=limit)).fetchall()


BREAKDOWN = """
SELECT nullif(value, '') AS value, sum(sessions)::bigint AS sessions,
       sum(sum(sessions)) OVER ()::bigint AS total
FROM sessions_daily
WHERE account_id = %(account_id)s AND dimension = %(dimension)s
  AND bucket >= %(start)s AND bucket < %(end)s {host}
GROUP BY value
ORDER BY sessions DESC, value
LIMIT %(limit)s
"""


def breakdown(conn: Conn, account_id: uuid.UUID, dimension: str, rng: Range,
              limit: int, host: str | None = None) -> dict:
    """Sessions started in the range by referrer host, device type, browser or OS.

    `value` None means unknown (for referrers: direct, or from the site itself).
    """
    if dimension not in DIMENSIONS:
        raise ValueError(f"unknown dimension {dimension!r}")
    _serial(conn)
    rows = conn.execute(sql.SQL(BREAKDOWN).format(host=_host(host)), {
        "account_id": account_id, "dimension": dimension, "start": rng.start, "end": rng.end,
        "limit": limit, "host": host}).fetchall()
    total = rows[0]["total"] if rows else 0
    return {"total": total, "data": [{"value": r["value"], "sessions": r["sessions"]} for r in rows]}
