"""kill -9 the whole gunicorn process group while batches are in flight.

Invariants checked (DESIGN.md): a 2xx means durable; nothing acknowledged is lost by
a crash; re-sent batches are not duplicated; a batch is stored entirely or not at all;
a session's counters match its rows.

Real processes only: `hindsight serve` (gunicorn, 2 workers) against the session's
TimescaleDB cluster, HTTP over loopback, the real site token flow.
"""

from __future__ import annotations

import http.client
import json
import shutil
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest

from conftest import new_account
from harness import ServeProcess, http_call

CLIENTS = 6              # client threads, one session each
BATCHES_PER_CLIENT = 60  # upper bound of the load: 6 x 60 x 20 = 7200 events
EVENTS_PER_BATCH = 20
KILLS = 5                # kill -9 rounds before the load may finish
KILL_AFTER_ACKED = 15    # each round: kill -9 once this many more batches were acknowledged


@pytest.fixture
def server(db_url):
    srv = ServeProcess(db_url, workers=2, log_dir=Path(tempfile.mkdtemp(prefix="hindsight-crash-")))
    try:
        srv.start()
        yield srv
    finally:
        srv.stop()
        shutil.rmtree(srv.log_dir, ignore_errors=True)


@dataclass
class Batch:
    session_id: str
    seqs: list[int]
    body: dict
    clicks: int
    outcome: str = "unsent"  # unsent | in_flight | acked | failed
    status: int | None = None
    count: int | None = None  # events the server said it newly stored
    error: str | None = None


@dataclass
class Client:
    session_id: str
    batches: list[Batch] = field(default_factory=list)


def make_batches(session_id: str, origin: str, base: datetime) -> list[Batch]:
    batches = []
    for b in range(BATCHES_PER_CLIENT):
        events, clicks = [], 0
        for seq in range(b * EVENTS_PER_BATCH, (b + 1) * EVENTS_PER_BATCH):
            kind = "click" if seq % 3 == 0 else "mouse_move"
            clicks += kind == "click"
            events.append({
                "seq": seq,
                # Fixed timestamps: a re-sent batch is byte-for-byte the same batch.
                "timestamp": (base + timedelta(milliseconds=seq)).isoformat(),
                "event_type": kind,
                "page_url": f"{origin}/crash",
                "viewport_x": seq % 1000, "viewport_y": seq % 700,
            })
        batches.append(Batch(session_id, [e["seq"] for e in events],
                             {"session_id": session_id, "events": events}, clicks))
    return batches


def site_token(port: int, account: dict, origin: str) -> str:
    """The real site flow over HTTP: widgets (JWT) -> statistics token."""
    status, _, widgets = http_call(port, "GET", f"/site/account/{account['account_id']}/widgets",
                                   headers={"Origin": origin})
    assert status == 200, widgets
    jwt = widgets["widgets"][0]["token"]
    status, _, stats = http_call(port, "GET",
                                 f"/site/widget/{account['widget_id']}/account_statistics",
                                 headers={"Authorization": f"Bearer {jwt}", "Origin": origin})
    assert status == 200, stats
    return stats["token"]


def stored_seqs(db_url: str, session_ids: list[str]) -> dict[str, set[int]]:
    with psycopg.connect(db_url) as c:
        rows = c.execute("SELECT session_id::text, seq FROM events WHERE session_id = ANY(%s::uuid[])",
                         (session_ids,)).fetchall()
    out: dict[str, set[int]] = {s: set() for s in session_ids}
    for sid, seq in rows:
        out[sid].add(seq)
    return out


