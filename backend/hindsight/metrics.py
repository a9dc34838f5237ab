"""The service's Prometheus metrics (prometheus_client), plain Python: no HTTP here.

Under `hindsight serve` every gunicorn worker writes its samples to files in
PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode; gunicorn_conf.py makes
and wipes the directory in the master and marks a dead worker's files), and whichever
worker answers GET /metrics reads them all (`exposition`). Without that variable (tests
that build the app in-process, the CLI) the same metrics live in this process's registry.

Gauges say how their samples of several processes combine (`multiprocess_mode`): `livesum`
adds up the live workers' values (pool connections, live viewers), `max` keeps the newest
timestamp. Values that belong to the database rather than to a process (database size,
events waiting on the stacks' ledger, the lifecycle jobs' last runs) are read when
/metrics is scraped, by `DatabaseCollector`, and cached.

Labels are bounded: a route is its template (`/api/v1/sessions/{session_id}`, never the
path), a status is a number, a rejection's reason is one of a few short words.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client import multiprocess as _multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = CONTENT_TYPE_LATEST

# --------------------------------------------------------------------------- requests
REQUEST_SECONDS = Histogram(
    "hindsight_http_request_duration_seconds",
    "Time from a request's first middleware to its answer, by route template and status.",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
)
REQUEST_BODY_BYTES = Counter(
    "hindsight_http_request_body_bytes",
    "Request body bytes announced by Content-Length, by route template.",
    ["route"],
)
STATEMENT_TIMEOUTS = Counter(
    "hindsight_statement_timeouts",
    "SQL statements cancelled by HINDSIGHT_STATEMENT_TIMEOUT_MS (or a cancel) during a request.",
)
# --------------------------------------------------------------------------- ingestion
EVENTS_STORED = Counter("hindsight_events_stored", "Events newly stored by accepted batches.")
EVENTS_DUPLICATE = Counter(
    "hindsight_events_duplicate",
    "Events of accepted batches that were stored before (a re-sent batch) and skipped.",
)
BATCHES_STORED = Counter("hindsight_batches_stored", "Event batches accepted (2xx).")
REJECTIONS = Counter(
    "hindsight_rejections",
    "Refused write requests by status and a short reason (token_expired, host_disabled, ...).",
    ["status", "reason"],
)
# --------------------------------------------------------------------------- the pool
POOL_SIZE = Gauge("hindsight_pool_connections", "Connections the workers' pools hold.",
                  multiprocess_mode="livesum")
POOL_IN_USE = Gauge("hindsight_pool_connections_in_use", "Pooled connections lent to a request or job.",
                    multiprocess_mode="livesum")
POOL_AVAILABLE = Gauge("hindsight_pool_connections_available", "Pooled connections idle in the pools.",
                       multiprocess_mode="livesum")
POOL_MAX = Gauge("hindsight_pool_connections_max", "The pools' maximum size, added up over workers.",
                 multiprocess_mode="livesum")
POOL_WAITING = Gauge("hindsight_pool_requests_waiting", "Requests waiting for a pooled connection now.",
                     multiprocess_mode="livesum")
POOL_TIMEOUTS = Counter("hindsight_pool_timeouts",
                        "Requests that gave up waiting for a connection (answered 503).")
# --------------------------------------------------------------------------- the scheduler
TASK_RUNS = Counter("hindsight_scheduler_task_runs", "Runs of each scheduler task.", ["task"])
TASK_FAILURES = Counter("hindsight_scheduler_task_failures", "Runs of each task that raised.", ["task"])
TASK_LAST_SUCCESS = Gauge(
    "hindsight_scheduler_task_last_success_timestamp_seconds",
    "When each scheduler task last finished without an error (Unix time, newest over workers).",
    ["task"], multiprocess_mode="max",
)
# --------------------------------------------------------------------------- live viewers
LIVE_VIEWERS = Gauge("hindsight_live_viewers", "Dashboard live streams open now (all workers).",
                     multiprocess_mode="livesum")


def multiprocess_dir() -> str | None:
    return os.environ.get(MULTIPROC_ENV) or None


def observe_request(method: str, route: str, status: int, seconds: float, body_bytes: int) -> None:
    REQUEST_SECONDS.labels(method, route, str(status)).observe(seconds)
    if body_bytes:
        REQUEST_BODY_BYTES.labels(route).inc(body_bytes)


def batch_stored(inserted: int, sent: int) -> None:
    BATCHES_STORED.inc()
    EVENTS_STORED.inc(max(inserted, 0))
    EVENTS_DUPLICATE.inc(max(sent - inserted, 0))


def rejected(status: int, reason: str) -> None:
    REJECTIONS.labels(str(status), reason).inc()


def task_finished(name: str, ok: bool, finished_at: float) -> None:
    TASK_RUNS.labels(name).inc()
    if ok:
        TASK_LAST_SUCCESS.labels(name).set(finished_at)
    else:
        TASK_FAILURES.labels(name).inc()


def sample_pool(stats: dict[str, int]) -> None:
    """This worker's pool now (psycopg_pool's `get_stats()`)."""
    size = stats.get("pool_size", 0)
    available = stats.get("pool_available", 0)
    POOL_SIZE.set(size)
    POOL_AVAILABLE.set(available)
    POOL_IN_USE.set(max(size - available, 0))
    POOL_MAX.set(stats.get("pool_max", 0))
    POOL_WAITING.set(stats.get("requests_waiting", 0))


class DatabaseCollector(Collector):
    """Values read from the database when /metrics is scraped, cached `ttl` seconds (the
    database size `size_ttl`): `read()` returns {name: value} and {job: timestamp}."""

    def __init__(self, read: Callable[[], dict[str, Any]], ttl: float = 15.0,
                 read_size: Callable[[], int] | None = None, size_ttl: float = 60.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._read, self._read_size = read, read_size
        self._ttl, self._size_ttl, self._clock = ttl, size_ttl, clock
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, Any]] | None = None
        self._size: tuple[float, int] | None = None

    def _values(self) -> tuple[dict[str, Any] | None, int | None]:
        now = self._clock()
        with self._lock:
            if self._cached is None or now - self._cached[0] >= self._ttl:
                try:
                    self._cached = (now, self._read())
                except Exception:  # the database is down: say nothing rather than fail the scrape
                    self._cached = None
            if self._read_size is not None and (self._size is None or now - self._size[0] >= self._size_ttl):
                try:
                    self._size = (now, self._read_size())
                except Exception:
                    self._size = None
            return (self._cached[1] if self._cached else None,
                    self._size[1] if self._size else None)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        values, size = self._values()
        up = GaugeMetricFamily("hindsight_database_up",
                               "1 when the last read of the database's values at scrape time worked.")
        up.add_metric([], 1 if values is not None else 0)
        yield up
        if size is not None:
            yield GaugeMetricFamily("hindsight_database_size_bytes",
                                    "pg_database_size of the service's database (cached 60 s).", value=size)
        if values is None:
            return
        yield GaugeMetricFamily("hindsight_stacks_pending_events",
                                "Events stored and not yet flushed by the statistics stacks (stack_pending).",
                                value=values["pending_events"])
        yield GaugeMetricFamily("hindsight_stacks_pending_batches",
                                "Batches stored and not yet flushed by the statistics stacks.",
                                value=values["pending_batches"])
        oldest = GaugeMetricFamily("hindsight_stacks_oldest_pending_age_seconds",
                                   "Age of the oldest batch the statistics stacks have not flushed.")
        oldest.add_metric([], values["oldest_pending_age_seconds"] or 0.0)
        yield oldest
        last_run = GaugeMetricFamily("hindsight_lifecycle_job_last_run_timestamp_seconds",
                                     "When each lifecycle job last finished (Unix time; lifecycle_jobs).",
                                     labels=["job"])
        last_ok = GaugeMetricFamily("hindsight_lifecycle_job_last_success_timestamp_seconds",
                                    "When each lifecycle job last succeeded (Unix time; lifecycle_jobs).",
                                    labels=["job"])
        failures = GaugeMetricFamily("hindsight_lifecycle_job_failures",
                                     "Failed runs of each lifecycle job (lifecycle_jobs.failures).",
                                     labels=["job"])
        for job in values["jobs"]:
            if job["last_run"] is not None:
                last_run.add_metric([job["name"]], job["last_run"])
            if job["last_success"] is not None:
                last_ok.add_metric([job["name"]], job["last_success"])
            failures.add_metric([job["name"]], job["failures"])
        yield last_run
        yield last_ok
        yield failures


def exposition(extra: Collector | None = None) -> bytes:
    """The text of GET /metrics: every worker's samples (multiprocess mode) or this
    process's, plus `extra` (the database's values)."""
    directory = multiprocess_dir()
    registry: CollectorRegistry
    if directory:
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry, path=directory)
        if extra is not None:
            registry.register(extra)
        return generate_latest(registry)
    if extra is None:
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    registry.register(_Forward(REGISTRY))
    registry.register(extra)
    return generate_latest(registry)


class _Forward(Collector):
    def __init__(self, inner: CollectorRegistry) -> None:
        self._inner = inner

    def collect(self):
        return self._inner.collect()
