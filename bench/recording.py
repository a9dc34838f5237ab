"""DOM recording benchmark: bytes per recorded minute, ingestion of segments against a raw
COPY, and the replay's first frame and seek to the end, in one run on this machine.

1. Recording: a throw-away TimescaleDB cluster (durable commits), the API (`hindsight serve`,
   2 workers) and the demo site (tracker/demo, tracker.js with DOM recording on, its
   defaults) behind a proxy that keeps every request as sent. Debian's headless Chromium
   makes a scripted visit of `--minutes` (default 2): the sign-up page (typing, scrolling),
   the single-page app's routes, the checkout (a list that grows, the coupon modal, hash
   routes, typing), the to-do app (items added with Enter, ticked, filtered), with idle
   moments, round after round until the time is up; then the tab is closed (the last
   segment leaves as a beacon). Per recorded minute (first to last rrweb event): the rrweb
   events' JSON, the bytes on the wire (as sent: gzip from CompressionStream, or from fflate
   for the segment cut as the page goes away), plain gzip of the same events (each segment's
   gzip as sent; a plain-JSON one gzipped at level 6: what was stored before recording
   blobs), and what PostgreSQL stores: the segments' `data` (the rest of each segment once
   its large literals are cut out, hindsight.recording_blobs, zstd with the account's
   dictionary, hindsight.recording_codec) plus the blobs this recording stored first (blobs
   shared with earlier recordings of the account counted apart) and the dictionary made of
   its text, and the tables' size on disk; then a second visit of the same site in the same
   account (a later session: the account's dictionary and blobs exist), measured alike.
2. Ingestion: the recorded segments (bodies as sent, in order) renumbered into many
   sessions and posted through POST /api/v1/track/recording by concurrent keep-alive
   clients (threads, as bench/ingest.py does), against `psql \\copy` of the same rows into
   recording_segments in the same round; rounds, the median round's ratio API / COPY.
3. Replay: a 30-minute recording made of the recorded visit repeated with shifted
   timestamps (each of its page loads starts with a full snapshot, as tracker.js records
   them; its segments cut where tracker.js cut them), with the tracker's own event batches
   repeated alike, stored through the API. A logged-in analyst opens its replay page in
   Chromium (a fresh browser context each run: nothing cached) and the bench times
   - the first frame: navigation start to the first animation frame at which the player's
     rebuilt page (rrweb's iframe inside the sandboxed player) has a body with elements;
   - a seek to the end (the End key): the keydown to the first animation frame at which the
     rebuilt page is the recording's last state (its title, element count and markup length
     equal those the player shows once the seek has long settled, taken in an unmeasured
     first run).
4. Writes its section of docs/BENCHMARKS.md (between markers; other sections stay).

    .venv/bin/python bench/recording.py               # 2-minute visit: about 5 minutes
    .venv/bin/python bench/recording.py --minutes 5   # the issue's 5-minute visit: about 9 minutes
    .venv/bin/python bench/recording.py --quick       # smoke run: short everything, no doc
    .venv/bin/python bench/recording.py --storage-only   # the two visits' bytes alone (that part of
        # the section): about 5 minutes
    .venv/bin/python bench/recording.py --replay-only --against HEAD   # the replay alone (its own
        # section), A/B against a git revision's code: page loads alternated, same database

tests/test_bench_smoke.py runs `run_bench` in quick mode against the test cluster.
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "BENCHMARKS.md"
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as bench_common  # noqa: E402 - bench/ is not a package
import ingest as bench_ingest  # noqa: E402
from doc_sections import write_section  # noqa: E402

from browser import ApiServer, chromium, ensure_tracker_built  # noqa: E402
from harness import http_call, site_writer, wait_for  # noqa: E402

SECTION = "bench/recording.py"
RECORDING = "/api/v1/track/recording"
VIEWPORT = {"width": 1280, "height": 800}
FIRST_FRAME_TARGET_MS = 300.0
SEEK_TARGET_MS = 500.0
STORED_TARGET = 0.5          # the issue: stored at most half of plain gzip
MB = 1_000_000
REPLAYER_JS = ROOT / "dashboard" / "static" / "dist" / "rrweb-replay.js"
RUN, WINDOW = "rrweb's replayer runs in the player", "first window's segments"
REQUESTED = "rrweb-replay.js requested (by the replay page)"
SECTION_REPLAY = "bench/recording.py (replay)"   # its own section: `--replay-only` writes it alone


@dataclass
class Config:
    minutes: float = 2.0          # the scripted visit
    sessions: int = 40            # per ingestion round, each gets every recorded segment
    rounds: int = 3               # rounds of (COPY, API)
    clients: int = 8              # concurrent keep-alive HTTP clients
    workers: int = 2              # gunicorn workers
    replay_minutes: float = 30.0  # the replayed recording's length
    replay_runs: int = 5          # measured replay page loads (after one unmeasured)
    quiet_wait: float = 10.0      # before each ingestion round, wait this long at most for an idle machine
    quick: bool = False

    @classmethod
    def quick_config(cls) -> Config:
        return cls(minutes=0.1, sessions=4, rounds=1, clients=2, replay_minutes=1.0,
                   replay_runs=1, quiet_wait=0.0, quick=True)


# --------------------------------------------------------------------------- 1. recording


@dataclass
class Segment:
    number: int
    body: bytes            # as sent (first upload of this number)
    encoding: str          # gzip | json
    data: bytes            # as stored (gzip: the rest, when blobs were cut out)
    json_bytes: int
    events: int
    full_snapshot: bool
    started_ms: int
    ended_ms: int
    text: bytes = b""      # the JSON as sent (read back: blobs spliced in)
    blobs: list[bytes] | None = None        # the blobs it references (None: none)
    blob_offsets: list[int] | None = None
    dictionary: bytes | None = None         # the dictionary its zstd names (None: none)

    @property
    def plain_gzip(self) -> int:
        """What plain gzip stores: the browser's gzip, or the API's (level 6) of plain JSON."""
        return len(self.body) if self.encoding == "gzip" else len(gzip.compress(self.body, 6, mtime=0))


@dataclass
class Recorded:
    session_id: str
    visit_seconds: float               # wall clock of the scripted visit
    segments: list[Segment]
    uploads: int                       # recording uploads seen on the wire (retries included)
    wire_bytes_all: int                # every upload's body, retries included
    batches: list[dict]                # tracker.js's event batches as sent (parsed)
    session_body: dict                 # tracker.js's POST /api/v1/sessions body
    table_bytes: int                   # hypertable_size('recording_segments') after the visit
    rounds: int                        # rounds of the scripted visit
    blob_bytes_new: int = 0            # stored bytes of the blobs this recording stored first
    blobs_new: int = 0
    blob_bytes_shared: int = 0         # of the blobs it references that earlier recordings stored
    blobs_shared: int = 0
    blob_table_bytes: int = 0          # pg_total_relation_size('recording_blobs') after the visit
    dictionary_bytes_new: int = 0      # stored bytes of the dictionaries made of this recording's text
    dictionaries_new: int = 0
    dictionaries_used: int = 0         # distinct dictionaries its segments name
    segments_with_dictionary: int = 0
    reads: dict[str, float] = field(default_factory=dict)   # measure_reads: ms per segment
    uploads_json: int = 0              # of the uploads, those sent as plain JSON
    preflights: int = 0                # CORS preflights (OPTIONS) of recording uploads
    beacons: int = 0                   # of the uploads, those sent by sendBeacon (no-cors)
    site_port: int = 0                 # the demo site's port (its origin is in the snapshots)
    blob_hashes_new: list[bytes] = field(default_factory=list)   # the blobs it stored first

    @property
    def first_ms(self) -> int:
        return min(s.started_ms for s in self.segments)

    @property
    def last_ms(self) -> int:
        return max(s.ended_ms for s in self.segments)

    @property
    def minutes(self) -> float:
        return (self.last_ms - self.first_ms) / 60_000

    @property
    def json_bytes(self) -> int:
        return sum(s.json_bytes for s in self.segments)

    @property
    def wire_bytes(self) -> int:
        return sum(len(s.body) for s in self.segments)

    @property
    def segment_bytes(self) -> int:
        """The segments' `data` and their references (a 32-byte hash and a 4-byte offset a
        blob, the dictionary's 32-byte hash)."""
        return sum(len(s.data) + 36 * len(s.blobs or ()) + (32 if s.dictionary else 0) for s in self.segments)

    @property
    def stored_bytes(self) -> int:
        """The segments' `data`, the blobs this recording stored first and the dictionaries
        made of its text."""
        return self.segment_bytes + self.blob_bytes_new + self.dictionary_bytes_new

    @property
    def plain_gzip(self) -> int:
        return sum(s.plain_gzip for s in self.segments)

    @property
    def page_loads(self) -> int:
        return sum(1 for s in self.segments if s.full_snapshot)

    def whole_gzip(self) -> int:
        """The whole recording's JSON gzipped as one stream (level 6): what context across
        segments is worth to plain gzip."""
        text = b"\n".join(s.text for s in self.segments)
        return len(gzip.compress(text, compresslevel=6, mtime=0))


