"""What /health shows about the data lifecycle: edition, compression, jobs, freshness.

Background jobs can fail while the same call from a session succeeds, so nothing here
assumes a policy ran: job results come from `lifecycle_jobs` and, on the timescale
edition, from `timescaledb_information.job_stats` and `job_errors` (the failed runs of
TimescaleDB's job history, each with what it means when its cause is known). The
queries also run on the apache edition (the information views exist there, empty),
which is how the test suite checks them.
"""

from __future__ import annotations

from typing import Any

from ..db import Conn, one
from . import edition as editions
from .rollups import scheduler_rollups

JOBS = """
SELECT job_name, interval_seconds, runs, failures, last_status, last_started_at,
       last_finished_at, last_duration_ms, last_result, last_success_at, last_error,
       last_error_at, next_run_at, last_run_by
FROM lifecycle_jobs ORDER BY job_name
"""

# Native policies (timescale edition), with their last error. Infinite times ("never")
# are returned as NULL.
POLICIES = """
SELECT j.job_id, j.proc_name AS policy, coalesce(ca.view_name, j.hypertable_name) AS relation,
       j.schedule_interval::text AS schedule_interval, j.config,
       s.last_run_status, s.total_runs, s.total_failures,
       CASE WHEN isfinite(s.last_run_started_at) THEN s.last_run_started_at END AS last_run_started_at,
       CASE WHEN isfinite(s.last_successful_finish) THEN s.last_successful_finish END AS last_successful_finish,
       CASE WHEN isfinite(s.next_start) THEN s.next_start END AS next_start,
       e.finish_time AS last_error_at, e.err_message AS last_error
FROM timescaledb_information.jobs j
LEFT JOIN timescaledb_information.job_stats s ON s.job_id = j.job_id
LEFT JOIN timescaledb_information.continuous_aggregates ca
       ON ca.materialization_hypertable_schema = j.hypertable_schema
      AND ca.materialization_hypertable_name = j.hypertable_name
LEFT JOIN LATERAL (
    SELECT je.finish_time, je.err_message FROM timescaledb_information.job_errors je
    WHERE je.job_id = j.job_id ORDER BY je.finish_time DESC NULLS LAST LIMIT 1
) e ON true
WHERE j.proc_name IN ('policy_compression', 'policy_retention', 'policy_refresh_continuous_aggregate')
ORDER BY j.job_id
"""

# The failed runs of the policies in the last 7 days, newest first: TimescaleDB's job
# history (`job_errors` is the failed part of `job_history`; successes are kept there only
# with timescaledb.enable_job_execution_logging on). A policy can do its work and still be
# recorded as failed (docs/operations.md, "Failed policy runs"), so every failure is shown.
POLICY_FAILURES = """
SELECT e.job_id, e.proc_name AS policy, coalesce(ca.view_name, j.hypertable_name) AS relation,
       e.start_time, e.finish_time, e.sqlerrcode, e.err_message AS error
FROM timescaledb_information.job_errors e
LEFT JOIN timescaledb_information.jobs j ON j.job_id = e.job_id
LEFT JOIN timescaledb_information.continuous_aggregates ca
       ON ca.materialization_hypertable_schema = j.hypertable_schema
      AND ca.materialization_hypertable_name = j.hypertable_name
WHERE e.proc_name IN ('policy_compression', 'policy_retention', 'policy_refresh_continuous_aggregate')
  AND e.finish_time > now() - INTERVAL '7 days'
ORDER BY e.finish_time DESC NULLS LAST, e.job_id
LIMIT %(limit)s
"""
MAX_FAILURES_SHOWN = 20

# Failures whose cause is known, with what they mean: (a substring of the error, the hint).
KNOWN_FAILURES = (
    ("while it is being set up",
     "PostgreSQL 15.20 (and any minor release with the same PortalDrop check) with TimescaleDB "
     "2.28.3 or older: the policy did its work, then its background worker failed while cleaning up. "
     "See docs/operations.md, 'Failed policy runs'."),
)

