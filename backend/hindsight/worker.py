"""The gunicorn worker of `hindsight serve`: gevent, with a deadline on every read from a client.

A connection costs a greenlet, not a thread, so slow clients cannot take the API's capacity
away (docs/DECISIONS.md, "Slow clients and the worker model"); and no connection is held
for longer than its deadline allows. A connection is always in one of three phases, and
each read from its socket waits at most until the phase's deadline:

- **waiting** for a request (a new connection, or keep-alive after an answer): gunicorn's
  `keepalive` seconds for the first byte, then the connection is closed without a word;
- **head**: from that first byte, HINDSIGHT_HEAD_TIMEOUT_SECONDS for the request line and
  headers (and the rest of an earlier body the application left unread), then `408`;
- **body**: from the application's first read of the body, HINDSIGHT_BODY_TIMEOUT_SECONDS
  plus one second per HINDSIGHT_BODY_MIN_RATE bytes received, then `408`.

A `408` is the API's JSON error shape with `Connection: close`. gunicorn's own refusals of
what it cannot parse (400, 414 for a request line over `limit_request_line`, 431, 501) are
written in the same shape instead of gunicorn's HTML page.

This module is imported by the gunicorn master (to find the worker class) before it forks:
it must not import psycopg, which picks its way of waiting for the network when first
imported, and has to do so after gevent's monkey patch (in the worker) to cooperate with it.
"""

from __future__ import annotations

import contextlib
import json
import socket
import time
import uuid
from collections.abc import Callable
from typing import Any

from gunicorn import util
from gunicorn.workers.ggevent import GeventWorker

from .settings import Settings

# What the connection is waiting for.
WAITING, HEAD, BODY = "waiting", "head", "body"


class IdleTimeout(Exception):
    """No request began within the keep-alive time: close the connection, say nothing."""


class HeadTimeout(Exception):
    """A request's line and headers did not arrive in time: 408, then close."""