def scripted_visit(page, base: str, seconds: float, log) -> int:
    """Round after round of the demo site until `seconds` have passed; return the rounds."""
    deadline = time.monotonic() + seconds
    rounds = 0

    def left() -> bool:
        return time.monotonic() < deadline

    def idle(ms: int) -> None:
        page.wait_for_timeout(min(ms, max(0, int((deadline - time.monotonic()) * 1000))))

    def wheel(times: int, dy: int) -> None:
        for _ in range(times):
            page.mouse.wheel(0, dy)
            page.wait_for_timeout(150)

    def moves(n: int, y0: int) -> None:
        for i in range(n):
            page.mouse.move(80 + (i * 37) % 1000, y0 + (i * 23) % 300)
            page.wait_for_timeout(30)

    while left():
        rounds += 1
        # The sign-up page: the mouse, fields typed into, a scroll down and back, an idle moment.
        page.goto(base + "/")
        moves(30, 150)
        page.click("#name")
        page.keyboard.type(f"Grace Hopper {rounds}", delay=40)
        if not left():
            break
        page.click("#email")
        page.keyboard.type("grace@example.org", delay=40)
        page.click("#notes")
        page.keyboard.type("Please deliver after six.", delay=40)
        page.click("#terms")
        wheel(6, 350)
        idle(2500)
        wheel(6, -350)
        page.click("#buy")
        if not left():
            break
        # The single-page app: routes without page loads, a field, a hash link.
        page.click("header a[href='/app']")
        page.wait_for_url("**/app")
        page.click("#nav-settings")
        page.select_option("#theme", "Dark")
        page.wait_for_timeout(400)
        page.click("#nav-profile")
        page.click("#nick")
        page.keyboard.type("amazing grace", delay=40)
        page.click("#nav-home")
        page.wait_for_timeout(400)
        page.click("#nav-details")
        idle(3000)
        if not left():
            break
        # The checkout: a list that grows, the coupon modal, hash routes, typing.
        page.click("header a[href='/checkout.html']")
        page.wait_for_url("**/checkout.html")
        for _ in range(3):
            page.click("#add-item")
            page.wait_for_timeout(250)
        page.click("#open-coupon")
        page.click("#coupon")
        page.keyboard.type("SPRING-SALE", delay=40)
        page.click("#apply-coupon")
        page.wait_for_timeout(600)
        page.click("#close-coupon")
        page.click("#to-shipping")
        page.wait_for_url("**#/shipping")
        page.click("#full-name")
        page.keyboard.type("Grace Brewster Hopper", delay=40)
        page.click("#street")
        page.keyboard.type("1 Navy Yard", delay=40)
        moves(20, 250)
        idle(3000)
        if not left():
            break
        # The to-do app: items added with Enter, ticked, filtered.
        page.click("header a[href='/todo.html']")
        page.wait_for_url("**/todo.html")
        for i in range(5):
            page.click("#new-todo")
            page.keyboard.type(f"task {rounds}.{i}: write the report", delay=30)
            page.keyboard.press("Enter")
        for box in page.locator("#todo-list input[type=checkbox]").all()[:2]:
            box.click()
        for hash_ in ("#/active", "#/completed", "#/"):
            page.click(f"#filters a[href='{hash_}']")
            page.wait_for_timeout(400)
        page.click("#todo-note")
        page.keyboard.type("private", delay=40)
        idle(4000)
        log(f"visit: round {rounds} done, {max(0.0, deadline - time.monotonic()):.0f} s left")
    return rounds


def record_visit(browser, api, url: str, account: dict, config: Config, log, site_port: int = 0) -> Recorded:
    """tracker.js records the scripted visit through the proxy; the segments as sent and stored.
    `site_port`: the demo site's (0: any free one; a later visit of the same site passes the
    first one's, since rrweb writes absolute URLs into its snapshots)."""
    from test_tracker_recording import Wire, session_id_of

    from hindsight.db import connect
    from hindsight.demo import DemoSite
    from hindsight.queries.recordings import BODY_COLUMNS, resolve

    wire = Wire(api.url)
    wire._server.handle_error = lambda *args: None   # a tab closing hangs up on the proxy
    site = DemoSite(wire.url, account["account_id"], port=site_port).start()
    try:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        t0 = time.monotonic()
        rounds = scripted_visit(page, site.url(), config.minutes * 60, log)
        visit_seconds = time.monotonic() - t0
        sid = session_id_of(page)
        assert page.evaluate("hindsight.health().errors") == 0
        # A short visit on a busy machine may end before rrweb started on its last page (it
        # starts when the browser is next idle): there would be nothing to store.
        page.wait_for_function("() => !!window.__hindsightRecord && !!__hindsightRecord.started",
                               timeout=30_000)
        page.close(run_before_unload=True)   # pagehide: the last segment leaves as a beacon
        # Until no upload has come for 2 s (the last ones leave as the tab closes).
        seen, quiet_since = -1, time.monotonic()
        while time.monotonic() - quiet_since < 2 and time.monotonic() - t0 < visit_seconds + 30:
            if len(wire.segments()) != seen:
                seen, quiet_since = len(wire.segments()), time.monotonic()
            time.sleep(0.2)
        numbers = {int(r["query"]["segment"][0]) for r in wire.segments()
                   if r["query"]["session_id"] == [sid]}

        def stored():
            with connect(url) as conn:
                rows = conn.execute("".join((
                    "SELECT segment, event_count, full_snapshot, "
                    "(extract(epoch FROM started_at) * 1000)::bigint AS started, "
                    "(extract(epoch FROM ended_at) * 1000)::bigint AS ended, ", BODY_COLUMNS,
                    " FROM recording_segments s WHERE session_id = %s ORDER BY segment")), (sid,)).fetchall()
                for r in rows:   # read back as the API reads (blobs spliced, dictionary applied)
                    r["json"] = resolve(conn, r).json()
            return rows if {r["segment"] for r in rows} >= numbers and rows else None

        try:
            rows = wait_for(stored, timeout=30, what="every segment sent, stored")
        except AssertionError as missed:
            with connect(url) as conn:
                have = {r["segment"] for r in conn.execute(
                    "SELECT segment FROM recording_segments WHERE session_id = %s", (sid,))}
            sent = [(int(r["query"]["segment"][0]), r["status"], len(r["raw"]))
                    for r in wire.segments() if r["query"]["session_id"] == [sid]]
            raise AssertionError(f"{missed}: stored {sorted(have)}; sent (segment, status, bytes) "
                                 f"{sent}; errors {errors}") from None
        context.close()
        assert not errors, errors
        first_upload: dict[int, dict] = {}
        uploads = [r for r in wire.segments() if r["query"]["session_id"] == [sid]]
        log("uploads: " + ", ".join(f"{r['query']['segment'][0]}/{r['query']['encoding'][0]}/{len(r['raw'])}"
                                    f"{'/beacon' if r['headers'].get('sec-fetch-mode') == 'no-cors' else ''}"
                                    for r in uploads))
        for r in uploads:
            first_upload.setdefault(int(r["query"]["segment"][0]), r)
        segments = [Segment(r["segment"], first_upload[r["segment"]]["raw"],
                            first_upload[r["segment"]]["query"]["encoding"][0], bytes(r["data"]),
                            r["json_bytes"], r["event_count"], r["full_snapshot"], r["started"], r["ended"],
                            r["json"], None if r["blobs"] is None else [bytes(h) for h in r["blobs"]],
                            r["blob_offsets"], None if r["dictionary"] is None else bytes(r["dictionary"]))
                    for r in rows]
        for seg in segments:   # read back as sent, whatever was stored how
            raw = seg.body if seg.encoding == "json" else gzip.decompress(seg.body)
            assert seg.text == raw, f"segment {seg.number} does not read back as sent"
        batches = []
        for r in wire.posts("/api/v1/track"):
            if r["url"].split("?")[0].endswith("/api/v1/track"):
                body = json.loads(r["body"])
                if body.get("session_id") == sid:
                    batches.append(body)
        session_body = next(json.loads(r["body"]) for r in wire.posts("/api/v1/sessions"))
        with connect(url) as conn:
            table = conn.execute("SELECT hypertable_size('recording_segments') AS n").fetchone()["n"]
            # The blobs the recording references: those created by its own uploads, and
            # those earlier recordings of the account had stored.
            blobs = conn.execute(
                "SELECT b.created_at >= (SELECT min(received_at) FROM recording_segments WHERE session_id = %(s)s) "
                "AS new, count(*) AS n, coalesce(sum(b.gzip_bytes), 0) AS bytes, array_agg(b.sha256) AS hashes, "
                "pg_total_relation_size('recording_blobs') AS table_bytes FROM recording_blobs b "
                "WHERE (b.account_id, b.sha256) IN (SELECT account_id, unnest(blobs) FROM recording_segments "
                "WHERE session_id = %(s)s) GROUP BY 1", {"s": sid}).fetchall()
            made = conn.execute("SELECT count(*) AS n, coalesce(sum(stored_bytes), 0) AS bytes "
                                "FROM recording_dictionaries WHERE source_session_id = %s", (sid,)).fetchone()
        reads = measure_reads(url, account["account_id"], sid, segments, 3 if config.quick else 20)
        new = next((b for b in blobs if b["new"]), {"n": 0, "bytes": 0})
        shared = next((b for b in blobs if not b["new"]), {"n": 0, "bytes": 0})
        return Recorded(sid, visit_seconds, segments, len(uploads), sum(len(r["raw"]) for r in uploads),
                        batches, session_body, table, rounds, new["bytes"], new["n"], shared["bytes"],
                        shared["n"], max([b["table_bytes"] for b in blobs] or [0]), made["bytes"], made["n"],
                        len({s.dictionary for s in segments if s.dictionary}),
                        sum(1 for s in segments if s.dictionary), reads,
                        uploads_json=sum(1 for r in uploads if r["query"]["encoding"] == ["json"]),
                        preflights=sum(1 for r in wire.to(RECORDING) if r["method"] == "OPTIONS"
                                       and r["query"].get("session_id") == [sid]),
                        beacons=sum(1 for r in uploads if r["headers"].get("sec-fetch-mode") == "no-cors"),
                        site_port=site.port, blob_hashes_new=[bytes(h) for h in new.get("hashes") or ()])
    finally:
        site.stop()
        wire.close()


def measure_reads(url: str, account_id: str, session_id: str, segments: list[Segment], rounds: int
                  ) -> dict[str, float]:
    """A segment's read in this process, ms per segment, as GET .../recording/{n} does it
    for a client that takes gzip: queries.recordings.segment_data (the session's start, then
    the segment with its blobs in one statement; spliced back when it has blobs, then
    gzipped at level 1 as send_segment does). Reference, in the same loop: the stored bytes
    alone (the same two statements, without the blobs), which is what a read cost before."""
    import uuid

    from hindsight.db import connect
    from hindsight.queries import recordings as recording_queries

    account, sid = uuid.UUID(str(account_id)), uuid.UUID(session_id)

    def read(number: int) -> bytes:
        body = recording_queries.segment_data(conn, account, sid, number)
        assert body is not None
        return body.data if body.gzip else gzip.compress(body.data, compresslevel=1, mtime=0)

    def stored(number: int) -> bytes:
        row = recording_queries._segment(conn, "data", account, sid, number)
        assert row is not None
        return bytes(row["data"])

    groups = {"with blobs": [s.number for s in segments if s.blobs],
              "without blobs": [s.number for s in segments if not s.blobs]}
    out: dict[str, float] = {}
    with connect(url, autocommit=True) as conn:
        for fn in (read, stored):   # warm-up
            for s in segments:
                fn(s.number)
        for name, numbers in groups.items():
            if not numbers:
                continue
            for label, fn in ((name, read), (f"{name}, reference", stored)):
                t0 = time.perf_counter()
                for _ in range(rounds):
                    for n in numbers:
                        fn(n)
                out[label] = (time.perf_counter() - t0) / (rounds * len(numbers)) * 1000
            out[f"{name}, segments"] = len(numbers)
    return out


