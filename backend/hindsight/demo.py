"""The demo site: a few pages with tracker.js installed, served next to the API.

`make run` starts it for the demo account (http://localhost:PORT/, `localhost` being the
demo account's domain); the browser tests and bench/tracker.py start their own. The pages
live in tracker/demo/; `{{TRACKER}}` in them becomes the snippet, so the same pages can be
recorded by tracker.js, by rrweb (for the benchmark) or by nothing.
"""

from __future__ import annotations

import html
import json
import mimetypes
import threading
import time
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

REPO = Path(__file__).resolve().parents[2]
PAGES = REPO / "tracker" / "demo"
BENCH = REPO / "tracker" / "dist" / "bench"
MAX_SLOW_MS = 5000


def tracker_snippet(api_url: str, account_id: str, attrs: Mapping[str, str] | None = None,
                    integrity: str | None = None) -> str:
    """The one tag a site owner pastes (plus any data-* options)."""
    extra = "".join(f' {html.escape(k)}="{html.escape(v)}"' for k, v in (attrs or {}).items())
    sri = f' integrity="{integrity}" crossorigin="anonymous"' if integrity else ""
    return (f'<script src="{html.escape(api_url)}/tracker.js" '
            f'data-account="{html.escape(account_id)}"{extra}{sri} async></script>')


RRWEB_SNIPPET = """<script src="/bench/rrweb-record.js"></script>
<script>
  // rrweb records the same visit; its events are shipped like a tracker would (every 5 s).
  window.__rrweb = {events: [], shipped: 0};
  rrwebRecord({emit: function (e) { window.__rrweb.events.push(e); }});
  setInterval(function () {
    var b = window.__rrweb.events.splice(0);
    if (b.length) { navigator.sendBeacon('/bench/sink', JSON.stringify(b)); window.__rrweb.shipped += b.length; }
  }, 5000);
</script>"""


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        pass  # browsers hang up on keep-alive connections; nothing to report


class DemoSite:
    """A tiny threaded HTTP server for the demo pages, started in a daemon thread."""

    def __init__(self, api_url: str, account_id: str, *, port: int = 0, host: str = "127.0.0.1",
                 recorder: str = "hindsight", attrs: Mapping[str, str] | None = None) -> None:
        if recorder == "hindsight":
            snippet = tracker_snippet(api_url.rstrip("/"), account_id, attrs)
        elif recorder == "rrweb":
            snippet = RRWEB_SNIPPET
        elif recorder == "none":
            snippet = ""
        else:
            raise ValueError(f"unknown recorder {recorder!r}")
        self.snippet = snippet
        self.sink_bytes = 0
        site = self

        class Handler(_Handler):
            demo = site

        self._server = _QuietServer((host, port), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-site",
                                        daemon=True)

    def url(self, host: str = "localhost") -> str:
        return f"http://{host}:{self.port}"

    def start(self) -> DemoSite:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    demo: DemoSite
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - quiet: the API logs what matters
        pass

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        parts = urlsplit(self.path)
        path = parts.path
        if path == "/api/slow":
            self._slow(parts.query)
            return
        if path == "/bench/rrweb-record.js":
            file = BENCH / "rrweb-record.js"
            if file.exists():
                self._send(200, file.read_bytes(), "text/javascript; charset=utf-8")
            else:
                self._send(404, b"run npm run build in tracker/", "text/plain")
            return
        if path in ("/", ""):
            path = "/index.html"
        elif path == "/app" or path.startswith("/app/"):
            path = "/app.html"  # the single-page app answers all its routes
        file = (PAGES / path.lstrip("/")).resolve()
        if PAGES.resolve() not in file.parents or not file.is_file():
            self._send(404, b"<h1>Not found</h1>", "text/html; charset=utf-8")
            return
        body = file.read_bytes()
        content_type = mimetypes.guess_type(file.name)[0] or "application/octet-stream"
        if file.suffix == ".html":
            body = body.replace(b"{{TRACKER}}", self.demo.snippet.encode())
            content_type += "; charset=utf-8"
        self._send(200, body, content_type)

    do_HEAD = do_GET

    def _slow(self, query: str) -> None:
        """The demo's slow API call: answers after ?ms= milliseconds (at most 5 s)."""
        try:
            ms = min(MAX_SLOW_MS, max(0, int(parse_qs(query).get("ms", ["1500"])[0])))
        except ValueError:
            ms = 1500
        time.sleep(ms / 1000)
        self._send(200, json.dumps({"slept_ms": ms}).encode(), "application/json")

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        data = self.rfile.read(length)
        parts = urlsplit(self.path)
        if parts.path == "/bench/sink":
            self.demo.sink_bytes += len(data)
            self._send(204, b"", "text/plain")
        elif parts.path == "/api/slow":
            self._slow(parts.query)
        else:
            self._send(404, b"{}", "application/json")


def start_demo(api_url: str, account_id: str, port: int) -> DemoSite | None:
    """Start the demo site for `make run`; None when the port is taken (or 0)."""
    if not port:
        return None
    try:
        return DemoSite(api_url, account_id, port=port).start()
    except OSError:
        return None


def startup_lines(api_url: str, account_id: str, site: DemoSite | None, port: int) -> list[str]:
    """What `make run` prints about the demo site and tracker.js. The snippet for the
    analyst's own pages is printed in every case (the README promises it), also with
    HINDSIGHT_DEMO_PORT=0 or when the demo site's port is taken."""
    if site:
        lines = [f"  demo site        {site.url()}/  (tracker.js installed: click, type, browse)"]
    elif port:
        lines = [f"  demo site        not started: port {port} is taken (HINDSIGHT_DEMO_PORT)"]
    else:
        lines = ["  demo site        off (HINDSIGHT_DEMO_PORT=0)"]
    snippet = site.snippet if site else tracker_snippet(api_url.rstrip("/"), account_id)
    return [*lines, f"  tracker snippet  {snippet}"]
