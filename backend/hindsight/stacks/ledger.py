"""The durable side of the stacks: the `stack_pending` ledger and the flush transaction.

Ingestion writes one ledger row per stored batch (and per created session) in its own
transaction (see queries/events.py and migration 0010). A flush of account + host takes
*all* of its rows, whichever process wrote them, and in one transaction writes the
journey steps, one statistics counter row and the usage, then checks the limit. The
rows it took are deleted by that same transaction, so an event is counted once: a
flush that dies half-way leaves every row where it was.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from ..db import Conn, one
from ..queries.observe import record_flush
from ..queries.usage import UsageCheck, log_usage
from .health import LedgerTotals

# Flushes of one account are serialized (step numbers, the usage total and the limit).
_LOCK = "SELECT pg_advisory_xact_lock(hashtextextended('hindsight-stacks:' || %s::text, 0))"

_TAKE = """
DELETE FROM stack_pending WHERE account_id = %(account_id)s AND host = %(host)s
RETURNING session_id, sessions, pages, clicks, total, step_seqs, step_times
"""

_JOURNEYS = """
INSERT INTO journeys (session_id, account_id, host, user_id, ip_hash, created_at, updated_at)
SELECT session_id, account_id, %(host)s, user_id, ip_hash, %(now)s, %(now)s
FROM sessions WHERE session_id = ANY(%(sessions)s) AND account_id = %(account_id)s
ON CONFLICT (session_id) DO NOTHING
"""

# The steps of this flush, numbered after the journey's earlier steps, in time order;
# the events' own columns become the step's JSON (without the tenancy columns).
_STEPS = """
WITH src AS (
    SELECT s.session_id, 'session' AS step_type, NULL::bigint AS seq, s.started_at AS ts, s.page_url,
           jsonb_strip_nulls(jsonb_build_object(
               'user_id', s.user_id, 'page_url', s.page_url, 'referrer', s.referrer,
               'user_agent', s.user_agent, 'browser', s.browser, 'os', s.os,
               'device_type', s.device_type, 'language', s.language, 'timezone', s.timezone,
               'screen_width', s.screen_width, 'screen_height', s.screen_height,
               'viewport_width', s.viewport_width, 'viewport_height', s.viewport_height,
               'metadata', s.metadata, 'started_at', s.started_at)) AS event
    FROM sessions s WHERE s.session_id = ANY(%(starts)s)
    UNION ALL
    SELECT e.session_id, CASE WHEN e.event_type = 'page_view' THEN 'page' ELSE 'click' END,
           e.seq, e."timestamp", e.page_url,
           jsonb_strip_nulls(to_jsonb(e) - 'account_id' - 'host' - 'session_id' - 'received_at')
    FROM unnest(%(sids)s::uuid[], %(times)s::timestamptz[], %(seqs)s::bigint[]) AS k(session_id, ts, seq)
    -- One primary-key lookup per step (a plain join was planned as a scan of whole chunks).
    CROSS JOIN LATERAL (
        SELECT * FROM events ev
        WHERE ev.session_id = k.session_id AND ev."timestamp" = k.ts AND ev.seq = k.seq
        OFFSET 0
    ) e
), numbered AS (
    SELECT j.journey_id, src.*,
           j.step_count + row_number() OVER (PARTITION BY j.journey_id  -- the start comes first
                                             ORDER BY src.seq IS NOT NULL, src.ts, src.seq) AS step
    FROM src JOIN journeys j ON j.session_id = src.session_id
), stored AS (
    INSERT INTO journey_steps (journey_id, step, step_type, seq, event, page_url, "timestamp", created_at)
    SELECT journey_id, step, step_type, seq, event, page_url, ts, %(now)s FROM numbered
    ON CONFLICT DO NOTHING
    RETURNING journey_id, step
)
UPDATE journeys j SET step_count = x.last_step, updated_at = %(now)s
FROM (SELECT journey_id, max(step) AS last_step, count(*) AS n FROM stored GROUP BY journey_id) x
WHERE j.journey_id = x.journey_id
RETURNING x.n
"""

_COUNTER = """
INSERT INTO statistics_counters (account_id, host, session_events, page_events, click_events,
                                 other_events, total_events, created_at, updated_at)
VALUES (%(account_id)s, %(host)s, %(sessions)s, %(pages)s, %(clicks)s, %(other)s, %(total)s,
        %(now)s, %(now)s)
