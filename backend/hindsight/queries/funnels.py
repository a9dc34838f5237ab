"""Funnels: the saved definitions (table `funnels`, migration 0024) and the one query that
reads a funnel from the raw events.

How a funnel is counted (for a DBA: `funnel_sql(...)` prints the statement):

1. `base`: the range's page views and custom events of the account (through
   events_account_type_time_idx) that match *any* step, each with its unit — the session,
   or the session's visitor (`coalesce(visitor_id, session_id)`: a session without a
   visitor id is a visitor of its own) — and one boolean per step (m1, m2, ...). The
   segment (device type, browser, referrer host) filters on the event's session. Events
   up to `window` after the range's end are read, so a unit that entered at its end can
   still convert.
2. `s1`: each unit's first step-1 event inside the range (DISTINCT ON unit, by time).
3. `sN`: each unit of s(N-1) with its first step-N event at or after its step N-1 and at
   most `window` after its step 1. Greedy, earliest first: a unit's first entry is the
   one that counts (as Plausible, Umami and PostHog's default do).
4. The answer: the number of units in each sN; or, for one step, the sessions of the
   units that reached it (`converted`) or reached the step before it and no further
   (`dropped`), each with the moment of its last step, for the replay link.

Page steps match `hindsight_url_path(page_url)` with LIKE (`*` -> `%`, `%` and `_`
escaped); event steps the name and each property filter as text (`props->>key = value`).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from psycopg import sql
from psycopg.types.json import Jsonb

from ..db import Conn

OUTCOMES = ("converted", "dropped")


def like_pattern(path: str) -> str:
    """A page step's path (`*` any characters) as a LIKE pattern."""
    escaped = path.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%")


def _step_condition(i: int, step: dict[str, Any], params: dict[str, Any]) -> sql.Composable:
    if step["kind"] == "page":
        params[f"path{i}"] = like_pattern(step["path"])
        # The URL contains its path: a plain LIKE on it first spares most rows the regular
        # expression of hindsight_url_path.
        params[f"url{i}"] = "%" + params[f"path{i}"] + "%"
        return sql.SQL("(e.event_type = 'page_view' AND e.page_url LIKE {} "
                       "AND hindsight_url_path(e.page_url) LIKE {})").format(
            sql.Placeholder(f"url{i}"), sql.Placeholder(f"path{i}"))
    params[f"name{i}"] = step["name"]
    parts = [sql.SQL("e.event_type = 'custom' AND e.event_data->>'name' = {}").format(
        sql.Placeholder(f"name{i}"))]
    for j, (key, value) in enumerate(sorted(step.get("filters", {}).items())):
        params[f"k{i}_{j}"], params[f"v{i}_{j}"] = key, str(value)
        parts.append(sql.SQL("e.event_data->'props'->>{} = {}").format(
            sql.Placeholder(f"k{i}_{j}"), sql.Placeholder(f"v{i}_{j}")))
    return sql.SQL("(") + sql.SQL(" AND ").join(parts) + sql.SQL(")")


SEGMENT_SQL = {
    "device_type": "s.device_type = %(device_type)s",
    "browser": "s.browser = %(browser)s",
    # The referrer's host; 'direct' for sessions without a referrer.
    "referrer": "coalesce(lower(substring(s.referrer FROM '^[A-Za-z][A-Za-z0-9+.-]*://([^/?#:]+)')), "
                "'direct') = lower(%(referrer)s)",
    "host": "e.host = %(host)s",
}


