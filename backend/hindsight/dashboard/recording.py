"""The DOM replay: a session's recording for the logged-in analyst, and the player page.

    GET /dashboard/sessions/{id}/recording              the segments' list (JSON)
    GET /dashboard/sessions/{id}/recording/{segment}    one segment's rrweb events (JSON, gzip)
    GET /dashboard/player?v=…                           the player's host: its data: frame only

The recorded page is hostile input. The replay page (dashboard/static/replay.js) fetches
the segments with the analyst's cookie and posts their JSON to the player. The player
(rrweb's replayer and replay_player.js, inline) runs in a data: document that
/dashboard/player holds (player_document): an opaque origin, never the dashboard's, so
neither it nor the page it rebuilds can read the dashboard's cookies, storage or DOM. It
inherits the host's CSP below: no script but the player document's own two (by hash), no
fetch of any kind (`connect-src 'none'`), no form submissions, no frames but data: ones.
rrweb rebuilds the recorded page in a further iframe sandboxed with allow-same-origin only:
no recorded script, handler or javascript: URL runs, and no recorded form, popup or link to
the top window acts.

Why not the plain `<iframe sandbox="allow-scripts">` (or the CSP `sandbox` directive on
this page, one frame fewer): sandbox flags are inherited by nested frames, so rrweb's
iframe inside such a player gets an opaque origin of its own, which the player cannot reach
(rrweb fails with "requires root to be connected"). docs/DECISIONS.md ("DOM recording
storage and replay", "The replay's first frame") has the whole argument.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import re
import threading
import uuid
from dataclasses import dataclass

import falcon
from markupsafe import Markup

from ..errors import not_found
from ..queries import recordings
from ..resources.recording import accepts_gzip, send_segment
from ..services import Services
from . import web

# The player host's policy, inherited by the data: document the player runs in (and by the
# page rrweb rebuilds in it). Scripts: the player document's two inline ones, by their
# SHA-256 (player_csp), nothing else. Recorded pages need their styles (inline: rrweb
# inlines the stylesheets it could read), images and fonts, from wherever they were;
# nothing else.
PLAYER_POLICY = (
    "style-src 'unsafe-inline' http: https:",
    "img-src http: https: data: blob:",
    "font-src http: https: data:",
    "media-src 'none'",
    "connect-src 'none'",
    "frame-src data:",
    "worker-src 'none'",
    "object-src 'none'",
    "form-action 'none'",
    "base-uri 'none'",
    "frame-ancestors 'self'",
)


def player_csp(script_hashes: list[str]) -> str:
    """The host's Content-Security-Policy: PLAYER_POLICY, and scripts by hash only."""
    return "; ".join(("default-src 'none'", "script-src " + " ".join(script_hashes), *PLAYER_POLICY))


class RecordingTwin:
    """The segments of a session of the analyst's account, in order (the player's index)."""

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, session_id: uuid.UUID) -> None:
        with self._s.pool.connection() as conn:  # the login: on the primary
            user = web.current_user(req, conn, self._s, json_twin=True)
        with self._s.read_pool.connection() as conn:  # the data: may lag (SCALING.md)
            # The player's whole index at once (a day of 10-second segments is 8,640 rows).
            segments = recordings.list_for_session(conn, user.account_id, session_id, limit=100_000)
        if segments is None:
            raise not_found("No such session in this account.")
        for item in segments:
            item["url"] = f"{web.PREFIX}/sessions/{session_id}/recording/{item['segment']}"
        web.secure_headers(resp)
        resp.content_type = falcon.MEDIA_JSON
        resp.text = web.dumps({"segments": segments})


class RecordingSegmentTwin:
    """One segment's events, as stored (gzip when the browser takes it: every browser does)."""

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, session_id: uuid.UUID,
               segment: int) -> None:
        with self._s.pool.connection() as conn:  # the login: on the primary
            user = web.current_user(req, conn, self._s, json_twin=True)
        with self._s.read_pool.connection() as conn:  # the data: may lag (SCALING.md)
            data = recordings.segment_data(conn, user.account_id, session_id, segment)
        if data is None:
            raise not_found("No such segment of a session in this account.")
        web.secure_headers(resp)
        send_segment(req, resp, data)   # immutable: cacheable (privately)


# The player document's own styles (inline, in the data: document: its CSP allows them).
PLAYER_STYLE = ("html,body{margin:0;height:100%;overflow:hidden;background:#f3f4f6}"
                "#player{position:absolute;inset:0;overflow:hidden}"
                ".replayer-wrapper{position:absolute;left:0;top:0;transform-origin:0 0}"
                ".replayer-wrapper>iframe{border:0;background:#fff;pointer-events:none}"
                "#message{font:14px system-ui,sans-serif;color:#555;padding:1em}")

# What the player document is made of: rrweb's replayer and its stylesheet (built by
# dashboard/build.mjs, git-ignored) and our player script.
REPLAYER_JS = web.STATIC / "dist" / "rrweb-replay.js"
REPLAYER_CSS = web.STATIC / "dist" / "rrweb-replay.css"
PLAYER_JS = web.STATIC / "replay_player.js"
# Inside a data: URL only these must be escaped: `%` (the URL's escapes), `#` (it would
# start a fragment), and what the URL parser drops or rewrites (tabs, line breaks, other
# controls, DEL, non-ASCII).
_DATA_URL_ESCAPES = {c: f"%{c:02X}" for c in (*range(0x20), 0x25, 0x23, 0x7F)}


