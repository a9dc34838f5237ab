"""Lifecycle jobs: each runs in one process of the deployment at a time.

Every API process (each gunicorn worker, on every host) has a scheduler thread that
ticks each job. A tick:

1. opens its own connection (jobs may run longer than the API's statement timeout,
   and must not take a request's pooled connection);
2. tries the job's advisory lock (`pg_try_advisory_lock`): if another process holds
   it, the tick does nothing — that process is doing the work;
3. with the lock, runs the job only if its `next_run_at` in `lifecycle_jobs` has come,
   so N processes ticking still run it once per interval, not N times;
4. records the run in `lifecycle_jobs` (result or error, duration, who ran it) and
   sets the next run time; the lock is released (or dies with the connection).
"""

from __future__ import annotations

import functools
import json
import logging
import os
import socket
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from .. import visitors
from ..db import Conn, one
from ..scheduler import Scheduler
from ..settings import Settings
from . import edition as editions
from . import retention, rollups, session_end

log = logging.getLogger("hindsight.lifecycle")

LOCK_CLASS = 0x4C494645       # "LIFE": first key of the two-key advisory locks of jobs
TICK_SECONDS = 60.0           # how often each process looks at a job at most
RETRY_SECONDS = 300.0         # after a failure, try again this soon (or at the interval)
JOB_STATEMENT_TIMEOUT_MS = 30 * 60 * 1000

JobFn = Callable[[Conn, datetime], dict]


@dataclass(frozen=True)
class Job:
    name: str
    interval: float      # seconds between runs, deployment-wide
    fn: JobFn            # (autocommit connection with dict rows, now) -> result
    first_delay: float = 60.0  # after a process starts, before its first tick

    @property
    def lock_key(self) -> int:
        return zlib.crc32(self.name.encode()) & 0x7FFFFFFF


def _json(value: Any) -> Jsonb:
    return Jsonb(value, dumps=functools.partial(json.dumps, default=str))


class JobRunner:
    """Run lifecycle jobs against the database at `database_url`, one process at a time."""

    def __init__(self, database_url: str, jobs: list[Job],
                 clock: Callable[[], datetime] | None = None) -> None:
        self._url = database_url
        self._jobs = {job.name: job for job in jobs}
        self._clock = clock  # None: the database's now()
        self._who = f"{socket.gethostname()}:{os.getpid()}"

    @property
    def jobs(self) -> list[Job]:
        return list(self._jobs.values())

    def run(self, name: str, *, force: bool = False) -> dict:
        """Run `name` if it is due (or `force`) and no other process runs it; say what happened."""
        job = self._jobs[name]
        with psycopg.connect(self._url, autocommit=True, row_factory=dict_row,
                             application_name=f"hindsight lifecycle {name}") as conn:
            conn.execute(f"SET statement_timeout = {JOB_STATEMENT_TIMEOUT_MS}")
            locked = one(conn.execute("SELECT pg_try_advisory_lock(%s, %s) AS ok",
                                      (LOCK_CLASS, job.lock_key)))["ok"]
            if not locked:
                return {"ran": False, "reason": "another process is running it"}
            try:
                return self._run_locked(conn, job, force)
            finally:
                # A broken connection has lost its session, and the lock with it.
                if not conn.closed and not conn.broken:
                    conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_CLASS, job.lock_key))

    def _run_locked(self, conn: Conn, job: Job, force: bool) -> dict:
        row = one(conn.execute(
            """
            INSERT INTO lifecycle_jobs (job_name, interval_seconds) VALUES (%s, %s)
            ON CONFLICT (job_name) DO UPDATE SET interval_seconds = EXCLUDED.interval_seconds
            RETURNING next_run_at <= now() AS due, now() AS now
            """, (job.name, max(1, round(job.interval)))))
        if not (force or row["due"]):
            return {"ran": False, "reason": "not due"}
        now = self._clock() if self._clock is not None else row["now"]
        conn.execute("UPDATE lifecycle_jobs SET last_started_at = now(), last_run_by = %s "
                     "WHERE job_name = %s", (self._who, job.name))
        started = time.perf_counter()
        try:
            result = job.fn(conn, now)
        except Exception as ex:
            error = f"{type(ex).__name__}: {ex}".strip()
            if not conn.closed and not conn.broken:
                conn.execute(
                    """
                    UPDATE lifecycle_jobs SET runs = runs + 1, failures = failures + 1,
                        last_finished_at = now(), last_duration_ms = %s, last_status = 'failure',
                        last_error = %s, last_error_at = now(),
                        next_run_at = now() + make_interval(secs => %s)
                    WHERE job_name = %s
                    """, (self._ms(started), error, min(job.interval, RETRY_SECONDS), job.name))
            raise
        conn.execute(
            """
            UPDATE lifecycle_jobs SET runs = runs + 1, last_finished_at = now(),
                last_duration_ms = %s, last_status = 'success', last_result = %s,
                last_success_at = now(), next_run_at = now() + make_interval(secs => %s)
            WHERE job_name = %s
            """, (self._ms(started), _json(result), job.interval, job.name))
        log.info("lifecycle job %s: %s", job.name, result)
        return {"ran": True, "result": result}

    @staticmethod
    def _ms(started: float) -> float:
        return round((time.perf_counter() - started) * 1000, 3)


