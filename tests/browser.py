"""Helpers for browser tests and bench/tracker.py: a real `hindsight serve` process,
Debian's headless Chromium driven by Playwright, and the demo site with tracker.js.

Playwright's own browser download does not work on these machines: Chromium is Debian's
(`/usr/bin/chromium`, installed by scripts/bootstrap.sh) and is started with the flags
that keep it off the network it cannot reach anyway.
"""

from __future__ import annotations

import json
import subprocess
import urllib.request
from contextlib import contextmanager

from harness import REPO, ServeProcess, free_port  # noqa: F401  (re-exported for the browser tests)

DIST = REPO / "tracker" / "dist"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
    "--disable-background-networking", "--disable-component-update", "--no-first-run",
    "--disable-sync", "--disable-default-apps", "--disable-extensions",
    "--metrics-recording-only", "--no-default-browser-check",
]


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


def ApiServer(db_url: str, port: int | None = None, workers: int = 1,
              env: dict[str, str] | None = None) -> ServeProcess:
    """The API for browser tests: one worker unless asked otherwise."""
    return ServeProcess(db_url, port=port, workers=workers, env=env)


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

    def posts(self, fragment: str) -> list[dict]:
        return [r for r in self.to(fragment) if r["method"] == "POST"]

    def text(self) -> str:
        return "\n".join(f"{r['method']} {r['url']}\n{r['body']}" for r in self.requests)
