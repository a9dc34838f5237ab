"""Ingestion benchmark: events/s through POST /api/v1/track against a raw COPY.

What it does, all in one run on this machine:

1. starts its own throw-away TimescaleDB cluster with durable commits (fsync=on,
   synchronous_commit=on: testing.postgresql without its default `-F`), migrates it,
   creates an account and an analyst key, and starts the API under gunicorn
   (`hindsight serve`, a subprocess) on 127.0.0.1;
2. walks the real site flow over HTTP (widgets -> widget JWT -> statistics token, with
   the site's Origin) and creates the sessions with POST /api/v1/sessions;
3. rounds (5 by default), each on fresh sessions:
   - reference: `psql \\copy` of the round's rows (same columns and values, each API
     session's rows under a twin session id) into the same `events` hypertable, in one
     transaction, timed between two server-side clock_timestamp() calls;
   - API: every batch (50 events) posted once through POST /api/v1/track by several
     keep-alive HTTP clients (threads with http.client; the bodies are serialized before
     the clock starts, so the client stays cheap), each request's latency recorded;
   the machine may be shared (and slows down in spells), so each round's ratio compares
   two measurements a second apart and the median round's ratio is the headline; each
   round's CPU split (gunicorn, PostgreSQL, client, other processes) is reported;
4. profile: the same app in-process (falcon.testing), the phases of a request timed
   batch after batch (JSON parse, marshmallow validation, DB round trips, commit), and
   a cProfile pass;
5. checks that every row it sent is in the database, once (and the sessions' counters),
   and writes docs/BENCHMARKS.md with the command that produced it.

    .venv/bin/python bench/ingest.py            # 5 x 20k events, under 2 minutes
    .venv/bin/python bench/ingest.py --quick    # smoke run (writes no doc)

tests/test_bench_smoke.py runs `run_bench` in quick mode against the test cluster.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "BENCHMARKS.md"
sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as bench_common  # noqa: E402 - bench/ is not a package
from doc_sections import write_section  # noqa: E402

# The columns a COPY fills, in file order (received_at keeps its default, as for the API).
COPY_COLUMNS = (
    "session_id", "seq", "timestamp", "account_id", "host", "event_type", "page_url",
    "target_element", "target_selector", "target_tag", "target_id", "target_class",
    "viewport_x", "viewport_y", "screen_x", "screen_y", "scroll_x", "scroll_y",
    "input_value", "input_masked", "key_pressed", "mouse_button", "click_count", "event_data",
)


@dataclass
class Config:
    events: int = 20_000          # events posted through the API in each round
    rounds: int = 5               # rounds of (COPY, API); the median round ratio is reported
    batch_size: int = 50          # events per POST /api/v1/track
    clients: int = 8              # concurrent keep-alive HTTP clients
    workers: int = 2              # gunicorn worker processes
    batches_per_session: int = 10  # a session's batches are sent in order, by one client
    profile_batches: int = 200    # in-process profile: batches timed phase by phase
    quiet_wait: float = 10.0      # before each round, wait this long at most for an idle machine
    warmup_batches: int = 8       # per client, before the first round
    seed: int = 1

    @classmethod
    def quick(cls) -> Config:
        return cls(events=2_000, rounds=1, clients=4, profile_batches=20, quiet_wait=0.0,
                   warmup_batches=1)


@dataclass
class Site:
    account_id: str
    domain: str
    widget_id: str
    token: str
    origin: str
    api_key: str


@dataclass
class CpuSplit:
    """CPU seconds spent by each party during a phase (from /proc)."""

    client: float = 0.0     # this process (the HTTP clients), and psql during a COPY
    api: float = 0.0        # gunicorn: master and workers
    postgres: float = 0.0   # the postmaster and all its children
    machine: float = 0.0    # all CPUs busy, whoever ran (from /proc/stat)

    @property
    def others(self) -> float:
        """What other processes on the machine took meanwhile (noise for this run)."""
        return max(0.0, self.machine - self.client - self.api - self.postgres)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))
    return ordered[rank]


@dataclass
class ApiRound:
    events: int
    seconds: float
    latencies_ms: list[float]
    cpu: CpuSplit

    @property
    def rate(self) -> float:
        return self.events / self.seconds


@dataclass
class CopyRound:
    rows: int
    seconds: float
    cpu: CpuSplit

    @property
    def rate(self) -> float:
        return self.rows / self.seconds


@dataclass
class Result:
    config: Config
    api: list[ApiRound] = field(default_factory=list)
    copy: list[CopyRound] = field(default_factory=list)
    profile: dict[str, float] = field(default_factory=dict)   # phase -> mean ms per batch
    profile_top: list[tuple[str, float]] = field(default_factory=list)
    # What the run claims to have stored: session id -> number of events (API and COPY);
    # `api_sent` is the API's part, whose sessions' counters must match.
    sent: dict[str, int] = field(default_factory=dict)
    api_sent: dict[str, int] = field(default_factory=dict)
    settings: dict[str, str] = field(default_factory=dict)
    loadavg: str = ""       # /proc/loadavg when the run started

    @property
    def best_api(self) -> ApiRound:
        return max(self.api, key=lambda r: r.rate)

    @property
    def best_copy(self) -> CopyRound:
        return max(self.copy, key=lambda r: r.rate)

    @property
    def round_ratios(self) -> list[float]:
        """API rate / COPY rate of each round: two measurements a second apart, under the
        same conditions (a busy or slow spell of the machine slows both)."""
        return [a.rate / c.rate for a, c in zip(self.api, self.copy, strict=True)]

    @property
    def ratio(self) -> float:
        """The median of the rounds' ratios: the headline figure."""
        return statistics.median(self.round_ratios)

    @property
    def best_ratio(self) -> float:
        return self.best_api.rate / self.best_copy.rate


