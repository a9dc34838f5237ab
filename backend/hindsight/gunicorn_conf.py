"""gunicorn configuration for `hindsight serve`.

Connections are opened after the fork (the app is built in each worker), and a
graceful shutdown (SIGTERM) lets in-flight requests finish within `graceful_timeout`.

The worker is gevent's (hindsight.worker): a client connection costs a greenlet, not a
thread, and every read from a client has a deadline (docs/DECISIONS.md, "Slow clients and
the worker model"). This file runs in the master: it must not import the application.
"""

import os

from hindsight.settings import Settings

_settings = Settings.from_env()

bind = _settings.bind
workers = _settings.workers
worker_class = "hindsight.worker.HindsightWorker"
# Connections per worker at once, idle keep-alive ones included (one greenlet each).
worker_connections = _settings.worker_connections
# Each worker's heartbeat is an os.utime() on a temporary file, twice per request under
# load; on a disk filesystem it can wait behind the journal while PostgreSQL fsyncs on the
# same disk (gunicorn's documentation recommends a tmpfs). Keep it in memory when we can.
if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
    worker_tmp_dir = "/dev/shm"
# The application is loaded in each worker, after gevent has patched it (psycopg must be
# imported after the patch: hindsight.worker).
preload_app = False
graceful_timeout = 30
# A worker whose heartbeat stops this long is killed: with gevent, CPU-bound work that
# never yields (pillow decoding a screenshot) delays it; 60 s is far above any such work.
timeout = 60
# Seconds an idle connection (new, or between keep-alive requests) has to start a request.
keepalive = 5
accesslog = None
errorlog = "-"
loglevel = _settings.log_level
wsgi_app = "hindsight.app:get_app()"
# gunicorn's control socket would be shared by every instance on the machine.
control_socket_disable = True

# prometheus_client's multiprocess mode (hindsight.metrics): every worker writes its samples
# into this directory, whichever worker answers /metrics reads them all. Set before any
# worker is forked (a worker's prometheus_client reads it when first imported); an operator's
# own PROMETHEUS_MULTIPROC_DIR is used as it is, else a fresh one (in memory when we can).
_METRICS_DIR_OWNED = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _METRICS_DIR_OWNED:
    import tempfile

    _shm = "/dev/shm" if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK) else None
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = tempfile.mkdtemp(prefix="hindsight-metrics-", dir=_shm)


def on_starting(server):
    """In the master, before any worker is forked: the host's rate-limit table, which
    every worker inherits (hindsight.ratelimit)."""
    from hindsight import ratelimit

    ratelimit.start_host_counter()
    # Samples of an earlier run (a reused directory) would be counted again: start empty.
    # (The master never imports hindsight.metrics: it would own sample files of its own.)
    directory = os.environ["PROMETHEUS_MULTIPROC_DIR"]
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.endswith(".db"):
            os.unlink(os.path.join(directory, name))


def child_exit(server, worker):
    """A worker is gone (exit, crash, kill): its live gauges stop counting."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    from hindsight import ratelimit

    if ratelimit.host_counter is not None:
        ratelimit.host_counter.close()
    if _METRICS_DIR_OWNED:
        import shutil

        shutil.rmtree(os.environ["PROMETHEUS_MULTIPROC_DIR"], ignore_errors=True)
