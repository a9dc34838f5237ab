"""Events: store a batch idempotently, read a session's events in order."""

from __future__ import annotations

import uuid
from typing import Any

from psycopg import sql

from ..db import Conn
from ..json_encoding import dumps
from .writers import AUTHORIZED_WRITER, STRIPPED_URL

# Columns filled from the tracker's event.
EVENT_FIELDS = (
    "seq", "timestamp", "event_type", "page_url", "target_element", "target_selector",
    "target_tag", "target_id", "target_class", "viewport_x", "viewport_y", "screen_x",
    "screen_y", "scroll_x", "scroll_y", "input_value", "input_masked", "key_pressed",
    "mouse_button", "click_count", "event_data",
)
_TYPES = (
    "bigint", "timestamptz", "text", "text", "text", "text", "text", "text", "text", "int",
    "int", "int", "int", "int", "int", "text", "boolean", "text", "smallint", "smallint", "jsonb",
)
_JSON_FIELDS = tuple(c for c in EVENT_FIELDS if c != "timestamp")


def rage_click(alias: str = "") -> str:
    """The rage-click rule, as SQL on the events row `alias` ("e." or ""): a click that
    tracker.js marked, `event_data.rage` (the clicks in the burst) present and not false/0.

    The one copy: the session counters (INSERT_BATCH), the replay's markers and events (its
    player gets the result as a `rage` flag) and the heatmaps' rings all use it; migration
    0017 backfilled with the same test."""
    return (f"({alias}event_type = 'click' "
            f"AND coalesce({alias}event_data->>'rage', 'false') NOT IN ('false', '0'))")


def _identifiers(names) -> sql.Composable:
    return sql.SQL(", ").join(map(sql.Identifier, names))


# A batch is written by ONE statement: insert the events, count what was inserted,
# write the statistics stacks' ledger row (hindsight/stacks/ledger.py) and move the
# session's counters and last activity by exactly that. Two variants share it and differ
# only in where the writer (account, host, whether to strip query strings) comes from and
# in ON CONFLICT:
#
# - INSERT_NEW_BATCH_AUTHORIZED, the common case, run in autocommit (the statement is
#   its own transaction: no BEGIN and COMMIT round trips). Its `writer` CTE is the one
#   write decision (queries/writers.py: the token, its flag, the account, the session and
#   the Origin), a row only when every check passes. There is no ON CONFLICT (a plain
#   insert skips the speculative-insertion steps). No row back means something did not
#   check out, and a unique violation means the batch was seen before: the caller then
#   takes the step-by-step path, which reads the same checks to say exactly what is
#   wrong, or stores the batch once.
# - INSERT_BATCH, that step-by-step path's insert, in the caller's transaction after it
#   has authorized the writer (given as parameters).
#
# Query strings are stripped here, in both variants (writers.STRIPPED_URL).
#
# The batch travels as two parameters, both cheap to build here and to read there:
# the validated events as one JSON array (all fields but the timestamp, nulls left out;
# jsonb_to_recordset types each field) and the timestamps as a binary timestamptz[]
# (exactly the instants validation produced). ROWS FROM zips the two, row by row.
_BATCH = """
WITH writer AS ({writer}
), inserted AS (
    INSERT INTO events (session_id, account_id, host, {columns})
    SELECT %(session_id)s, w.account_id, w.host, {select}
    FROM writer w, ROWS FROM (
        jsonb_to_recordset(%(events)s::jsonb) AS ({definitions}),
        unnest(%(timestamps)b::timestamptz[])
    ) AS u({json_columns}, "timestamp")
    {on_conflict}
    RETURNING seq, event_type, "timestamp", {rage_click} AS rage_click
), counted AS (
    SELECT count(*) AS n,
           count(*) FILTER (WHERE event_type = 'page_view') AS page_views,
           count(*) FILTER (WHERE event_type = 'click') AS clicks,
           count(*) FILTER (WHERE event_type = 'error') AS errors,
           count(*) FILTER (WHERE rage_click) AS rage_clicks,
           max("timestamp") AS last_at,
           array_agg(seq ORDER BY seq) FILTER (WHERE event_type IN ('page_view', 'click')) AS step_seqs,
           array_agg("timestamp" ORDER BY seq) FILTER (WHERE event_type IN ('page_view', 'click')) AS step_times
    FROM inserted
), ledger AS (
    -- What the statistics stacks will count, once (hindsight/stacks/ledger.py).
    INSERT INTO stack_pending (account_id, host, session_id, pages, clicks, total, step_seqs, step_times)
    SELECT w.account_id, w.host, %(session_id)s, page_views, clicks, n, step_seqs, step_times
    FROM counted, writer w WHERE n > 0
)
UPDATE sessions s SET
    event_count = s.event_count + c.n,
    page_view_count = s.page_view_count + c.page_views,
    click_count = s.click_count + c.clicks,
    error_count = s.error_count + c.errors,
    rage_click_count = s.rage_click_count + c.rage_clicks,
    last_activity_at = greatest(s.last_activity_at, c.last_at)
FROM counted c, writer w
WHERE s.session_id = %(session_id)s
RETURNING c.n AS inserted, w.account_id, w.host, w.strip_query
"""