# --------------------------------------------------------------------------- cluster


def psql_binary() -> str:
    from hindsight.pgcluster import find_bindir

    candidate = find_bindir() / "psql"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("psql")
    if not found:
        raise RuntimeError("psql not found")
    return found


def server_settings(url: str) -> dict[str, str]:
    from hindsight.db import connect

    with connect(url) as conn:
        out = {}
        for name in ("fsync", "synchronous_commit", "full_page_writes", "wal_level",
                     "shared_buffers", "server_version", "timescaledb.license"):
            out[name] = next(iter(conn.execute(f'SHOW "{name}"').fetchone().values()))
        out["timescaledb"] = conn.execute(
            "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone()["extversion"]
    return out


# --------------------------------------------------------------------------- API server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ApiServer:
    """`hindsight serve` (gunicorn) as a subprocess on 127.0.0.1."""

    def __init__(self, url: str, workers: int) -> None:
        self.port = free_port()
        env = dict(os.environ)
        env.update(HINDSIGHT_DATABASE_URL=url, HINDSIGHT_RATE_LIMIT_PER_MINUTE="0",
                   HINDSIGHT_LOG_LEVEL="warning")
        exe = Path(sys.executable).with_name("hindsight")
        argv = ([str(exe)] if exe.exists() else [sys.executable, "-m", "hindsight.cli"])
        argv += ["serve", "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers)]
        self.proc = subprocess.Popen(argv, env=env, cwd=ROOT)
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.proc.returncode}")
            try:
                status, _ = self.request("GET", "/health")
                if status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("gunicorn did not answer /health within 30 s")
            time.sleep(0.1)

    def request(self, method: str, path: str, body: dict | None = None,
                headers: dict[str, str] | None = None) -> tuple[int, dict]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            payload = None if body is None else json.dumps(body).encode()
            hdrs = dict(headers or {})
            if payload is not None:
                hdrs["Content-Type"] = "application/json"
            conn.request(method, path, payload, hdrs)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, (json.loads(data) if data else {})
        finally:
            conn.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


# --------------------------------------------------------------------------- CPU accounting


_TICK = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid: int) -> tuple[int, float, float] | None:
    """(ppid, own cpu seconds, reaped children's cpu seconds) of a process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields_ = text[text.rindex(")") + 2:].split()
    ppid = int(fields_[1])
    own = (int(fields_[11]) + int(fields_[12])) / _TICK
    children = (int(fields_[13]) + int(fields_[14])) / _TICK
    return ppid, own, children


def _tree_cpu(root: int) -> float:
    """CPU seconds of a process, its live descendants and the children it has reaped."""
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            st = _proc_stat(int(entry))
            if st:
                stats[int(entry)] = st
    total = 0.0
    todo = [root]
    while todo:
        pid = todo.pop()
        if pid not in stats:
            continue
        _, own, children = stats[pid]
        total += own + children
        todo.extend(p for p, st in stats.items() if st[0] == pid)
    return total


def _machine_busy() -> float:
    """Seconds all CPUs spent busy since boot (/proc/stat: all but idle and iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(values[:8]) - values[3] - values[4]) / _TICK


def wait_quiet(max_seconds: float, busy_cores: float = 0.3) -> float:
    """Wait (at most `max_seconds`) for the machine to be about idle: less than `busy_cores`
    cores busy over half a second. Return how busy it was when we stopped waiting."""
    deadline = time.monotonic() + max_seconds
    while True:
        a, t0 = _machine_busy(), time.monotonic()
        time.sleep(0.5)
        busy = (_machine_busy() - a) / (time.monotonic() - t0)
        if busy < busy_cores or time.monotonic() > deadline:
            return busy
        time.sleep(1.0)


