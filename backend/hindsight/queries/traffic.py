"""Traffic, read from the roll-ups — never from the raw events: series, event types, top
pages and breakdowns (GET /api/v1/stats/..., the overview, the heatmaps' page list), the
pages with the most errors and the slowest network endpoints (the overview).

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
from . import rollup_rows

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


# ------------------------------------------------------------------ from the stores
# On the Apache edition the roll-ups are stores Hindsight refreshes (hindsight.lifecycle.
# rollups) behind views that add the newest buckets computed from the raw events; a reader
# of the views plans them nested (a daily view holds the hourly one) and computes those
# buckets once per reference, for every account: up to 37 ms of planning and five raw tails
# for the network query at 90 days (issue 12). There the readers below take the stores'
# rows with the watermarks as values (hindsight.queries.rollup_rows) and compute the tail
# once, for one account. The timescale edition's roll-ups are continuous aggregates (no
# watermark rows): read through their views, as before.

def _tail(prefix: str) -> sql.Composable:
    """The hourly roll-up's rows after its watermark for one account: the refresh's own
    SELECT (hindsight.lifecycle.rollups) from the watermark to the range's end."""
    from ..lifecycle import rollups  # the refresh's SQL; imported late (lifecycle imports queries)

    source = {"events": rollups.EVENTS_HOURLY, "pages": rollups.PAGES_HOURLY,
              "network": rollups.NETWORK_HOURLY}[prefix].source
    return sql.SQL("(SELECT * FROM ({source}) AS t WHERE account_id = %(account_id)s) AS tail").format(
        source=sql.SQL(source.replace("%(start)s", f"%({prefix}_hcut)s")))


def _store_rows(prefix: str, columns: str, host: str | None) -> sql.Composable:
    return rollup_rows.rows(prefix, columns, "", host, _tail(prefix), weekly=prefix in ("network", "pages"),
                            blocks=prefix == "network")


def _stores(conn: Conn, prefix: str) -> bool:
    return rollup_rows.has_stores(conn, prefix)


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
    seconds = int(width.total_seconds())
    _serial(conn)
    if _stores(conn, "events"):
        params = rollup_rows.params(conn, account_id, rng, host, ("events",), weeks=False,
                                    hours_only=interval == "hour", width=seconds)
        source = sql.SQL("(SELECT time_bucket(%(width)s * INTERVAL '1 second', bucket) AS bucket, account_id, "
                         "host, event_type, events FROM ({rows}) AS x) AS series_rows").format(
            rows=_store_rows("events", "bucket, account_id, host, event_type, events", host))
        return conn.execute(sql.SQL(SERIES).format(rollup=source, host=sql.SQL("")), params).fetchall()
    query = sql.SQL(SERIES).format(rollup=sql.Identifier(rollup), host=_host(host))
    return conn.execute(query, {"account_id": account_id, "start": rng.start, "end": rng.end,
                                "width": seconds, "host": host}).fetchall()


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


# The same with a weekly roll-up (pages: sql/migrations/0037; network, after its 28-day
# blocks: `_BLOCKS`): its whole weeks (less those of whole blocks, [block0, block1)),
# the days around them, the hours at either end (parameters: `_weeks_params`). Each view
# named once: a view over continuous aggregates costs 1-3 ms to plan.
_WEEKLY_SPLIT = """
    SELECT {columns} FROM {weekly}
    WHERE account_id = %(account_id)s AND (bucket >= %(week0)s AND bucket < %(block0)s
                                           OR bucket >= %(block1)s AND bucket < %(week1)s)
    UNION ALL
    SELECT {columns} FROM {daily}
    WHERE account_id = %(account_id)s AND (bucket >= %(day0)s AND bucket < %(week0)s
                                           OR bucket >= %(week1)s AND bucket < %(day1)s)
    UNION ALL
    SELECT {columns} FROM {hourly}
    WHERE account_id = %(account_id)s AND (bucket >= %(start)s AND bucket < %(day0)s
                                           OR bucket >= %(day1)s AND bucket < %(end)s)
"""


# In front of it, the 28-day rows of whole blocks (network: sql/migrations/0038; a 90-day
# range reads 2-3 blocks + 0-6 weeks + up to 12 days + 46 hours of rows instead of 90 days).
_BLOCKS = """
    SELECT {columns} FROM {blocks}
    WHERE account_id = %(account_id)s AND bucket >= %(block0)s AND bucket < %(block1)s
    UNION ALL"""


def _weekly_split(prefix: str, columns: str, blocks: bool = False) -> sql.Composable:
    return sql.SQL((_BLOCKS if blocks else "") + _WEEKLY_SPLIT).format(
        columns=sql.SQL(columns), blocks=sql.Identifier(f"{prefix}_4weekly"),
        weekly=sql.Identifier(f"{prefix}_weekly"), daily=sql.Identifier(f"{prefix}_daily"),
        hourly=sql.Identifier(f"{prefix}_hourly"))


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