class Load:
    """Client threads, one per session, each sending its batches in order like the tracker:
    the first batch without a 2xx is re-sent first; on a failure the client stops and
    keeps the rest queued for the next round."""

    def __init__(self, port: int, headers: dict[str, str], clients: list[Client]) -> None:
        self.port, self.headers, self.clients = port, headers, clients
        self.lock = threading.Lock()
        self.acked = 0
        self.threads: list[threading.Thread] = []

    def _run(self, client: Client) -> None:
        for batch in client.batches:
            if batch.outcome == "acked":
                continue
            batch.outcome, batch.status, batch.error = "in_flight", None, None
            try:
                status, _, body = http_call(self.port, "POST", "/api/v1/track", body=batch.body,
                                            headers=self.headers)
            except (OSError, http.client.HTTPException) as ex:
                # Reset, refused, EOF, a response cut short: the server is gone, and a
                # response that did not arrive whole is no acknowledgement.
                batch.outcome, batch.error = "failed", repr(ex)
                return
            except Exception as ex:  # a test bug: reported by the main thread's asserts
                batch.outcome, batch.status, batch.error = "failed", -1, repr(ex)
                return
            batch.status = status
            if 200 <= status < 300:
                batch.outcome, batch.count = "acked", body["count"]
                with self.lock:
                    self.acked += 1
            else:
                batch.outcome, batch.error = "failed", json.dumps(body)
                return

    def start(self) -> None:
        self.threads = [threading.Thread(target=self._run, args=(c,), daemon=True)
                        for c in self.clients]
        for t in self.threads:
            t.start()

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self.threads), "a client hung"

    def batches(self, outcome: str) -> list[Batch]:
        return [b for c in self.clients for b in c.batches if b.outcome == outcome]


