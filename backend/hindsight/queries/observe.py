"""What /metrics reads from the database when it is scraped (hindsight.metrics'
DatabaseCollector): the database's size, the stacks' ledger and the lifecycle jobs."""

from __future__ import annotations

from typing import Any

from ..db import Conn, one
from ..json_encoding import dumps

DATABASE_SIZE = "SELECT pg_database_size(current_database()) AS bytes"

SCRAPE_VALUES = """
SELECT (SELECT coalesce(sum(total), 0)::bigint FROM stack_pending) AS pending_events,
       (SELECT count(*) FROM stack_pending) AS pending_batches,
       (SELECT extract(epoch FROM now() - min(created_at)) FROM stack_pending) AS oldest_pending_age_seconds,
       (SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'name', job_name,
                   'last_run', extract(epoch FROM last_finished_at),
                   'last_success', extract(epoch FROM last_success_at),
                   'failures', failures) ORDER BY job_name), '[]'::jsonb)
        FROM lifecycle_jobs) AS jobs
"""


def database_size(conn: Conn) -> int:
    return int(one(conn.execute(DATABASE_SIZE))["bytes"])


def scrape_values(conn: Conn) -> dict[str, Any]:
    row = one(conn.execute(SCRAPE_VALUES))
    age = row["oldest_pending_age_seconds"]
    return {"pending_events": int(row["pending_events"]), "pending_batches": int(row["pending_batches"]),
            "oldest_pending_age_seconds": float(age) if age is not None else None,
            "jobs": [{"name": j["name"],
                      "last_run": float(j["last_run"]) if j["last_run"] is not None else None,
                      "last_success": float(j["last_success"]) if j["last_success"] is not None else None,
                      "failures": int(j["failures"])} for j in row["jobs"]]}


# ----------------------------------------------------------------------------- warnings

TOKEN_ACCOUNTS = "SELECT token, account_id FROM statistics_tokens WHERE token = ANY(%s)"

UPSERT_WARNINGS = """
INSERT INTO ingestion_warnings AS w (account_id, status, reason, count, first_seen, last_seen, sample)
SELECT r.account_id, r.status, r.reason, r.count, r.first_seen, r.last_seen, r.sample
FROM jsonb_to_recordset(%s::jsonb) AS r(account_id uuid, status smallint, reason text, count bigint,
                                       first_seen timestamptz, last_seen timestamptz, sample jsonb)
WHERE EXISTS (SELECT 1 FROM accounts a WHERE a.account_id = r.account_id)
ON CONFLICT (account_id, status, reason) DO UPDATE SET
    count = w.count + excluded.count,
    first_seen = least(w.first_seen, excluded.first_seen),
    last_seen = greatest(w.last_seen, excluded.last_seen),
    sample = CASE WHEN excluded.last_seen >= w.last_seen THEN excluded.sample ELSE w.sample END
"""

# Refused writes per account and 10 seconds (migration 0027), added up across processes.
REJECTION_BUCKET_SECONDS = 10
ADD_REJECTIONS = """
INSERT INTO ingestion_rejections AS x (account_id, bucket, rejected)
SELECT r.account_id, r.bucket, r.rejected
FROM jsonb_to_recordset(%s::jsonb) AS r(account_id uuid, bucket timestamptz, rejected bigint)
WHERE EXISTS (SELECT 1 FROM accounts a WHERE a.account_id = r.account_id)
ON CONFLICT (account_id, bucket) DO UPDATE SET rejected = x.rejected + excluded.rejected
"""

REJECTIONS = """
SELECT bucket, rejected FROM ingestion_rejections
WHERE account_id = %(account_id)s AND bucket >= %(since)s ORDER BY bucket
"""

PRUNE_REJECTIONS = "DELETE FROM ingestion_rejections WHERE bucket < %(before)s"

LIST_WARNINGS = """
SELECT status, reason, count, first_seen, last_seen, sample
FROM ingestion_warnings WHERE account_id = %(account_id)s AND last_seen >= %(since)s
ORDER BY last_seen DESC LIMIT %(limit)s
"""

# Older than the cut-off, or beyond the newest `per_account` groups of an account.
PRUNE_WARNINGS = """
DELETE FROM ingestion_warnings w
USING (SELECT account_id, status, reason,
              row_number() OVER (PARTITION BY account_id ORDER BY last_seen DESC) AS n
       FROM ingestion_warnings) ranked
WHERE w.account_id = ranked.account_id AND w.status = ranked.status AND w.reason = ranked.reason
  AND (ranked.n > %(per_account)s OR w.last_seen < %(before)s)
"""


