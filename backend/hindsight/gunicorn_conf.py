"""gunicorn configuration for `hindsight serve`.

Connections are opened after the fork (the app is built in each worker), and a
graceful shutdown (SIGTERM) lets in-flight requests finish within `graceful_timeout`.
"""

import os

bind = os.environ.get("HINDSIGHT_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("HINDSIGHT_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("HINDSIGHT_THREADS", "4"))
# Each worker's heartbeat is an os.utime() on a temporary file, twice per request under
# load; on a disk filesystem it can wait behind the journal while PostgreSQL fsyncs on the
# same disk (gunicorn's documentation recommends a tmpfs). Keep it in memory when we can.
if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
    worker_tmp_dir = "/dev/shm"
preload_app = False
graceful_timeout = 30
timeout = 60
keepalive = 5
accesslog = None
errorlog = "-"
loglevel = os.environ.get("HINDSIGHT_LOG_LEVEL", "info")
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