@pytest.mark.slow
def test_kill9_mid_load_loses_nothing_acknowledged(server, db_url):
    started = time.monotonic()
    port = server.port
    account = new_account(db_url)
    origin = f"https://{account['domain']}"
    token = site_token(port, account, origin)
    write = {"Authorization": f"Bearer {token}", "Origin": origin}
    read = {"Authorization": f"Bearer {account['api_key']}"}

    base = datetime.now(UTC) - timedelta(minutes=5)
    clients = []
    for _ in range(CLIENTS):
        sid = str(uuid.uuid4())
        status, _, body = http_call(port, "POST", "/api/v1/sessions",
                                    body={"session_id": sid, "page_url": f"{origin}/crash"},
                                    headers=write)
        assert status == 201, body
        assert body["session_id"] == sid
        clients.append(Client(sid, make_batches(sid, origin, base)))
    session_ids = [c.session_id for c in clients]
    load = Load(port, write, clients)
    # Batches committed although their client never saw the 2xx (the response died with
    # the worker): the re-send must be recognized (count 0), not stored twice.
    committed_unacked: set[tuple[str, int]] = set()
    report = []

    for round_no in range(1, KILLS + 1):
        acked_before = load.acked
        load.start()
        deadline = time.monotonic() + 15
        while True:  # kill once enough batches are acknowledged and some are on the wire
            with load.lock:
                n_acked = load.acked - acked_before
            in_flight = len(load.batches("in_flight"))
            if n_acked >= KILL_AFTER_ACKED and in_flight >= 2:
                break
            assert time.monotonic() < deadline, f"round {round_no}: load stalled at {n_acked}"
            assert any(t.is_alive() for t in load.threads), "the load ended before the kill"
            time.sleep(0.002)
        killed = server.kill9()
        load.join(timeout=15)
        assert killed >= 3, f"expected master + 2 workers in the process group, saw {killed}"

        acked, failed, unsent = load.batches("acked"), load.batches("failed"), load.batches("unsent")
        assert not load.batches("in_flight")
        assert len(acked) - acked_before >= KILL_AFTER_ACKED
        # While it lived, the server answered every request with a 201.
        assert all(b.status == 201 for b in acked)
        assert not [b.error for b in failed if b.status is not None]
        assert failed, "no request was in flight at the kill"
        assert unsent, "the load had already finished: the kill was not mid-way"

        # The server is dead; the database is not. Every acknowledged batch is there,
        # and every batch is all-or-nothing (one transaction).
        stored = stored_seqs(db_url, session_ids)
        lost = [(b.session_id, b.seqs[0]) for b in acked if not set(b.seqs) <= stored[b.session_id]]
        assert not lost, f"acknowledged batches lost by kill -9: {lost}"
        partial = [(b.session_id, b.seqs[0]) for c in clients for b in c.batches
                   if 0 < len(set(b.seqs) & stored[b.session_id]) < len(b.seqs)]
        assert not partial, f"partially stored batches: {partial}"
        assert not [b for b in unsent if set(b.seqs) & stored[b.session_id]]
        newly = {(b.session_id, b.seqs[0]) for b in failed if set(b.seqs) <= stored[b.session_id]}
        committed_unacked |= newly
        report.append(f"kill {round_no}: {killed} processes, {len(acked)} acked, "
                      f"{len(failed)} failed ({len(newly)} committed unacked), {len(unsent)} unsent")

        server.start()  # same port; the clients re-send what was not acknowledged

    load.start()  # the last round runs the load to its end
    load.join(timeout=30)
    acked = load.batches("acked")
    not_acked = [(b.session_id, b.seqs[0], b.status, b.error)
                 for c in clients for b in c.batches if b.outcome != "acked"]
    assert not not_acked, f"batches never accepted after the restart: {not_acked[:5]}"
    assert all(b.status == 201 for b in acked)

    # Every event was counted exactly once by the responses: committed-unacked batches
    # answered 0 when re-sent, all others answered their full size.
    for key in committed_unacked:
        batch = next(b for b in acked if (b.session_id, b.seqs[0]) == key)
        assert batch.count == 0, (key, batch.count)
    expected = BATCHES_PER_CLIENT * EVENTS_PER_BATCH
    for client in clients:
        counted = sum(b.count for b in client.batches)
        assert counted + EVENTS_PER_BATCH * sum(k[0] == client.session_id for k in committed_unacked) \
            == expected, (client.session_id, counted)

    # Database: everything once, nothing twice, counters equal to rows.
    with psycopg.connect(db_url) as c:
        dupes = c.execute(
            "SELECT count(*) FROM (SELECT session_id, seq FROM events "
            "WHERE session_id = ANY(%s::uuid[]) GROUP BY 1, 2 HAVING count(*) > 1) d",
            (session_ids,)).fetchone()[0]
        assert dupes == 0
        rows = dict(c.execute(
            "SELECT session_id::text, count(*) FROM events WHERE session_id = ANY(%s::uuid[]) "
            "GROUP BY 1", (session_ids,)).fetchall())
        counters = {sid: (n, clicks) for sid, n, clicks in c.execute(
            "SELECT session_id::text, event_count, click_count FROM sessions "
            "WHERE session_id = ANY(%s::uuid[])", (session_ids,)).fetchall()}
    for client in clients:
        sid = client.session_id
        assert rows.get(sid) == expected, (sid, rows.get(sid))
        assert counters[sid] == (expected, sum(b.clicks for b in client.batches)), (sid, counters[sid])

    # The read API (analyst key) sees the same.
    status, _, listing = http_call(port, "GET", "/api/v1/sessions?limit=100", headers=read)
    assert status == 200, listing
    assert sorted(s["session_id"] for s in listing["data"]) == sorted(session_ids)
    assert {s["session_id"]: s["event_count"] for s in listing["data"]} == dict.fromkeys(session_ids, expected)
    for sid in session_ids:
        status, _, events = http_call(port, "GET", f"/api/v1/sessions/{sid}/events?limit=10000",
                                      headers=read)
        assert status == 200, events
        assert events["total"] == expected
        assert [e["seq"] for e in events["data"]] == list(range(expected))

    print("\n" + "\n".join(report) + f"\ntotal {time.monotonic() - started:.1f}s, "
          f"{len(committed_unacked)} batches committed but unacknowledged at a kill")