RETURNING counter_id
"""


@dataclass
class Taken:
    """What a flush took from the ledger."""

    sessions: int = 0
    pages: int = 0
    clicks: int = 0
    total: int = 0
    rows: int = 0
    starts: list[uuid.UUID] = field(default_factory=list)
    step_sessions: list[uuid.UUID] = field(default_factory=list)
    step_times: list[datetime] = field(default_factory=list)
    step_seqs: list[int] = field(default_factory=list)

    @property
    def other(self) -> int:
        return self.total - self.sessions - self.pages - self.clicks

    def add(self, row: dict) -> None:
        self.rows += 1
        self.sessions += row["sessions"]
        self.pages += row["pages"]
        self.clicks += row["clicks"]
        self.total += row["total"]
        if row["sessions"]:
            self.starts.append(row["session_id"])
        if row["step_seqs"]:
            self.step_sessions.extend([row["session_id"]] * len(row["step_seqs"]))
            self.step_seqs.extend(row["step_seqs"])
            self.step_times.extend(row["step_times"])


@dataclass(frozen=True)
class FlushResult:
    account_id: uuid.UUID
    host: str
    sessions: int
    pages: int
    clicks: int
    other: int
    total: int
    steps: int
    counter_id: int | None
    usage: UsageCheck | None

    @property
    def empty(self) -> bool:
        return self.total == 0


def flush(conn: Conn, account_id: uuid.UUID, host: str, now: datetime) -> FlushResult:
    """Count everything pending for account + host, in one transaction (see module doc)."""
    with conn.transaction():
        conn.execute(_LOCK, (str(account_id),))
        taken = Taken()
        for row in conn.execute(_TAKE, {"account_id": account_id, "host": host}):
            taken.add(row)
        if taken.total == 0:
            return FlushResult(account_id, host, 0, 0, 0, 0, 0, 0, None, None)
        sessions = list({*taken.starts, *taken.step_sessions})
        conn.execute(_JOURNEYS, {"sessions": sessions, "account_id": account_id, "host": host,
                                 "now": now})
        steps = sum(r["n"] for r in conn.execute(_STEPS, {
            "starts": taken.starts, "sids": taken.step_sessions, "times": taken.step_times,
            "seqs": taken.step_seqs, "now": now,
        }))
        counter_id = one(conn.execute(_COUNTER, {
            "account_id": account_id, "host": host, "sessions": taken.sessions,
            "pages": taken.pages, "clicks": taken.clicks, "other": taken.other,
            "total": taken.total, "now": now,
        }))["counter_id"]
        usage = log_usage(conn, account_id=account_id, host=host, amount=taken.total,
                          counter_id=counter_id, now=now)
        # When this key's batches were counted, for their pipeline traces (hindsight.observe).
        record_flush(conn, account_id, host, taken.total, taken.rows)
    return FlushResult(account_id, host, taken.sessions, taken.pages, taken.clicks, taken.other,
                       taken.total, steps, counter_id, usage)


# ----------------------------------------------------------------------------- rebuild

_PENDING_BY_KEY = """
SELECT account_id, host, count(*) AS batches, sum(sessions)::bigint AS sessions,
       sum(pages)::bigint AS pages, sum(clicks)::bigint AS clicks, sum(total)::bigint AS total,
       min(created_at) AS first_at, max(created_at) AS last_at
FROM stack_pending {where}
GROUP BY account_id, host
{having}
"""

REBUILD = _PENDING_BY_KEY.format(where="", having="")

# Keys idle in the database (no new row for `idle` seconds, on the database's clock like
# created_at): nobody will flush them if the process that held them died. Found through
# the created_at index; normally empty.
ORPHANS = _PENDING_BY_KEY.format(
    where="""WHERE (account_id, host) IN (
        SELECT DISTINCT account_id, host FROM stack_pending
        WHERE created_at < now() - make_interval(secs => %(idle)s))""",
    having="HAVING max(created_at) < now() - make_interval(secs => %(idle)s)",
)

# Tokens revoked (here or by any other process) since `since`, with the time on the
# database's clock to pass as `since` next time.
REVOKED_SINCE = """
SELECT now() AS seen_at, r.accounts, r.hosts
FROM (SELECT array_agg(account_id) AS accounts, array_agg(host) AS hosts
      FROM statistics_tokens WHERE revoked_at >= %(since)s) r
"""

PENDING_TOTALS = """
SELECT count(*) AS batches, coalesce(sum(total), 0)::bigint AS events,
       count(DISTINCT (account_id, host)) AS keys, min(created_at) AS oldest
FROM stack_pending
"""


def pending_by_key(conn: Conn) -> list[dict]:
    return conn.execute(REBUILD).fetchall()


def orphans(conn: Conn, idle_seconds: float) -> list[dict]:
    return conn.execute(ORPHANS, {"idle": idle_seconds}).fetchall()


def revoked_since(conn: Conn, since: datetime) -> tuple[set[tuple[uuid.UUID, str]], datetime]:
    """Return the (account, host) of tokens revoked since `since`, and the database's now."""
    row = one(conn.execute(REVOKED_SINCE, {"since": since}))
    keys = set(zip(row["accounts"] or (), row["hosts"] or (), strict=True))
    return keys, row["seen_at"]


def pending_totals(conn: Conn) -> LedgerTotals:
    row = one(conn.execute(PENDING_TOTALS))
    return LedgerTotals(row["batches"], row["events"], row["keys"], row["oldest"])
