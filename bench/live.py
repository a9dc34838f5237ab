"""Live view benchmark (issue 13): what the live stream costs ingestion, and what it delivers.

Two parts, each in one run on this machine, against its own throw-away durable cluster and
`hindsight serve` (bench/ingest.py's cluster, server, site flow, load and COPY reference):

1. **source** — how the stream loop learns of new rows. Rounds of bench/ingest.py's load
   (every batch once, 8 keep-alive clients), each preceded by its raw COPY reference, in
   three variants, rotated round by round:
   - `index`: what Hindsight does (migration 0025's `events (account_id, received_at)`
     index, read by polling);
   - `none`: that index dropped (the write path before issue 13);
   - `notify`: no index, and a `pg_notify` in every batch's transaction (a statement
     trigger on `events`), with a listener consuming the notifications — what LISTEN/NOTIFY
     would cost the write path;
   each variant's ratio API / COPY is the median of its rounds; the COPY always runs
   without the index and the trigger (the same reference for every variant), and the
   variant is set up between the COPY and the API's load.
2. **viewers** — 100 concurrent SSE viewers of the account (`/api/v1/live/stream`, raw
   sockets in one thread with selectors) while the same load runs: the ingestion ratio
   with viewers against without (rounds alternate), the latency from `received_at` (the
   batch's transaction start, so at or before its commit) to the moment the event's
   message was read from a viewer's socket (p50/p95/max, over every viewer), and the
   memory per viewer (gunicorn workers' RSS with the viewers connected minus before, /
   viewers).

    .venv/bin/python bench/live.py             # both parts, writes docs/BENCHMARKS.md
    .venv/bin/python bench/live.py --quick     # smoke run (writes no doc)
"""

from __future__ import annotations

import argparse
import json
import selectors
import socket
import statistics
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as bench_common  # noqa: E402 - bench/ is not a package
import ingest  # noqa: E402
from doc_sections import write_section  # noqa: E402

ROOT = ingest.ROOT
DOC = ingest.DOC
INDEX = "events_account_received_idx"
VARIANTS = ("index", "none", "notify")

NOTIFY_DDL = """
CREATE OR REPLACE FUNCTION bench_live_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('hindsight_live', txid_current()::text);
    RETURN NULL;
END
$$;
DROP TRIGGER IF EXISTS bench_live_notify ON events;
CREATE TRIGGER bench_live_notify AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION bench_live_notify();
"""


@dataclass
class Config:
    events: int = 10_000          # events through the API per round
    rounds: int = 3               # rounds of each variant
    clients: int = 8
    workers: int = 2
    batch_size: int = 50
    batches_per_session: int = 10
    viewers: int = 100
    quiet_wait: float = 5.0
    block_batches: int = 400       # batches per block of the statement part (all clients)

    @classmethod
    def quick(cls) -> Config:
        return cls(events=1_000, rounds=1, clients=4, viewers=10, quiet_wait=0.0)


@dataclass
class Round:
    variant: str
    copy_rate: float
    api_rate: float

    @property
    def ratio(self) -> float:
        return self.api_rate / self.copy_rate


@dataclass
class Result:
    config: Config
    rounds: list[Round] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    rss_before_kb: int = 0
    rss_after_kb: int = 0
    viewers_connected: int = 0
    viewer_messages: int = 0
    settings: dict[str, str] = field(default_factory=dict)
    loadavg: str = ""

    def ratio(self, variant: str) -> float:
        return statistics.median(r.ratio for r in self.rounds if r.variant == variant)

    def ratios(self, variant: str) -> list[float]:
        return [r.ratio for r in self.rounds if r.variant == variant]


# --------------------------------------------------------------------------- variants


def set_variant(url: str, variant: str) -> None:
    from hindsight.db import connect

    with connect(url, autocommit=True) as conn:
        conn.execute("DROP TRIGGER IF EXISTS bench_live_notify ON events")
        if variant in ("index", "viewers", "quiet"):
            conn.execute(f"CREATE INDEX IF NOT EXISTS {INDEX} ON events (account_id, received_at)")
        else:
            conn.execute(f"DROP INDEX IF EXISTS {INDEX}")
        if variant == "notify":
            conn.execute(NOTIFY_DDL)


