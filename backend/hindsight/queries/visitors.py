"""Visitors: the daily salts (hindsight.visitors) and the unique-visitor statistics read
from the visitor roll-ups (sql/migrations/0023)."""

from __future__ import annotations

import uuid
from datetime import date

from psycopg import sql

from ..db import Conn, one
from .traffic import Range


def salt(conn: Conn, day: date, candidate: bytes) -> bytes:
    """The salt of `day`: `candidate` if this call created it, else the one that exists.
    Concurrent callers all get the same salt: the loser's INSERT waits for the winner's
    commit, does nothing, and the SELECT (a new statement) sees the winner's row."""
    conn.execute("INSERT INTO visitor_salts (day, salt) VALUES (%s, %s) ON CONFLICT (day) DO NOTHING",
                 (day, candidate))
    return bytes(one(conn.execute("SELECT salt FROM visitor_salts WHERE day = %s", (day,)))["salt"])


def delete_salts_before(conn: Conn, day: date) -> int:
    """Delete the salts of the days before `day`; return how many."""
    with conn.transaction():
        return conn.execute("DELETE FROM visitor_salts WHERE day < %s", (day,)).rowcount


# ------------------------------------------------------------------ statistics
#
# Read from the visitor roll-ups (sql/migrations/0023) — never from the raw rows — like
# hindsight.queries.traffic: daily rows for a range's whole days, hourly rows for the hours at
# either end. Unique visitors of a range are the union of the buckets' HyperLogLog sketches
# (hll_union_agg), never a sum: exact up to 2,560 visitors, within about 0.6 % above.

# The rows of a range straight from the stores and one call of the roll-up's SQL function
# for the buckets after the hourly watermark (what the views do, without computing those
# buckets once per view reference and for every account): the daily store for the whole days
# it holds ([day0, dcut)), the hourly store up to the hourly watermark (hcut) for the hours at
# either end, the function from there. The watermarks are read first, so every bound is a
# value when the statement is planned (plain index range scans, chunks excluded).
_SPLIT = """
    SELECT {columns} FROM {daily}
    WHERE account_id = %(account_id)s AND bucket >= %(day0)s AND bucket < %({p}_dcut)s {where}
    UNION ALL
    SELECT {columns} FROM {hourly}
    WHERE account_id = %(account_id)s AND bucket >= %(start)s AND bucket < %({p}_end0)s {where}
    UNION ALL
    SELECT {columns} FROM {hourly}
    WHERE account_id = %(account_id)s AND bucket >= %({p}_dcut)s AND bucket < %({p}_end1)s {where}
    UNION ALL
    SELECT {columns} FROM {function}(%({p}_hcut)s, %(end)s, %(account_id)s)
    WHERE (bucket >= %(start)s AND bucket < %(day0)s OR bucket >= %({p}_dcut)s AND bucket < %(end)s) {where}
"""
_FUNCTIONS = {"visits": "hindsight_visits", "page_visits": "hindsight_page_visits"}

# The visitors of a set of rows' sketches, as a whole number.
CARDINALITY = "coalesce(round(hll_cardinality(hll_union_agg(visitors))), 0)::bigint"


def _rows(prefix: str, columns: str, where: str, host: str | None) -> sql.Composable:
    """The rows of roll-up `prefix` over the range (its bounds: `_params(..., prefixes)`)."""
    condition = sql.SQL(where + (" AND host = %(host)s" if host is not None else ""))
    return sql.SQL(_SPLIT).format(columns=sql.SQL(columns), daily=sql.Identifier(f"{prefix}_daily_store"),
                                  hourly=sql.Identifier(f"{prefix}_hourly_store"), where=condition,
                                  function=sql.Identifier(_FUNCTIONS[prefix]), p=sql.SQL(prefix))


_WATERMARKS = """
SELECT least(greatest(hindsight_rollup_watermark(%(hourly)s), %(start)s), %(end)s) AS hcut,
       least(greatest(hindsight_rollup_watermark(%(daily)s), %(day0)s), %(day1)s) AS dcut
"""