# --------------------------------------------------------------------------- 2. ingestion


@dataclass
class Round:
    seconds: float
    segments: int
    wire_bytes: int
    json_bytes: int
    cpu: bench_ingest.CpuSplit
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.segments / self.seconds


def create_sessions(port: int, headers: dict, origin: str, n: int) -> list[str]:
    out = []
    for _ in range(n):
        status, _, body = http_call(port, "POST", "/api/v1/sessions", {"page_url": origin + "/"}, headers)
        assert status == 201, body
        out.append(body["session_id"])
    return out


def post_segments(port: int, headers: dict, per_client: list[list[tuple[str, Segment]]]
                  ) -> tuple[float, list[float]]:
    """Each client posts its sessions' segments, in order, over one keep-alive connection."""
    hdrs = {**headers, "Content-Type": "text/plain;charset=UTF-8"}   # what tracker.js sends

    def path(session_id: str, seg: Segment) -> str:
        query = urlencode({"session_id": session_id, "segment": seg.number, "encoding": seg.encoding})
        return f"{RECORDING}?{query}"

    return bench_common.post_concurrently(
        port, hdrs, [[(path(sid, seg), seg.body) for sid, seg in mine] for mine in per_client])


COPY_COLUMNS = ("session_id", "session_started_at", "segment", "account_id", "host", "started_at",
                "ended_at", "event_count", "full_snapshot", "data", "gzip_bytes", "json_bytes", "blobs",
                "blob_offsets", "dictionary")


def copy_arrays(seg: Segment) -> list[str]:
    """The segment's blobs, blob_offsets and dictionary in COPY's text format (\\N: none)."""
    dictionary = "\\N" if seg.dictionary is None else "\\\\x" + seg.dictionary.hex()
    if seg.blobs is None:
        return ["\\N", "\\N", dictionary]
    hashes = ",".join('"\\\\\\\\x' + h.hex() + '"' for h in seg.blobs)
    return ["{" + hashes + "}", "{" + ",".join(map(str, seg.blob_offsets or [])) + "}", dictionary]


def write_copy_file(path: Path, url: str, sessions: list[str], segments: list[Segment],
                    account_id: str, host: str) -> int:
    """The rows the API would store for these sessions, in COPY's text format."""
    from hindsight.db import connect

    with connect(url) as conn:
        starts = {r["s"]: r["started_at"] for r in conn.execute(
            "SELECT session_id::text AS s, started_at FROM sessions WHERE session_id = ANY(%s::uuid[])",
            (sessions,)).fetchall()}
    rows = 0
    with path.open("w", encoding="ascii") as out:
        for s in sessions:
            for seg in segments:
                values = [s, starts[s].isoformat(), seg.number, account_id, host,
                          datetime.fromtimestamp(seg.started_ms / 1000, UTC).isoformat(),
                          datetime.fromtimestamp(seg.ended_ms / 1000, UTC).isoformat(),
                          seg.events, "t" if seg.full_snapshot else "f",
                          "\\\\x" + seg.data.hex(), len(seg.data), seg.json_bytes, *copy_arrays(seg)]
                out.write("\t".join(str(v) for v in values) + "\n")
                rows += 1
    return rows


def run_copy(url: str, path: Path) -> float:
    """`psql \\copy` the file into recording_segments, one transaction; the seconds between
    two server clocks (as bench/ingest.py times its COPY)."""
    script = path.with_suffix(".sql")
    clock = "SELECT extract(epoch FROM clock_timestamp());\n"
    # A psql script from constants and our own file name.
    copy = f"\\copy recording_segments ({', '.join(COPY_COLUMNS)}) FROM '{path}'\n"
    script.write_text("SELECT pg_backend_pid();\n" + clock + copy + clock)
    out = subprocess.run([bench_ingest.psql_binary(), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                          "-d", url, "-f", str(script)], check=True, capture_output=True, text=True).stdout.split()
    backend = Path(f"/proc/{int(out[0])}")
    deadline = time.monotonic() + 5
    while backend.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return float(out[2]) - float(out[1])


@dataclass
class Ingestion:
    api: list[Round] = field(default_factory=list)
    copy: list[Round] = field(default_factory=list)
    expected: dict[str, int] = field(default_factory=dict)   # session -> segments stored

    @property
    def ratios(self) -> list[float]:
        return [a.rate / c.rate for a, c in zip(self.api, self.copy, strict=True)]

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)


def measure_ingestion(api, url: str, account: dict, headers: dict, origin: str, rec: Recorded,
                      config: Config, postgres_pid: int | None, log) -> Ingestion:
    result = Ingestion()
    work = Path(tempfile.mkdtemp(prefix="hindsight-bench-recording-"))
    meter = bench_ingest.CpuMeter(api.proc.pid, postgres_pid)
    segs = rec.segments
    wire, text = sum(len(s.body) for s in segs), sum(s.json_bytes for s in segs)
    stored = sum(len(s.data) for s in segs)
    # Warm-up, unmeasured: each worker's pool and prepared statements.
    warm = create_sessions(api.port, headers, origin, config.clients)
    post_segments(api.port, headers, [[(s, seg) for seg in segs[:3]] for s in warm])
    for s in warm:
        result.expected[s] = min(3, len(segs))
    for r in range(config.rounds):
        sessions = create_sessions(api.port, headers, origin, config.sessions)
        twins = create_sessions(api.port, headers, origin, config.sessions)
        path = work / f"segments-{r}.tsv"
        rows = write_copy_file(path, url, twins, segs, account["account_id"], "localhost")
        per_client: list[list[tuple[str, Segment]]] = [[] for _ in range(config.clients)]
        for i, s in enumerate(sessions):
            per_client[i % config.clients].extend((s, seg) for seg in segs)
        for s in sessions + twins:
            result.expected[s] = len(segs)
        if config.quiet_wait > 0:
            busy = bench_ingest.wait_quiet(config.quiet_wait)
            log(f"round {r + 1}: the machine was {busy:.2f} cores busy before it")
        a = meter.sample()
        seconds = run_copy(url, path)
        result.copy.append(Round(seconds, rows, stored * config.sessions, text * config.sessions,
                                 meter.delta(a, meter.sample())))
        a = meter.sample()
        seconds, latencies = post_segments(api.port, headers, per_client)
        n = len(segs) * config.sessions
        result.api.append(Round(seconds, n, wire * config.sessions, text * config.sessions,
                                meter.delta(a, meter.sample()), latencies))
        log(f"round {r + 1}: COPY {rows / result.copy[-1].seconds:,.0f} rows/s, "
            f"API {n / seconds:,.0f} segments/s")
    return result


def verify(url: str, expected: dict[str, int]) -> list[str]:
    """Sessions whose stored segments differ from what the run sent (empty: all there, once)."""
    from hindsight.db import connect

    with connect(url) as conn:
        rows = conn.execute("SELECT session_id::text AS s, count(*) AS n FROM recording_segments "
                            "WHERE session_id = ANY(%s::uuid[]) GROUP BY 1", (list(expected),)).fetchall()
    stored = {r["s"]: r["n"] for r in rows}
    return [f"session {s}: sent {n} segments, {stored.get(s, 0)} stored"
            for s, n in expected.items() if stored.get(s, 0) != n]


def profile_in_process(url: str, headers: dict, origin: str, rec: Recorded, sessions: int
                       ) -> tuple[dict[str, float], dict[str, int]]:
    """Where a segment's time goes: the app in this process (falcon.testing: no HTTP, no
    concurrency), each recorded segment posted for `sessions` sessions, the functions the
    request calls wrapped with timers; mean ms per segment. Also returns what it stored."""
    import falcon.testing
    from psycopg_pool import ConnectionPool

    from hindsight import recording_blobs
    from hindsight.app import create_app
    from hindsight.db import create_pool
    from hindsight.ingestion import segments as segment_codec
    from hindsight.queries import recordings as recording_queries
    from hindsight.settings import Settings

    settings = Settings(database_url=url, rate_limit_per_minute=0, pool_min=1, pool_max=2)
    pool = create_pool(settings)
    stored: dict[str, int] = {}
    try:
        client = falcon.testing.TestClient(create_app(settings, pool))
        made = []
        for _ in range(sessions + 1):
            resp = client.simulate_post("/api/v1/sessions", json={"page_url": origin + "/"}, headers=headers)
            assert resp.status_code == 201, resp.json
            made.append(resp.json["session_id"])

        def post(session_id: str, seg: Segment) -> None:
            resp = client.simulate_post(RECORDING, body=seg.body, headers={
                **headers, "Content-Type": "text/plain;charset=UTF-8"}, params={
                "session_id": session_id, "segment": seg.number, "encoding": seg.encoding})
            assert resp.status_code == 201, resp.json
            stored[session_id] = stored.get(session_id, 0) + 1

        for seg in rec.segments[:3]:   # warm-up: pool, prepared statements
            post(made[0], seg)
        with bench_ingest.PhaseTimer() as timer:
            timer.wrap(recording_queries, "writer_and_stored",
                       "token, session, Origin and re-send checks (1 statement)")
            timer.wrap(segment_codec, "inflate", "gzip inflate")
            timer.wrap(recording_blobs, "extract", "blobs cut out: spans found, hashed, each gzipped (level 6)")
            timer.wrap(recording_blobs, "compress", "zstd of a segment's rest (level 9, the account's dictionary)")
            timer.wrap(segment_codec, "parse_events", "JSON parse")
            timer.wrap(segment_codec, "check_events", "events checked (type, timestamp)")
            timer.wrap(ConnectionPool, "getconn", "pool checkout")
            timer.wrap(recording_queries, "store", "blobs upserted, segment inserted, committed (1 statement)")
            t0 = time.perf_counter()
            for s in made[1:]:
                for seg in rec.segments:
                    post(s, seg)
            total = time.perf_counter() - t0
        n = sessions * len(rec.segments)
        per = {name: seconds / n * 1000 for name, seconds in timer.seconds.items()}
        per["other (falcon, middleware, test client)"] = total / n * 1000 - sum(per.values())
        per["request"] = total / n * 1000
        return per, stored
    finally:
        pool.close()


# --------------------------------------------------------------------------- 3. replay