class Listener:
    """LISTEN hindsight_live on its own connection, consuming every notification."""

    def __init__(self, url: str) -> None:
        from hindsight.db import connect

        self.conn = connect(url, autocommit=True)
        self.conn.execute("LISTEN hindsight_live")
        self.count = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            for _ in self.conn.notifies(timeout=0.5):
                self.count += 1

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.conn.close()


# --------------------------------------------------------------------------- the write statement


@dataclass
class Block:
    variant: str
    batches: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.batches / self.seconds


def statement_blocks(url: str, config: Config, log=print) -> list[Block]:
    """The batch statement of POST /api/v1/track (queries.events.INSERT_BATCH, 50 events, each
    its own autocommitted transaction: a durable commit per batch) from `config.clients`
    concurrent connections for `config.block_seconds`, variant after variant, rotated;
    batches per second per block. No HTTP, no gunicorn: only what the variant changes."""
    import random

    from hindsight.db import connect
    from hindsight.queries.events import INSERT_BATCH, encode_batch
    from hindsight.queries.tenancy import create_account

    with connect(url, autocommit=True) as conn:
        account = create_account(conn, "Statement bench", f"stmt-{uuid.uuid4().hex[:8]}.example", None)
    host = account["domain"] if "domain" in account else "stmt.example"
    rng = random.Random(7)
    origin = f"https://{host}"
    start = datetime.now(UTC)

    def batches_for(session_id: uuid.UUID, n: int) -> list[dict]:
        out = []
        for b in range(n):
            events = ingest.make_events(rng, origin, start, b * config.batch_size, config.batch_size)
            for e in events:
                e["timestamp"] = datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00"))
            out.append({"session_id": session_id, "account_id": account["account_id"], "host": host,
                        "strip_query": False, **encode_batch(events)})
        return out

    blocks: list[Block] = []
    per_client = config.block_batches // config.clients
    conns = [connect(url, autocommit=True) for _ in range(config.clients)]

    def client(conn, batches: list[dict], gate: threading.Barrier) -> None:
        gate.wait()
        for params in batches:
            conn.execute(INSERT_BATCH, params, prepare=True)

    try:
        for r in range(config.rounds * 2):
            order = VARIANTS[r % 3:] + VARIANTS[:r % 3]
            for variant in order:
                # Fresh sessions per block, a session's batches in order (as a tracker sends).
                sessions = [uuid.uuid4() for _ in range(-(-per_client // 10) * config.clients)]
                with connect(url, autocommit=True) as conn, conn.cursor() as cur:
                    cur.executemany(
                        "INSERT INTO sessions (session_id, account_id, host, started_at, last_activity_at) "
                        "VALUES (%s, %s, %s, %s, %s)",
                        [(sid, account["account_id"], host, start, start) for sid in sessions])
                plans = [[p for sid in sessions[i::config.clients] for p in batches_for(sid, 10)][:per_client]
                         for i in range(config.clients)]
                set_variant(url, variant)
                listener = Listener(url) if variant == "notify" else None
                try:
                    if config.quiet_wait > 0:
                        ingest.wait_quiet(min(config.quiet_wait, 3.0))
                    gate = threading.Barrier(config.clients + 1)
                    threads = [threading.Thread(target=client, args=(conns[i], plans[i], gate))
                               for i in range(config.clients)]
                    for t in threads:
                        t.start()
                    gate.wait()
                    t0 = time.perf_counter()
                    for t in threads:
                        t.join()
                    seconds = time.perf_counter() - t0
                    blocks.append(Block(variant, per_client * config.clients, seconds))
                    log(f"{variant:8s} {blocks[-1].batches} batches in {seconds:.2f} s "
                        f"({blocks[-1].rate:,.0f} batches/s)")
                finally:
                    if listener is not None:
                        listener.close()
    finally:
        for c in conns:
            c.close()
        set_variant(url, "index")
    return blocks


# --------------------------------------------------------------------------- viewers


class Viewers:
    """`n` SSE clients of /api/v1/live/stream on raw sockets, read by one thread.

    Each event's latency is the time its message was read from a viewer's socket minus its
    `received_at` (same machine, same clock), for every viewer that read it."""

    def __init__(self, port: int, api_key: str, n: int) -> None:
        self.reads: list[tuple[bytes, float]] = []
        self.bodies: dict[bytes, bytes] = {}
        self.messages = 0
        self.connected = 0
        self.measuring = False
        self.sel = selectors.DefaultSelector()
        self.socks: list[socket.socket] = []
        self.buffers: dict[int, bytes] = {}
        for _ in range(n):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall((f"GET /api/v1/live/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                       f"Authorization: Bearer {api_key}\r\nAccept: text/event-stream\r\n\r\n").encode())
            s.setblocking(False)
            self.sel.register(s, selectors.EVENT_READ)
            self.socks.append(s)
            self.buffers[s.fileno()] = b""
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            for key, _ in self.sel.select(timeout=0.2):
                s = key.fileobj
                try:
                    data = s.recv(1 << 16)  # type: ignore[union-attr]
                except BlockingIOError:
                    continue
                now = time.time()
                if not data:
                    self.sel.unregister(s)
                    continue
                fd = s.fileno()  # type: ignore[union-attr]
                buf = self.buffers[fd] + data
                if b"HTTP/1.1 200" in buf[:20] and b"\r\n\r\n" in buf:
                    self.connected += 1
                    buf = buf.split(b"\r\n\r\n", 1)[1]
                *messages, rest = buf.split(b"\n\n")
                self.buffers[fd] = rest
                for message in messages:
                    self._message(message, now)

    def _message(self, message: bytes, now: float) -> None:
        """Only the message's id and when it was read, here: the reader must keep up with
        100 sockets (parsing every copy would measure the bench, not the server). Each
        distinct message is parsed once, afterwards (`take_latencies`)."""
        start = message.find(b"id: ")  # after the chunked encoding's size line, if any
        if start < 0 or b"\nevent: events\n" not in message:
            return
        message = message[start:]
        self.messages += 1
        if not self.measuring:
            return
        mid = message[3:message.index(b"\n")].strip()
        self.reads.append((mid, now))
        if mid not in self.bodies:
            self.bodies[mid] = message

    def take_latencies(self) -> list[float]:
        """Per event of every message read while measuring, by every viewer: read time minus
        the event's received_at, in ms."""
        received: dict[bytes, list[float]] = {}
        for mid, message in self.bodies.items():
            data = b"".join(line[5:].strip() for line in message.split(b"\n") if line.startswith(b"data:"))
            received[mid] = [datetime.fromisoformat(e["received_at"]).timestamp()
                             for e in json.loads(data).get("events", ())]
        out = [(now - r) * 1000 for mid, now in self.reads for r in received[mid]]
        self.reads, self.bodies = [], {}
        return out

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        for s in self.socks:
            s.close()


def _viewers_child(conn, port: int, api_key: str, n: int) -> None:
    viewers = Viewers(port, api_key, n)
    try:
        while True:
            command = conn.recv()
            if command == "on":
                viewers.measuring = True
            elif command == "off":
                viewers.measuring = False
            elif command == "stats":
                conn.send((viewers.connected, viewers.messages))
            elif command == "take":
                conn.send(viewers.take_latencies())
            elif command == "close":
                break
    finally:
        viewers.close()
        conn.close()


class ViewerProcess:
    """`Viewers` in a process of their own: reading 100 sockets must not take the GIL from
    the bench's load clients (it would slow the load down and count as the server's cost)."""

    def __init__(self, port: int, api_key: str, n: int) -> None:
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_viewers_child, args=(child, port, api_key, n), daemon=True)
        self._proc.start()

    def _ask(self, command: str):
        self._conn.send(command)
        return self._conn.recv()

    @property
    def connected(self) -> int:
        return self._ask("stats")[0]

    @property
    def messages(self) -> int:
        return self._ask("stats")[1]

    @property
    def measuring(self) -> bool:
        return False

    @measuring.setter
    def measuring(self, value: bool) -> None:
        self._conn.send("on" if value else "off")

    def take_latencies(self) -> list[float]:
        return self._ask("take")

    def close(self) -> None:
        self._conn.send("close")
        self._proc.join(timeout=10)


def workers_rss_kb(master_pid: int) -> int:
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            if int(stat[stat.rindex(")") + 2:].split()[1]) != master_pid:
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except (OSError, ValueError):
            continue
    return total


# --------------------------------------------------------------------------- the run


def run_bench(url: str, config: Config, parts: tuple[str, ...] = ("statement", "viewers"),
              log=print) -> Result:
    from hindsight.migrate import migrate

    migrate(url)
    result = Result(config=config, settings=ingest.server_settings(url),
                    loadavg=" ".join(Path("/proc/loadavg").read_text().split()[:3]))
    if "statement" in parts:
        result.blocks = statement_blocks(url, config, log)
    if not {"source", "viewers"} & set(parts):
        return result
    work = Path(tempfile.mkdtemp(prefix="hindsight-bench-live-"))
    server = ingest.ApiServer(url, config.workers)
    ing = ingest.Config(events=config.events, clients=config.clients, batch_size=config.batch_size,
                        batches_per_session=config.batches_per_session)
    try:
        site = ingest.site_flow(server, url)
        n_sessions = -(-config.events // (config.batch_size * config.batches_per_session))

        def one_round(variant: str, seed: int, viewers: ViewerProcess | None = None) -> Round:
            # The reference is always the same table: no live index, no trigger.
            if variant in VARIANTS:
                set_variant(url, "none")
            sessions = ingest.create_sessions(server, site, n_sessions)
            plan = ingest.plan_batches(replace(ing, seed=seed), site.origin, sessions)
            bodies = [[json.dumps({"session_id": s, "events": ev}, separators=(",", ":")).encode()
                       for s, ev in client] for client in plan]
            twin = {s: str(uuid.uuid4()) for s in sessions}
            flat = [b for client in plan for b in client]
            path = work / f"events-{seed}.tsv"
            rows = ingest.write_copy_file(path, flat, twin, site.account_id, site.domain)
            if config.quiet_wait > 0:
                ingest.wait_quiet(config.quiet_wait)
            copy_seconds = ingest.run_copy(url, path, work)
            listener = None
            if variant in VARIANTS:
                set_variant(url, variant)
                listener = Listener(url) if variant == "notify" else None
            if viewers is not None:
                viewers.measuring = True
            try:
                seconds, _ = ingest.post_batches(server.port, site, bodies)
            finally:
                if listener is not None:
                    listener.close()
            if viewers is not None:
                time.sleep(1.5)  # the last batch's messages are on their way
                viewers.measuring = False
            events = sum(len(ev) for _, ev in flat)
            r = Round(variant, rows / copy_seconds, events / seconds)
            log(f"{variant:8s} COPY {r.copy_rate:,.0f} rows/s, API {r.api_rate:,.0f} events/s, "
                f"ratio {r.ratio:.3f}")
            return r

        # Warm-up: pools, chunk, prepared statements.
        warm = ingest.create_sessions(server, site, config.clients)
        warm_plan = ingest.plan_batches(replace(ing, events=config.clients * 8 * config.batch_size,
                                                batches_per_session=8, seed=999), site.origin, warm)
        ingest.post_batches(server.port, site, [[json.dumps({"session_id": s, "events": ev}).encode()
                                                 for s, ev in c] for c in warm_plan])
        seed = 0
        if "source" in parts:
            for r in range(config.rounds):
                order = VARIANTS[r % 3:] + VARIANTS[:r % 3]
                for variant in order:
                    seed += 1
                    result.rounds.append(one_round(variant, seed))
            set_variant(url, "index")
        if "viewers" in parts:
            set_variant(url, "index")
            time.sleep(1.0)
            for r in range(config.rounds):
                for variant in (("quiet", "viewers") if r % 2 == 0 else ("viewers", "quiet")):
                    seed += 1
                    if variant == "quiet":  # the same load, nobody watching
                        result.rounds.append(one_round("quiet", seed))
                        continue
                    rss_before = workers_rss_kb(server.proc.pid)
                    viewers = ViewerProcess(server.port, site.api_key, config.viewers)
                    try:
                        deadline = time.monotonic() + 30
                        while viewers.connected < config.viewers and time.monotonic() < deadline:
                            time.sleep(0.2)
                        time.sleep(1.0)
                        if not result.viewers_connected:
                            result.viewers_connected = viewers.connected
                            result.rss_before_kb = rss_before
                            result.rss_after_kb = workers_rss_kb(server.proc.pid)
                            log(f"{viewers.connected} viewers connected; workers' RSS "
                                f"{result.rss_before_kb} -> {result.rss_after_kb} kB")
                        result.rounds.append(one_round("viewers", seed, viewers))
                        result.latencies_ms += viewers.take_latencies()
                        result.viewer_messages += viewers.messages
                    finally:
                        viewers.close()
    finally:
        server.stop()
    return result


# --------------------------------------------------------------------------- report


STATEMENT_NAMES = {"index": "the `events (account_id, received_at)` index (polling; chosen)",
                   "none": "neither (the write path before issue 13)",
                   "notify": "`pg_notify` in each batch's transaction (+ a listener), no index"}


def statement_table(result: Result) -> list[str]:
    c = result.config
    blocks = result.blocks
    n_variants = len(VARIANTS)
    # Paired: each block against the `none` block of the same rotation (seconds apart).
    paired: dict[str, list[float]] = {v: [] for v in VARIANTS}
    for i in range(0, len(blocks) - n_variants + 1, n_variants):
        group = {b.variant: b for b in blocks[i:i + n_variants]}
        for v in VARIANTS:
            paired[v].append(group[v].rate / group["none"].rate)
    lines = [
        "### The write path's cost: polling's index against NOTIFY",
        "",
        f"The batch statement of `POST /api/v1/track` (`queries.events.INSERT_BATCH`, {c.batch_size} "
        f"events of bench/ingest.py's mix, autocommitted: one durable commit per batch) from {c.clients} "
        f"concurrent connections, {c.block_batches} batches per block, blocks of the three variants "
        f"rotated ({len(blocks)} blocks); no HTTP, so only what the variant changes is measured. "
        "`vs none` is each block's rate over the `none` block of the same rotation (seconds apart), "
        "median.",
        "",
        "| variant | batches/s (median block) | vs none (median of pairs) | pairs |",
        "|---|---|---|---|",
    ]
    for v in VARIANTS:
        rates = [b.rate for b in blocks if b.variant == v]
        lines.append(f"| {STATEMENT_NAMES[v]} | {statistics.median(rates):,.0f} | "
                     f"**{statistics.median(paired[v]):.3f}** | "
                     f"{', '.join(f'{x:.2f}' for x in paired[v])} |")
    lines.append("")
    return lines


def render(result: Result, command: str) -> str:
    c, st = result.config, result.settings
    lines = [
        "## Live view: what the stream costs ingestion, and what it delivers (issue 13)",
        "",
        f"- Command: `{command}`",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {bench_common.machine(python=True)}; load average when the run started: {result.loadavg}",
        f"- Database: PostgreSQL {st.get('server_version')}, TimescaleDB {st.get('timescaledb')} "
        f"({st.get('timescaledb.license')} edition), throw-away cluster, fsync={st.get('fsync')}, "
        f"synchronous_commit={st.get('synchronous_commit')}",
        f"- Load: bench/ingest.py's, {c.events:,} events per round in batches of {c.batch_size} from "
        f"{c.clients} keep-alive clients, `hindsight serve --workers {c.workers}`; each round is "
        "preceded by its raw COPY reference; ratio = API events/s / COPY rows/s, median of the "
        "variant's rounds",
        "- The machine may be shared with other work (see the load average: on 2 cores, anything "
        "above 2 means processes waited for a core): absolute rates vary from run to run, so every "
        "comparison is paired in time (blocks seconds apart, rounds alternating)",
        "",
    ]
    if result.blocks:
        lines += statement_table(result)
    variants = [v for v in (*VARIANTS, "quiet", "viewers") if result.ratios(v)]
    if any(v in variants for v in VARIANTS):
        lines += [
            "### How the stream learns of new rows: the write path's cost",
            "",
            "| variant | ratio API / COPY (median) | rounds |",
            "|---|---|---|",
        ]
        names = {"index": "poll: `events (account_id, received_at)` index (chosen)",
                 "none": "no index, no NOTIFY (before issue 13)",
                 "notify": "NOTIFY in each batch's transaction (+ a listener), no index"}
        for v in VARIANTS:
            if result.ratios(v):
                lines.append(f"| {names[v]} | **{result.ratio(v):.3f}** | "
                             f"{', '.join(f'{x:.3f}' for x in result.ratios(v))} |")
        base = result.ratios("none") and result.ratio("none")
        if base:
            for v in ("index", "notify"):
                if result.ratios(v):
                    lines.append("")
                    lines.append(f"- {v}: {100 * (result.ratio(v) / base - 1):+.1f} % against no index")
        lines.append("")
    if result.ratios("viewers"):
        lat = sorted(result.latencies_ms)
        per_viewer = ((result.rss_after_kb - result.rss_before_kb) / max(1, result.viewers_connected))
        change = 100 * (result.ratio("viewers") / result.ratio("quiet") - 1)
        lines += [
            f"### {c.viewers} concurrent viewers while ingesting",
            "",
            f"{result.viewers_connected} SSE clients of `/api/v1/live/stream` (the loaded account's API "
            "key: every batch is theirs to receive), raw sockets read by one thread of a process of "
            "the bench's own, connected before the round's load starts; rounds alternate between the load "
            "with the viewers and the same load with nobody watching. Each event's latency is the "
            "moment a viewer read its message minus the event's `received_at` (its batch "
            "transaction's start, so at or before its commit), for every viewer.",
            "",
            "| | value |",
            "|---|---|",
            f"| ratio API / COPY with viewers receiving (median) | **{result.ratio('viewers'):.3f}** "
            f"({', '.join(f'{x:.3f}' for x in result.ratios('viewers'))}) |",
            f"| ratio API / COPY without (median) | **{result.ratio('quiet'):.3f}** "
            f"({', '.join(f'{x:.3f}' for x in result.ratios('quiet'))}) |",
            f"| change with viewers | **{change:+.1f} %** (target: within 10 %) |",
            f"| latency received_at → viewer's socket, {len(lat):,} event deliveries | p50 "
            f"{ingest.percentile(lat, 50):.0f} ms, **p95 {ingest.percentile(lat, 95):.0f} ms**, "
            f"max {max(lat):.0f} ms (target p95 < 1 s) |" if lat else "| latency | no events delivered |",
            f"| messages received (all viewers) | {result.viewer_messages:,} |",
            f"| memory per viewer (workers' RSS delta / viewers) | **{per_viewer:.0f} kB** "
            f"({result.rss_before_kb / 1024:.1f} → {result.rss_after_kb / 1024:.1f} MB) |",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: few events, no doc")
    parser.add_argument("--part", choices=("statement", "source", "viewers", "both"), default="both",
                        help="both: statement and viewers; source: the noisier end-to-end comparison")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--events", type=int)
    parser.add_argument("--viewers", type=int)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    config = Config.quick() if args.quick else Config()
    for name in ("rounds", "events", "viewers"):
        if getattr(args, name) is not None:
            setattr(config, name, getattr(args, name))
    parts = ("statement", "viewers") if args.part == "both" else (args.part,)
    output = args.output if args.output else (None if args.quick else DOC)
    cluster = bench_common.start_cluster(durable=True)
    try:
        result = run_bench(cluster.url(), config, parts)
    finally:
        cluster.stop()
    text = render(result, ".venv/bin/python bench/live.py" + "".join(
        " " + a for a in (argv if argv is not None else sys.argv[1:])))
    print(text)
    if output:
        write_section(output, "bench/live.py", text)
        print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
