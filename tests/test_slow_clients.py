"""Slow clients never hold the API (issue 9, finding 1).

Real `hindsight serve` processes on 127.0.0.1. While 50 connections send a request body a
byte at a time (or not at all), 20 send their headers a byte at a time (slowloris) and 10
connect and say nothing, a normal client keeps getting /health and POST /api/v1/track answered
within its usual latency, measured before the attack in the same test. Every slow connection
is closed by the server after a bounded time: 408 in the API's JSON error shape for a head or
body that did not arrive in time, silently for an idle one. gunicorn's own refusals (414, 400)
are JSON too. What gevent workers (hindsight.worker) could break is checked as well: a request
that waits for a database connection gets a 503, not a hang; decoding a large screenshot does
not hold the worker's other requests (hindsight.offload); a worker whose database driver would
not yield to gevent refuses to start.
"""

from __future__ import annotations

import base64
import io
import json
import random
import select
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import psycopg
import pytest
from PIL import Image, ImageDraw
from test_crash import site_token

from conftest import new_account
from harness import ServeProcess, http_call

HEAD_TIMEOUT = 3.0     # HINDSIGHT_HEAD_TIMEOUT_SECONDS for these servers (default 10)
BODY_TIMEOUT = 3.0     # HINDSIGHT_BODY_TIMEOUT_SECONDS for these servers (default 10)
KEEPALIVE = 5.0        # gunicorn_conf.keepalive: an idle connection's time to send a request
SLACK = 3.0            # how late a close may come on a busy 2-core machine
SAMPLES = 20           # requests of each kind the normal client sends, before and during


@pytest.fixture(scope="module")
def server(db_url):
    srv = ServeProcess(db_url, workers=2, env={
        "HINDSIGHT_HEAD_TIMEOUT_SECONDS": str(HEAD_TIMEOUT),
        "HINDSIGHT_BODY_TIMEOUT_SECONDS": str(BODY_TIMEOUT),
    })
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


# --- the attack ------------------------------------------------------------------------------

def track_head(content_length: int) -> bytes:
    return (f"POST /api/v1/track HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {content_length}\r\n\r\n").encode()


@dataclass(frozen=True)
class Kind:
    """One way of being slow: what a connection sends at once, then a byte of `trickle`
    every `every` seconds (nothing when `trickle` is empty)."""

    name: str
    opening: bytes
    trickle: bytes = b""
    every: float = 0.0


SLOW_BODY = Kind("slow body", track_head(1000) + b'{"session_id"')          # 13 of 1000 bytes
TRICKLED_BODY = Kind("trickled body", track_head(1000) + b'{"session_id"', b" " * 1000, 1.0)
SLOWLORIS = Kind("slowloris", b"POST /api/v1/track HTTP/1.1\r\n", b"X-Padding: 1\r\n" * 1000, 0.5)
IDLE = Kind("idle", b"")


@dataclass
class SlowConnection:
    kind: Kind
    sock: socket.socket
    opened_at: float
    sent: int = 0                # bytes of the trickle sent
    next_send_at: float = 0.0
    answer: bytes = b""
    closed_at: float | None = None

    @property
    def lifetime(self) -> float:
        assert self.closed_at is not None
        return self.closed_at - self.opened_at

    def status(self) -> int | None:
        return int(self.answer.split(b" ", 2)[1]) if self.answer.startswith(b"HTTP/1.1 ") else None

    def json_body(self) -> dict:
        head, _, body = self.answer.partition(b"\r\n\r\n")
        assert b"content-type: application/json" in head.lower(), self.answer
        return json.loads(body)