def shift_iso(stamp: str, ms: int) -> str:
    when = datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000 + ms
    return datetime.fromtimestamp(when / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class LongRecording:
    session_id: str
    minutes: float
    segments: int
    seek_points: int
    events: int            # rrweb events
    tracker_events: int
    stored_bytes: int
    json_bytes: int
    repeats: int
    last_seek_ms: float    # from the last seek point's start to the end


def build_long_recording(api, headers: dict, rec: Recorded, minutes: float, log) -> LongRecording:
    """The recorded visit repeated, timestamps shifted, until it lasts `minutes`; stored
    through the API (session, the tracker's batches, the segments)."""
    period = rec.last_ms - rec.first_ms + 2000
    repeats = math.ceil(minutes * 60_000 / period) + 1   # enough copies; the last one is cut
    # It ends 10 minutes ago: an ended visit, not one the replay follows live.
    start = int(time.time() * 1000) - repeats * period - 10 * 60_000
    body = {k: v for k, v in rec.session_body.items() if k not in ("session_id", "token")}
    body["started_at"] = datetime.fromtimestamp(start / 1000, UTC).isoformat()
    status, _, made = http_call(api.port, "POST", "/api/v1/sessions", body, headers)
    assert status == 201, made
    sid = made["session_id"]
    # The segments, whole, up to the first that ends past `minutes` (a visit may end anywhere).
    plan: list[tuple[int, Segment]] = []
    for k in range(repeats):
        shift = start + k * period - rec.first_ms
        for seg in rec.segments:
            if plan and plan[-1][1].ended_ms + plan[-1][0] - start >= minutes * 60_000:
                break
            plan.append((shift, seg))
    repeats = len({shift for shift, _ in plan})
    last_end = max(seg.ended_ms + shift for shift, seg in plan)
    # The tracker's batches, as sent, shifted alike (renumbered), up to the recording's end.
    seq = tracker_events = 0
    for k in range(repeats):
        shift = start + k * period - rec.first_ms
        for batch in rec.batches:
            events = []
            for e in batch["events"]:
                stamp = shift_iso(e["timestamp"], shift)
                if datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000 <= last_end:
                    events.append({**e, "seq": seq, "timestamp": stamp})
                    seq += 1
            if not events:
                continue
            status, _, answer = http_call(api.port, "POST", "/api/v1/track",
                                          {"session_id": sid, "events": events}, headers)
            assert status in (200, 201), answer
            tracker_events += len(events)
    hdrs = {**headers, "Content-Type": "text/plain;charset=UTF-8"}
    stored = text = events_total = seek_points = last_seek = 0
    for number, (shift, seg) in enumerate(plan):
        events = json.loads(seg.text)
        for e in events:
            e["timestamp"] += shift
        raw = json.dumps(events, separators=(",", ":")).encode()
        data = gzip.compress(raw, compresslevel=6, mtime=0)
        query = urlencode({"session_id": sid, "segment": number, "encoding": "gzip"})
        status, _, answer = http_call(api.port, "POST", f"{RECORDING}?{query}", data, hdrs)
        assert status == 201, answer
        stored += len(data)
        text += len(raw)
        events_total += len(events)
        if seg.full_snapshot:
            seek_points += 1
            last_seek = seg.started_ms + shift
    number = len(plan)
    log(f"replay recording: {repeats} repeats, {number} segments, {(last_end - start) / 60_000:.1f} min")
    return LongRecording(sid, (last_end - start) / 60_000, number, seek_points, events_total,
                         tracker_events, stored, text, repeats, last_end - last_seek)


# Runs in every frame of the replay page's contexts before its scripts (Playwright's init
# script, through CDP: the player's CSP does not apply to it). In the player's data: frame it
# watches rrweb's iframe every animation frame: the first frame with a rebuilt page, and the
# first frame whose page matches the state it is told to wait for (`__want`).
WATCH = """(() => {
  if (location.protocol !== 'data:') {
    if (window.top === window) {
      window.__long = [];
      try {
        new PerformanceObserver(list => { for (const e of list.getEntries()) window.__long.push([e.startTime, e.duration]); })
          .observe({type: 'longtask', buffered: true});
      } catch (e) { /* no long task timing */ }
    }
    document.addEventListener('keydown', e => {
      if (e.key === 'End') window.__endAt = performance.timeOrigin + performance.now();
    }, true);
    return;
  }
  const state = () => {
    const f = document.querySelector('.replayer-wrapper iframe');
    const d = f && f.contentDocument;
    if (!d || !d.body || !d.body.childElementCount) return null;
    return d.title + '|' + d.getElementsByTagName('*').length + '|' + d.body.innerHTML.length;
  };
  window.__state = state;
  const tick = () => {
    const now = performance.timeOrigin + performance.now();
    if (!window.__readyAt && window.HindsightReplayer) window.__readyAt = now;
    if (!window.__builtAt && document.querySelector('.replayer-wrapper')) window.__builtAt = now;
    const s = state();
    if (s && !window.__firstAt) window.__firstAt = now;
    if (window.__want && !window.__seenAt && s === window.__want) window.__seenAt = now;
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
})();"""

TIMINGS = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const res = performance.getEntriesByType('resource').map(r => ({name: r.name, start: r.startTime,
      end: r.responseEnd, size: r.encodedBodySize, decoded: r.decodedBodySize}));
  return {origin: performance.timeOrigin, html: nav.responseEnd, dcl: nav.domContentLoadedEventEnd,
          resources: res, long: window.__long || []};
}"""


@dataclass
class ReplayRun:
    first_ms: float
    seek_ms: float
    phases: dict[str, float]            # first frame: when each part was in (ms from navigation)
    seek_fetch_ms: float                # the seek's segments fetched (ms from the keydown)
    seek_segments: int
    seek_bytes: int                     # gzip bytes the seek fetched
    long_ms: float = 0.0                # long tasks (> 50 ms) of the page's main thread before the first frame
    long_count: int = 0


def player_frame(page):
    return wait_for(lambda: next((f for f in page.frames if f.url.startswith("data:text/html")), None),
                    what="the player frame", page=page, timeout=30)


def login(context, base: str, email: str, password: str):
    page = context.new_page()
    page.goto(base + "/dashboard/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/sessions")
    return page


def replay_once(browser, base: str, email: str, password: str, session_id: str,
                want: str | None, log=print) -> tuple[ReplayRun, str]:
    """One fresh context: log in, open the replay, first frame, End; (timings, final state)."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        context.add_init_script(WATCH)
        page = login(context, base, email, password)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto("about:blank")
        page.goto(f"{base}/dashboard/sessions/{session_id}", wait_until="commit")
        player = player_frame(page)
        first_at = wait_for(lambda: player.evaluate("window.__firstAt || 0"), page=page, timeout=30,
                            what="the first frame")
        inside = player.evaluate("(() => { const n = performance.getEntriesByType('navigation')[0] || {}; "
                                 "return [window.__readyAt || NaN, window.__builtAt || NaN, "
                                 "performance.timeOrigin + (n.domInteractive || NaN)]; })()")
        wait_for(lambda: page.locator("#replay").get_attribute("data-dom-loaded"), page=page,
                 what="the first window")
        page.wait_for_timeout(500)   # settled (the index and the session's JSON may come after the first frame)
        timings = page.evaluate(TIMINGS)
        log("resources: " + "; ".join(f"{r['name'].split('/')[-1][:40]} {r['start']:.0f}-{r['end']:.0f}"
                                      for r in timings["resources"]))
        origin = timings["origin"]

        def done(fragment: str) -> float:
            """When the first request for it was answered (the list is asked again later, by
            the page's check for a visit still going on)."""
            found = [r for r in timings["resources"] if r["name"].split("#")[0].split("?")[0].endswith(fragment)
                     or fragment.startswith("?") and fragment in r["name"]]
            return min(found, key=lambda r: r["start"])["end"] if found else float("nan")

        segment_urls = [r for r in timings["resources"] if "/recording/" in r["name"]]
        phases = {
            "HTML": timings["html"], "DOMContentLoaded": timings["dcl"],
            "session JSON": done("?format=json"), "recording list": done(f"{session_id}/recording"),
            "player page": done("/dashboard/player"),
            WINDOW: max((r["end"] for r in segment_urls), default=float("nan")),
            REQUESTED: min((r["start"] for r in timings["resources"] if "rrweb-replay.js" in r["name"]),
                           default=float("nan")),
            "rrweb-replay.js in (by the replay page)": done("rrweb-replay.js"),
            "the player's document parsed": inside[2] - timings["origin"],
            RUN: inside[0] - timings["origin"],
            "rrweb Replayer made": inside[1] - timings["origin"],
        }
        # The seek: End, until the rebuilt page is the recording's last state. The session's
        # data (its clock: loaded once the first frame is drawn) first, then the same half
        # second of settling as after the first frame (the list's first pages, the markers).
        wait_for(lambda: page.locator("#replay").get_attribute("data-ready") == "1", page=page,
                 what="the session's data", timeout=30)
        page.wait_for_timeout(500)
        if want is not None:
            player.evaluate("w => { window.__want = w; window.__seenAt = 0; }", want)
        before = page.evaluate("performance.getEntriesByType('resource').length")
        page.locator("#now").click()   # focus on the page (a click that seeks nowhere)
        page.keyboard.press("End")
        end_at = wait_for(lambda: page.evaluate("window.__endAt || 0"), page=page, what="the keydown")
        if want is None:
            # The unmeasured first run: let the seek settle, then take the last state.
            wait_for(lambda: page.locator("#replay").get_attribute("data-dom-loaded") not in (None, "1"),
                     page=page, what="the window at the end", timeout=30)
            page.wait_for_timeout(3000)
            final = player.evaluate("window.__state()")
            seen_at = float("nan")
        else:
            seen_at = wait_for(lambda: player.evaluate("window.__seenAt || 0"), page=page, timeout=30,
                               what="the last state")
            final = want
        after = page.evaluate(TIMINGS)["resources"][before:]
        fetched = [r for r in after if "/recording/" in r["name"]]
        seek_fetch = max((r["end"] + origin - end_at for r in fetched), default=0.0)
        assert not errors, errors
        first_ms = first_at - origin
        long = [(start, d) for start, d in timings["long"] if start < first_ms]
        return ReplayRun(first_ms, seen_at - end_at, phases, seek_fetch, len(fetched),
                         sum(r["size"] for r in fetched), sum(d for _, d in long), len(long)), final
    finally:
        context.close()


def measure_replay(browser, api, url: str, account: dict, long: LongRecording, config: Config,
                   log) -> tuple[list[ReplayRun], str]:
    from dashboard_support import PASSWORD, make_user

    email = make_user(url, account["account_id"])
    _, final = replay_once(browser, api.url, email, PASSWORD, long.session_id, None, log)
    assert final, "the replay showed a page at the end"
    runs = []
    for i in range(config.replay_runs):
        run, _ = replay_once(browser, api.url, email, PASSWORD, long.session_id, final, log)
        runs.append(run)
        log(f"replay {i + 1}: first frame {run.first_ms:.0f} ms, seek to the end {run.seek_ms:.0f} ms")
    return runs, final


