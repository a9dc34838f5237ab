"""GET /dashboard/static/{name}: the dashboard's static files, gzip-compressed when asked.

Falcon's static route does the file part (safe path, ETag and Last-Modified from the file,
304s, ranges, the media type). Text files (scripts, stylesheets, SVG, JSON) go out gzip
when the request's Accept-Encoding takes it: compressed once per file version (path, size
and mtime: the ETag) and kept in memory, like tracker.js (hindsight.resources.tracker).
The gzip copy has its own ETag (`-gz` appended) and every text file answers
`Vary: Accept-Encoding`, so no cache hands one encoding to a client that asked for the
other. A range request is served from the plain file. docs/DECISIONS.md ("The dashboard's
static files, compressed") says why compressed on first use rather than at build time.
"""

from __future__ import annotations

import gzip
import threading
from pathlib import Path
from typing import Any

import falcon
from falcon.routing import StaticRoute

from ..resources.recording import accepts_gzip

# Worth compressing: what the browser reads as text. Images and fonts are compressed already.
COMPRESSIBLE = (".js", ".css", ".svg", ".json", ".map", ".txt", ".html")
MAX_CACHED = 256   # file versions kept compressed (the directory holds a few dozen files)


class StaticFiles:
    """Serves `directory` under `prefix` (a route `{prefix}/{name:path}`)."""

    def __init__(self, prefix: str, directory: str | Path) -> None:
        self._files = StaticRoute(prefix, str(directory))
        self._lock = threading.Lock()
        self._gzipped: dict[tuple[str, str], bytes] = {}

    def _compressed(self, path: str, etag: str, stream: Any) -> bytes:
        key = (path, etag)
        with self._lock:
            hit = self._gzipped.get(key)
        if hit is None:
            # mtime=0: the same file gives the same bytes on every worker.
            hit = gzip.compress(stream.read(), 9, mtime=0)
            with self._lock:
                if len(self._gzipped) >= MAX_CACHED:
                    self._gzipped.clear()
                self._gzipped[key] = hit
        return hit

    def on_get(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        self._files(req, resp)   # 404, 304, 206 or 200 with the file as a stream
        # The file falcon opened decides, not the request's path: `./live.js`, `dist/../live.js`
        # and `live.js/` are one file, one compressed copy, one set of headers.
        file = str(getattr(resp.stream, "name", "") or req.path.rstrip("/"))
        if not file.endswith(COMPRESSIBLE):
            return
        resp.vary = ["Accept-Encoding"]
        etag = resp.etag
        if resp.status_code != 200 or resp.stream is None or not etag or not accepts_gzip(req):
            return
        etag = etag.strip('"') + "-gz"
        stream: Any = resp.stream   # the open file (falcon's static route; no range here)
        resp.stream = None
        try:
            fresh = etag in [str(t) for t in req.if_none_match or ()]   # the client's copy is current
            data = b"" if fresh else self._compressed(file, etag, stream)
        finally:
            stream.close()
        resp.etag = etag
        if fresh:
            resp.status = falcon.HTTP_304   # no body, so no Content-Type either
            resp.content_length = None
            resp.delete_header("Content-Type")
            resp.delete_header("Accept-Ranges")
            return
        resp.set_header("Content-Encoding", "gzip")
        resp.delete_header("Accept-Ranges")   # ranges are served from the plain file
        resp.data = data
        resp.content_length = len(data)

    on_head = on_get