@dataclass
class Attacker:
    """One thread that keeps `counts[kind]` slow connections open: it trickles their bytes,
    records what the server answers and when it closes each one, and opens a replacement for
    every closed one until `stop_reopening` is set; then it waits for the last to close."""

    port: int
    counts: dict[Kind, int]
    connections: list[SlowConnection] = field(default_factory=list)
    stop_reopening: threading.Event = field(default_factory=threading.Event)
    error: BaseException | None = None

    def open(self, kind: Kind) -> SlowConnection:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        sock.setblocking(False)
        if kind.opening:
            sock.sendall(kind.opening)   # a few dozen bytes: fits in the socket buffer at once
        now = time.monotonic()
        conn = SlowConnection(kind, sock, now, next_send_at=now + kind.every)
        self.connections.append(conn)
        return conn

    def open_ones(self) -> list[SlowConnection]:
        return [c for c in self.connections if c.closed_at is None]

    def closed(self, conn: SlowConnection) -> None:
        conn.closed_at = time.monotonic()
        conn.sock.close()
        if not self.stop_reopening.is_set():
            self.open(conn.kind)

    def run(self, give_up_after: float) -> None:
        try:
            for kind, count in self.counts.items():
                for _ in range(count):
                    self.open(kind)
            deadline = time.monotonic() + give_up_after
            while self.open_ones() and time.monotonic() < deadline:
                self.step()
        except BaseException as ex:  # reported by the test's thread
            self.error = ex

    def step(self) -> None:
        live = self.open_ones()
        readable, _, _ = select.select([c.sock for c in live], [], [], 0.05)
        by_sock = {c.sock: c for c in live}
        for sock in readable:
            conn = by_sock[sock]
            try:
                data = sock.recv(65536)
            except ConnectionResetError:
                data = b""
            if data:
                conn.answer += data
            else:
                self.closed(conn)
        now = time.monotonic()
        for conn in self.open_ones():
            if conn.kind.trickle and now >= conn.next_send_at and conn.sent < len(conn.kind.trickle):
                try:
                    conn.sock.send(conn.kind.trickle[conn.sent:conn.sent + 1])
                except (BrokenPipeError, ConnectionResetError):
                    continue  # closed by the server: the next recv says so
                conn.sent += 1
                conn.next_send_at = now + conn.kind.every


# --- the normal client -----------------------------------------------------------------------

def p95(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[max(0, int(len(ordered) * 0.95) - 1)]


class NormalClient:
    """A site that keeps working: /health and one-event batches of its session."""

    def __init__(self, port: int, db_url: str) -> None:
        self.port = port
        account = new_account(db_url)
        self.origin = f"https://{account['domain']}"
        token = site_token(port, account, self.origin)
        self.headers = {"Authorization": f"Bearer {token}", "Origin": self.origin}
        self.session_id = str(uuid.uuid4())
        status, _, body = http_call(port, "POST", "/api/v1/sessions", headers=self.headers,
                                    body={"session_id": self.session_id, "page_url": f"{self.origin}/"})
        assert status == 201, body
        self.seq = 0

    def health(self) -> float:
        started = time.monotonic()
        status, _, body = http_call(self.port, "GET", "/health", timeout=30)
        assert status == 200, body
        return time.monotonic() - started

    def track(self) -> float:
        self.seq += 1
        event = {"seq": self.seq, "timestamp": datetime.now(UTC).isoformat(), "event_type": "click",
                 "page_url": f"{self.origin}/", "viewport_x": 1, "viewport_y": 2}
        started = time.monotonic()
        status, _, body = http_call(self.port, "POST", "/api/v1/track", headers=self.headers,
                                    body={"session_id": self.session_id, "events": [event]}, timeout=30)
        assert status == 201, body
        return time.monotonic() - started

    def measure(self, for_seconds: float = 0.0) -> dict[str, list[float]]:
        """At least SAMPLES of each request, a tenth of a second apart, for at least `for_seconds`."""
        latencies: dict[str, list[float]] = {"health": [], "track": []}
        until = time.monotonic() + for_seconds
        while len(latencies["health"]) < SAMPLES or time.monotonic() < until:
            latencies["health"].append(self.health())
            latencies["track"].append(self.track())
            time.sleep(0.1)
        return latencies


def test_slow_clients_do_not_stop_the_api_and_are_closed_in_bounded_time(server, db_url):
    client = NormalClient(server.port, db_url)
    client.measure()  # warm up: pools, caches, token checks
    baseline = client.measure()

    attacker = Attacker(server.port, {SLOW_BODY: 25, TRICKLED_BODY: 25, SLOWLORIS: 20, IDLE: 10})
    attack = threading.Thread(target=attacker.run, args=(60.0,), daemon=True)
    attack.start()
    while len(attacker.open_ones()) < 80:   # the whole attack is connected before we measure
        assert attacker.error is None and attack.is_alive(), attacker.error
        time.sleep(0.01)
    # Long enough for the server to close every slow connection, and the attacker to open
    # new ones, twice: the attack goes on all along.
    during = client.measure(for_seconds=2 * KEEPALIVE + 1)
    still_open = len(attacker.open_ones())
    attacker.stop_reopening.set()
    attack.join(timeout=60)
    assert attacker.error is None, attacker.error
    assert not attack.is_alive(), "the server left slow connections open for over a minute"

    report = {}
    for what in ("health", "track"):
        before, under_attack = p95(baseline[what]), p95(during[what])
        report[what] = (round(before * 1000, 1), round(under_attack * 1000, 1))
        assert under_attack < max(1.0, 5 * before), (what, report)
    assert still_open >= 80, "the attack must still be open when the normal client is done"
    assert len(attacker.connections) >= 3 * 80 - 10, "the server closed each wave of slow connections"

    lifetimes: dict[str, list[float]] = {}
    for conn in attacker.connections:
        lifetimes.setdefault(conn.kind.name, []).append(conn.lifetime)
        if conn.kind is IDLE:
            # An idle connection is closed after gunicorn's keep-alive, without an answer.
            assert conn.answer == b"", conn.answer
            assert KEEPALIVE - 0.5 <= conn.lifetime <= KEEPALIVE + SLACK, conn.lifetime
            continue
        limit = HEAD_TIMEOUT if conn.kind is SLOWLORIS else BODY_TIMEOUT
        assert conn.status() == 408, conn.answer
        assert conn.json_body() == {"error": "Request Timeout", "description": conn.json_body()["description"],
                                    "fields": {}}
        assert b"connection: close" in conn.answer.lower()
        # The trickled body's 1-byte sends move its deadline by microseconds (1 s per
        # HINDSIGHT_BODY_MIN_RATE bytes), not by the time between them.
        assert limit - 0.5 <= conn.lifetime <= limit + SLACK, (conn.kind.name, conn.lifetime)
    print(f"\nslow clients: p95 latency ms (before, during) {report}; "
          f"{len(attacker.connections)} slow connections, lifetime s "
          + ", ".join(f"{k}: {min(v):.2f}-{max(v):.2f}" for k, v in lifetimes.items()))


# --- gunicorn's own refusals -----------------------------------------------------------------

def raw_exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send `request` as is and read the answer until the server closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split(" ")[1]), {k.lower(): v for k, v in headers.items()}, body