class CpuMeter:
    def __init__(self, api_pid: int | None, postgres_pid: int | None) -> None:
        self.api_pid, self.postgres_pid = api_pid, postgres_pid

    def sample(self) -> CpuSplit:
        me = os.times()
        return CpuSplit(
            client=me.user + me.system + me.children_user + me.children_system,
            api=_tree_cpu(self.api_pid) if self.api_pid else 0.0,
            postgres=_tree_cpu(self.postgres_pid) if self.postgres_pid else 0.0,
            machine=_machine_busy(),
        )

    @staticmethod
    def delta(a: CpuSplit, b: CpuSplit) -> CpuSplit:
        return CpuSplit(b.client - a.client, b.api - a.api, b.postgres - a.postgres,
                        b.machine - a.machine)


# --------------------------------------------------------------------------- data


def iso(ts: datetime) -> str:
    """What tracker.js sends: Date.toISOString() (milliseconds, Z)."""
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def make_events(rng: random.Random, origin: str, start: datetime, first_seq: int, n: int) -> list[dict]:
    """A realistic mix: mostly mouse moves and scrolls, some clicks, input, navigation."""
    events = []
    page = f"{origin}/products/{rng.randint(1, 500)}?ref=home&utm_source=bench"
    for seq in range(first_seq, first_seq + n):
        ts = start + timedelta(milliseconds=40 * seq)
        kind = rng.choices(("mouse_move", "scroll", "click", "input", "keypress", "page_view", "custom"),
                           weights=(50, 20, 12, 6, 6, 3, 3))[0]
        event: dict = {"seq": seq, "timestamp": iso(ts), "event_type": kind, "page_url": page}
        if kind == "mouse_move":
            event.update(viewport_x=rng.randint(0, 1920), viewport_y=rng.randint(0, 1080),
                         screen_x=rng.randint(0, 2560), screen_y=rng.randint(0, 1440))
        elif kind == "scroll":
            event.update(scroll_x=0, scroll_y=rng.randint(0, 20_000))
        elif kind == "click":
            event.update(viewport_x=rng.randint(0, 1920), viewport_y=rng.randint(0, 1080),
                         target_tag="button", target_id=f"buy-{rng.randint(1, 99)}",
                         target_class="btn btn-primary",
                         target_selector="main > section.product > div.actions > button.btn",
                         target_element="<button class=\"btn btn-primary\">Add to cart</button>",
                         mouse_button=0, click_count=1)
        elif kind == "input":
            event.update(target_tag="input", target_selector="form#checkout input[name=email]",
                         input_value="*" * rng.randint(3, 20), input_masked=True)
        elif kind == "keypress":
            event.update(key_pressed=rng.choice(("Enter", "Tab", "a", "Backspace")))
        elif kind == "page_view":
            page = f"{origin}/products/{rng.randint(1, 500)}?ref=home&utm_source=bench"
            event.update(page_url=page, event_data={"title": "Product page", "referrer": origin + "/"})
        else:
            event.update(event_data={"name": "add_to_cart", "value": rng.randint(1, 300),
                                     "currency": "EUR", "items": [rng.randint(1, 9999)]})
        events.append(event)
    return events


def plan_batches(config: Config, origin: str, sessions: list[str]) -> list[list[tuple[str, list[dict]]]]:
    """Per client, its batches in sending order: (session id, events)."""
    rng = random.Random(config.seed)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=30)
    per_client: list[list[tuple[str, list[dict]]]] = [[] for _ in range(config.clients)]
    n_batches = config.events // config.batch_size
    for i, session_id in enumerate(sessions):
        client = per_client[i % config.clients]
        s_start = start + timedelta(seconds=rng.randint(0, 600))
        for b in range(config.batches_per_session):
            if n_batches <= 0:
                break
            n_batches -= 1
            seq0 = b * config.batch_size
            client.append((session_id, make_events(rng, origin, s_start, seq0, config.batch_size)))
    return per_client


