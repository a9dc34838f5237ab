"""Helpers for browser tests and bench/tracker.py: a real `hindsight serve` process,
Debian's headless Chromium driven by Playwright, and the demo site with tracker.js.

Playwright's own browser download does not work on these machines: Chromium is Debian's
(`/usr/bin/chromium`, installed by scripts/bootstrap.sh) and is started with the flags
that keep it off the network it cannot reach anyway.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
HINDSIGHT = REPO / ".venv" / "bin" / "hindsight"
DIST = REPO / "tracker" / "dist"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
    "--disable-background-networking", "--disable-component-update", "--no-first-run",
    "--disable-sync", "--disable-default-apps", "--disable-extensions",
    "--metrics-recording-only", "--no-default-browser-check",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ensure_tracker_built() -> dict:
    """Build tracker/dist when a source is newer than it (npm ci ran in bootstrap); return the manifest."""
    manifest = DIST / "manifest.json"
    sources = [*(REPO / "tracker" / "src").glob("*.js"), REPO / "tracker" / "build.mjs",
               REPO / "tracker" / "package-lock.json"]
    if not manifest.exists() or max(p.stat().st_mtime for p in sources) > manifest.stat().st_mtime:
        subprocess.run(["node", "build.mjs"], cwd=REPO / "tracker", check=True,
                       stdout=subprocess.DEVNULL)
    return json.loads(manifest.read_text())


def http_json(url: str, headers: dict | None = None, timeout: float = 10.0):
    req = urllib.request.Request(url, headers=headers or {})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


class ApiServer:
    """`hindsight serve` (gunicorn) on 127.0.0.1 in its own process group; stop() and
    start() again to take the API down and bring it back on the same port."""

    def __init__(self, db_url: str, port: int | None = None, workers: int = 1,
                 env: dict[str, str] | None = None) -> None:
        self.db_url = db_url
        self.port = port or free_port()
        self.workers = workers
        self.env = env or {}
        self.proc: subprocess.Popen | None = None
        self.log = Path(tempfile.mkdtemp(prefix="hindsight-api-")) / "gunicorn.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> ApiServer:
        env = {**os.environ, "HINDSIGHT_DATABASE_URL": self.db_url, "HINDSIGHT_LOG_LEVEL": "warning",
               "HINDSIGHT_RATE_LIMIT_PER_MINUTE": "0", **self.env}
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [str(HINDSIGHT), "serve", "--bind", f"127.0.0.1:{self.port}",
                 "--workers", str(self.workers)],
                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while True:
            assert self.proc.poll() is None, f"hindsight serve exited:\n{self.log_tail()}"
            try:
                with urllib.request.urlopen(self.url + "/health", timeout=2) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                pass
            assert time.monotonic() < deadline, f"/health never answered:\n{self.log_tail()}"
            time.sleep(0.1)

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


@contextmanager
def chromium():
    """Debian's headless Chromium via Playwright (sync API); yields the Browser."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class RequestLog:
    """Every request a browser context sends (URL, method, body), for privacy checks."""

    def __init__(self, context) -> None:
        self.requests: list[dict] = []
        self.responses: list[tuple[int, str]] = []
        context.on("request", self._on_request)
        context.on("response", lambda r: self.responses.append((r.status, r.url)))

    def _on_request(self, request) -> None:
        try:
            body = request.post_data or ""
        except Exception:  # a binary body Playwright cannot decode as text
            body = repr(request.post_data_buffer)
        self.requests.append({"url": request.url, "method": request.method, "body": body,
                              "type": request.resource_type,
                              "authorization": request.headers.get("authorization")})

    def to(self, fragment: str) -> list[dict]:
        return [r for r in self.requests if fragment in r["url"]]

    def text(self) -> str:
        return "\n".join(f"{r['method']} {r['url']}\n{r['body']}" for r in self.requests)