# ------------------------------------------------------------------ the overview's lists

def _weeks_params(account_id: uuid.UUID, start: datetime, end: datetime, blocks: bool = False, **more) -> dict:
    """`_WEEKLY_SPLIT`'s bounds over the whole hours of [start, end): weeks start on Monday
    00:00 UTC, as time_bucket('7 days', ...) cuts them; 28-day blocks (`blocks`) from the same
    Monday (time_bucket('28 days', ...)), 4 whole weeks each."""
    hours = hour_range(start, end)
    day0, day1 = hours.whole_days()
    week0 = rollup_rows.week_ceil(day0)
    week1 = rollup_rows.week_floor(day1)
    if week0 >= week1:
        week0 = week1 = day0
    block0, block1 = rollup_rows.block_ceil(week0), rollup_rows.block_floor(week1)
    if not blocks or block0 >= block1:
        block0 = block1 = week0
    return {"account_id": account_id, "start": hours.start, "end": hours.end, "day0": day0, "day1": day1,
            "week0": week0, "week1": week1, "block0": block0, "block1": block1, **more}


# Per endpoint: its duration histogram over the range, merged from the network roll-ups
# (sql/migrations/0021), and the nearest-rank percentiles read off it, each within 5 % of
# the exact one. Cheap to merge (issue 12, docs/DECISIONS.md "The overview, fifth round"):
# each endpoint's counts and estimates go into two arrays in bucket order (a sort of its
# ~50 rows by a smallint, not of all ~2,000 rows by their URLs for two windows), and its
# ranks are read off their running sum: p50 at the first bucket where 2 * up_to >= total,
# p95 where 20 * up_to >= 19 * total — the same as up_to >= ceil(0.5 * total) and up_to >=
# ceil(0.95 * total) in whole numbers (bigint, not numeric, arithmetic). Estimates grow
# with the bucket, so the first such bucket's is the smallest. The estimate is inlined (0038).
SLOWEST_ENDPOINTS = """
WITH histogram AS (
    SELECT method, url, duration_bucket, sum(requests)::bigint AS requests, sum(failures)::bigint AS failures,
           min(min_ms) AS min_ms, max(max_ms) AS max_ms
    FROM ({rows}) AS x
    GROUP BY 1, 2, 3
), endpoints AS (
    SELECT method, url, sum(requests)::bigint AS total, sum(failures)::bigint AS failures,
           array_agg(requests ORDER BY duration_bucket) AS counts,
           array_agg(hindsight_duration_estimate(duration_bucket, min_ms, max_ms) ORDER BY duration_bucket)
               AS estimates
    FROM histogram
    GROUP BY method, url
), ranked AS (
    SELECT e.method, e.url, e.total, e.failures, r.p50_ms, r.p95_ms
    FROM endpoints AS e
    CROSS JOIN LATERAL (
        SELECT min(u.estimate) FILTER (WHERE 2 * u.up_to >= e.total) AS p50_ms,
               min(u.estimate) FILTER (WHERE 20 * u.up_to >= 19 * e.total) AS p95_ms
        FROM (SELECT v.estimate, (sum(v.requests) OVER (ORDER BY v.i))::bigint AS up_to
              FROM unnest(e.counts, e.estimates) WITH ORDINALITY AS v (requests, estimate, i)) AS u
    ) AS r
)
SELECT nullif(method, '') AS method, nullif(url, '') AS url, total AS requests, p50_ms, p95_ms, failures
FROM ranked
ORDER BY p95_ms DESC, requests DESC, method, url
LIMIT %(limit)s
"""


def slowest_endpoints(conn: Conn, account_id: uuid.UUID, start: datetime,
                      end: datetime, limit: int = 10) -> list[dict]:
    """The network endpoints the account's pages waited longest for (p95), from the network
    roll-ups, over the whole hours that cover [start, end).

    p50 and p95 are the nearest-rank percentiles (percentile_disc) within 5 % (or 1 ms);
    exact when the durations around them are equal (sql/migrations/0021).
    """
    columns = "method, url, duration_bucket, requests, failures, min_ms, max_ms"
    _serial(conn)
    if _stores(conn, "network"):
        query = sql.SQL(SLOWEST_ENDPOINTS).format(rows=_store_rows("network", columns, None))
        return conn.execute(query, rollup_rows.params(conn, account_id, hour_range(start, end), None,
                                                      ("network",), limit=limit)).fetchall()
    materialized = _materialized(conn)
    if materialized is not None:
        tables, marks = materialized
        query = sql.SQL(SLOWEST_ENDPOINTS).format(rows=sql.SQL(rollup_rows.SPLIT_BLOCKS).format(
            columns=sql.SQL(columns), where=sql.SQL(""), tail=_tail("network"), p=sql.SQL("network"), **tables))
        return conn.execute(query, rollup_rows.params(conn, account_id, hour_range(start, end), None,
                                                      ("network",), marks=marks, limit=limit)).fetchall()
    query = sql.SQL(SLOWEST_ENDPOINTS).format(rows=_weekly_split("network", columns, blocks=True))
    return conn.execute(query, _weeks_params(account_id, start, end, blocks=True, limit=limit)).fetchall()


