"""Sessions: create one, list an account's, read one."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from ..db import Conn, one
from .writers import STRIPPED_URL

SESSION_COLUMNS = (
    "session_id", "user_id", "started_at", "ended_at", "last_activity_at", "page_url",
    "referrer", "user_agent", "screen_width", "screen_height", "viewport_width",
    "viewport_height", "device_type", "browser", "os", "language", "timezone", "metadata",
    "event_count", "page_view_count", "click_count", "error_count", "screenshot_count", "host",
    "rage_click_count",
)
_SELECT = ", ".join(SESSION_COLUMNS) + (
    ", extract(epoch FROM last_activity_at - started_at)::float8 AS duration_seconds"
)

def insert_session(conn: Conn, values: dict[str, Any], strip_query: bool = False) -> tuple[dict, bool]:
    """Insert a session unless its id exists; return (row, created).

    With `strip_query`, the page URL is stored without its query string (writers.STRIPPED_URL).
    """
    columns = list(values)
    params = {k: (Jsonb(v) if k == "metadata" else v) for k, v in values.items()}
    params["strip_query"] = strip_query
    query = sql.SQL(
        "INSERT INTO sessions ({cols}) VALUES ({vals}) ON CONFLICT (session_id) DO NOTHING "
        "RETURNING session_id, started_at, account_id"
    ).format(
        cols=sql.SQL(", ").join(map(sql.Identifier, columns)),
        vals=sql.SQL(", ").join(
            sql.SQL(STRIPPED_URL.format(strip="%(strip_query)s::boolean", url="%(page_url)s::text"))
            if c == "page_url" else sql.Placeholder(c) for c in columns),
    )
    row = conn.execute(query, params).fetchone()
    if row is not None:
        return row, True
    # The insert conflicted: the session exists.
    existing = one(conn.execute(
        "SELECT session_id, started_at, account_id FROM sessions WHERE session_id = %s",
        (values["session_id"],),
    ))
    return existing, False


_SORTS = {
    "started_at": "started_at", "duration": "last_activity_at - started_at",
    "event_count": "event_count", "last_activity_at": "last_activity_at",
    "page_view_count": "page_view_count",
}


def contains_pattern(text: str) -> str:
    """`text` for a LIKE pattern that matches it literally (the default escape, backslash)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _filters(account_id: uuid.UUID, q: dict[str, Any]) -> tuple[sql.Composable, dict[str, Any]]:
    """The WHERE condition for a list query's filters, and its parameters."""
    where: list[sql.Composable] = [sql.SQL("account_id = %(account_id)s")]
    params: dict[str, Any] = {"account_id": account_id}
    simple = {"user_id": "user_id", "device_type": "device_type", "browser": "browser", "os": "os"}
    for key, column in simple.items():
        if q.get(key) is not None:
            where.append(sql.SQL("{} = %({})s").format(sql.Identifier(column), sql.SQL(key)))
            params[key] = q[key]
    if q.get("start") is not None:
        where.append(sql.SQL("started_at >= %(start)s"))
        params["start"] = q["start"]
    if q.get("end") is not None:
        where.append(sql.SQL("started_at < %(end)s"))
        params["end"] = q["end"]
    if q.get("min_duration") is not None:
        where.append(sql.SQL("last_activity_at - started_at >= make_interval(secs => %(min_duration)s)"))
        params["min_duration"] = q["min_duration"]
    if q.get("min_events") is not None:
        where.append(sql.SQL("event_count >= %(min_events)s"))
        params["min_events"] = q["min_events"]
    # Counter tests, each served by a partial index (0016) when true.
    for key, column in (("has_errors", "error_count"), ("has_rage_clicks", "rage_click_count")):
        if q.get(key) is not None:
            test = "{} > 0" if q[key] else "{} = 0"
            where.append(sql.SQL(test).format(sql.Identifier(column)))
    if q.get("page_url") is not None:
        # The entry page (this row's own URL), or any page viewed during the session. The
        # account's page views containing the text (from a day before the range, when it
        # has a start: a session's events come after it started), found by the trigram
        # index of 0034 (a LIKE of the escaped text: the same test as strpos), give the set
        # of sessions, hashed once. (A per-session EXISTS probed every chunk's index once
        # per session scanned: 2.5 s for a common page, 100-190 s for a rare or absent one,
        # at 10 M events; the entry page as a second set read every session of the account,
        # of all time; testing every page view's URL took 450 ms for 30 days.)
        since = (sql.SQL(" AND e.\"timestamp\" >= %(start)s - interval '1 day'") if q.get("start") is not None
                 else sql.SQL(""))
        where.append(sql.SQL(
            "(strpos(page_url, %(page_url)s) > 0 OR session_id IN ("
            "SELECT e.session_id FROM events e"
            " WHERE e.account_id = %(account_id)s AND e.event_type = 'page_view'"
            " AND e.page_url LIKE %(page_url_like)s{since}))"
        ).format(since=since))
        params["page_url"] = q["page_url"]
        params["page_url_like"] = "%" + contains_pattern(q["page_url"]) + "%"
    return sql.SQL(" AND ").join(where), params


def page_statement(account_id: uuid.UUID, q: dict[str, Any]) -> tuple[sql.Composed, dict[str, Any]]:
    """The statement for one page of the list (sorted, filtered) and its parameters."""
    condition, params = _filters(account_id, q)
    sort = q["sort"]
    direction = sql.SQL("DESC") if sort.startswith("-") else sql.SQL("ASC")
    order = sql.SQL(_SORTS[sort.lstrip("-")])
    # The tie-break runs the same way as the sort, so one index serves both directions
    # (sessions_account_duration_idx, 0018, ends with session_id).
    statement = sql.SQL("SELECT {cols} FROM sessions WHERE {cond} ORDER BY {order} {dir}, session_id {dir} "
                        "LIMIT %(limit)s OFFSET %(offset)s").format(
        cols=sql.SQL(_SELECT), cond=condition, order=order, dir=direction)
    return statement, {**params, "limit": q["limit"], "offset": q["offset"]}


def list_sessions(conn: Conn, account_id: uuid.UUID, q: dict[str, Any],
                  count_beyond: int | None = None) -> dict:
    """Return a page of an account's sessions with the total matching the filters.

    With `count_beyond`, the count stops that many rows past the page: `total` is then
    exact only when `total_exact` is true (the dashboard shows "N+"; counting a million
    matching sessions costs more than the page itself).
    """
    rows = conn.execute(*page_statement(account_id, q)).fetchall()
    condition, params = _filters(account_id, q)
    if count_beyond is None:
        total = one(conn.execute(
            sql.SQL("SELECT count(*) AS n FROM sessions WHERE {cond}").format(cond=condition), params
        ))["n"]
        return {"data": rows, "total": total, "limit": q["limit"], "offset": q["offset"]}
    cap = q["offset"] + q["limit"] + count_beyond
    total = one(conn.execute(
        sql.SQL("SELECT count(*) AS n FROM (SELECT 1 FROM sessions WHERE {cond} LIMIT %(cap)s) AS m").format(
            cond=condition), {**params, "cap": cap + 1},
    ))["n"]
    return {"data": rows, "total": min(total, cap), "total_exact": total <= cap,
            "limit": q["limit"], "offset": q["offset"]}


def get_session(conn: Conn, account_id: uuid.UUID, session_id: uuid.UUID) -> dict | None:
    return conn.execute(
        sql.SQL("SELECT {cols} FROM sessions WHERE session_id = %s AND account_id = %s").format(
            cols=sql.SQL(_SELECT)),
        (session_id, account_id),
    ).fetchone()
