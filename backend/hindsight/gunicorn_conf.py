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


def on_starting(server):
    """In the master, before any worker is forked: the host's rate-limit table, which
    every worker inherits (hindsight.ratelimit)."""
    from hindsight import ratelimit

    ratelimit.start_host_counter()


def on_exit(server):
    from hindsight import ratelimit

    if ratelimit.host_counter is not None:
        ratelimit.host_counter.close()
