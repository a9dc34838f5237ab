"""The scale-out rig (tests/test_scale.py, bench/scale.py): real processes on loopback.

- `PgNode`: a PostgreSQL + TimescaleDB cluster of its own (pg_ctl; as the postgres user
  through hindsight.pgcluster's setpriv wrappers when we are root), the primary, or a
  streaming replica made from it with `pg_basebackup -R`;
- `PgBouncer`: Debian's pgbouncer in transaction pooling mode in front of the primary;
- `HAProxy`: Debian's haproxy, round robin over `hindsight serve` hosts, health check on
  /health, its own 503 (when no host is up) with a Retry-After like the API's;
- `Rig`: all of them plus two hosts (tests/harness.py ServeProcess), started and stopped together;
- `TrackerLoad`: clients sending numbered event batches like tracker.js (each batch re-sent
  until a 2xx, events idempotent by session + seq), recording what every attempt got.
"""

from __future__ import annotations

import http.client
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from harness import ServeProcess, free_port, http_call, site_writer
from hindsight.migrate import migrate
from hindsight.pgcluster import SERVER_OPTIONS, binaries, find_bindir

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"


def have_tools() -> str | None:
    """Why the rig cannot run here (None: it can)."""
    missing = [p for p in (PGBOUNCER, HAPROXY) if not Path(p).exists()]
    if missing:
        return f"not installed: {missing} (scripts/bootstrap.sh installs pgbouncer and haproxy)"
    return None


def as_postgres(args: list[str]) -> list[str]:
    """`args` run as the postgres user when we are root (PostgreSQL and PgBouncer refuse root)."""
    if os.geteuid() != 0:
        return args
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups", *args]


def own(path: Path) -> None:
    if os.geteuid() == 0:
        shutil.chown(path, "postgres", "postgres")
        for p in path.rglob("*"):
            shutil.chown(p, "postgres", "postgres")


def wait_port(port: int, timeout: float = 30.0, what: str = "port") -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1.0):
                return
        except OSError:
            assert time.monotonic() < deadline, f"{what} {port} never listened"
            time.sleep(0.1)