def lifecycle_jobs(settings: Settings) -> list[Job]:
    """The jobs, configured from `settings`; each reads the schema's edition when it runs."""

    def refresh_rollups(conn: Conn, now: datetime) -> dict:
        return rollups.refresh_all(conn, now, editions.schema_edition(conn))

    def delete_visitor_salts(conn: Conn, now: datetime) -> dict:
        return {"deleted": visitors.delete_old_salts(conn, now)}

    def apply_retention(conn: Conn, now: datetime) -> dict:
        return retention.run(conn, now, events_retention_days=settings.events_retention_days,
                             rollup_retention_days=settings.rollup_retention_days,
                             schema_edition=editions.schema_edition(conn))

    return [
        Job("refresh_rollups", settings.rollup_refresh_seconds, refresh_rollups, first_delay=60.0),
        # Destructive: not in the first minutes of a process (short-lived test servers,
        # a deploy that is rolled back).
        Job("retention", settings.retention_interval_seconds, apply_retention, first_delay=600.0),
        # The daily visitor salts: deleted once two days old (hindsight.visitors), hourly.
        Job("visitor_salts", 3600.0, delete_visitor_salts, first_delay=60.0),
        # sessions.ended_at: the last activity of sessions quiet for 30 minutes.
        Job("close_sessions", 300.0, session_end.end_quiet_sessions, first_delay=60.0),
    ]


def register(scheduler: Scheduler, settings: Settings) -> JobRunner:
    """Put the lifecycle jobs on this process's scheduler (unless HINDSIGHT_LIFECYCLE_JOBS is off)."""
    # Session-level advisory locks: the primary itself, never through a transaction pooler.
    runner = JobRunner(settings.direct_database_url or settings.database_url, lifecycle_jobs(settings))
    if settings.database_url:
        # The edition is probed when the scheduler starts (then hourly: a database can be
        # moved to another server), and logged with a warning when migrate is due.
        scheduler.every("lifecycle.edition", 3600.0,
                        functools.partial(_probe, settings.database_url), first_delay=0.0)
    if settings.lifecycle_jobs and settings.database_url:
        for job in runner.jobs:
            scheduler.every(f"lifecycle.{job.name}", min(job.interval, TICK_SECONDS),
                            functools.partial(runner.run, job.name), first_delay=job.first_delay)
    return runner


def _probe(database_url: str) -> dict[str, str | None]:
    with psycopg.connect(database_url, autocommit=True, row_factory=dict_row) as conn:
        return probe_edition(conn)


def probe_edition(conn: Conn) -> dict[str, str | None]:
    """Log the server's and the schema's edition at start-up; warn when they differ."""
    server, schema = editions.server_edition(conn), editions.schema_edition(conn)
    if schema is not None and schema != server:
        log.warning("TimescaleDB runs the %s edition but the schema was set up for the %s "
                    "edition: run `hindsight migrate`", server, schema)
    else:
        log.info("TimescaleDB edition: %s (schema: %s)", server, schema)
    return {"server": server, "schema": schema}