def funnel_sql(definition: dict[str, Any], segment: dict[str, str | None], *,
               outcome: str | None = None, step: int | None = None) -> tuple[sql.Composed, dict[str, Any]]:
    """The statement and its parameters (without account, range and limit: `read` adds them)."""
    steps = definition["steps"]
    params: dict[str, Any] = {"window": timedelta(seconds=definition["window_seconds"])}
    conditions = [_step_condition(i, s, params) for i, s in enumerate(steps, 1)]
    unit = sql.SQL("e.session_id" if definition["per"] == "session" else "coalesce(s.visitor_id, e.session_id)")
    filters = [sql.SQL("AND " + SEGMENT_SQL[k]) for k, v in segment.items() if v is not None]
    params.update({k: v for k, v in segment.items() if v is not None})
    params["types"] = sorted({"page_view" if st["kind"] == "page" else "custom" for st in steps})
    # The sessions are joined only when the unit (a visitor) or the segment needs them, and
    # only to the events that match a step. OFFSET 0 makes each step's condition evaluated
    # once per event, and keeps their OR out of the index scan (the planner would make it
    # one bitmap scan per step, each reading the same rows).
    join = definition["per"] != "session" or any(
        v is not None for k, v in segment.items() if k != "host")
    flags = [sql.Identifier(f"m{i}") for i in range(1, len(steps) + 1)]
    ctes = [sql.SQL("""base AS MATERIALIZED (
    SELECT e.session_id, e.ts, {unit} AS unit, {flags}
    FROM (
        SELECT e.session_id, e."timestamp" AS ts, e.host, {conditions}
        FROM events e
        WHERE e.account_id = %(account_id)s AND e.event_type = ANY(%(types)s)
          AND e."timestamp" >= %(start)s AND e."timestamp" < %(end)s::timestamptz + %(window)s
        OFFSET 0
    ) AS e
    {join}
    WHERE ({any}) {segment}
)""").format(unit=unit, join=sql.SQL("JOIN sessions s ON s.session_id = e.session_id" if join else ""),
             flags=sql.SQL(", ").join(sql.SQL("e.{}").format(f) for f in flags),
             conditions=sql.SQL(", ").join(sql.SQL("{} AS {}").format(c, f) for c, f in zip(conditions, flags,
                                                                                            strict=True)),
             any=sql.SQL(" OR ").join(sql.SQL("e.{}").format(f) for f in flags),
             segment=sql.SQL(" ").join(filters)),
        sql.SQL("""s1 AS (
    SELECT DISTINCT ON (unit) unit, session_id, ts, ts AS t0
    FROM base WHERE m1 AND ts < %(end)s
    ORDER BY unit, ts
)""")]
    for i in range(2, len(steps) + 1):
        ctes.append(sql.SQL("""{this} AS (
    SELECT DISTINCT ON (p.unit) p.unit, b.session_id, b.ts, p.t0
    FROM {prev} p
    JOIN base b ON b.unit = p.unit AND b.{flag} AND b.ts >= p.ts AND b.ts <= p.t0 + %(window)s
    ORDER BY p.unit, b.ts
)""").format(this=sql.Identifier(f"s{i}"), prev=sql.Identifier(f"s{i - 1}"),
             flag=sql.Identifier(f"m{i}")))
    head = sql.SQL("WITH ") + sql.SQL(",\n").join(ctes) + sql.SQL("\n")
    if outcome is None:
        counts = sql.SQL(", ").join(sql.SQL("(SELECT count(*) FROM {}) AS {}").format(
            sql.Identifier(f"s{i}"), sql.Identifier(f"step{i}")) for i in range(1, len(steps) + 1))
        return head + sql.SQL("SELECT ") + counts, params
    assert step is not None
    if outcome == "converted":
        chosen = sql.SQL("SELECT r.unit, r.session_id, r.ts FROM {} r").format(sql.Identifier(f"s{step}"))
    else:  # reached the step before, not this one: the moment of the step before
        chosen = sql.SQL("SELECT r.unit, r.session_id, r.ts FROM {} r WHERE NOT EXISTS "
                         "(SELECT 1 FROM {} n WHERE n.unit = r.unit)").format(
            sql.Identifier(f"s{step - 1}"), sql.Identifier(f"s{step}"))
    tail = sql.SQL("""SELECT c.session_id, c.ts AS "timestamp", ss.started_at, ss.user_id,
       greatest(extract(epoch FROM c.ts - ss.started_at), 0)::float8 AS offset_seconds,
       count(*) OVER () AS total
FROM ({chosen}) c
JOIN sessions ss ON ss.session_id = c.session_id
ORDER BY c.ts DESC, c.session_id
LIMIT %(limit)s""").format(chosen=chosen)
    return head + tail, params