_GIVEN_WRITER = sql.SQL("""
    SELECT %(account_id)s::uuid AS account_id, %(host)s::text AS host,
           %(strip_query)s::boolean AS strip_query""")


def _batch_statement(writer: sql.Composable, on_conflict: str) -> str:
    return sql.SQL(_BATCH).format(
        writer=writer,
        on_conflict=sql.SQL(on_conflict),
        columns=_identifiers(EVENT_FIELDS),
        select=sql.SQL(", ").join(
            sql.SQL(STRIPPED_URL.format(strip="w.strip_query", url="u.page_url"))
            if c == "page_url" else sql.SQL("u.{}").format(sql.Identifier(c)) for c in EVENT_FIELDS),
        definitions=sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(t))
            for c, t in zip(EVENT_FIELDS, _TYPES, strict=True) if c != "timestamp"),
        json_columns=_identifiers(_JSON_FIELDS),
        rage_click=sql.SQL(rage_click()),
    ).as_string()


INSERT_NEW_BATCH_AUTHORIZED = _batch_statement(sql.SQL(AUTHORIZED_WRITER), "")
INSERT_BATCH = _batch_statement(_GIVEN_WRITER, "ON CONFLICT DO NOTHING")


def insert_new_batch_authorized(conn: Conn, writer: dict[str, Any], session_id: uuid.UUID,
                                batch: dict[str, Any]) -> dict | None:
    """Run INSERT_NEW_BATCH_AUTHORIZED on an autocommit connection; None: take the slow path.

    `writer` is writers.writer_params(...). Raises psycopg.errors.UniqueViolation when
    some of the batch is already stored."""
    params = {**writer, "session_id": session_id, **batch}
    return conn.execute(INSERT_NEW_BATCH_AUTHORIZED, params, prepare=True).fetchone()


def encode_batch(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Turn validated events into the parameters of the batch statements (see there)."""
    rows = []
    timestamps = []
    for event in events:
        row = {k: v for k, v in event.items() if v is not None}
        timestamps.append(row.pop("timestamp"))
        rows.append(row)
    return {"events": dumps(rows), "timestamps": timestamps}


def insert_batch(conn: Conn, session_id: uuid.UUID, account_id: uuid.UUID,
                 host: str, batch: dict[str, Any], strip_query: bool = False) -> int:
    """Store a batch (from `encode_batch`) idempotently for an authorized writer; return
    how many events were new. Runs in the caller's transaction."""
    params = {"session_id": session_id, "account_id": account_id, "host": host,
              "strip_query": strip_query, **batch}
    row: Any = conn.execute(INSERT_BATCH, params, prepare=True).fetchone()  # a dict_row
    return row["inserted"] if row else 0


EVENT_COLUMNS = ("seq", "timestamp") + tuple(
    c for c in EVENT_FIELDS if c not in ("seq", "timestamp")
)

_LIST_EVENTS = sql.SQL(
    'SELECT {columns}{flags} FROM events WHERE session_id = %s ORDER BY "timestamp", seq LIMIT %s OFFSET %s'
)
_LIST = _LIST_EVENTS.format(columns=_identifiers(EVENT_COLUMNS), flags=sql.SQL("")).as_string()
# For the replay's player: each event says whether it is a rage click (the server's rule).
_LIST_WITH_RAGE = _LIST_EVENTS.format(columns=_identifiers(EVENT_COLUMNS),
                                      flags=sql.SQL(f", {rage_click()} AS rage")).as_string()


def list_events(conn: Conn, session_id: uuid.UUID, limit: int, offset: int, *,
                rage_flag: bool = False) -> list[dict]:
    """A page of a session's events in time order (ties broken by seq); with `rage_flag`,
    each row has `rage` (true for a rage click)."""
    query = _LIST_WITH_RAGE if rage_flag else _LIST
    rows: list[Any] = conn.execute(query, (session_id, limit, offset)).fetchall()  # dict_rows
    return rows