def error_response(status: int, reason: str, description: str) -> bytes:
    """A complete HTTP response carrying the API's error shape (hindsight.errors)."""
    body = json.dumps({"error": reason, "description": description or reason, "fields": {}}).encode()
    # The request could not be read, so no id it may have sent can be trusted: a new one.
    head = (f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\nX-Request-Id: {uuid.uuid4().hex}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n")
    return head.encode("latin-1") + body


def write_json_error(sock: Any, status_int: int, reason: str, mesg: str) -> None:
    """Stands in for gunicorn.util.write_error (same signature): JSON instead of HTML.
    Non-blocking, as gunicorn's: a client that does not read gets nothing, not a greenlet."""
    util.write_nonblock(sock, error_response(status_int, reason, mesg))


class Limits:
    """The deadlines, in seconds (and bytes per second for the body's minimum rate)."""

    def __init__(self, keepalive: float, head: float, body: float, body_min_rate: int,
                 write: float = 30.0) -> None:
        self.keepalive, self.head, self.body, self.body_min_rate = keepalive, head, body, body_min_rate
        self.write = write  # each write of a response: this long, + 1 s per body_min_rate bytes


class ClientConnection:
    """A client socket whose reads are bounded by the deadline of the connection's phase.

    gunicorn reads the request through `recv` only (its SocketUnreader) and writes the
    response through `sendall`, which has a deadline too (a client that stops reading, e.g.
    a live stream's, cannot hold its greenlet forever); everything else (close, fileno, ...)
    goes to the socket as it is.
    """

    def __init__(self, sock: socket.socket, limits: Limits,
                 body_timeout_error: Callable[[], Exception], stopping: Callable[[], bool]) -> None:
        self._sock = sock
        self._stopping = stopping
        self._limits = limits
        self._body_timeout_error = body_timeout_error
        self._request: Any = None
        self.phase = WAITING
        self._deadline: float | None = time.monotonic() + limits.keepalive

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def sendall(self, data: bytes) -> None:
        """gevent's sendall with a timeout bounds the whole call (socket.timeout past it:
        gunicorn then closes the connection)."""
        self._sock.settimeout(self._limits.write + len(data) / self._limits.body_min_rate)
        try:
            self._sock.sendall(data)
        finally:
            self._sock.settimeout(None)

    def reading_body(self, request: Any) -> None:
        """gunicorn hands `request` to the application, which may now read its body."""
        self.phase, self._request, self._deadline = BODY, request, None  # starts at the first read

    def waiting_for_request(self) -> None:
        self.phase, self._request = WAITING, None
        self._deadline = time.monotonic() + self._limits.keepalive

    def recv(self, size: int) -> bytes:
        if self._deadline is None:  # the application's first read of the body
            self._deadline = time.monotonic() + self._limits.body
        data = self._recv_before(self._deadline, size)
        if data and self.phase == WAITING:
            self.phase = HEAD
            self._deadline = time.monotonic() + self._limits.head
        elif self.phase == BODY:
            self._deadline += len(data) / self._limits.body_min_rate
        return data

    def _recv_before(self, deadline: float, size: int) -> bytes:
        """One recv from the socket, or the phase's exception once `deadline` has passed.

        A waiting connection wakes up every second to see whether the worker is stopping:
        it is then closed at once rather than after the keep-alive time."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (self.phase == WAITING and self._stopping()):
                raise self._timed_out()
            self._sock.settimeout(min(remaining, 1.0) if self.phase == WAITING else remaining)
            try:
                return self._sock.recv(size)
            except TimeoutError:
                continue
            finally:
                self._sock.settimeout(None)  # writes are not bounded here

    def _timed_out(self) -> Exception:
        if self.phase == WAITING:
            return IdleTimeout()
        if self.phase == HEAD:
            return HeadTimeout()
        # Inside the application: its error handling answers 408 (JSON), and gunicorn
        # closes the connection after it, since the rest of the body never came.
        self._request.must_close = True
        return self._body_timeout_error()


class HindsightWorker(GeventWorker):
    """gunicorn's gevent worker (`worker_class = "gevent"`) with the deadlines above."""

    limits: Limits
    body_timeout_error: Callable[[], Exception]
    stop_live_streams: Callable[[], None]

    def init_process(self) -> None:
        settings = Settings.from_env()
        # keepalive 0 (gunicorn's "no keep-alive") still gives a new connection 5 s to start.
        self.limits = Limits(float(self.cfg.keepalive or 5), settings.head_timeout_seconds,
                             settings.body_timeout_seconds, settings.body_min_rate,
                             settings.write_timeout_seconds)
        # Every gunicorn refusal goes through util.write_error (Worker.handle_error).
        util.write_error = write_json_error
        super().init_process()  # monkey-patches, loads the application, serves until stopped

    def load_wsgi(self) -> None:
        super().load_wsgi()
        from psycopg import waiting

        from .errors import request_timeout

        # psycopg imported before the monkey patch would wait for PostgreSQL without
        # yielding, and one slow query would stop every connection of this worker.
        if getattr(waiting, "wait_c", None) is waiting.wait:
            raise RuntimeError("psycopg waits for PostgreSQL without yielding to gevent: was it "
                               "imported before the monkey patch, or is PSYCOPG_WAIT_FUNC set?")
        self.body_timeout_error = request_timeout
        from .live import stop_all

        self.stop_live_streams = stop_all

    def handle_exit(self, sig, frame) -> None:
        # SIGTERM: a graceful stop waits for the requests in progress, and a live stream
        # (hindsight.live) never ends by itself: end them all now (out of the signal handler).
        import gevent

        stop = getattr(self, "stop_live_streams", None)
        if stop is not None:
            gevent.spawn(stop)
        super().handle_exit(sig, frame)

    def handle(self, listener, client, addr) -> None:
        connection = ClientConnection(client, self.limits, self.body_timeout_error, lambda: not self.alive)
        super().handle(listener, connection, addr)

    def timeout_ctx(self):
        # gunicorn's gevent worker bounds reading each request head by `keepalive` seconds
        # in all; ClientConnection bounds each phase instead, and an idle connection is
        # closed silently, as gunicorn would.
        return contextlib.suppress(IdleTimeout)

    def handle_request(self, listener_name, req, sock, addr):
        sock.reading_body(req)
        try:
            return super().handle_request(listener_name, req, sock, addr)
        finally:
            sock.waiting_for_request()

    def handle_error(self, req, client, addr, exc) -> None:
        if isinstance(exc, IdleTimeout):  # outside timeout_ctx: only without keep-alive
            return
        if isinstance(exc, HeadTimeout):
            self.log.debug("request head not received in time from %s", addr[0] if addr else "?")
            try:
                write_json_error(client, 408, "Request Timeout",
                                 "The request's line and headers did not arrive in time.")
            except OSError:
                pass
            return
        super().handle_error(req, client, addr, exc)