def _params(conn: Conn, account_id: uuid.UUID, rng: Range, host: str | None,
            prefixes: tuple[str, ...], **more) -> dict:
    day0, day1 = rng.whole_days()
    params = {"account_id": account_id, "start": rng.start, "end": rng.end, "day0": day0, "day1": day1,
              "host": host, **more}
    for prefix in prefixes:
        w = one(conn.execute(_WATERMARKS, {**params, "hourly": f"{prefix}_hourly", "daily": f"{prefix}_daily"}))
        # The daily store only below the hourly watermark too (a refresh fills hours first).
        dcut = max(day0, min(w["dcut"], _hour_floor_day(w["hcut"])))
        params.update({f"{prefix}_hcut": w["hcut"], f"{prefix}_dcut": dcut,
                       f"{prefix}_end0": min(day0, w["hcut"]), f"{prefix}_end1": min(rng.end, w["hcut"])})
    return params


def _hour_floor_day(t):
    return t.replace(hour=0, minute=0, second=0, microsecond=0)


def _serial(conn: Conn) -> None:
    # A few thousand roll-up rows: parallel workers cost more than they save (as traffic.py).
    conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")


def _ratio(part: float, whole: float) -> float | None:
    return round(part / whole, 4) if whole else None


def _seconds(total: float, count: float) -> float | None:
    return round(total / count, 1) if count else None


SUMMARY = """
SELECT {cardinality} AS visitors, coalesce(sum(sessions), 0)::bigint AS sessions,
       coalesce(sum(bounces), 0)::bigint AS bounces, coalesce(sum(duration_s), 0)::float8 AS duration_s,
       coalesce(sum(page_views), 0)::bigint AS page_views
FROM ({rows}) AS x
"""


def summary(conn: Conn, account_id: uuid.UUID, rng: Range, host: str | None = None) -> dict:
    """Visitors, sessions, bounce rate, average session duration and pages per session of the
    sessions started in the range (whole hours)."""
    _serial(conn)
    query = sql.SQL(SUMMARY).format(cardinality=sql.SQL(CARDINALITY), rows=_rows(
        "visits", "visitors, sessions, bounces, duration_s, page_views", "AND dimension = 'all'", host))
    row = one(conn.execute(query, _params(conn, account_id, rng, host, ("visits",))))
    return {"visitors": row["visitors"], "sessions": row["sessions"], "bounces": row["bounces"],
            "bounce_rate": _ratio(row["bounces"], row["sessions"]),
            "avg_session_duration_s": _seconds(row["duration_s"], row["sessions"]),
            "pages_per_session": _ratio(row["page_views"], row["sessions"])}


SERIES = """
WITH r AS (
    SELECT bucket, {cardinality} AS visitors, sum(sessions) AS sessions, sum(bounces) AS bounces
    FROM {rollup}
    WHERE account_id = %(account_id)s AND dimension = 'all' AND bucket >= %(start)s AND bucket < %(end)s {host}
    GROUP BY bucket
)
SELECT g.bucket, coalesce(r.visitors, 0)::bigint AS visitors, coalesce(r.bounces, 0)::bigint AS bounces
FROM generate_series(%(start)s::timestamptz, %(end)s::timestamptz - %(width)s * INTERVAL '1 second',
                     %(width)s * INTERVAL '1 second') AS g (bucket)
LEFT JOIN r ON r.bucket = g.bucket
ORDER BY g.bucket
"""


def series(conn: Conn, account_id: uuid.UUID, rng: Range, interval: str, host: str | None = None) -> list[dict]:
    """Visitors (with a session started in the bucket) and bounced sessions per hour or day."""
    rollup, width = ("visits_hourly", 3600) if interval == "hour" else ("visits_daily", 86400)
    _serial(conn)
    query = sql.SQL(SERIES).format(cardinality=sql.SQL(CARDINALITY), rollup=sql.Identifier(rollup),
                                   host=sql.SQL("AND host = %(host)s" if host is not None else ""))
    return conn.execute(query, {"account_id": account_id, "start": rng.start, "end": rng.end,
                                "width": width, "host": host}).fetchall()


BREAKDOWN = "SELECT value, {cardinality} AS visitors FROM ({rows}) AS x GROUP BY value"


