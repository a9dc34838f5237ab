"""The test harness: real `hindsight serve` processes on loopback, and the small helpers
every process-level test needs (a free port, one HTTP call, waiting for a condition).

One copy of each, imported by the tests and by tests/browser.py; nothing here knows about
a particular test.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
# The console script installed next to this interpreter (.venv/bin/hindsight).
HINDSIGHT = Path(sys.executable).with_name("hindsight")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_call(port: int, method: str, path: str, body: Any = None, headers: dict | None = None,
              timeout: float = 10.0) -> tuple[int, dict[str, str], Any]:
    """One request on a fresh connection: (status, headers, parsed JSON or None).

    `body` is sent as JSON unless it is bytes (then as given, with the caller's headers).
    """
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        hdrs = dict(headers or {})
        data = None
        if isinstance(body, bytes | bytearray):
            data = bytes(body)
        elif body is not None:
            data = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        conn.request(method, path, body=data, headers=hdrs)
        resp = conn.getresponse()
        raw = resp.read()
        is_json = "json" in (resp.getheader("Content-Type") or "")
        return resp.status, dict(resp.getheaders()), json.loads(raw) if raw and is_json else None
    finally:
        conn.close()


def site_writer(port: int, account: dict, origin: str | None = None) -> dict:
    """The site flow over HTTP for an account (conftest.new_account's dict): its widget JWT, then
    its site token, from `origin` (default https:// and the account's domain). Returns the
    origin, the widget JWT, the token and the headers a writer sends."""
    origin = origin or f"https://{account['domain']}"
    status, _, widgets = http_call(port, "GET", f"/site/account/{account['account_id']}/widgets",
                                   headers={"Origin": origin})
    assert status == 200, widgets
    jwt = widgets["widgets"][0]["token"]
    status, _, stats = http_call(port, "GET", f"/site/widget/{account['widget_id']}/account_statistics",
                                 headers={"Authorization": f"Bearer {jwt}", "Origin": origin})
    assert status == 200, stats
    return {"origin": origin, "jwt": jwt, "token": stats["token"],
            "write": {"Authorization": f"Bearer {stats['token']}", "Origin": origin}}


def wait_for(check: Callable[[], Any], timeout: float = 20.0, what: str = "condition", page=None):
    """Poll `check` until it returns something truthy, and return that.

    With a Playwright page, wait through Playwright, which meanwhile delivers the browser's
    events (requests, console) to their listeners; time.sleep would not.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        if page is not None:
            page.wait_for_timeout(200)
        else:
            time.sleep(0.2)


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes whose process group is `pgid`."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ...; comm may contain spaces, so split after ')'.
        rest = stat[stat.rindex(")") + 2:].split()
        state, pgrp = rest[0], int(rest[2])
        if pgrp == pgid and state not in ("Z", "X"):
            pids.append(int(entry))
    return pids


class ServeProcess:
    """`hindsight serve` (gunicorn master + workers) in its own process group on 127.0.0.1.

    `start()` returns once /health answers 200 and every worker is up; `stop()` is a
    graceful SIGTERM, `kill9()` a SIGKILL of the whole group; `start()` again brings it
    back on the same port. The rate limit is off unless `env` sets it.
    """

    def __init__(self, db_url: str, port: int | None = None, workers: int = 1,
                 env: dict[str, str] | None = None, log_dir: Path | None = None) -> None:
        self.db_url = db_url
        self.port = port or free_port()
        self.workers = workers
        self.env = dict(env or {})
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="hindsight-serve-"))
        self.log = self.log_dir / "gunicorn-0.log"
        self.proc: subprocess.Popen | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> ServeProcess:
        self.starts += 1
        env = {**os.environ, "HINDSIGHT_DATABASE_URL": self.db_url, "HINDSIGHT_LOG_LEVEL": "warning",
               "HINDSIGHT_RATE_LIMIT_PER_MINUTE": "0", **self.env}
        self.log = self.log_dir / f"gunicorn-{self.starts}.log"
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [str(HINDSIGHT), "serve", "--bind", f"127.0.0.1:{self.port}",
                 "--workers", str(self.workers)],
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout: float) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, f"hindsight serve exited:\n{self.log_tail()}"
            try:
                if http_call(self.port, "GET", "/health", timeout=2.0)[0] == 200:
                    break
            except (OSError, http.client.HTTPException):
                pass  # not listening yet
            assert time.monotonic() < deadline, f"/health never answered 200:\n{self.log_tail()}"
            time.sleep(0.05)
        # Every worker must be up, so that load really spreads over the processes.
        while len(group_members(self.proc.pid)) < self.workers + 1:
            assert time.monotonic() < deadline, f"workers did not start:\n{self.log_tail()}"
            time.sleep(0.05)

    def kill9(self) -> int:
        """SIGKILL the master and every worker at once; return how many processes there were."""
        assert self.proc is not None
        pgid = self.proc.pid
        members = group_members(pgid)
        os.killpg(pgid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while group_members(pgid):
            assert time.monotonic() < deadline, f"processes survived kill -9: {group_members(pgid)}"
            time.sleep(0.02)
        self.proc = None
        return len(members)

    def stop(self) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        except ProcessLookupError:
            pass
        self.proc = None

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-n:]
        except OSError:
            return "(no log)"