def _copy_text(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, dict):
        value = json.dumps(value, separators=(",", ":"))
    text = str(value)
    return (text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r"))


def write_copy_file(path: Path, batches: list[tuple[str, list[dict]]], twin: dict[str, str],
                    account_id: str, host: str) -> int:
    rows = 0
    with path.open("w", encoding="utf-8") as out:
        for session_id, events in batches:
            for event in events:
                values = [twin[session_id], event["seq"], event["timestamp"], account_id, host]
                values += [event.get(k) for k in COPY_COLUMNS[5:]]
                out.write("\t".join(_copy_text(v) for v in values) + "\n")
                rows += 1
    return rows


def run_copy(url: str, path: Path, work: Path) -> float:
    """`psql \\copy` the file into events; return the seconds between the two server clocks.

    Returns once the server process that ran the COPY is gone (reaped), so that its CPU
    time is in its parent's accounts when the caller samples them."""
    script = work / f"copy-{path.stem}.sql"
    columns = ", ".join(f'"{c}"' if c == "timestamp" else c for c in COPY_COLUMNS)
    # A psql script from constants and our own file name.
    clock = "SELECT extract(epoch FROM clock_timestamp());\n"
    copy = f"\\copy events ({columns}) FROM '{path}'\n"
    script.write_text("SELECT pg_backend_pid();\n" + clock + copy + clock)
    out = subprocess.run([psql_binary(), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                          "-d", url, "-f", str(script)],
                         check=True, capture_output=True, text=True).stdout.split()
    backend = Path(f"/proc/{int(out[0])}")
    deadline = time.monotonic() + 5
    while backend.exists() and time.monotonic() < deadline:
        time.sleep(0.01)
    return float(out[2]) - float(out[1])


# --------------------------------------------------------------------------- site flow


def site_flow(server: ApiServer, url: str) -> Site:
    from hindsight.db import connect
    from hindsight.queries.tenancy import create_account, create_api_key

    domain = f"bench-{uuid.uuid4().hex[:8]}.example"
    with connect(url) as conn:
        account = create_account(conn, "Benchmark", domain, None)
        api_key = create_api_key(conn, account["account_id"])
    origin = f"https://{domain}"
    status, widgets = server.request("GET", f"/site/account/{account['account_id']}/widgets",
                                     headers={"Origin": origin})
    assert status == 200, widgets
    jwt = widgets["widgets"][0]["token"]
    status, stats = server.request("GET", f"/site/widget/{account['widget_id']}/account_statistics",
                                   headers={"Authorization": f"Bearer {jwt}", "Origin": origin})
    assert status == 200, stats
    return Site(account["account_id"], domain, account["widget_id"], stats["token"], origin, api_key)


def create_sessions(server: ApiServer, site: Site, n: int) -> list[str]:
    headers = {"Authorization": f"Bearer {site.token}", "Origin": site.origin}
    out = []
    for _ in range(n):
        status, body = server.request("POST", "/api/v1/sessions", {"page_url": site.origin + "/"},
                                      headers)
        assert status == 201, body
        out.append(body["session_id"])
    return out


# --------------------------------------------------------------------------- the API run


def post_batches(port: int, site: Site, per_client: list[list[bytes]]) -> tuple[float, list[float]]:
    """Send each client's bodies over its own keep-alive connection; return (seconds, latencies)."""
    headers = {"Authorization": f"Bearer {site.token}", "Origin": site.origin,
               "Content-Type": "application/json"}
    return bench_common.post_concurrently(
        port, headers, [[("/api/v1/track", body) for body in bodies] for bodies in per_client])


# --------------------------------------------------------------------------- in-process profile


class PhaseTimer:
    """Patch named callables with timing wrappers for the duration of a `with` block."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._undo: list[tuple[object, str, object]] = []

    def wrap(self, owner: object, attr: str, name: str) -> None:
        original = getattr(owner, attr)
        seconds = self.seconds
        seconds.setdefault(name, 0.0)
        clock = time.perf_counter

        def timed(*args, **kwargs):
            t0 = clock()
            try:
                return original(*args, **kwargs)
            finally:
                seconds[name] += clock() - t0

        setattr(owner, attr, timed)
        self._undo.append((owner, attr, original))

    def __enter__(self) -> PhaseTimer:
        return self

    def __exit__(self, *exc) -> None:
        for owner, attr, original in reversed(self._undo):
            setattr(owner, attr, original)


def profile_in_process(url: str, site: Site, config: Config
                       ) -> tuple[dict[str, float], list[tuple[str, float]], dict[str, int]]:
    """Where one request's time goes: the app in this process (falcon.testing), batch after batch.

    The functions POST /api/v1/track calls are wrapped with timers; `request` is the whole
    request through the app (middleware, routing, response), `other` what no phase covers.
    A second pass runs under cProfile for the functions with the most own time.
    """
    import cProfile
    import pstats

    import falcon.testing
    import psycopg
    from psycopg_pool import ConnectionPool

    from hindsight.app import create_app
    from hindsight.db import create_pool
    from hindsight.ingestion import batches
    from hindsight.queries import events as event_queries
    from hindsight.resources import track
    from hindsight.settings import Settings

    settings = Settings(database_url=url, rate_limit_per_minute=0, pool_min=1, pool_max=2)
    pool = create_pool(settings)
    try:
        client = falcon.testing.TestClient(create_app(settings, pool))
        headers = {"Authorization": f"Bearer {site.token}", "Origin": site.origin,
                   "Content-Type": "application/json"}
        n = config.profile_batches
        sessions = []
        for _ in range(-(-2 * n // config.batches_per_session)):
            resp = client.simulate_post("/api/v1/sessions", json={"page_url": site.origin + "/"},
                                        headers=headers)
            assert resp.status_code == 201, resp.json
            sessions.append(resp.json["session_id"])
        cfg = Config(events=2 * n * config.batch_size, batch_size=config.batch_size, clients=1,
                     batches_per_session=config.batches_per_session, seed=config.seed + 7)
        bodies = [json.dumps({"session_id": s, "events": ev}).encode()
                  for s, ev in plan_batches(cfg, site.origin, sessions)[0]]
        schema = track.Track.schema

        def post(body: bytes) -> None:
            resp = client.simulate_post("/api/v1/track", body=body, headers=headers)
            assert resp.status_code == 201, resp.json

        warm = min(5, n // 2)
        for body in bodies[:warm]:  # warm up: pool, prepared statements
            post(body)
        timed_bodies, profiled_bodies = bodies[warm:n], bodies[n:]
        with PhaseTimer() as timer:
            timer.wrap(falcon.Request, "get_media", "JSON parse")  # the app's JSON handler
            timer.wrap(schema, "load", "marshmallow validation")
            timer.wrap(ConnectionPool, "getconn", "pool checkout")
            timer.wrap(ConnectionPool, "putconn", "pool return")
            timer.wrap(event_queries, "encode_batch", "events -> query parameters")
            # A new batch is one autocommitted statement: token, session and Origin checks,
            # insert, counters, ledger, and the commit (fsync) before it returns.
            timer.wrap(event_queries, "insert_new_batch_authorized",
                       "one statement: check token + INSERT + UPDATE + COMMIT")
            # The step-by-step path (errors, re-sent batches); unused by this load.
            timer.wrap(batches, "authorize", "slow path: BEGIN + token/session SELECT")
            timer.wrap(event_queries, "insert_batch", "slow path: INSERT + UPDATE")
            timer.wrap(psycopg.Transaction, "__exit__", "slow path: COMMIT")
            t0 = time.perf_counter()
            for body in timed_bodies:
                post(body)
            total = time.perf_counter() - t0
        per = {name: s / len(timed_bodies) * 1000 for name, s in timer.seconds.items()}
        per["other (falcon, middleware, test client)"] = (
            total / len(timed_bodies) * 1000 - sum(per.values()))
        per["request"] = total / len(timed_bodies) * 1000

        profiler = cProfile.Profile()
        profiler.enable()
        for body in profiled_bodies:
            post(body)
        profiler.disable()
        stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
        top = sorted(((f"{Path(k[0]).name}:{k[1]}({k[2]})", v[2] / len(profiled_bodies) * 1000)
                      for k, v in stats.items()), key=lambda kv: -kv[1])[:15]
        sent = {}
        for s, ev in plan_batches(cfg, site.origin, sessions)[0]:
            sent[s] = sent.get(s, 0) + len(ev)
        return per, top, sent
    finally:
        pool.close()


# --------------------------------------------------------------------------- the whole run


def run_bench(url: str, config: Config, postgres_pid: int | None = None, log=print) -> Result:
    """Everything but starting the cluster (the smoke test brings its own).

    Rounds of (COPY, API), each on fresh sessions; the machine may be shared, so the best
    round of each is what is compared (the least disturbed one), and every round is kept.
    """
    from hindsight.migrate import migrate

    migrate(url)
    result = Result(config=config, settings=server_settings(url),
                    loadavg=" ".join(Path("/proc/loadavg").read_text().split()[:3]))
    work = Path(tempfile.mkdtemp(prefix="hindsight-bench-"))
    server = ApiServer(url, config.workers)
    try:
        site = site_flow(server, url)
        meter = CpuMeter(server.proc.pid, postgres_pid)

        def claim(plan: list[list[tuple[str, list[dict]]]], api: bool = True) -> None:
            for client in plan:
                for s, ev in client:
                    result.sent[s] = result.sent.get(s, 0) + len(ev)
                    if api:
                        result.api_sent[s] = result.api_sent.get(s, 0) + len(ev)

        def bodies_of(plan: list[list[tuple[str, list[dict]]]]) -> list[list[bytes]]:
            return [[json.dumps({"session_id": s, "events": ev}, separators=(",", ":")).encode()
                     for s, ev in client] for client in plan]

        # Warm up, unmeasured, at full concurrency: the chunk, each worker's pool of
        # connections (a new server process loads its caches on first use) and the
        # statements psycopg prepares after a few executions on each connection.
        warm = create_sessions(server, site, config.clients)
        warm_plan = plan_batches(Config(events=config.clients * config.warmup_batches * config.batch_size,
                                        batch_size=config.batch_size, clients=config.clients,
                                        batches_per_session=config.warmup_batches,
                                        seed=config.seed + 1000),
                                 site.origin, warm)
        claim(warm_plan)
        post_batches(server.port, site, bodies_of(warm_plan))

        n_sessions = -(-config.events // (config.batch_size * config.batches_per_session))
        for r in range(config.rounds):
            sessions = create_sessions(server, site, n_sessions)
            plan = plan_batches(replace(config, seed=config.seed + r), site.origin, sessions)
            bodies = bodies_of(plan)
            claim(plan)
            # The reference: the same rows, each API session's under a twin session id.
            twin = {s: str(uuid.uuid4()) for s in sessions}
            flat = [b for client in plan for b in client]
            path = work / f"events-{r}.tsv"
            rows = write_copy_file(path, flat, twin, site.account_id, site.domain)
            claim([[(twin[s], ev) for s, ev in flat]], api=False)

            if config.quiet_wait > 0:
                busy = wait_quiet(config.quiet_wait)
                log(f"round {r + 1}: the machine was {busy:.2f} cores busy before it")
            a = meter.sample()
            seconds = run_copy(url, path, work)
            result.copy.append(CopyRound(rows, seconds, meter.delta(a, meter.sample())))
            log(f"round {r + 1}: COPY {rows} rows in {seconds:.3f} s ({rows / seconds:,.0f} rows/s)")

            a = meter.sample()
            seconds, latencies = post_batches(server.port, site, bodies)
            events = sum(len(ev) for _, ev in flat)
            result.api.append(ApiRound(events, seconds, latencies, meter.delta(a, meter.sample())))
            log(f"round {r + 1}: API  {events} events in {len(latencies)} requests, {seconds:.3f} s "
                f"({events / seconds:,.0f} events/s)")
    finally:
        server.stop()
    result.profile, result.profile_top, sent = profile_in_process(url, site, config)
    for s, n in sent.items():
        result.sent[s] = result.sent.get(s, 0) + n
        result.api_sent[s] = result.api_sent.get(s, 0) + n
    shutil.rmtree(work, ignore_errors=True)
    return result


def stored_counts(url: str, session_ids: list[str]) -> dict[str, int]:
    """Events in the database per session id (the check that nothing claimed is missing)."""
    from hindsight.db import connect

    with connect(url) as conn:
        rows = conn.execute(
            "SELECT session_id::text AS s, count(*) AS n FROM events "
            "WHERE session_id = ANY(%s::uuid[]) GROUP BY session_id", (session_ids,)).fetchall()
    return {r["s"]: r["n"] for r in rows}


def session_counters(url: str, session_ids: list[str]) -> dict[str, int]:
    """sessions.event_count per session id (moved by each accepted batch)."""
    from hindsight.db import connect

    with connect(url) as conn:
        rows = conn.execute(
            "SELECT session_id::text AS s, event_count AS n FROM sessions "
            "WHERE session_id = ANY(%s::uuid[])", (session_ids,)).fetchall()
    return {r["s"]: r["n"] for r in rows}


def verify(url: str, result: Result) -> list[str]:
    """What is wrong with the database after the run: rows or counters that do not match
    what the run sent (empty: all is there, once)."""
    problems = []
    stored = stored_counts(url, list(result.sent))
    for s, n in result.sent.items():
        if stored.get(s, 0) != n:
            problems.append(f"session {s}: sent {n} events, {stored.get(s, 0)} stored")
    counters = session_counters(url, list(result.api_sent))
    for s, n in result.api_sent.items():
        if counters.get(s) != n:
            problems.append(f"session {s}: sent {n} events through the API, event_count {counters.get(s)}")
    return problems


# --------------------------------------------------------------------------- report


def _bound(numerator: float, denominator: float) -> str:
    """A ratio of CPU times, or "n/a" when /proc counted no ticks (a tiny run: 10 ms per tick)."""
    return f"{numerator / denominator:.2f}" if denominator > 0 else "n/a (too short to measure)"


def render(result: Result, command: str) -> str:
    c, st = result.config, result.settings
    cores = os.cpu_count() or 1
    all_latencies = [x for r in result.api for x in r.latencies_ms]
    median_api = statistics.median(r.rate for r in result.api)
    median_copy = statistics.median(r.rate for r in result.copy)
    per_event = statistics.median((r.cpu.api + r.cpu.postgres) / r.events * 1e6 for r in result.api)
    gunicorn_per_event = statistics.median(r.cpu.api / r.events * 1e6 for r in result.api)
    copy_per_row = statistics.median(r.cpu.postgres / r.rows * 1e6 for r in result.copy)
    lines = [
        "## Ingestion: POST /api/v1/track against a raw COPY",
        "",
        f"- Command: `{command}`",
        f"- Date: {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Machine: {bench_common.machine(python=True)}; load average when the run started: {result.loadavg}",
        f"- Database: PostgreSQL {st.get('server_version')}, TimescaleDB {st.get('timescaledb')} "
        f"({st.get('timescaledb.license')} edition), a throw-away cluster on the local disk started by "
        f"the bench; fsync={st.get('fsync')}, synchronous_commit={st.get('synchronous_commit')}, "
        f"full_page_writes={st.get('full_page_writes')}, shared_buffers={st.get('shared_buffers')}",
        f"- API: `hindsight serve --workers {c.workers}` (gunicorn with Hindsight's gevent "
        "worker, hindsight.worker.HindsightWorker; the other settings at their defaults but the rate limit, which is off), on "
        "127.0.0.1, with its scheduler (the statistics stacks' flushes) running as in production",
        f"- Load: {c.rounds} round(s); each posts {c.events:,} events in batches of {c.batch_size}, "
        f"every batch once, from {c.clients} concurrent keep-alive clients (threads with http.client "
        f"in the bench process; bodies serialized before the clock starts); a session's "
        f"{c.batches_per_session} batches go in order through one client. A 201 is a committed batch. "
        f"Before the first round, {c.warmup_batches} unmeasured batches per client warm the pools up.",
        "- Reference: in each round, just before the API, `psql \\copy` of the same rows (same values, "
        "each API session's rows under a twin session id) into the same `events` hypertable, one "
        "transaction, timed between two server-side `clock_timestamp()` calls",
        "- The client, gunicorn and PostgreSQL share the machine's cores, and so may other processes "
        "(and, on a virtual machine, its neighbours on the same hardware): "
        + (f"before each round the bench waits (at most {c.quiet_wait:.0f} s) for the machine to be "
           "idle; " if c.quiet_wait > 0 else "")
        + "each round's ratio compares two measurements a second apart, and the median round's is "
        "the headline. Each round's CPU split (from /proc) is below.",
        "",
        "| | value |",
        "|---|---|",
        f"| **ratio API / COPY** (median of the rounds) | **{result.ratio:.2f}** (target: at least 0.25) |",
        f"| API, median round | **{median_api:,.0f} events/s** ({median_api / c.batch_size:,.0f} "
        "requests/s) |",
        f"| COPY, median round | **{median_copy:,.0f} rows/s** |",
        f"| best API round / best COPY round | {result.best_api.rate:,.0f} / {result.best_copy.rate:,.0f} "
        f"= {result.best_ratio:.2f} |",
        f"| request latency, all rounds | p50 {percentile(all_latencies, 50):.1f} ms, "
        f"p99 {percentile(all_latencies, 99):.1f} ms, max {max(all_latencies):.1f} ms |",
        f"| CPU per event, API (gunicorn + PostgreSQL, median round) | {per_event:.0f} µs, of which "
        f"gunicorn {gunicorn_per_event:.0f} µs |",
        f"| CPU per row, COPY (PostgreSQL, median round) | {copy_per_row:.1f} µs |",
        f"| ratio's upper bound from CPU cost: ({cores} cores / API CPU per event) / (1 core / COPY "
        f"CPU per row) | {_bound(cores * copy_per_row, per_event)} (the API with every core to itself, "
        "no client; the COPY is one backend on one core) |",
        "",
        "Every round (CPU seconds; `others` is what other processes on the machine used meanwhile):",
        "",
        "| round | COPY rows/s | CPU: PostgreSQL, psql, others | API events/s | ratio | p50 / p99 ms "
        "| CPU: gunicorn, PostgreSQL, client, others (of core-seconds) |",
        "|---|---|---|---|---|---|---|",
    ]
    for i, (cr, ar, ratio) in enumerate(zip(result.copy, result.api, result.round_ratios, strict=True), 1):
        lines.append(
            f"| {i} | {cr.rate:,.0f} | {cr.cpu.postgres:.2f}, {cr.cpu.client:.2f}, {cr.cpu.others:.2f} "
            f"| {ar.rate:,.0f} | {ratio:.2f} "
            f"| {percentile(ar.latencies_ms, 50):.1f} / {percentile(ar.latencies_ms, 99):.1f} "
            f"| {ar.cpu.api:.2f}, {ar.cpu.postgres:.2f}, {ar.cpu.client:.2f}, {ar.cpu.others:.2f} "
            f"(of {ar.seconds * cores:.2f}) |")
    lines += [
        "",
        "What a batch costs the API that a COPY does not pay: parsing and validating the JSON "
        "(every field bounded), checking the token, its flag, the account, the session and the "
        "Origin (inside the same statement as the insert, which runs as its own transaction: one "
        "round trip per batch), the session's counters, the statistics stacks' ledger row, and a "
        "durable commit for every batch where the COPY commits once; the stacks' flushes "
        "(journey steps, usage) run meanwhile on the workers' scheduler (a greenlet) and count in the "
        "API's CPU. A re-sent batch fails that statement on its primary key and is stored again "
        "step by step with ON CONFLICT DO NOTHING (not exercised by this load).",
        "",
        "### Where a request's time goes",
        "",
        f"The app in one process (falcon.testing: no HTTP, no concurrency, no scheduler), "
        f"{c.profile_batches} batches of {c.batch_size} events, mean per batch. The functions a "
        "request goes through are wrapped with timers (the database phases include the round trip "
        "and PostgreSQL's work); `other` is falcon routing, the middleware, the response and the "
        "test client.",
        "",
        "| phase | ms per batch |",
        "|---|---|",
    ]
    for name, ms in result.profile.items():
        if name != "request":
            lines.append(f"| {name} | {ms:.3f} |")
    lines.append(f"| **request** | **{result.profile['request']:.3f}** |")
    lines += [
        "",
        "cProfile of the same kind of batches, the functions with the most own time (ms per batch; "
        "cProfile's overhead inflates functions that make many small calls, and time spent waiting "
        "for PostgreSQL shows up in psycopg's `wait`):",
        "",
        "| function | ms per batch |",
        "|---|---|",
    ]
    lines += [f"| `{name}` | {ms:.3f} |" for name, ms in result.profile_top]
    lines.append("")
    return "\n".join(lines)


def summary(result: Result) -> str:
    latencies = [x for r in result.api for x in r.latencies_ms]
    return (f"ratio API / COPY {result.ratio:.2f} (median of {len(result.api)} rounds: "
            f"{', '.join(f'{r:.2f}' for r in result.round_ratios)}); "
            f"API {statistics.median(r.rate for r in result.api):,.0f} events/s, "
            f"COPY {statistics.median(r.rate for r in result.copy):,.0f} rows/s (median rounds); "
            f"latency p50 {percentile(latencies, 50):.1f} ms, p99 {percentile(latencies, 99):.1f} ms")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="smoke run: few events, no doc")
    parser.add_argument("--events", type=int, help="events through the API per round (default 20000)")
    parser.add_argument("--rounds", type=int, help="rounds of (COPY, API) (default 3)")
    parser.add_argument("--clients", type=int, help="concurrent HTTP clients (default 8)")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default 2)")
    parser.add_argument("--output", type=Path, default=None,
                        help=f"where to write the results (default {DOC.relative_to(ROOT)}; "
                             "--quick writes nothing unless given)")
    args = parser.parse_args(argv)
    config = Config.quick() if args.quick else Config()
    for name in ("events", "rounds", "clients", "workers"):
        if getattr(args, name) is not None:
            setattr(config, name, getattr(args, name))
    output = args.output if args.output else (None if args.quick else DOC)

    cluster = bench_common.start_cluster(durable=True)
    try:
        url = cluster.url()
        result = run_bench(url, config, postgres_pid=cluster.child_process.pid)
        problems = verify(url, result)
        if problems:
            print(f"{len(problems)} problem(s) in the database after the run, e.g. {problems[0]}")
            return 1
        print(f"all {sum(result.sent.values()):,} rows sent are in the database, once")
    finally:
        cluster.stop()
    print(summary(result))
    for name, ms in result.profile.items():
        print(f"  {name:45s} {ms:8.3f} ms")
    if output:
        command = ".venv/bin/python bench/ingest.py" + (" " + " ".join(argv if argv is not None
                                                                        else sys.argv[1:])).rstrip()
        output.parent.mkdir(parents=True, exist_ok=True)
        write_section(output, "bench/ingest.py", render(result, command.strip()))
        print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