def _data_url(doc: str) -> str:
    ascii_doc = doc.encode("utf-8").decode("latin-1")   # non-ASCII as its UTF-8 bytes, each escaped
    escaped = "".join(_DATA_URL_ESCAPES.get(ord(c), c) if ord(c) < 0x80 else f"%{ord(c):02X}"
                      for c in ascii_doc)
    return "data:text/html;charset=utf-8," + escaped


def _inline(text: str, what: str) -> str:
    """A script or stylesheet as the HTML parser will read it back (its CSP hash must match)."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if re.search(r"</(script|style)|<!--|\x00", text, re.IGNORECASE):
        raise RuntimeError(f"{what} cannot be inlined in the player document")
    return text


def _integrity(data: bytes) -> str:
    return "sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode()


@dataclass(frozen=True)
class PlayerBuild:
    """The player's host page for one version of the files it is made of."""

    html: bytes         # the host page (its iframe's src is the player's data: document)
    gzip: bytes
    csp: str            # the host's policy, inherited by the data: document
    version: str        # 12 hex digits of SHA-256 over the page and its policy: the replay page's ?v=
    replayer_version: str     # 12 hex digits of rrweb-replay.js's SHA-256: the ?v= of its URL
    replayer_integrity: str   # sha256-…: the player runs it with this integrity (its CSP hash)


def player_document() -> tuple[str, list[str]]:
    """The player's data: URL and the CSP hashes of the scripts it may run.

    The document holds replay_player.js and the styles, inline, and no URL. rrweb's
    replayer (275 KB) is not in it: Chromium's navigation to a data: URL costs main-thread
    time by the byte (measured: ~200 ms to start a 320 KB one, docs/DECISIONS.md), and a
    data: document cannot use the HTTP cache or a preload, so it cannot fetch the script
    cheaply either. The replay page fetches it instead (dashboard origin: preloaded from its
    HTML, cacheable) and posts its text; replay_player.js runs it as an inline script, which
    the policy allows by its hash only."""
    player = _inline(PLAYER_JS.read_text("utf-8"), PLAYER_JS.name)
    style = _inline(REPLAYER_CSS.read_text("utf-8"), REPLAYER_CSS.name) + PLAYER_STYLE
    doc = ('<!doctype html><html lang="en"><head><meta charset="utf-8">'
           f"<style>{style}</style></head>"
           '<body><div id="player"></div><p id="message" hidden></p>'
           f"<script>{player}</script></body></html>")
    return _data_url(doc), [f"'{_integrity(player.encode('utf-8'))}'", f"'{_integrity(REPLAYER_JS.read_bytes())}'"]


class PlayerBuilds:
    """The host page, built once per version of the files it is made of (their size and
    mtime), kept in memory with its gzip copy."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._build: PlayerBuild | None = None

    def current(self) -> PlayerBuild:
        key = tuple((p.stat().st_size, p.stat().st_mtime_ns) for p in (REPLAYER_JS, REPLAYER_CSS, PLAYER_JS))
        with self._lock:
            if self._build is not None and self._key == key:
                return self._build
        src, hashes = player_document()
        html = web.ENV.get_template("replay_player.html").render(player_src=Markup(src.replace("&", "&amp;")
                                                                                 .replace('"', "&quot;")))
        data, csp, replayer = html.encode("utf-8"), player_csp(hashes), REPLAYER_JS.read_bytes()
        build = PlayerBuild(data, gzip.compress(data, 9, mtime=0), csp,
                            hashlib.sha256(data + csp.encode()).hexdigest()[:12],
                            hashlib.sha256(replayer).hexdigest()[:12], _integrity(replayer))
        with self._lock:
            self._key, self._build = key, build
        return build


PLAYER_BUILDS = PlayerBuilds()


class PlayerPage:
    """The player's host. It holds no data (the replay page posts the events), so it needs
    no login; only dashboard pages may frame it. Its HTML is the player's data: frame and
    nothing else: the same bytes for every request of a version, so `?v=` (the version the
    replay page names) may be cached for a year; any other URL is revalidated (ETag)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        build = PLAYER_BUILDS.current()
        resp.content_type = falcon.MEDIA_HTML
        resp.set_header("Content-Security-Policy", build.csp)
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.set_header("Referrer-Policy", "no-referrer")
        resp.vary = ["Accept-Encoding"]
        if req.get_param("v") == build.version:
            resp.cache_control = ["public", "max-age=31536000", "immutable"]
        else:
            resp.cache_control = ["no-cache"]
        compressed = accepts_gzip(req)
        etag = build.version + ("-gz" if compressed else "")
        resp.etag = etag
        if etag in [str(t) for t in req.if_none_match or ()]:
            resp.status = falcon.HTTP_304
            resp.delete_header("Content-Type")
            return
        if compressed:
            resp.set_header("Content-Encoding", "gzip")
            resp.data = build.gzip
        else:
            resp.data = build.html
