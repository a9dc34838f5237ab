"""GET /tracker.js and its lazy screenshot chunk: the built tracker, with caching headers.

The files come from `tracker/dist/` (built by `npm run build` in tracker/, which
`scripts/bootstrap.sh` and `make` run); `manifest.json` there lists them with their
sizes and Subresource Integrity hashes. They are read once, kept in memory with a gzip
copy, and read again when the manifest changes (a rebuild while the API runs).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path

import falcon

from ..errors import not_found

DIST = Path(__file__).resolve().parents[3] / "tracker" / "dist"

# tracker.js keeps its URL across versions: browsers revalidate it hourly (a 304 via the
# ETag when unchanged). The chunk's name carries its content hash: cached for good.
SCRIPT_CACHE = ["public", "max-age=3600"]
CHUNK_CACHE = ["public", "max-age=31536000", "immutable"]


@dataclass(frozen=True)
class Asset:
    data: bytes
    gzipped: bytes
    etag: str
    integrity: str


class Bundle:
    """The files of one build, keyed by name, loaded when `manifest.json` changes."""

    def __init__(self, dist: Path = DIST) -> None:
        self._dist = dist
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._assets: dict[str, Asset] = {}
        self._chunk = ""

    def _reload(self) -> None:
        manifest_path = self._dist / "manifest.json"
        try:
            stat = manifest_path.stat()
        except FileNotFoundError:
            self._stamp, self._assets, self._chunk = None, {}, ""
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp == self._stamp:
            return
        manifest = json.loads(manifest_path.read_text())
        assets = {}
        for name, meta in manifest["files"].items():
            data = (self._dist / name).read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            if digest != meta["sha256"]:
                raise RuntimeError(f"{name} does not match manifest.json; rebuild the tracker")
            # mtime=0: the same bytes give the same gzip body on every worker.
            assets[name] = Asset(data, gzip.compress(data, 9, mtime=0), digest[:32],
                                 meta["integrity"])
        self._stamp, self._assets, self._chunk = stamp, assets, manifest["capture_chunk"]

    def get(self, name: str) -> Asset | None:
        with self._lock:
            self._reload()
            return self._assets.get(name)

    @property
    def chunk_name(self) -> str:
        with self._lock:
            self._reload()
            return self._chunk


def _matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    tags = [t.strip().removeprefix("W/").strip('"') for t in if_none_match.split(",")]
    return "*" in tags or etag in tags


class TrackerScript:
    """GET /tracker.js and GET /tracker/{name}: static, public, cacheable, CORS-readable."""

    def __init__(self, bundle: Bundle | None = None) -> None:
        self._bundle = bundle or Bundle()

    def _serve(self, req: falcon.Request, resp: falcon.Response, name: str, cache: list[str]) -> None:
        asset = self._bundle.get(name)
        if asset is None:
            if name == "tracker.js":
                raise not_found("tracker.js is not built: run `make` (or `npm ci && npm run build` in tracker/).")
            raise not_found()
        use_gzip = "gzip" in (req.get_header("Accept-Encoding") or "").lower()
        etag = asset.etag + ("-gz" if use_gzip else "")
        resp.cache_control = cache
        resp.etag = etag
        resp.vary = ["Accept-Encoding"]
        # Readable from any site: needed for <script integrity=... crossorigin>.
        resp.set_header("Access-Control-Allow-Origin", "*")
        resp.set_header("Cross-Origin-Resource-Policy", "cross-origin")
        resp.set_header("X-Content-Type-Options", "nosniff")
        if _matches(req.get_header("If-None-Match"), etag):
            resp.status = falcon.HTTP_304  # no body, so no Content-Type either
            return
        resp.content_type = "text/javascript; charset=utf-8"
        if use_gzip:
            resp.set_header("Content-Encoding", "gzip")
            resp.data = asset.gzipped
        else:
            resp.data = asset.data

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._serve(req, resp, "tracker.js", SCRIPT_CACHE)

    on_head = on_get

    def on_get_chunk(self, req: falcon.Request, resp: falcon.Response, name: str) -> None:
        if name == "tracker.js":  # every other file of the manifest is a lazy chunk
            raise not_found()
        self._serve(req, resp, name, CHUNK_CACHE)

    on_head_chunk = on_get_chunk