@pytest.mark.parametrize("request_bytes, status, error", [
    (b"GET /health?" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "URI Too Long"),
    (b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n", 400, "Bad Request"),
    (b"NOT A REQUEST LINE\r\n\r\n", 400, "Bad Request"),
], ids=["request-line-too-long", "bad-header-name", "bad-request-line"])
def test_gunicorn_refusals_use_the_json_error_shape(server, request_bytes, status, error):
    got, headers, body = raw_exchange(server.port, request_bytes)
    assert got == status, body
    assert headers["content-type"] == "application/json"
    assert headers["connection"] == "close"
    document = json.loads(body)
    assert set(document) == {"error", "description", "fields"}
    assert document["error"] == error and document["description"] and document["fields"] == {}


# --- a database connection for every waiting greenlet? no: 503 ---------------------------------

def test_requests_waiting_for_the_pool_get_503_not_a_hang(db_url):
    """One database connection, held by a request blocked on a table lock: requests queued
    behind it answer 503 + Retry-After after HINDSIGHT_POOL_TIMEOUT, while the blocked one is
    still running (so the worker was not blocked with it), and it completes once the lock goes."""
    srv = ServeProcess(db_url, workers=1, env={
        "HINDSIGHT_POOL_MIN": "1", "HINDSIGHT_POOL_MAX": "1", "HINDSIGHT_POOL_TIMEOUT": "1",
        "HINDSIGHT_LIFECYCLE_JOBS": "false", "HINDSIGHT_STACKS_MONITOR_INTERVAL_SECONDS": "3600",
    }).start()
    try:
        client = NormalClient(srv.port, db_url)
        client.track()
        blocked: dict[str, object] = {}
        with psycopg.connect(db_url) as locker:
            locker.execute("LOCK TABLE sessions, events IN ACCESS EXCLUSIVE MODE")

            def blocked_track():
                try:
                    blocked["latency"] = client.track()
                except BaseException as ex:
                    blocked["error"] = ex

            holder = threading.Thread(target=blocked_track, daemon=True)
            holder.start()
            time.sleep(0.5)  # the batch has the pool's one connection, waiting on the lock
            started = time.monotonic()
            status, headers, body = http_call(srv.port, "GET", "/api/v1/sessions", timeout=30,
                                              headers={"Authorization": "Bearer hsk_unknown"})
            waited = time.monotonic() - started
            assert status == 503, body
            assert {k.lower(): v for k, v in headers.items()}["retry-after"] == "5", headers
            assert body["error"] == "Service Unavailable", body
            assert 0.8 <= waited <= 3.0, waited
            assert holder.is_alive(), "the blocked batch must still be waiting"
            locker.rollback()
        holder.join(timeout=20)
        assert "error" not in blocked, blocked
        assert "latency" in blocked
    finally:
        srv.stop()


# --- CPU-bound work does not hold the worker's other requests ----------------------------------

def long_page_png(width: int = 1920, height: int = 25_000) -> bytes:
    """A long page's screenshot (48 MP): rows of "text" and some coloured boxes, 0.3 MB."""
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    rnd = random.Random(1)
    for y in range(0, height, 24):
        for x in range(20, width - 300, 300):
            draw.rectangle([x, y + 4, x + rnd.randint(50, 280), y + 16], fill=(rnd.randint(0, 90),) * 3)
    for _ in range(height // 400):
        x, y = rnd.randint(0, width - 400), rnd.randint(0, height - 300)
        draw.rectangle([x, y, x + 380, y + 280], fill=tuple(rnd.randint(0, 255) for _ in range(3)))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_a_large_screenshot_does_not_hold_the_workers_other_requests(db_url):
    """pillow decodes a 48-megapixel screenshot for most of a second. In one worker, where
    every request is a greenlet of one thread, that would hold every other request for as
    long; hindsight.offload runs it in a real thread, so the others keep being answered."""
    srv = ServeProcess(db_url, workers=1).start()
    try:
        client = NormalClient(srv.port, db_url)
        png = long_page_png()
        body = {"session_id": client.session_id, "page_url": f"{client.origin}/",
                "timestamp": datetime.now(UTC).isoformat(), "width": 1920, "height": 25_000,
                "image_data": "data:image/png;base64," + base64.b64encode(png).decode()}
        spans: list[tuple[float, float]] = []
        stop = threading.Event()
        # The first OpenAPI document is built on demand (~0.2 s): built here, not timed below.
        assert http_call(srv.port, "GET", "/api/v1/openapi.json", timeout=30)[0] == 200

        def others():
            while not stop.is_set():
                began = time.monotonic()
                status, _, _ = http_call(srv.port, "GET", "/api/v1/openapi.json", timeout=30)
                assert status == 200
                spans.append((began, time.monotonic()))
                time.sleep(0.005)

        pinger = threading.Thread(target=others, daemon=True)
        pinger.start()
        time.sleep(0.3)
        started = time.monotonic()
        status, _, answer = http_call(srv.port, "POST", "/api/v1/track/screenshot", body=body,
                                      headers=client.headers, timeout=60)
        ended = time.monotonic()
        upload = ended - started
        time.sleep(0.3)
        stop.set()
        pinger.join(timeout=30)
        assert status == 201, answer
        # The requests answered while the upload was being handled (those that overlap it).
        waits = [end - began for began, end in spans if end > started and began < ended]
        assert len(waits) >= 3, spans
        # Held by the decoding, the longest wait would be about the upload's whole time.
        assert max(waits) < upload / 2, (max(waits), upload)
        print(f"\n48 MP screenshot: upload {upload * 1000:.0f} ms; meanwhile {len(waits)} other requests, "
              f"longest {max(waits) * 1000:.0f} ms")
    finally:
        srv.stop()


def test_a_worker_whose_database_waits_would_not_yield_refuses_to_start(db_url):
    """psycopg picks how it waits for PostgreSQL when first imported; imported before gevent's
    patch (or told to by PSYCOPG_WAIT_FUNC) it would block the whole worker on every query.
    The worker checks, and does not start rather than serve like that."""
    srv = ServeProcess(db_url, workers=1, env={"PSYCOPG_WAIT_FUNC": "wait_c"})
    with pytest.raises(AssertionError, match="without yielding to gevent"):
        srv.start(timeout=20)