def breakdown_visitors(conn: Conn, account_id: uuid.UUID, dimension: str, rng: Range,
                       values: list[str | None], host: str | None = None) -> dict[str | None, int]:
    """Visitors of the sessions started in the range's days, for each of `values` of a session
    attribute (None: unknown), as traffic.breakdown counts their sessions."""
    _serial(conn)
    query = sql.SQL(BREAKDOWN).format(cardinality=sql.SQL(CARDINALITY), rows=_rows(
        "visits", "value, visitors", "AND dimension = %(dimension)s AND value = ANY(%(values)s)", host))
    params = _params(conn, account_id, rng, host, ("visits",), dimension=dimension,
                     values=[v if v is not None else "" for v in values])
    found = {(r["value"] or None): r["visitors"] for r in conn.execute(query, params).fetchall()}
    return {v: found.get(v, 0) for v in values}


# Two steps: the sums per page first and the top `limit` of them (cheap), and only then the
# union of those pages' sketches (merging every page's sketches cost most of the query).
PAGES = """
WITH sums AS (
    SELECT host, path, sum(page_views)::bigint AS page_views, sum(exits)::bigint AS exits,
           sum(time_on_page_s)::float8 AS time_on_page_s
    FROM ({views}) AS x GROUP BY host, path
), e AS (
    SELECT host, value AS path, sum(sessions)::bigint AS entries, sum(bounces)::bigint AS bounces
    FROM ({entries}) AS y GROUP BY host, value
)
SELECT coalesce(s.host, e.host) AS host, coalesce(s.path, e.path) AS path,
       coalesce(s.page_views, 0) AS page_views, coalesce(s.exits, 0) AS exits,
       coalesce(s.time_on_page_s, 0) AS time_on_page_s,
       coalesce(e.entries, 0) AS entries, coalesce(e.bounces, 0) AS bounces
FROM sums s FULL JOIN e ON e.host = s.host AND e.path = s.path
ORDER BY {order}, host, path
LIMIT %(limit)s
"""
PAGE_VISITORS = "SELECT host, path, {cardinality} AS visitors FROM ({views}) AS x GROUP BY host, path"
ORDERS = {"page_views": "page_views DESC, exits DESC", "entries": "entries DESC, bounces DESC",
          "exits": "exits DESC, page_views DESC"}


def _page_json(r: dict) -> dict:
    return {"host": r["host"], "path": r["path"], "page_views": r["page_views"], "visitors": r["visitors"],
            "avg_time_on_page_s": _seconds(r["time_on_page_s"], r["page_views"]),
            "entries": r["entries"], "bounces": r["bounces"], "bounce_rate": _ratio(r["bounces"], r["entries"]),
            "exits": r["exits"], "exit_rate": _ratio(r["exits"], r["page_views"])}


def pages(conn: Conn, account_id: uuid.UUID, rng: Range, limit: int, host: str | None = None,
          order: str = "page_views", paths: list[str] | None = None) -> list[dict]:
    """Per page (host + path) over the range (whole hours): page views, visitors, average time
    on page, entries (sessions that started there), bounces and bounce rate (entries with at
    most one page view), exits and exit rate (page views that ended their session). Ordered
    by `order` (ORDERS); only `paths` when given."""
    if order not in ORDERS:
        raise ValueError(f"unknown order {order!r}")
    only = " AND path = ANY(%(paths)s)" if paths is not None else ""
    _serial(conn)
    params = _params(conn, account_id, rng, host, ("visits", "page_visits"), limit=limit, paths=paths)
    query = sql.SQL(PAGES).format(
        order=sql.SQL(ORDERS[order]),
        views=_rows("page_visits", "host, path, page_views, exits, time_on_page_s", only, host),
        entries=_rows("visits", "host, value, sessions, bounces",
                      "AND dimension = 'entry_page'" + only.replace("path", "value", 1), host))
    rows = conn.execute(query, params).fetchall()
    if rows:
        found = {(r["host"], r["path"]): r["visitors"] for r in conn.execute(
            sql.SQL(PAGE_VISITORS).format(cardinality=sql.SQL(CARDINALITY), views=_rows(
                "page_visits", "host, path, visitors", " AND path = ANY(%(paths)s)", host)),
            {**params, "paths": sorted({r["path"] for r in rows})})}
        rows = [{**r, "visitors": found.get((r["host"], r["path"]), 0)} for r in rows]
    return [_page_json(r) for r in rows]