# The timescale edition's network roll-ups are continuous aggregates (timescale/0004, 0008):
# through their views a 90-day read cost ~12 ms of planning (each view = a real-time
# aggregate over the next finer one, down to the compressed raw chunks, + its archive) for
# ~11 ms of work. Read like the Apache edition's stores instead (hindsight.queries.
# rollup_rows): each aggregate's materialized rows up to its watermark (TimescaleDB's own:
# what its real-time view reads from the materialization too), with its archive; the hours
# after the hourly one's watermark from the raw events, as the real-time part computes them.
# The same rows the views give; plain hypertables to plan.
_MATERIALIZED = """
SELECT ca.user_view_name AS cagg, h.schema_name, h.table_name,
       CASE WHEN w.t > '0001-01-01' THEN w.t END AS watermark
FROM _timescaledb_catalog.continuous_agg ca
JOIN _timescaledb_catalog.hypertable h ON h.id = ca.mat_hypertable_id
CROSS JOIN LATERAL (SELECT _timescaledb_functions.to_timestamp(
                        _timescaledb_functions.cagg_watermark(ca.mat_hypertable_id)) AS t) w
WHERE ca.user_view_schema = 'public' AND ca.user_view_name = ANY(%s)
"""
_LEVELS = {"hourly": "hourly", "daily": "daily", "weekly": "weekly", "4weekly": "blocks"}


def _materialized(conn: Conn) -> tuple[dict[str, sql.Composable], dict[str, datetime]] | None:
    """Per level of the network aggregates: its rows up to the watermark (materialization
    hypertable + archive) as a row source, and the watermarks; None without all four (the
    views are read then)."""
    from ..lifecycle import rollups  # imported late (lifecycle imports queries)

    names = [f"network_{level}_cagg" for level in _LEVELS]
    found = {r["cagg"]: r for r in conn.execute(_MATERIALIZED, (names,)).fetchall()}
    if set(found) != set(names):
        return None
    tables: dict[str, sql.Composable] = {}
    marks: dict[str, datetime] = {}
    for level, placeholder in _LEVELS.items():
        row = found[f"network_{level}_cagg"]
        tables[placeholder] = sql.SQL("(SELECT {columns} FROM {mat} UNION ALL SELECT {columns} FROM {store}) AS {name}").format(
            columns=sql.SQL(", ").join(map(sql.Identifier, rollups.NETWORK_COLUMNS)),
            mat=sql.Identifier(row["schema_name"], row["table_name"]),
            store=sql.Identifier(f"network_{level}_store"), name=sql.Identifier(placeholder))
        if row["watermark"] is not None:
            marks[f"network_{level}"] = row["watermark"]
    return tables, marks


# The overview's two lists of pages from one read of the pages roll-ups (daily rows for the
# range's whole days, hourly rows for its ends): the most viewed, and the most errors.
PAGE_LISTS = """
WITH pages AS (
    SELECT host, path, sum(page_views)::bigint AS page_views, sum(clicks)::bigint AS clicks,
           sum(errors)::bigint AS errors
    FROM ({rows}) AS x
    GROUP BY host, path
), most_viewed AS (
    SELECT 'most_viewed' AS list, * FROM pages
    ORDER BY page_views DESC, clicks DESC, host, path LIMIT %(limit)s
), most_errors AS (
    SELECT 'most_errors' AS list, * FROM pages WHERE errors > 0
    ORDER BY errors DESC, host, path LIMIT %(limit)s
)
SELECT * FROM most_viewed
UNION ALL
SELECT * FROM most_errors
"""


def page_lists(conn: Conn, account_id: uuid.UUID, rng: Range, limit: int) -> tuple[list[dict], list[dict]]:
    """The most viewed pages (as `top_pages`) and the pages with the most errors over the
    range (whole hours), read once: (top pages, error pages)."""
    columns = "host, path, page_views, clicks, errors"
    _serial(conn)
    if _stores(conn, "pages"):
        query = sql.SQL(PAGE_LISTS).format(rows=_store_rows("pages", columns, None))
        rows = conn.execute(query, rollup_rows.params(conn, account_id, rng, None, ("pages",),
                                                      limit=limit)).fetchall()
    else:
        query = sql.SQL(PAGE_LISTS).format(rows=_weekly_split("pages", columns))
        rows = conn.execute(query, _weeks_params(account_id, rng.start, rng.end, limit=limit)).fetchall()
    top = [{k: r[k] for k in ("host", "path", "page_views", "clicks", "errors")}
           for r in rows if r["list"] == "most_viewed"]
    errors = [{k: r[k] for k in ("host", "path", "errors", "page_views")}
              for r in rows if r["list"] == "most_errors"]
    return top, errors