# One more replay page load under Chromium's tracing (CDP, through Playwright): where the
# replay page's main thread (which the player's documents share) spends the time before the
# first frame. Self time of each trace event, grouped; script time by the script it runs in.
TRACE_CATEGORIES = ["devtools.timeline", "disabled-by-default-devtools.timeline", "v8.execute", "loading",
                    "toplevel", "blink.user_timing"]
TRACE_KINDS = (
    ("style and layout", ("UpdateLayoutTree", "Layout", "ParseAuthorStyleSheet", "RecalculateStyles",
                          "InvalidateLayout", "ScheduleStyleRecalculation")),
    ("paint and compositing", ("Paint", "PrePaint", "Layerize", "Commit", "UpdateLayer", "CompositeLayers",
                               "PaintImage", "Decode Image", "RasterTask")),
    ("HTML parsing", ("ParseHTML",)),
    ("frames' navigations (the player's iframes, their documents)", ("DocumentLoader::", "FrameLoader::",
                                                                      "NavigationBodyLoader::")),
    ("garbage collection", ("MinorGC", "MajorGC", "V8.GC", "BlinkGC", "ThreadState::")),
)
SCRIPT_EVENTS = ("EvaluateScript", "FunctionCall", "v8.compile", "v8.run", "V8.", "RunMicrotasks",
                 "HandlePostMessage", "TimerFire", "FireAnimationFrame", "EventDispatch", "XHRReadyStateChange",
                 "v8.callFunction", "V8Execute", "v8.evaluateModule", "BlinkScheduler_PerformMicrotaskCheckpoint")


def trace_summary(events: list[dict], nav_ts: float, until_ms: float) -> dict:
    """Main-thread self time (ms) between navigation start and `until_ms` after it, by kind."""
    mains = {(e["pid"], e["tid"]) for e in events if e.get("ph") == "M" and e.get("name") == "thread_name"
             and e["args"].get("name") == "CrRendererMain"}
    end = nav_ts + until_ms * 1000
    spans = sorted((e for e in events if (e["pid"], e["tid"]) in mains and e.get("ph") == "X" and e.get("dur")
                    and nav_ts <= e["ts"] < end), key=lambda e: (e["pid"], e["tid"], e["ts"], -e["dur"]))
    kinds: dict[str, float] = {}
    scripts: dict[str, float] = {}
    busy = 0.0
    stack: list[list] = []   # [event, its children's time, the script it runs in]
    thread = None

    def close(item) -> None:
        event, children, script = item
        own = max(0.0, min(event["ts"] + event["dur"], end) - event["ts"] - children) / 1000
        name = event["name"]
        kind = next((k for k, prefixes in TRACE_KINDS if name.startswith(prefixes)), None)
        if kind is None and (name.startswith(SCRIPT_EVENTS) or script):
            scripts[script or "(no script named)"] = scripts.get(script or "(no script named)", 0.0) + own
        else:
            kinds[kind or "other"] = kinds.get(kind or "other", 0.0) + own

    for e in spans:
        key = (e["pid"], e["tid"])
        if key != thread:
            while stack:
                close(stack.pop())
            thread = key
        while stack and e["ts"] >= stack[-1][0]["ts"] + stack[-1][0]["dur"]:
            close(stack.pop())
        if not stack:
            busy += (min(e["ts"] + e["dur"], end) - e["ts"]) / 1000
        else:
            stack[-1][1] += min(e["dur"], stack[-1][0]["ts"] + stack[-1][0]["dur"] - e["ts"])
        url = (e.get("args", {}).get("data") or {}).get("url") or ""
        if e["name"] in ("EvaluateScript", "FunctionCall", "v8.compile") and url:
            script = url.split("?")[0].rsplit("/", 1)[-1]
            if url.startswith("data:"):     # the player's document: its one inline script
                script = "replay_player.js"
            elif url.startswith("blob:"):   # what the player runs from the replay page's text
                script = "rrweb-replay.js"
        else:
            script = stack[-1][2] if stack else ""
        stack.append([e, 0.0, script])
    while stack:
        close(stack.pop())
    return {"busy": busy, "kinds": kinds, "scripts": scripts}


def trace_once(browser, base: str, email: str, password: str, session_id: str, log=print) -> dict:
    """A fresh context, the replay page loaded under tracing, until its first frame."""
    context = browser.new_context(viewport=VIEWPORT)
    try:
        context.add_init_script(WATCH)
        page = login(context, base, email, password)
        page.goto("about:blank")
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "trace.json"
            browser.start_tracing(page=page, path=str(path), categories=TRACE_CATEGORIES)
            page.goto(f"{base}/dashboard/sessions/{session_id}", wait_until="commit")
            player = player_frame(page)
            first_at = wait_for(lambda: player.evaluate("window.__firstAt || 0"), page=page, timeout=30,
                                what="the first frame (traced)")
            origin = page.evaluate("performance.timeOrigin")
            page.wait_for_timeout(300)
            browser.stop_tracing()
            data = json.loads(path.read_text())
        events = data["traceEvents"] if isinstance(data, dict) else data
        starts = [e["ts"] for e in events if e.get("name") == "navigationStart"
                  and f"/dashboard/sessions/{session_id}" in ((e.get("args") or {}).get("data") or {})
                  .get("documentLoaderURL", "")]
        first_ms = first_at - origin
        summary = trace_summary(events, min(starts), first_ms) if starts else {"busy": 0.0, "kinds": {}, "scripts": {}}
        summary["first_ms"] = first_ms
        log(f"traced: first frame {first_ms:.0f} ms, main thread busy {summary['busy']:.0f} ms before it")
        return summary
    finally:
        context.close()


# --------------------------------------------------------------------------- the whole run


@dataclass
class Result:
    config: Config
    recorded: Recorded
    ingestion: Ingestion
    long: LongRecording
    replay: list[ReplayRun]
    profile: dict[str, float]
    chromium: str
    settings: dict[str, str]
    loadavg: str
    trace: dict = field(default_factory=dict)   # the replay page's main thread before the first frame
    later: Recorded | None = None               # a second visit of the same account, after the first


def prepare(url: str, log):
    """What every run does first: the tracker and the dashboard built, the database migrated.
    Returns a log that prefixes the seconds since this call, and the load average now."""
    from test_replay_dom_browser import ensure_dashboard_built

    from hindsight.migrate import migrate

    began = time.monotonic()

    def timed_log(message: str) -> None:
        log(f"[{time.monotonic() - began:5.1f} s] {message}")

    ensure_tracker_built()
    ensure_dashboard_built()
    migrate(url)
    return timed_log, " ".join(Path("/proc/loadavg").read_text().split()[:3])


def run_bench(url: str, config: Config, postgres_pid: int | None = None, log=print) -> Result:
    """Everything but starting the cluster (the smoke test brings its own)."""
    from conftest import new_account

    log, loadavg = prepare(url, log)
    settings = bench_ingest.server_settings(url)
    api = ApiServer(url, workers=config.workers).start()
    try:
        account = new_account(url, "localhost")
        with chromium() as browser:
            version = browser.version
            rec = record_visit(browser, api, url, account, config, log)
            log(f"recorded {rec.minutes:.2f} min: {len(rec.segments)} segments, {rec.json_bytes:,} B JSON, "
                f"{rec.wire_bytes:,} B sent, {rec.stored_bytes:,} B stored")
            # A later session of the same account (its dictionary and blobs exist): the same
            # scripted visit, other typed text and timings.
            later = record_visit(browser, api, url, account, config, log, site_port=rec.site_port)
            log(f"recorded a later session: {later.minutes:.2f} min, {later.stored_bytes:,} B stored of "
                f"{later.plain_gzip:,} B plain gzip")
            origin = "http://localhost"
            headers = site_writer(api.port, account, origin)["write"]
            ingestion = measure_ingestion(api, url, account, headers, origin, rec, config, postgres_pid, log)
            profile, stored = profile_in_process(url, headers, origin, rec, 2 if config.quick else 5)
            ingestion.expected.update(stored)
            log(f"in process: {profile['request']:.1f} ms per segment")
            long = build_long_recording(api, headers, rec, config.replay_minutes, log)
            replay, _ = measure_replay(browser, api, url, account, long, config, log)
            from dashboard_support import PASSWORD, make_user

            trace = trace_once(browser, api.url, make_user(url, account["account_id"]), PASSWORD,
                               long.session_id, log)
    finally:
        api.stop()
    return Result(config, rec, ingestion, long, replay, profile, version, settings, loadavg, trace, later)


# --------------------------------------------------------------------------- report


def gzip_rest_bytes(rec: Recorded) -> int:
    """The segments' `data` and references as 0028 stored them: the browser's gzip for a
    segment without blobs, else gzip level 6 of the rest (no dictionary)."""
    from hindsight.recording_blobs import extract

    total = 0
    for s in rec.segments:
        cut = extract(s.text, snapshots={i for i, e in enumerate(json.loads(s.text)) if e.get("type") == 2})
        total += s.plain_gzip if cut is None else len(gzip.compress(cut.rest, 6, mtime=0)) + 36 * len(cut.hashes)
    return total


def gzip_blob_bytes(rec: Recorded) -> int:
    """The blobs this recording stored first as 0028 and 0030 stored them: gzip level 6 each."""
    from hindsight.recording_blobs import extract

    literals: dict[bytes, bytes] = {}
    for s in rec.segments:
        cut = extract(s.text, snapshots={i for i, e in enumerate(json.loads(s.text)) if e.get("type") == 2})
        literals.update(cut.literals if cut else {})
    return sum(len(gzip.compress(literals[h], 6, mtime=0)) for h in rec.blob_hashes_new if h in literals)


def gzip_size(path: Path) -> int:
    """What the dashboard's static route sends for `path` to a browser that takes gzip (level 9)."""
    return len(gzip.compress(path.read_bytes(), 9, mtime=0))


