"""Visitors: the daily salts (hindsight.visitors) and the unique-visitor statistics read
from the visitor roll-ups (sql/migrations/0023)."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from psycopg import sql

from ..db import Conn, one
from . import rollup_rows
from .traffic import Range

HOUR, DAY, WEEK = timedelta(hours=1), timedelta(days=1), timedelta(days=7)


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
# for the buckets after the hourly watermark (hindsight.queries.rollup_rows; what the views
# do, without computing those buckets once per view reference and for every account).
_FUNCTIONS = {"visits": "hindsight_visits", "page_visits": "hindsight_page_visits"}

# The visitors of a set of rows' sketches, as a whole number.
CARDINALITY = "coalesce(round(hll_cardinality(hll_union_agg(visitors))), 0)::bigint"


def _rows(prefix: str, columns: str, where: str, host: str | None, tail: str | None = None,
          dimensions: sql.Composable | None = None) -> sql.Composable:
    """The rows of roll-up `prefix` over the range (its bounds: `_params(..., prefixes)`).

    `tail`: the name of a CTE (`_tail(prefix)`) holding the buckets after the hourly
    watermark, so that a statement reading the roll-up more than once computes them once.
    `dimensions` (visits): a text[] of the dimensions `where` keeps (`_dimensions`)."""
    source = sql.Identifier(tail) if tail is not None else _tail(prefix, dimensions)
    return rollup_rows.rows(prefix, columns, where, host, source)


def _tail(prefix: str, dimensions: sql.Composable | None = None) -> sql.Composable:
    """The buckets after the hourly watermark, up to the range's end, computed from the raw
    rows; of the visits roll-up, only the `dimensions` given (sql/migrations/0039)."""
    call = sql.SQL("{}(%({}_hcut)s, %(end)s, %(account_id)s").format(
        sql.Identifier(_FUNCTIONS[prefix]), sql.SQL(prefix))
    if dimensions is not None:
        return sql.SQL("{}, {})").format(call, dimensions)
    return sql.SQL("{})").format(call)


def _dimensions(*names: str) -> sql.Composable:
    """A text[] of these dimensions, for `_rows`/`_tail`."""
    return sql.SQL("ARRAY[{}]::text[]").format(sql.SQL(", ").join(map(sql.Literal, names)))


# The visitor roll-ups' watermarks read once for several statements (the overview).
same_watermarks = rollup_rows.same_watermarks
snapshot = rollup_rows.snapshot
_params = rollup_rows.params  # a module global: tests replace it


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
        "visits", "visitors, sessions, bounces, duration_s, page_views", "AND dimension = 'all'", host,
        dimensions=_dimensions("all")))
    row = one(conn.execute(query, _params(conn, account_id, rng, host, ("visits",))))
    return {"visitors": row["visitors"], "sessions": row["sessions"], "bounces": row["bounces"],
            "bounce_rate": _ratio(row["bounces"], row["sessions"]),
            "avg_session_duration_s": _seconds(row["duration_s"], row["sessions"]),
            "pages_per_session": _ratio(row["page_views"], row["sessions"])}


# Per bucket from the stores and the function (as _SPLIT), never from the views: the views
# compute the newest buckets for every account (hindsight_visits(..., account => NULL)).
SERIES = """
WITH r AS (
    SELECT time_bucket(%(width)s, bucket) AS bucket, {cardinality} AS visitors, sum(bounces) AS bounces
    FROM ({rows}) AS x
    GROUP BY 1
)
SELECT g.bucket, coalesce(r.visitors, 0)::bigint AS visitors, coalesce(r.bounces, 0)::bigint AS bounces
FROM generate_series(%(start)s::timestamptz, %(end)s::timestamptz - %(width)s, %(width)s) AS g (bucket)
LEFT JOIN r ON r.bucket = g.bucket
ORDER BY g.bucket
"""


def series(conn: Conn, account_id: uuid.UUID, rng: Range, interval: str, host: str | None = None) -> list[dict]:
    """Visitors (with a session started in the bucket) and bounced sessions per hour or day."""
    _serial(conn)
    params = _params(conn, account_id, rng, host, ("visits",), weeks=False, hours_only=interval == "hour",
                     width=HOUR if interval == "hour" else DAY)
    query = sql.SQL(SERIES).format(cardinality=sql.SQL(CARDINALITY), rows=_rows(
        "visits", "bucket, visitors, bounces", "AND dimension = 'all'", host, dimensions=_dimensions("all")))
    return conn.execute(query, params).fetchall()


BREAKDOWN = "SELECT value, {cardinality} AS visitors FROM ({rows}) AS x GROUP BY value"


def breakdown_visitors(conn: Conn, account_id: uuid.UUID, dimension: str, rng: Range,
                       values: list[str | None], host: str | None = None) -> dict[str | None, int]:
    """Visitors of the sessions started in the range's days, for each of `values` of a session
    attribute (None: unknown), as traffic.breakdown counts their sessions."""
    _serial(conn)
    query = sql.SQL(BREAKDOWN).format(cardinality=sql.SQL(CARDINALITY), rows=_rows(
        "visits", "value, visitors", "AND dimension = %(dimension)s AND value = ANY(%(values)s)", host,
        dimensions=sql.SQL("ARRAY[%(dimension)s]::text[]")))
    params = _params(conn, account_id, rng, host, ("visits",), dimension=dimension,
                     values=[v if v is not None else "" for v in values])
    found = {(r["value"] or None): r["visitors"] for r in conn.execute(query, params).fetchall()}
    return {v: found.get(v, 0) for v in values}


# Sessions and visitors by session attribute, several attributes in one statement, from the
# visitor roll-ups (which count the sessions started per attribute value as sessions_daily
# does): the sessions per value first and the top `limit` values of each attribute (cheap),
# then the union of those values' sketches only. The newest buckets (raw sessions after the
# hourly watermark) are computed once (`tail`), not once per attribute (issue 12: the overview
# ran eight statements and computed them four times).
BREAKDOWNS = """
WITH tail AS MATERIALIZED (
    SELECT bucket, host, dimension, value, sessions, visitors FROM {tail}
    WHERE dimension = ANY(%(dimensions)s)
), sums AS (
    SELECT dimension, value, sum(sessions)::bigint AS sessions,
           sum(sum(sessions)) OVER (PARTITION BY dimension)::bigint AS total,
           row_number() OVER (PARTITION BY dimension ORDER BY sum(sessions) DESC, nullif(value, '')) AS rank
    FROM ({counts}) AS x
    GROUP BY dimension, value
), top AS (
    SELECT * FROM sums WHERE rank <= %(limit)s
)
SELECT t.dimension, nullif(t.value, '') AS value, t.sessions, t.total, {cardinality} AS visitors
FROM top t JOIN ({sketches}) AS y ON y.dimension = t.dimension AND y.value = t.value
GROUP BY t.dimension, t.value, t.sessions, t.total, t.rank
ORDER BY t.dimension, t.rank
"""


def breakdowns(conn: Conn, account_id: uuid.UUID, dimensions: tuple[str, ...], rng: Range, limit: int,
               host: str | None = None) -> dict[str, dict]:
    """Per session attribute (referrer host, device type, browser, OS): the sessions started in
    the range's days by value, most first (`limit` of them; value None: unknown), each with its
    visitors, and the attribute's total sessions — as traffic.breakdown + breakdown_visitors
    answer for one attribute, in one statement."""
    _serial(conn)
    where = "AND dimension = ANY(%(dimensions)s)"
    query = sql.SQL(BREAKDOWNS).format(
        tail=_tail("visits", sql.SQL("%(dimensions)s::text[]")), cardinality=sql.SQL(CARDINALITY),
        counts=_rows("visits", "dimension, value, sessions", where, host, tail="tail"),
        sketches=_rows("visits", "dimension, value, visitors", where, host, tail="tail"))
    params = _params(conn, account_id, rng, host, ("visits",), dimensions=list(dimensions), limit=limit)
    out: dict[str, dict] = {d: {"total": 0, "data": []} for d in dimensions}
    for r in conn.execute(query, params).fetchall():
        out[r["dimension"]]["total"] = r["total"]
        out[r["dimension"]]["data"].append({"value": r["value"], "sessions": r["sessions"], "visitors": r["visitors"]})
    return out


# Two steps: the sums per page first and the top `limit` of them (cheap), and only then the
# union of those pages' sketches (merging every page's sketches cost most of the query).
PAGES = """
WITH sums AS (
    SELECT host, path, sum(page_views)::bigint AS page_views, sum(exits)::bigint AS exits,
           sum(time_on_page_s)::float8 AS time_on_page_s{visitors}
    FROM ({views}) AS x GROUP BY host, path
), e AS (
    SELECT host, value AS path, sum(sessions)::bigint AS entries, sum(bounces)::bigint AS bounces
    FROM ({entries}) AS y GROUP BY host, value
)
SELECT coalesce(s.host, e.host) AS host, coalesce(s.path, e.path) AS path,
       coalesce(s.page_views, 0) AS page_views, coalesce(s.exits, 0) AS exits,
       coalesce(s.time_on_page_s, 0) AS time_on_page_s,
       coalesce(e.entries, 0) AS entries, coalesce(e.bounces, 0) AS bounces{visitors_out}
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
    # Given the paths (a handful: the overview's top pages), their sketches are merged in the
    # same statement, which computes the newest buckets once; otherwise in a second step, for
    # the top `limit` pages only.
    merged = paths is not None
    query = sql.SQL(PAGES).format(
        order=sql.SQL(ORDERS[order]),
        visitors=sql.SQL(f", {CARDINALITY} AS visitors" if merged else ""),
        visitors_out=sql.SQL(", coalesce(s.visitors, 0) AS visitors" if merged else ""),
        views=_rows("page_visits", "host, path, page_views, exits, time_on_page_s" + (", visitors" if merged else ""),
                    only, host),
        entries=_rows("visits", "host, value, sessions, bounces",
                      "AND dimension = 'entry_page'" + only.replace("path", "value", 1), host,
                      dimensions=_dimensions("entry_page")))
    rows = conn.execute(query, params).fetchall()
    if rows and not merged:
        found = {(r["host"], r["path"]): r["visitors"] for r in conn.execute(
            sql.SQL(PAGE_VISITORS).format(cardinality=sql.SQL(CARDINALITY), views=_rows(
                "page_visits", "host, path, visitors", " AND path = ANY(%(paths)s)", host)),
            {**params, "paths": sorted({r["path"] for r in rows})})}
        rows = [{**r, "visitors": found.get((r["host"], r["path"]), 0)} for r in rows]
    return [_page_json(r) for r in rows]