COMPRESSION = """
SELECT h.compression_enabled,
       (SELECT j.config->>'compress_after' FROM timescaledb_information.jobs j
        WHERE j.proc_name = 'policy_compression' AND j.hypertable_name = 'events' LIMIT 1) AS compress_after,
       st.total_chunks, st.number_compressed_chunks,
       st.before_compression_total_bytes, st.after_compression_total_bytes
FROM timescaledb_information.hypertables h
LEFT JOIN LATERAL hypertable_compression_stats('public.events') st ON true
WHERE h.hypertable_schema = 'public' AND h.hypertable_name = 'events'
"""

# How far each continuous aggregate is materialized (timescale edition); NULL when nothing
# is (TimescaleDB's watermark is then the earliest time there is, or -infinity).
CAGG_WATERMARKS = """
SELECT ca.user_view_name AS rollup,
       CASE WHEN w.t > '0001-01-01' THEN w.t END AS materialized_until
FROM _timescaledb_catalog.continuous_agg ca
CROSS JOIN LATERAL (SELECT _timescaledb_functions.to_timestamp(
                        _timescaledb_functions.cagg_watermark(ca.mat_hypertable_id)) AS t) w
WHERE ca.user_view_schema = 'public'
ORDER BY 1
"""

WATERMARKS = """
SELECT rollup, materialized_until, refreshed_at FROM rollup_watermarks
WHERE rollup = ANY(%s) ORDER BY rollup
"""


def compression(conn: Conn, server: str) -> dict[str, Any]:
    """Compression of the events hypertable: its state, and the ratio once chunks are compressed."""
    if server != editions.TIMESCALE:
        return {"state": "unavailable",
                "reason": "the apache edition of TimescaleDB has no compression"}
    row = conn.execute(COMPRESSION).fetchone()
    if row is None or not row["compression_enabled"]:
        return {"state": "not configured", "reason": "run `hindsight migrate`"}
    before, after = row["before_compression_total_bytes"], row["after_compression_total_bytes"]
    return {
        "state": "enabled",
        "compress_after": row["compress_after"],
        "chunks": row["total_chunks"],
        "compressed_chunks": row["number_compressed_chunks"] or 0,
        "bytes_before": before,
        "bytes_after": after,
        "ratio": round(before / after, 2) if before and after else None,
    }


def known_cause(error: str | None) -> str | None:
    """What a policy's error means, when its cause is known."""
    return next((hint for marker, hint in KNOWN_FAILURES if error and marker in error), None)


def policies(conn: Conn) -> list[dict]:
    rows = conn.execute(POLICIES).fetchall()
    for row in rows:
        row["known_cause"] = known_cause(row["last_error"])
    return rows


def policy_failures(conn: Conn, limit: int = MAX_FAILURES_SHOWN) -> list[dict]:
    """The policies' failed runs of the last 7 days, newest first (at most `limit`)."""
    rows = conn.execute(POLICY_FAILURES, {"limit": limit}).fetchall()
    for row in rows:
        row["known_cause"] = known_cause(row["error"])
    return rows


def freshness(conn: Conn, schema: str | None, server: str) -> list[dict]:
    """Each roll-up's watermark: newer buckets are computed at query time from raw rows."""
    now = one(conn.execute("SELECT now() AS now"))["now"]
    rows = [dict(r, refreshed_by="hindsight") for r in conn.execute(
        WATERMARKS, ([r.name for r in scheduler_rollups(schema)],)).fetchall()]
    if server == editions.TIMESCALE:
        rows += [dict(r, refreshed_at=None, refreshed_by="timescaledb")
                 for r in conn.execute(CAGG_WATERMARKS).fetchall()]
    for r in rows:
        until = r["materialized_until"]
        r["lag_seconds"] = round((now - until).total_seconds()) if until is not None else None
    return rows


def lifecycle_status(conn: Conn) -> dict[str, Any]:
    """Everything /health shows about the lifecycle."""
    server, schema = editions.server_edition(conn), editions.schema_edition(conn)
    status: dict[str, Any] = {"schema_edition": schema}
    if schema != server:
        status["warning"] = (f"the schema was set up for the {schema} edition and the server runs "
                             f"the {server} edition: run `hindsight migrate`")
    status["jobs"] = conn.execute(JOBS).fetchall()
    if server == editions.TIMESCALE:
        status["policies"] = policies(conn)
        status["policy_failures"] = policy_failures(conn)
    status["rollups"] = freshness(conn, schema, server)
    return status