def trace_text(trace: dict) -> str:
    """The traced page load's main thread before the first frame, in a sentence."""
    if not trace or not trace.get("busy"):
        return "Chromium's trace of one more page load: not taken."
    scripts = sorted(trace["scripts"].items(), key=lambda kv: -kv[1])
    kinds = sorted(trace["kinds"].items(), key=lambda kv: -kv[1])
    first, busy = trace["first_ms"], trace["busy"]
    return (
        "Chromium's trace of one more page load (CDP tracing through Playwright, a fresh context; the first "
        f"frame came at {first:.0f} ms while traced, tracing slows it): the replay page's main thread, which the "
        f"player's documents share, was busy {busy:.0f} ms of those {first:.0f} (self time of the trace's events): "
        f"script {sum(v for _, v in scripts):.0f} ms ("
        + ", ".join(f"{name} {ms:.0f}" for name, ms in scripts if ms >= 0.5)
        + "; replay_player.js includes rrweb's Replayer rebuilding the first full snapshot, called from it), "
        + ", ".join(f"{name} {ms:.0f} ms" for name, ms in kinds if ms >= 0.5)
        + " (other: tasks with no finer trace event, such as resource loading and IPC); the rest, "
        f"{max(0.0, first - busy):.0f} ms, it waited (the network, the server, the player's frames' documents)."
    )


def kb(n: float) -> str:
    return f"{n / 1024:,.1f} KB"


def met(ok: bool) -> str:
    return "met" if ok else "missed"


def storage_lines(rec: Recorded, later: Recorded | None) -> list[str]:
    """The "Bytes per recorded minute" part of the section (also all of `--storage-only`)."""
    from hindsight.recording_blobs import MAX_TREE_BYTES, MIN_BYTES
    from hindsight.recording_codec import LEVEL, MAX_DICTIONARY, MIN_SOURCE

    per_min = rec.minutes
    json_encoded = sum(1 for s in rec.segments if s.encoding == "json")
    before = gzip_rest_bytes(rec)
    before_blobs = gzip_blob_bytes(rec)
    later_before = gzip_rest_bytes(later) if later else 0
    whole = rec.whole_gzip()
    plain = rec.plain_gzip
    disk = rec.table_bytes + rec.blob_table_bytes
    return [
        "### Bytes per recorded minute",
        "",
        f"A scripted visit of the demo site (tracker/demo) for {rec.visit_seconds / 60:.1f} minutes of wall clock, "
        f"{rec.rounds} round(s) of: the sign-up page (mouse moves, three fields typed, a scroll down and back, "
        "2.5 s idle), the single-page app (four route changes, a field typed, a hash link, 3 s idle), the "
        "checkout (three list items added, the coupon modal opened, typed into, closed, the shipping route, two "
        "fields typed, 3 s idle), the to-do app (five items typed and added with Enter, two ticked, three filters, "
        "a masked field typed, 4 s idle); then the tab is closed. tracker.js recorded "
        f"**{rec.minutes:.2f} minutes** (first to last rrweb event) in {len(rec.segments)} segments, "
        f"{rec.page_loads} of them starting with a full snapshot (one per page load).",
        "",
        "| | total | per recorded minute | ÷ plain gzip |",
        "|---|---|---|---|",
        f"| rrweb events, JSON | {kb(rec.json_bytes)} | **{kb(rec.json_bytes / per_min)}** | "
        f"{rec.json_bytes / plain:.2f} |",
        f"| on the wire, as sent (first upload of each segment: gzip, by CompressionStream while the page lives "
        "and by fflate at once for the segment cut as a page goes away; "
        f"{json_encoded} of the {len(rec.segments)} went as plain JSON) | "
        f"{kb(rec.wire_bytes)} | **{kb(rec.wire_bytes / per_min)}** | {rec.wire_bytes / plain:.2f} |",
        f"| on the wire, every upload ({rec.uploads} for {len(rec.segments)} segments, {rec.uploads_json} of them "
        "plain JSON: what tracker.js beacons as a page goes away stays in its outbox, gzip, and is sent again "
        "by the next page load, since a beacon's "
        "fate is unknown; the server stores it once) | "
        f"{kb(rec.wire_bytes_all)} | {kb(rec.wire_bytes_all / per_min)} | "
        f"{rec.wire_bytes_all / plain:.2f} |",
        f"| requests for the segments: {rec.uploads} uploads + {rec.preflights} CORS preflights (OPTIONS; a "
        "segment's URL differs for each, so a preflight is never cached: uploads are simple requests, the token in "
        f"the query) for {len(rec.segments)} segments; before, each of the {rec.uploads - rec.beacons} uploads by "
        "fetch (not by beacon) had its own preflight (the Authorization header; tests/test_tracker_upload_cors.py) | "
        f"**{(rec.uploads + rec.preflights) / len(rec.segments):.2f} per segment** "
        f"({rec.preflights / len(rec.segments):.2f} of them preflights; before: "
        f"{(2 * rec.uploads - rec.beacons) / len(rec.segments):.2f}) | | |",
        f"| plain gzip of the same events: each segment's gzip as sent (a plain-JSON upload gzipped at level 6), "
        f"what was stored before recording blobs | {kb(plain)} | **{kb(plain / per_min)}** | 1.00 |",
        f"| **stored, the account's first recording**: the segments' `data` (zstd level {LEVEL} of what is left once "
        f"the blobs are cut out; {rec.segments_with_dictionary} of the {len(rec.segments)} segments with the "
        "account's dictionary, made of this recording's own text by its first segment with "
        f"{MIN_SOURCE // 1024} KiB of it, which is itself compressed with it; the segments before it with rrweb's "
        "vocabulary) and references (36 B a blob, 32 B "
        f"the dictionary) + the {rec.blobs_new} blobs it stored first (zstd each, with the dictionary of the "
        f"segment that stored it) + the dictionary ({rec.dictionaries_new}: the segment's text, its blobs first, at "
        f"most {MAX_DICTIONARY // 1024} KiB, zstd-compressed) | {kb(rec.stored_bytes)} | "
        f"**{kb(rec.stored_bytes / per_min)}** | **{rec.stored_bytes / plain:.2f}** |",
        f"| of which the segments' `data` and references | {kb(rec.segment_bytes)} | {kb(rec.segment_bytes / per_min)} | "
        f"{rec.segment_bytes / plain:.2f} |",
        f"| of which blobs | {kb(rec.blob_bytes_new)} | {kb(rec.blob_bytes_new / per_min)} | "
        f"{rec.blob_bytes_new / plain:.2f} |",
        f"| of which the dictionary | {kb(rec.dictionary_bytes_new)} | {kb(rec.dictionary_bytes_new / per_min)} | "
        f"{rec.dictionary_bytes_new / plain:.2f} |",
        f"| the same recording as 0028 stored it (gzip level 6 of each rest and of each of the same blobs, the same "
        f"references; no dictionary) | {kb(before + before_blobs)} | {kb((before + before_blobs) / per_min)} | "
        f"{(before + before_blobs) / plain:.2f} |",
        *([f"| **stored, a later session of the account**: a second scripted visit of the same site, same origin ({later.minutes:.2f} minutes, "
           f"{len(later.segments)} segments, plain gzip {kb(later.plain_gzip)}: its own baseline), recorded after "
           f"the first: {later.segments_with_dictionary} of its segments with the account's dictionary, "
           f"{later.blobs_shared} blobs stored already by the first ({later.blobs_new} new, "
           f"{kb(later.blob_bytes_new)}; {later.dictionaries_new} new dictionaries) | {kb(later.stored_bytes)} | "
           f"**{kb(later.stored_bytes / later.minutes)}** | **{later.stored_bytes / later.plain_gzip:.2f}** |",
           f"| of which the segments' `data` and references | {kb(later.segment_bytes)} | "
           f"{kb(later.segment_bytes / later.minutes)} | {later.segment_bytes / later.plain_gzip:.2f} |",
           f"| the later session as 0028 stored it (gzip level 6 of each rest) | {kb(later_before + later.blob_bytes_new)} | "
           f"{kb((later_before + later.blob_bytes_new) / later.minutes)} | "
           f"{(later_before + later.blob_bytes_new) / later.plain_gzip:.2f} |"] if later else []),
        f"| stored on disk after the first recording: `hypertable_size('recording_segments')` + "
        f"`pg_total_relation_size('recording_blobs')` (rows, TOAST, indexes; 8 KB pages) | {kb(disk)} | "
        f"{kb(disk / per_min)} | {disk / plain:.2f} |",
        f"| for comparison: the whole first recording's JSON gzipped as one stream (level 6) | {kb(whole)} | "
        f"{kb(whole / per_min)} | {whole / plain:.2f} |",
        "",
        *(["Reading a segment back (in this process, as GET …/recording/{n} does for a client that takes "
           "gzip: the session's start, then the segment with its blobs in one statement, decompressed with its "
           "dictionary (cached in the process), spliced, gzipped at level 1; mean of 20 passes over the "
           "recording's segments), against reading its stored bytes alone (the same statements without the "
           "blobs) in the same loop: "
           + "; ".join(f"{name} ({rec.reads[name + ', segments']:.0f} segments): **{rec.reads[name]:.2f} ms** "
                       f"per segment against {rec.reads[name + ', reference']:.2f} ms"
                       for name in ("with blobs", "without blobs") if name in rec.reads) + ".", ""]
          if rec.reads else []),
        f"Target (issue 11): stored ≤ {STORED_TARGET:.0%} of plain gzip. "
        + (f"A later session of the account: **{met(later.stored_bytes <= STORED_TARGET * later.plain_gzip)}** "
           f"({later.stored_bytes / later.plain_gzip:.0%}); " if later else "")
        + f"the account's first recording, its dictionary and every blob included: "
        f"**{met(rec.stored_bytes <= STORED_TARGET * plain)}** ({rec.stored_bytes / plain:.0%}). "
        "Every JSON string literal of a segment of at least "
        f"{MIN_BYTES:,} bytes (the stylesheets rrweb inlines: `_cssText`, <style> text) and the largest "
        f"subtrees of a full snapshot's node tree of at most {MAX_TREE_BYTES // 1024} KiB are stored once per "
        "account as blobs (sql/migrations/0028, hindsight.recording_blobs); what is left of each segment is "
        f"zstd (level {LEVEL}) with the account's dictionary, the last {MAX_DICTIONARY // 1024} KiB of one of "
        "its segments' text, blobs first (sql/migrations/0030 and 0035, hindsight.recording_codec; a new one a "
        "day; the segment it is made of and its blobs are compressed with it), and so are the blobs; before the "
        "account has one, rrweb's vocabulary (hindsight.recording_vocabulary: JSON keys, HTML and CSS names "
        "written out by hand, no recorded data). "
        "Every segment above was read back through the same code as the API's and equals, byte for byte, "
        "the JSON the browser sent.",
        "",
    ]