def token_accounts(conn: Conn, tokens: list) -> dict:
    return {r["token"]: r["account_id"] for r in conn.execute(TOKEN_ACCOUNTS, (tokens,))}


def upsert_warnings(conn: Conn, rows: list[dict[str, Any]]) -> None:
    conn.execute(UPSERT_WARNINGS, (dumps(rows),))


def add_rejections(conn: Conn, rows: list[dict[str, Any]]) -> None:
    conn.execute(ADD_REJECTIONS, (dumps(rows),))


def rejections(conn: Conn, account_id: Any, since: Any) -> list[dict[str, Any]]:
    return conn.execute(REJECTIONS, {"account_id": account_id, "since": since}).fetchall()


def prune_rejections(conn: Conn, before: Any) -> int:
    return conn.execute(PRUNE_REJECTIONS, {"before": before}).rowcount


def list_warnings(conn: Conn, account_id: Any, since: Any, limit: int = 100) -> list[dict[str, Any]]:
    return conn.execute(LIST_WARNINGS, {"account_id": account_id, "since": since, "limit": limit}).fetchall()


def prune_warnings(conn: Conn, before: Any, per_account: int) -> int:
    return conn.execute(PRUNE_WARNINGS, {"before": before, "per_account": per_account}).rowcount


# ----------------------------------------------------------------------------- traces

# The buffered traces of a process, written in one COPY (hindsight.observe.traces).
TRACE_COLUMNS = ("request_id", "account_id", "host", "session_id", "path", "status", "error",
                 "received_at", "validated_ms", "committed_ms", "committed_at", "events", "inserted",
                 "duplicates", "counted_ms", "duration_ms")
COPY_TRACES = f"COPY pipeline_traces ({', '.join(TRACE_COLUMNS)}) FROM STDIN"

RECORD_FLUSH = """
INSERT INTO pipeline_flushes (account_id, host, started_at, finished_at, events, batches)
VALUES (%(account_id)s, %(host)s, now(), clock_timestamp(), %(events)s, %(batches)s)
"""

# An account's recent traces, newest first, each with the flush that counted it (the first
# flush of its account + host that started after its commit).
LIST_TRACES = """
SELECT t.request_id, t.session_id, t.host, t.path, t.status, t.error, t.received_at,
       t.validated_ms, t.committed_ms, t.committed_at, t.events, t.inserted, t.duplicates,
       t.counted_ms, t.duration_ms,
       f.finished_at AS flushed_at, f.events AS flush_events,
       extract(epoch FROM f.finished_at - t.received_at) * 1000 AS flushed_ms
FROM pipeline_traces t
LEFT JOIN LATERAL (
    SELECT pf.finished_at, pf.events FROM pipeline_flushes pf
    WHERE t.committed_at IS NOT NULL AND pf.account_id = t.account_id AND pf.host = t.host
      AND pf.started_at >= t.committed_at
    ORDER BY pf.started_at LIMIT 1
) f ON true
WHERE t.account_id = %(account_id)s
  AND (%(request_id)s::text IS NULL OR t.request_id = %(request_id)s)
  AND (%(session_id)s::uuid IS NULL OR t.session_id = %(session_id)s)
ORDER BY t.received_at DESC
LIMIT %(limit)s
"""

PRUNE_TRACES = "DELETE FROM pipeline_traces WHERE received_at < %(before)s"
PRUNE_FLUSHES = "DELETE FROM pipeline_flushes WHERE finished_at < %(before)s"


def insert_traces(conn: Conn, rows: list[tuple]) -> None:
    """`rows`: tuples in TRACE_COLUMNS order."""
    with conn.cursor().copy(COPY_TRACES) as copy:
        for row in rows:
            copy.write_row(row)


def record_flush(conn: Conn, account_id: Any, host: str, events: int, batches: int) -> None:
    conn.execute(RECORD_FLUSH, {"account_id": account_id, "host": host, "events": events,
                                "batches": batches})


def list_traces(conn: Conn, account_id: Any, request_id: str | None = None,
                session_id: Any = None, limit: int = 100) -> list[dict[str, Any]]:
    return conn.execute(LIST_TRACES, {"account_id": account_id, "request_id": request_id,
                                      "session_id": session_id, "limit": limit}).fetchall()


def prune_traces(conn: Conn, before: Any) -> int:
    n = conn.execute(PRUNE_TRACES, {"before": before}).rowcount
    conn.execute(PRUNE_FLUSHES, {"before": before})
    return n