def _settings(conn: Conn) -> None:
    """For this transaction: hash joins in memory (a few hundred thousand rows), and no JIT —
    compiling the expressions of a plan over one scan per chunk costs more than the query
    (measured: 150 ms without, 26 s with JIT forced, on a month of 1 M events)."""
    conn.execute("SET LOCAL work_mem = '32MB'")
    conn.execute("SET LOCAL jit = off")


def read(conn: Conn, account_id: uuid.UUID, definition: dict[str, Any], start: datetime, end: datetime,
         segment: dict[str, str | None]) -> list[int]:
    """Units that reached each step, in step order."""
    statement, params = funnel_sql(definition, segment)
    _settings(conn)
    row = conn.execute(statement, {**params, "account_id": account_id, "start": start, "end": end},
                       ).fetchone()
    return [int(row[f"step{i}"]) for i in range(1, len(definition["steps"]) + 1)] if row else []


def step_sessions(conn: Conn, account_id: uuid.UUID, definition: dict[str, Any], start: datetime,
                  end: datetime, segment: dict[str, str | None], step: int, outcome: str,
                  limit: int) -> tuple[int, list[dict]]:
    """(how many, the newest `limit`) of the sessions that converted or dropped at `step`."""
    statement, params = funnel_sql(definition, segment, outcome=outcome, step=step)
    _settings(conn)
    rows = conn.execute(statement, {**params, "account_id": account_id, "start": start, "end": end,
                                    "limit": limit}).fetchall()
    total = int(rows[0]["total"]) if rows else 0
    for r in rows:
        del r["total"]
    return total, rows


# ---------------------------------------------------------------- saved funnels

CREATE = """
INSERT INTO funnels (account_id, name, definition) VALUES (%s, %s, %s)
ON CONFLICT (account_id, name) DO NOTHING
RETURNING funnel_id, name, definition, created_at, updated_at
"""
UPDATE = """
UPDATE funnels SET name = %s, definition = %s, updated_at = now()
WHERE account_id = %s AND funnel_id = %s
RETURNING funnel_id, name, definition, created_at, updated_at
"""
GET = """
SELECT funnel_id, name, definition, created_at, updated_at FROM funnels
WHERE account_id = %s AND funnel_id = %s
"""
LIST = """
SELECT funnel_id, name, definition, created_at, updated_at FROM funnels
WHERE account_id = %s ORDER BY name, funnel_id
"""


def create(conn: Conn, account_id: uuid.UUID, name: str, definition: dict[str, Any]) -> dict | None:
    """A new saved funnel; None when the account has one of that name."""
    return conn.execute(CREATE, (account_id, name, Jsonb(definition))).fetchone()


def update(conn: Conn, account_id: uuid.UUID, funnel_id: int, name: str, definition: dict[str, Any]) -> dict | None:
    return conn.execute(UPDATE, (name, Jsonb(definition), account_id, funnel_id)).fetchone()


def get(conn: Conn, account_id: uuid.UUID, funnel_id: int) -> dict | None:
    return conn.execute(GET, (account_id, funnel_id)).fetchone()


def list_all(conn: Conn, account_id: uuid.UUID) -> list[dict]:
    return conn.execute(LIST, (account_id,)).fetchall()


def delete(conn: Conn, account_id: uuid.UUID, funnel_id: int) -> bool:
    return conn.execute("DELETE FROM funnels WHERE account_id = %s AND funnel_id = %s",
                        (account_id, funnel_id)).rowcount > 0