def render(result: Result, command: str) -> str:
    c, rec, ing = result.config, result.recorded, result.ingestion
    st = result.settings
    later = result.later
    api_rate = statistics.median(r.rate for r in ing.api)
    copy_rate = statistics.median(r.rate for r in ing.copy)
    api_mid = sorted(ing.api, key=lambda r: r.rate)[len(ing.api) // 2]
    copy_mid = sorted(ing.copy, key=lambda r: r.rate)[len(ing.copy) // 2]
    latencies = [x for r in ing.api for x in r.latencies_ms]
    cores = os.cpu_count() or 1
    lines = [
        "## DOM recording: bytes per minute, ingestion, replay",
        "",
        f"- Command: `{command}`",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {bench_common.machine(python=True)}; load average when the run started: {result.loadavg} "
        "(a shared machine: other engineers' tests ran meanwhile)",
        f"- Database: PostgreSQL {st.get('server_version')}, TimescaleDB {st.get('timescaledb')}, a throw-away "
        f"cluster started by the bench, fsync={st.get('fsync')}, synchronous_commit={st.get('synchronous_commit')}; "
        f"API: `hindsight serve --workers {c.workers}` on 127.0.0.1 (rate limit off); browser: Debian's headless "
        f"Chromium {result.chromium} through Playwright; tracker.js with its defaults (DOM recording on, every "
        "field masked).",
        "",
        *storage_lines(rec, later),
        "### Ingestion: POST /api/v1/track/recording against a raw COPY",
        "",
        f"Each round: {c.sessions} new sessions, each sent the {len(rec.segments)} recorded segments (bodies "
        f"as sent, in order: {kb(rec.wire_bytes)} per session, {kb(rec.json_bytes)} of JSON once "
        f"decompressed) by {c.clients} concurrent keep-alive clients (threads with http.client; a session's "
        "segments go in order through one client; a 201 is a committed segment, each its own transaction); "
        f"the reference, just before, is `psql \\copy` of the same rows (what the API stores: the zstd bytes, "
        f"times, counts) for {c.sessions} twin sessions into the same `recording_segments` hypertable, one "
        f"transaction, timed between two server-side `clock_timestamp()` calls. {c.rounds} round(s) after "
        f"a warm-up; the median round's ratio is the headline (as bench/ingest.py does).",
        "",
        "| | value |",
        "|---|---|",
        f"| **ratio API / COPY** (segments/s, median of the rounds) | **{ing.ratio:.3f}** "
        f"(rounds: {', '.join(f'{r:.3f}' for r in ing.ratios)}) |",
        f"| API, median round | **{api_rate:,.0f} segments/s**, {api_mid.wire_bytes / api_mid.seconds / MB:.2f} MB/s "
        f"compressed (as sent), {api_mid.json_bytes / api_mid.seconds / MB:.2f} MB/s decompressed |",
        f"| COPY, median round | **{copy_rate:,.0f} rows/s**, {copy_mid.wire_bytes / copy_mid.seconds / MB:.2f} MB/s "
        f"as stored, {copy_mid.json_bytes / copy_mid.seconds / MB:.2f} MB/s of the JSON it stands for |",
        f"| request latency, all rounds | p50 {bench_ingest.percentile(latencies, 50):.1f} ms, "
        f"p99 {bench_ingest.percentile(latencies, 99):.1f} ms, max {max(latencies):.1f} ms |",
        f"| CPU per segment, API (gunicorn + PostgreSQL, median round) | "
        f"{(api_mid.cpu.api + api_mid.cpu.postgres) / api_mid.segments * 1000:.2f} ms, of which gunicorn "
        f"{api_mid.cpu.api / api_mid.segments * 1000:.2f} ms |",
        f"| CPU per row, COPY (PostgreSQL, median round) | {copy_mid.cpu.postgres / copy_mid.segments * 1000:.3f} ms |",
        f"| ratio's upper bound from CPU cost: ({cores} cores / API CPU per segment) / (1 core / COPY CPU per "
        f"row) | {bench_ingest._bound(cores * copy_mid.cpu.postgres / copy_mid.segments, (api_mid.cpu.api + api_mid.cpu.postgres) / api_mid.segments)} "
        "(the API with every core to itself, no client) |",
        "",
        "Every round (CPU seconds; `others` is what other processes on the machine used meanwhile):",
        "",
        "| round | COPY rows/s | CPU: PostgreSQL, psql, others | API segments/s | ratio | p50 / p99 ms "
        "| CPU: gunicorn, PostgreSQL, client, others (of core-seconds) |",
        "|---|---|---|---|---|---|---|",
        *[f"| {i} | {cr.rate:,.0f} | {cr.cpu.postgres:.2f}, {cr.cpu.client:.2f}, {cr.cpu.others:.2f} | "
          f"{ar.rate:,.0f} | {ratio:.3f} | {bench_ingest.percentile(ar.latencies_ms, 50):.0f} / "
          f"{bench_ingest.percentile(ar.latencies_ms, 99):.0f} | {ar.cpu.api:.2f}, {ar.cpu.postgres:.2f}, "
          f"{ar.cpu.client:.2f}, {ar.cpu.others:.2f} (of {ar.seconds * cores:.2f}) |"
          for i, (cr, ar, ratio) in enumerate(zip(ing.copy, ing.api, ing.ratios, strict=True), 1)],
        "",
        "What a segment costs the API that a COPY does not pay: two pool checkouts (the first for the "
        "token, session, Origin and re-send checks, one statement; the second for the blobs' upsert and the "
        "INSERT, one autocommitted statement), each checkout with its connection check (an empty query, "
        "HINDSIGHT_POOL_CHECK): four round trips to PostgreSQL (ten before recording blobs; "
        "tests/test_recording_blobs.py counts them) and a durable commit per segment, where the COPY "
        "commits once; and inflating the gzip and parsing the JSON to "
        "check every event (type, timestamp window), cutting out large literals and snapshot subtrees "
        "(gzipping each blob), and compressing the rest with zstd and the account's dictionary. The COPY "
        "moves the bytes the API stores (the rest of each segment, its blob and dictionary references; the "
        "blobs and the dictionary are in the tables already).",
        "",
        "Where a segment's time goes: the app in one process (falcon.testing: no HTTP, no concurrency), "
        f"the recorded segments posted for {2 if c.quick else 5} more sessions, the functions the request goes through "
        "wrapped with timers (database phases include the round trip), mean ms per segment:",
        "",
        "| phase | ms per segment |",
        "|---|---|",
        *[f"| {name} | {ms:.2f} |" for name, ms in result.profile.items() if name != "request"],
        f"| **request** | **{result.profile['request']:.2f}** |",
        "",
    ]
    return "\n".join(lines) + "\n"


@dataclass
class ReplayResult:
    """The replay's part of a run (all of `--replay-only`)."""

    config: Config
    long: LongRecording
    replay: list[ReplayRun]
    trace: dict
    chromium: str
    loadavg: str          # when the run started
    loadavg_replay: str   # when the replay's page loads started
    against: str = ""                   # `--against REV`: that revision's replay, page loads alternated
    replay_against: list[ReplayRun] = field(default_factory=list)


def tree_of(revision: str) -> Path:
    """`git archive` of a revision's backend/ and dashboard/ (the repository is not touched),
    with this tree's built replayer (dashboard/static/dist is a build product)."""
    tree = Path(tempfile.mkdtemp(prefix="hindsight-bench-tree-"))
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "backend", "dashboard"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    shutil.copytree(REPLAYER_JS.parent, tree / "dashboard" / "static" / "dist", dirs_exist_ok=True)
    return tree


def replay_result(result: Result) -> ReplayResult:
    """The replay's part of a whole run."""
    return ReplayResult(result.config, result.long, result.replay, result.trace, result.chromium,
                        result.loadavg, result.loadavg)


def player_build() -> tuple[int, int]:
    """(bytes, gzip bytes) of the player's host page (/dashboard/player: its data: document inline)."""
    from hindsight.dashboard.recording import PLAYER_BUILDS

    build = PLAYER_BUILDS.current()
    return len(build.html), len(build.gzip)


def render_replay(r: ReplayResult, command: str) -> str:
    c, long = r.config, r.long
    first = statistics.median(x.first_ms for x in r.replay)
    seek = statistics.median(x.seek_ms for x in r.replay)
    phases = {k: statistics.median(x.phases[k] for x in r.replay) for k in r.replay[0].phases}
    seek_fetch = statistics.median(x.seek_fetch_ms for x in r.replay)
    seek_segments = statistics.median(x.seek_segments for x in r.replay)
    seek_bytes = statistics.median(x.seek_bytes for x in r.replay)
    host, host_gz = player_build()
    lines = [
        f"### Replay: first frame and seek to the end of a {c.replay_minutes:.0f}-minute recording",
        "",
        f"- Command: `{command}`",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}; load average when the run started: "
        f"{r.loadavg}, when the replay's page loads started: {r.loadavg_replay} (a shared machine: other "
        "engineers' tests ran meanwhile); headless Chromium " + r.chromium,
        f"- Machine: {bench_common.machine(python=True)}",
        "",
        f"The recording: the bench's scripted visit of the demo site ({c.minutes:g} minutes of wall clock, "
        "see the section above) repeated with shifted timestamps "
        f"({long.repeats} copies, the last one cut after its first segment that ends past "
        f"{c.replay_minutes:.0f} minutes), **{long.minutes:.1f} minutes**, {long.segments} segments (cut where "
        f"tracker.js cut them, re-gzipped at level 6), {long.events:,} rrweb events, {kb(long.stored_bytes)} "
        f"stored ({kb(long.json_bytes)} of JSON), {long.seek_points} full snapshots (each page load starts "
        "with one, as tracker.js records; none of these pages lived the 5 minutes after which tracker.js "
        f"takes another), and the visit's {long.tracker_events:,} tracker events (its batches repeated "
        f"alike); all stored through the API. The last full snapshot is {long.last_seek_ms / 1000:.0f} s "
        "before the end.",
        f"Measured: {len(r.replay)} runs after an unmeasured one, each in a fresh browser context "
        "(logged in through the form; nothing cached), medians. The player is watched every animation "
        "frame from inside its sandboxed document (a Playwright init script).",
        "",
        "| | median | runs | target |",
        "|---|---|---|---|",
        f"| **first frame**: navigation start → the first animation frame at which rrweb's iframe in the "
        f"player holds the rebuilt page (a body with elements) | **{first:.0f} ms** | "
        f"{', '.join(f'{x.first_ms:.0f}' for x in r.replay)} | < {FIRST_FRAME_TARGET_MS:.0f} ms: "
        f"**{met(first < FIRST_FRAME_TARGET_MS)}** |",
        f"| **seek to the end**: the End key's keydown → the first animation frame at which the rebuilt "
        "page is the recording's last state (title, element count and markup length as shown once the "
        f"seek has settled) | **{seek:.0f} ms** | {', '.join(f'{x.seek_ms:.0f}' for x in r.replay)} | "
        f"< {SEEK_TARGET_MS:.0f} ms: **{met(seek < SEEK_TARGET_MS)}** |",
        *(["", f"A/B in the same run: the same recording replayed by the code of `{r.against}` (a second API on "
           "the same database, its backend/ and dashboard/ from `git archive`, the recording stored through "
           "it), page loads alternated with this tree's: first frame median "
           f"**{statistics.median(x.first_ms for x in r.replay_against):.0f} ms** "
           f"(runs {', '.join(f'{x.first_ms:.0f}' for x in r.replay_against)}) against "
           f"**{first:.0f} ms** here; seek to the end "
           f"{statistics.median(x.seek_ms for x in r.replay_against):.0f} ms against {seek:.0f} ms.", ""]
          if r.replay_against else []),
        "Where the first frame's time goes (median ms after navigation start, each part done): "
        + ", ".join(f"{k} {v:.0f}" for k, v in sorted(phases.items(), key=lambda kv: kv[1]))
        + f", first frame {first:.0f} (the player's times are animation frames inside it: a frame's "
        "granularity). Long tasks (> 50 ms) on the replay page's main thread before the first frame: "
        f"{statistics.median(x.long_ms for x in r.replay):.0f} ms in "
        f"{statistics.median(x.long_count for x in r.replay):.0f} task(s) (median). The seek (pressed once "
        f"the session's data is in) fetched {seek_segments:.0f} segment(s) ({kb(seek_bytes)} gzip) in "
        f"{seek_fetch:.0f} ms after the keydown; the rest ({max(0.0, seek - seek_fetch):.0f} ms) is rrweb "
        "rebuilding the last seek point's full snapshot in a new Replayer and applying the events after it.",
        "",
        trace_text(r.trace),
        "",
        "Reading it: the replay page's HTML preloads rrweb's replayer "
        f"(rrweb-replay.js, {kb(REPLAYER_JS.stat().st_size)}, {kb(gzip_size(REPLAYER_JS))} gzip) and the "
        "recording's first segment (the first window: it starts with the first full snapshot), and holds "
        "the player's iframe, /dashboard/player "
        f"({kb(host)}, {kb(host_gz)} gzip, cacheable by its version), whose only content is the player's "
        "data: document with replay_player.js inline: the player fetches nothing (an opaque origin has "
        "no HTTP cache). As soon as it says it is ready, the replay page posts it rrweb's text and the "
        "window's JSON text; it runs rrweb as a blob: script allowed by its hash (compiled off the main "
        "thread) and rrweb rebuilds the first full snapshot. The session's JSON and the recording's index "
        "are asked for once that frame is drawn (in at "
        f"{phases['recording list']:.0f} and {phases['session JSON']:.0f} ms), the event list and the "
        "timeline's markers after them. "
        f"{'Target met.' if first < FIRST_FRAME_TARGET_MS else 'Target missed.'} The seek to the end is "
        f"cheap here because the last full snapshot is {long.last_seek_ms / 1000:.0f} s before the end (the "
        "visit's last page load); a seek into a page that had lived longer replays more incremental events "
        "(at most 5 minutes' worth: tracker.js's periodic full snapshot), not measured here.",
    ]
    return "\n".join(lines) + "\n"


def run_replay_only(url: str, config: Config, log=print, against: str = "") -> ReplayResult:
    """`--replay-only`: the scripted visit recorded once, the long recording made of it, its
    replay measured (and traced); no bytes or ingestion part. `against`: a git revision whose
    code serves the same database from a second API (PYTHONPATH: its backend/), the long
    recording stored through it (so that both can read it), and page loads alternated between
    the two in the same browser: an A/B of the replay's start-up on the same machine load."""
    from dashboard_support import PASSWORD, make_user

    from conftest import new_account

    log, loadavg = prepare(url, log)
    api = ApiServer(url, workers=config.workers).start()
    other = tree = None
    try:
        if against:
            tree = tree_of(against)
            other = ApiServer(url, workers=config.workers, env={"PYTHONPATH": str(tree / "backend")}).start()
        writer = other or api
        account = new_account(url, "localhost")
        with chromium() as browser:
            version = browser.version
            rec = record_visit(browser, api, url, account, config, log)   # this tree's tracker.js
            headers = site_writer(writer.port, account, "http://localhost")["write"]
            long = build_long_recording(writer, headers, rec, config.replay_minutes, log)
            at_replay = " ".join(Path("/proc/loadavg").read_text().split()[:3])
            if other is None:
                replay, _ = measure_replay(browser, api, url, account, long, config, log)
                replay_against: list[ReplayRun] = []
            else:
                replay, replay_against = measure_replay_ab(browser, api, other, url, account, long, config, log)
            trace = trace_once(browser, api.url, make_user(url, account["account_id"]), PASSWORD,
                               long.session_id, log)
    finally:
        api.stop()
        if other is not None:
            other.stop()
        if tree is not None:
            shutil.rmtree(tree, ignore_errors=True)
    return ReplayResult(config, long, replay, trace, version, loadavg, at_replay, against, replay_against)


def measure_replay_ab(browser, api, other, url: str, account: dict, long: LongRecording, config: Config,
                      log) -> tuple[list[ReplayRun], list[ReplayRun]]:
    """This tree's replay and the other's, one page load each in turn (after an unmeasured one each)."""
    from dashboard_support import PASSWORD, make_user

    email = make_user(url, account["account_id"])
    finals = {}
    for server in (api, other):
        _, finals[server.port] = replay_once(browser, server.url, email, PASSWORD, long.session_id, None, log)
        assert finals[server.port], "the replay showed a page at the end"
    runs: dict[int, list[ReplayRun]] = {api.port: [], other.port: []}
    for i in range(config.replay_runs):
        for server in ((api, other) if i % 2 == 0 else (other, api)):
            run, _ = replay_once(browser, server.url, email, PASSWORD, long.session_id, finals[server.port], log)
            runs[server.port].append(run)
            log(f"replay {i + 1} ({'this tree' if server is api else 'against'}): first frame {run.first_ms:.0f} ms, "
                f"seek to the end {run.seek_ms:.0f} ms")
    return runs[api.port], runs[other.port]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: short everything, no doc")
    parser.add_argument("--minutes", type=float, help="the scripted visit's minutes (default 2)")
    parser.add_argument("--sessions", type=int, help="sessions per ingestion round (default 40)")
    parser.add_argument("--rounds", type=int, help="ingestion rounds (default 3)")
    parser.add_argument("--runs", type=int, help="measured replay runs (default 5)")
    parser.add_argument("--replay-only", action="store_true",
                        help="only the replay: record the visit once, measure the replay, write its section alone")
    parser.add_argument("--storage-only", action="store_true",
                        help="only the bytes per recorded minute: record the two visits, rewrite that part alone")
    parser.add_argument("--against", default="", metavar="REV",
                        help="with --replay-only: also replay with the code of git revision REV, page loads alternated")
    parser.add_argument("--output", type=Path, default=None,
                        help=f"where to write (default {DOC.relative_to(ROOT)}; --quick writes nothing unless given)")
    args = parser.parse_args(argv)
    config = Config.quick_config() if args.quick else Config()
    for name, attr in (("minutes", "minutes"), ("sessions", "sessions"), ("rounds", "rounds"),
                       ("runs", "replay_runs")):
        if getattr(args, name) is not None:
            setattr(config, attr, getattr(args, name))
    output = args.output if args.output else (None if args.quick else DOC)
    command = ".venv/bin/python bench/recording.py" + (" " + " ".join(argv if argv is not None
                                                                      else sys.argv[1:])).rstrip()
    if args.replay_only:
        return replay_only(config, command.strip(), output, args.against)
    if args.storage_only:
        return storage_only(config, command.strip(), output)
    cluster = bench_common.start_cluster(durable=True)
    try:
        url = cluster.url()
        result = run_bench(url, config, postgres_pid=cluster.child_process.pid)
        problems = verify(url, result.ingestion.expected)
        if problems:
            print(f"{len(problems)} problem(s) after the run, e.g. {problems[0]}")
            return 1
        print(f"all {sum(result.ingestion.expected.values()):,} segments sent are stored, once")
    finally:
        cluster.stop()
    section = render(result, command.strip())
    replay = render_replay(replay_result(result), command.strip())
    print(section + "\n" + replay)
    if output:
        write_section(output, SECTION, section)
        write_section(output, SECTION_REPLAY, replay)
        print(f"wrote {output}")
    return 0


STORAGE_PART = ("### Bytes per recorded minute", "### Ingestion: POST")


def storage_only(config: Config, command: str, output: Path | None) -> int:
    """Record the first and the later visit, measure them, and rewrite the section's "Bytes
    per recorded minute" part alone (the rest of the section stays the full run's)."""
    from conftest import new_account

    cluster = bench_common.start_cluster(durable=True)
    try:
        url = cluster.url()
        log, loadavg = prepare(url, print)
        api = ApiServer(url, workers=config.workers).start()
        try:
            account = new_account(url, "localhost")
            with chromium() as browser:
                rec = record_visit(browser, api, url, account, config, log)
                later = record_visit(browser, api, url, account, config, log, site_port=rec.site_port)
        finally:
            api.stop()
    finally:
        cluster.stop()
    lines = storage_lines(rec, later)
    lines.insert(2, f"This part: `{command}`, {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}, load average "
                    f"{loadavg} when it started (the rest of the section is the full run's).")
    lines.insert(3, "")
    part = "\n".join(lines) + "\n"
    print(part)
    if output:
        from doc_sections import markers

        begin, end = markers(SECTION)
        text = output.read_text() if output.exists() else ""
        if begin not in text or end not in text:  # this part lives inside the full run's section
            print(f"{output} has no {SECTION} section to update: run the full bench once first")
            return 1
        inside = text.split(begin, 1)[1].split(end, 1)[0]
        start, stop = inside.index(STORAGE_PART[0]), inside.index(STORAGE_PART[1])
        output.write_text(text.replace(inside, inside[:start] + part + inside[stop:], 1))
        print(f"wrote {output}")
    return 0


def replay_only(config: Config, command: str, output: Path | None, against: str = "") -> int:
    cluster = bench_common.start_cluster(durable=True)
    try:
        result = run_replay_only(cluster.url(), config, against=against)
    finally:
        cluster.stop()
    replay = render_replay(result, command)
    print(replay)
    if output:
        write_section(output, SECTION_REPLAY, replay)
        print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