class PgNode:
    """One PostgreSQL server under `root`, listening on 127.0.0.1:`port`."""

    def __init__(self, root: Path, name: str, durable: bool = False) -> None:
        self.durable = durable
        self.root = root / name
        self.root.mkdir(parents=True, exist_ok=True)
        self.pgdata = self.root / "data"
        self.port = free_port()
        self.log = self.root / "server.log"
        self.bins = binaries(root / "bin")

    def url(self, db: str = "hindsight") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def init_primary(self) -> PgNode:
        subprocess.run([self.bins.initdb, "-D", str(self.pgdata), "-U", "postgres", "-A", "trust",
                        "-E", "UTF8", "--locale=C"], check=True, stdout=subprocess.DEVNULL)
        return self

    def init_replica_of(self, primary: PgNode) -> PgNode:
        """`pg_basebackup -R`: a copy of the primary that streams from it (standby.signal,
        primary_conninfo)."""
        own(self.root)
        subprocess.run(as_postgres([str(find_bindir() / "pg_basebackup"), "-D", str(self.pgdata),
                                    "-h", "127.0.0.1", "-p", str(primary.port), "-U", "postgres",
                                    "-R", "-X", "stream", "-c", "fast"]),
                       check=True, stdout=subprocess.DEVNULL, timeout=120)
        return self

    def start(self) -> PgNode:
        options = " ".join([*SERVER_OPTIONS, "-p", str(self.port), "-c", "listen_addresses=127.0.0.1",
                            "-c", f"unix_socket_directories={self.root}",
                            "-c", f"fsync={'on' if self.durable else 'off'}",
                            "-c", "wal_retrieve_retry_interval=1s"])
        subprocess.run([self.bins.pg_ctl, "-D", str(self.pgdata), "-l", str(self.log), "-w", "-t", "60",
                        "-o", options, "start"], check=True, stdout=subprocess.DEVNULL)
        return self

    def stop(self, mode: str = "fast") -> None:
        if (self.pgdata / "postmaster.pid").exists():
            subprocess.run([self.bins.pg_ctl, "-D", str(self.pgdata), "-m", mode, "-w", "stop"],
                           check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def sql(self, query: str, params: tuple = (), db: str = "hindsight") -> list[tuple]:
        with psycopg.connect(self.url(db), autocommit=True, connect_timeout=5) as c:
            cur = c.execute(query, params)
            return cur.fetchall() if cur.description else []


class PgBouncer:
    """PgBouncer (transaction pooling) in front of `primary`, on its own port."""

    def __init__(self, root: Path, primary: PgNode, pool_size: int = 20) -> None:
        self.dir = root / "pgbouncer"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.primary = primary
        self.pool_size = pool_size
        self.proc: subprocess.Popen | None = None

    def url(self, db: str = "hindsight") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{db}"

    def start(self) -> PgBouncer:
        ini = self.dir / "pgbouncer.ini"
        (self.dir / "userlist.txt").write_text('"postgres" ""\n')
        ini.write_text(f"""[databases]
hindsight = host=127.0.0.1 port={self.primary.port} dbname=hindsight

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {self.port}
unix_socket_dir =
auth_type = trust
auth_file = {self.dir}/userlist.txt
admin_users = postgres
pool_mode = transaction
default_pool_size = {self.pool_size}
max_client_conn = 1000
ignore_startup_parameters = extra_float_digits
; a client waiting for a server connection (the primary is down) gets an error, then a 503
query_wait_timeout = 5
server_login_retry = 1
logfile = {self.dir}/pgbouncer.log
""")
        own(self.dir)
        self.proc = subprocess.Popen(as_postgres([PGBOUNCER, str(ini)]), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        wait_port(self.port, what="pgbouncer")
        return self

    def admin(self, command: str) -> list[tuple]:
        """A command of PgBouncer's admin console (SHOW POOLS, SHOW CONFIG...)."""
        with psycopg.connect(self.url("pgbouncer"), autocommit=True, prepare_threshold=None) as c:
            cur = c.execute(command, prepare=False)
            return cur.fetchall() if cur.description else []

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            self.proc = None


class HAProxy:
    """HAProxy round robin over the hosts' ports, health check on /health."""

    def __init__(self, root: Path, ports: list[int]) -> None:
        self.dir = root / "haproxy"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.stats_port = free_port()
        self.ports = ports
        self.proc: subprocess.Popen | None = None

    def start(self) -> HAProxy:
        errorfile = self.dir / "503.http"
        body = b'{"title": "Service Unavailable", "description": "No API host is up; retry later."}'
        errorfile.write_bytes(
            b"HTTP/1.1 503 Service Unavailable\r\nCache-Control: no-store\r\nConnection: close\r\n"
            b"Content-Type: application/json\r\nRetry-After: 5\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        servers = "\n".join(f"    server host{i} 127.0.0.1:{p} check" for i, p in enumerate(self.ports))
        cfg = self.dir / "haproxy.cfg"
        cfg.write_text(f"""global
    maxconn 2000

defaults
    mode http
    timeout connect 2s
    timeout client 30s
    timeout server 30s
    timeout check 3s
    retries 3
    option redispatch 1
    errorfile 503 {errorfile}

frontend api
    bind 127.0.0.1:{self.port}
    default_backend hosts

frontend stats
    bind 127.0.0.1:{self.stats_port}
    stats enable
    stats uri /stats

backend hosts
    balance roundrobin
    option httpchk GET /health
    http-check expect status 200
    default-server inter 500ms fall 2 rise 1
{servers}
""")
        check = subprocess.run([HAPROXY, "-c", "-q", "-f", str(cfg)], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr + check.stdout
        self.log = self.dir / "haproxy.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([HAPROXY, "-db", "-f", str(cfg)], stdout=out,
                                         stderr=subprocess.STDOUT, start_new_session=True)
        wait_port(self.port, what="haproxy")
        return self

    def servers_up(self) -> dict[str, bool]:
        """Each host's state as HAProxy's health checks see it (its CSV stats)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.stats_port, timeout=5)
        try:
            conn.request("GET", "/stats;csv")
            text = conn.getresponse().read().decode()
        finally:
            conn.close()
        header = text.splitlines()[0].lstrip("# ").split(",")
        out = {}
        for line in text.splitlines()[1:]:
            row = dict(zip(header, line.split(","), strict=False))
            if row.get("pxname") == "hosts" and row.get("svname", "").startswith("host"):
                out[row["svname"]] = row.get("status", "").startswith("UP")
        return out

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
            self.proc = None


HOST_ENV = {
    "HINDSIGHT_DATABASE_POOLER": "pgbouncer",
    "HINDSIGHT_STACKS_IDLE_SECONDS": "2",
    "HINDSIGHT_STACKS_MONITOR_INTERVAL_SECONDS": "1",
    "HINDSIGHT_POOL_TIMEOUT": "3",
    "HINDSIGHT_LOG_LEVEL": "warning",
}


class Rig:
    """Primary, streaming replica, PgBouncer, two `hindsight serve` hosts, HAProxy."""

    def __init__(self, hosts: int = 2, workers: int = 1, durable: bool = False) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="hindsight-scale-"))
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
        self.primary = PgNode(self.root, "primary", durable)
        self.replica = PgNode(self.root, "replica", durable)
        self.bouncer = PgBouncer(self.root, self.primary)
        self.hosts: list[ServeProcess] = []
        self.n_hosts, self.workers = hosts, workers
        self.haproxy: HAProxy | None = None

    def start(self) -> Rig:
        self.primary.init_primary().start()
        self.primary.sql("CREATE DATABASE hindsight", db="postgres")
        migrate(self.primary.url())
        # Transaction pooling: no SET per connection, so the API's statement timeout is the
        # database's (docs/SCALING.md, "PgBouncer").
        self.primary.sql("ALTER DATABASE hindsight SET statement_timeout = '15s'")
        self.replica.init_replica_of(self.primary).start()
        self.bouncer.start()
        env = {**HOST_ENV, "HINDSIGHT_DIRECT_DATABASE_URL": self.primary.url(),
               "HINDSIGHT_READ_DATABASE_URL": self.replica.url()}
        for i in range(self.n_hosts):
            self.hosts.append(ServeProcess(self.bouncer.url(), workers=self.workers, env=env,
                                           log_dir=self.root / f"host{i}"))
            self.hosts[-1].log_dir.mkdir(exist_ok=True)
        starts = [threading.Thread(target=host.start, kwargs={"timeout": 60}) for host in self.hosts]
        for t in starts:
            t.start()
        for t in starts:
            t.join()
        assert all(h.proc is not None for h in self.hosts), "a host did not start"
        self.haproxy = HAProxy(self.root, [h.port for h in self.hosts]).start()
        from harness import wait_for
        wait_for(lambda: all(self.haproxy.servers_up().values()) and len(self.haproxy.servers_up()) == self.n_hosts,
                 timeout=30, what="haproxy sees every host up")
        return self

    @property
    def port(self) -> int:
        assert self.haproxy is not None
        return self.haproxy.port

    def stop(self) -> None:
        # Throw-away processes: no graceful stops (they would only cost the test time).
        for stop in [*(h.kill9 for h in self.hosts if h.proc is not None),
                     *([self.haproxy.stop] if self.haproxy else []),
                     self.bouncer.stop, lambda: self.replica.stop("immediate"),
                     lambda: self.primary.stop("immediate")]:
            try:
                stop()
            except Exception:  # noqa: BLE001 - best effort, every part gets its stop
                pass
        shutil.rmtree(self.root, ignore_errors=True)

    def account(self) -> dict:
        """An account, with its origin, site token (the real flow over the balancer) and API key."""
        from conftest import new_account

        account = new_account(self.primary.url())
        writer = site_writer(self.port, account)
        account.update(origin=writer["origin"], token=writer["token"], write=writer["write"],
                       read={"Authorization": f"Bearer {account['api_key']}"})
        return account


@dataclass
class Batch:
    session_id: str
    seqs: list[int]
    body: dict
    attempts: list[tuple[int | None, str | None]] = field(default_factory=list)  # (status, Retry-After or error)
    count: int | None = None  # events the server said it newly stored (the 2xx)

    @property
    def acked(self) -> bool:
        return self.count is not None


class TrackerLoad:
    """`clients` sessions, each sending `batches` batches of `events` events in order, like
    tracker.js: a batch without a 2xx is re-sent (after a short pause) until it gets one,
    for at most `give_up` seconds."""

    def __init__(self, port: int, account: dict, clients: int, batches: int, events: int,
                 give_up: float = 60.0) -> None:
        self.port, self.account, self.give_up = port, account, give_up
        self.acked = 0
        self.lock = threading.Lock()
        base = datetime.now(UTC) - timedelta(minutes=5)
        origin = account["origin"]
        self.sessions: list[str] = []
        self.batches: list[list[Batch]] = []
        for _ in range(clients):
            sid = str(uuid.uuid4())
            self.sessions.append(sid)
            mine = []
            for b in range(batches):
                evs = [{"seq": s, "timestamp": (base + timedelta(milliseconds=s)).isoformat(),
                        "event_type": "click" if s % 5 == 0 else "mouse_move",
                        "page_url": f"{origin}/scale", "viewport_x": s % 1000, "viewport_y": s % 700}
                       for s in range(b * events, (b + 1) * events)]
                mine.append(Batch(sid, [e["seq"] for e in evs], {"session_id": sid, "events": evs}))
            self.batches.append(mine)
        self.threads: list[threading.Thread] = []

    def _send(self, method: str, path: str, body: dict, record: Batch | None) -> tuple[int, dict | None]:
        deadline = time.monotonic() + self.give_up
        while True:
            try:
                status, headers, reply = http_call(self.port, method, path, body=body,
                                                   headers=self.account["write"], timeout=15.0)
            except (OSError, http.client.HTTPException) as ex:
                status, headers, reply = None, {}, None
                note: str | None = type(ex).__name__
            else:
                # HAProxy sends header names in lower case (HTTP/1.1 allows it).
                note = {k.lower(): v for k, v in headers.items()}.get("retry-after")
            if record is not None:
                record.attempts.append((status, note))
            if status is not None and 200 <= status < 300:
                return status, reply
            if time.monotonic() > deadline:
                return status or 0, reply
            time.sleep(0.2)

    def _run(self, index: int) -> None:
        sid = self.sessions[index]
        self._send("POST", "/api/v1/sessions",
                   {"session_id": sid, "page_url": f"{self.account['origin']}/scale"}, None)
        for batch in self.batches[index]:
            status, reply = self._send("POST", "/api/v1/track", batch.body, batch)
            if not 200 <= status < 300:
                return  # gave up: reported by the checks
            batch.count = reply["count"] if reply else None
            with self.lock:
                self.acked += 1

    def start(self) -> TrackerLoad:
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True)
                        for i in range(len(self.sessions))]
        for t in self.threads:
            t.start()
        return self

    def join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(timeout=max(0.0, deadline - time.monotonic()))
        assert not any(t.is_alive() for t in self.threads), "a client hung"

    def all_batches(self) -> list[Batch]:
        return [b for mine in self.batches for b in mine]

    def check_stored(self, db_url: str) -> dict:
        """Every batch acknowledged, stored once; the responses' counts add up to the rows."""
        batches = self.all_batches()
        unacked = [(b.session_id, b.seqs[0], b.attempts[-3:]) for b in batches if not b.acked]
        assert not unacked, f"batches never acknowledged: {unacked[:5]}"
        with psycopg.connect(db_url) as c:
            rows = dict(c.execute(
                "SELECT session_id::text, count(*) FROM events WHERE session_id = ANY(%s::uuid[]) "
                "GROUP BY 1", (self.sessions,)).fetchall())
            dupes = c.execute(
                "SELECT count(*) FROM (SELECT session_id, seq FROM events WHERE session_id = ANY(%s::uuid[]) "
                "GROUP BY 1, 2 HAVING count(*) > 1) d", (self.sessions,)).fetchone()[0]
            counters = dict(c.execute(
                "SELECT session_id::text, event_count FROM sessions WHERE session_id = ANY(%s::uuid[])",
                (self.sessions,)).fetchall())
        per_session = {sid: sum(len(b.seqs) for b in mine) for sid, mine in zip(self.sessions, self.batches, strict=True)}
        assert dupes == 0
        assert rows == per_session, (rows, per_session)
        assert counters == per_session, (counters, per_session)
        # A batch committed whose answer was lost answers 0 when re-sent: the counts the
        # clients saw never exceed what is stored, and equal it unless a response was lost.
        counted = sum(b.count or 0 for b in batches)
        assert counted <= sum(per_session.values())
        return {"batches": len(batches), "events": sum(per_session.values()), "counted_by_2xx": counted,
                "retried": sum(len(b.attempts) > 1 for b in batches),
                "attempts": sum(len(b.attempts) for b in batches)}
