"""The live stream (issue 13) over real HTTP: `hindsight serve` (gevent worker) and a real
TimescaleDB. Batches sent after a viewer connected reach it; a viewer of account A never
receives account B's events (API key and dashboard login); a reconnect with
`Last-Event-ID` gets what was missed meanwhile and not what it had; heartbeats; the cap on
viewers; a viewer that does not read is dropped (hindsight.live.hub, in-process)."""

from __future__ import annotations

import http.client
import json
import re
import socket
import threading
import time
import urllib.parse
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from dashboard_support import PASSWORD, make_user

from harness import ServeProcess, http_call, site_writer, wait_for
from hindsight.live import hub as live_hub


class SseClient:
    """A raw-socket Server-Sent Events client: the status, headers and every message (with
    its id and event name) are collected by a reader thread."""

    def __init__(self, port: int, path: str, headers: dict[str, str]) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        self.sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n{head}\r\n"
                          .encode())
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.messages: list[dict] = []
        self.comments = 0
        self.closed = False
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        buf = b""
        try:
            while b"\r\n\r\n" not in buf:
                data = self.sock.recv(65536)
                if not data:
                    return
                buf += data
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            self.headers = {k.lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
            self.status = int(lines[0].split()[1])
            text, body = b"", buf
            while True:
                # De-chunk: enough for gunicorn's chunked stream (one SSE piece per chunk).
                while True:
                    m = re.match(rb"([0-9a-fA-F]+)\r\n", body)
                    if not m or len(body) < m.end() + int(m.group(1), 16) + 2:
                        break
                    size = int(m.group(1), 16)
                    text += body[m.end():m.end() + size]
                    body = body[m.end() + size + 2:]
                    if size == 0:
                        return
                *complete, text = text.split(b"\n\n")
                for message in complete:
                    self._message(message.decode())
                data = self.sock.recv(65536)
                if not data:
                    return
                body += data
        except OSError:
            return
        finally:
            self.closed = True

    def _message(self, raw: str) -> None:
        message: dict = {"event": "message", "id": None, "data": []}
        for line in raw.split("\n"):
            if line.startswith(":"):
                self.comments += 1
                return
            field, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if field == "data":
                message["data"].append(value)
            elif field in ("id", "event", "retry"):
                message[field] = value
        if message["data"]:
            message["data"] = json.loads("\n".join(message["data"]))
        self.messages.append(message)

    def events(self) -> list[dict]:
        return [e for m in self.messages if m["event"] == "events" for e in m["data"]["events"]]

    def seqs(self, session_id: str) -> set[int]:
        return {e["seq"] for e in self.events() if e["session_id"] == session_id}

    def last_id(self) -> str | None:
        ids = [m["id"] for m in self.messages if m.get("id")]
        return ids[-1] if ids else None

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._thread.join(timeout=5)


class LiveSite:
    """An account written to through the real server's site flow."""

    def __init__(self, port: int, account: dict) -> None:
        self.port, self.account = port, account
        writer = site_writer(port, account)
        self.origin, self.write = writer["origin"], writer["write"]
        self.read = {"Authorization": f"Bearer {account['api_key']}"}

    def new_session(self) -> str:
        status, _, body = http_call(self.port, "POST", "/api/v1/sessions", {"page_url": self.origin + "/"},
                                    self.write)
        assert status == 201, body
        return body["session_id"]

    def send(self, session_id: str, seqs: range, event_type: str = "click", **fields) -> None:
        now = datetime.now(UTC)
        events = [{"seq": s, "timestamp": (now + timedelta(milliseconds=s)).isoformat(),
                   "event_type": event_type, "page_url": f"{self.origin}/page-{s}", **fields} for s in seqs]
        status, _, body = http_call(self.port, "POST", "/api/v1/track",
                                    {"session_id": session_id, "events": events}, self.write)
        assert status == 201, body


def dashboard_cookie(port: int, db_url: str, account_id: str) -> str:
    """Log a new analyst of `account_id` in through the real login form; the session cookie."""
    email = make_user(db_url, account_id)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request("GET", "/dashboard/login")
    page = conn.getresponse()
    html = page.read().decode()
    csrf_cookie = re.search(r"hs_login_csrf=([^;]+)", page.getheader("Set-Cookie") or "").group(1)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
    form = urllib.parse.urlencode({"email": email, "password": PASSWORD, "csrf_token": token,
                                   "next": "/dashboard/live"})
    conn.request("POST", "/dashboard/login", form, {"Content-Type": "application/x-www-form-urlencoded",
                                                    "Cookie": f"hs_login_csrf={csrf_cookie}"})
    resp = conn.getresponse()
    resp.read()
    assert resp.status == 303, resp.status
    cookies = [v for k, v in resp.getheaders() if k.lower() == "set-cookie" and v.startswith("hs_session=")]
    conn.close()
    return cookies[0].split(";", 1)[0]


@pytest.fixture(scope="module")
def server(db_url):
    from conftest import new_account

    srv = ServeProcess(db_url, workers=1, env={
        "HINDSIGHT_LIVE_HEARTBEAT_SECONDS": "1", "HINDSIGHT_LIVE_POLL_SECONDS": "0.1",
        "HINDSIGHT_LIVE_MAX_VIEWERS": "6"}).start()
    srv.sites = [LiveSite(srv.port, new_account(db_url)), LiveSite(srv.port, new_account(db_url))]
    yield srv
    srv.stop()


def test_viewers_get_their_own_account_only(server, db_url):
    a, b = server.sites
    a_session, b_session = a.new_session(), b.new_session()
    viewer_a = SseClient(server.port, "/api/v1/live/stream", a.read)
    viewer_b = SseClient(server.port, "/api/v1/live/stream", b.read)
    cookie = dashboard_cookie(server.port, db_url, a.account["account_id"])
    dash_a = SseClient(server.port, "/dashboard/live/stream", {"Cookie": cookie})
    try:
        for viewer in (viewer_a, viewer_b, dash_a):
            wait_for(lambda v=viewer: v.status is not None, 10, "stream headers")
            assert viewer.status == 200
            assert viewer.headers["content-type"].startswith("text/event-stream")
            assert viewer.headers["x-accel-buffering"] == "no"
            assert "no-store" in viewer.headers["cache-control"]
            assert "content-encoding" not in viewer.headers
        a.send(a_session, range(0, 5), "click")
        b.send(b_session, range(0, 3), "error", event_data={"message": "B's secret"})
        a.send(a_session, range(5, 7), "network", event_data={"method": "GET", "url": "/api", "status": 500})
        wait_for(lambda: viewer_a.seqs(a_session) == set(range(7)), 15, "A's events at A's viewer")
        wait_for(lambda: dash_a.seqs(a_session) == set(range(7)), 15, "A's events at A's dashboard")
        wait_for(lambda: viewer_b.seqs(b_session) == {0, 1, 2}, 15, "B's events at B's viewer")
        time.sleep(0.5)  # anything misdelivered would have arrived by now
        for viewer in (viewer_a, dash_a):
            assert b_session not in {e["session_id"] for e in viewer.events()}
            assert "B's secret" not in json.dumps(viewer.messages)
            assert all(v["session_id"] != b_session for m in viewer.messages if m["event"] == "events"
                       for v in m["data"]["visitors"])
        assert {e["session_id"] for e in viewer_b.events()} == {b_session}
        # Errors and failed requests are marked; each visitor's current page is the newest.
        marked = {e["seq"] for e in viewer_a.events() if e.get("problem")}
        assert marked == {5, 6}
        assert all(e["problem"] for e in viewer_b.events())
        visitors = [v for m in viewer_a.messages if m["event"] == "events" for v in m["data"]["visitors"]]
        assert visitors[-1]["session_id"] == a_session and visitors[-1]["current_page"].endswith("/page-6")
        counts = sum(m["data"]["counts"]["events"] for m in viewer_a.messages if m["event"] == "events")
        assert counts == 7
        # The live page's snapshot (its JSON twin): the same account only.
        status, _, snap = http_call(server.port, "GET", "/dashboard/live?format=json", headers={"Cookie": cookie})
        assert status == 200, snap
        assert a_session in {v["session_id"] for v in snap["visitors"]}
        assert {e["session_id"] for e in snap["events"]} == {a_session}
        assert b_session not in json.dumps(snap)
        assert sum(b["events"] for b in snap["rate"]["series"]) == 7
        assert live_hub.decode_position(snap["cursor"]) is not None
        status, _, _ = http_call(server.port, "GET", "/dashboard/live?format=json")
        assert status == 401
        # Heartbeats while nothing happens (every second here).
        before = viewer_a.comments
        wait_for(lambda: viewer_a.comments >= before + 2, 10, "heartbeats")
    finally:
        for viewer in (viewer_a, viewer_b, dash_a):
            viewer.close()


def test_resume_after_a_reconnect_with_last_event_id(server):
    a, b = server.sites
    session = a.new_session()
    other = b.new_session()
    viewer = SseClient(server.port, "/api/v1/live/stream", a.read)
    wait_for(lambda: viewer.status == 200, 10, "stream")
    a.send(session, range(0, 3))
    wait_for(lambda: viewer.seqs(session) == {0, 1, 2}, 15, "first batch")
    last = viewer.last_id()
    viewer.close()
    # Missed while away: a batch of A (and one of B, which A must not get on resume).
    a.send(session, range(3, 6))
    b.send(other, range(0, 2))
    time.sleep(0.5)
    again = SseClient(server.port, "/api/v1/live/stream", {**a.read, "Last-Event-ID": last})
    try:
        wait_for(lambda: again.seqs(session) == {3, 4, 5}, 15, "the missed batch on resume")
        a.send(session, range(6, 8))
        wait_for(lambda: again.seqs(session) == set(range(3, 8)), 15, "new batches after the resume")
        assert other not in {e["session_id"] for e in again.events()}
        assert not [m for m in again.messages if m["event"] == "reset"]
    finally:
        again.close()
    # The snapshot's position works the same way as ?after= (a first connection).
    fresh = SseClient(server.port, f"/api/v1/live/stream?after={urllib.parse.quote(last)}", a.read)
    try:
        wait_for(lambda: fresh.seqs(session) == set(range(3, 8)), 15, "?after= catch-up")
    finally:
        fresh.close()
    # An id ahead of this worker's loop (as another worker's may be): nothing up to it is
    # sent again, what comes after it is.
    ahead = live_hub.encode_position(live_hub.below(datetime.now(UTC) + timedelta(seconds=2)))
    later = SseClient(server.port, "/api/v1/live/stream", {**a.read, "Last-Event-ID": ahead})
    try:
        wait_for(lambda: later.status == 200, 10, "stream")
        a.send(session, range(8, 10))                      # received before the id's moment
        wait_for(lambda: time.time() > live_hub.decode_position(ahead)[0].timestamp() + 0.5, 10)
        a.send(session, range(10, 12))                     # after it
        wait_for(lambda: later.seqs(session) >= {10, 11}, 15, "the batch after the id")
        assert not later.seqs(session) & {8, 9}
    finally:
        later.close()
    # An id older than the resume window: told to reload, not flooded.
    old = live_hub.encode_position((datetime.now(UTC) - timedelta(hours=1), uuid.UUID(int=0), -1))
    stale = SseClient(server.port, "/api/v1/live/stream", {**a.read, "Last-Event-ID": old})
    try:
        wait_for(lambda: [m for m in stale.messages if m["event"] == "reset"], 10, "reset")
    finally:
        stale.close()


def test_refusals_and_the_viewer_cap(server):
    a, _ = server.sites
    for path, headers in (("/api/v1/live/stream", {}), ("/api/v1/live/stream", {"Authorization": "Bearer nope"}),
                          ("/dashboard/live/stream", {}), ("/dashboard/live/stream", {"Cookie": "hs_session=x"})):
        status, _, body = http_call(server.port, "GET", path, headers=headers)
        assert status == 401, (path, status, body)
    viewers: list[SseClient] = []

    def one_more() -> bool:
        """A new viewer that got its 200 (the streams of the tests before may take a
        heartbeat or two to notice their clients left)."""
        viewer = SseClient(server.port, "/api/v1/live/stream", a.read)
        wait_for(lambda: viewer.status is not None, 10, "stream headers")
        if viewer.status == 200:
            viewers.append(viewer)
            return True
        viewer.close()
        return False

    try:
        for _ in range(6):
            wait_for(one_more, 15, "a place for a viewer")
        status, headers, body = http_call(server.port, "GET", "/api/v1/live/stream", headers=a.read)
        assert status == 503 and {k.lower(): v for k, v in headers.items()}.get("retry-after"), body
    finally:
        for v in viewers:
            v.close()
    # Closed viewers free their places.
    viewers.clear()
    wait_for(one_more, 15, "a place once the others left")
    viewers[0].close()


def test_positions_and_a_viewer_that_does_not_read():
    pos = (datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), uuid.uuid4(), 12)
    assert live_hub.decode_position(live_hub.encode_position(pos)) == pos
    below = live_hub.below(pos[0])
    assert live_hub.decode_position(live_hub.encode_position(below)) == below
    for junk in ("", "x", "1-2-3", "9" * 90, "1-zz-3", None):
        assert live_hub.decode_position(junk) is None
    viewer = live_hub.Viewer(uuid.uuid4(), size=3)
    assert all(viewer.offer(b"m") for _ in range(3))
    assert viewer.offer(b"m") is False and viewer.closed == "overflow"
    assert viewer.next(0.01) is None


def test_a_response_write_has_a_deadline():
    """hindsight.worker's ClientConnection bounds each sendall (a client that stopped reading
    a live stream cannot hold its greenlet): a peer that never reads gets a timeout."""
    from hindsight.worker import ClientConnection, Limits

    server_side, client_side = socket.socketpair()
    try:
        server_side.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        client_side.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        connection = ClientConnection(server_side, Limits(5.0, 10.0, 10.0, 10**9, write=0.5),
                                      lambda: RuntimeError(), lambda: False)
        outcome: list = []

        def write() -> None:
            started = time.monotonic()
            try:
                connection.sendall(b"x" * (16 * 1024 * 1024))   # far more than the buffers hold
                outcome.append(("sent", time.monotonic() - started))
            except TimeoutError:
                outcome.append(("timed out", time.monotonic() - started))

        writer = threading.Thread(target=write, daemon=True)
        writer.start()
        writer.join(timeout=30)                                 # without a deadline: blocked
        assert outcome and outcome[0][0] == "timed out", outcome
        assert outcome[0][1] > 0.4
        assert server_side.gettimeout() is None                 # back to blocking for what follows
    finally:
        server_side.close()
        client_side.close()
