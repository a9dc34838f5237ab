"""The DOM replay: a session's recording for the logged-in analyst, and the player page.

    GET /dashboard/sessions/{id}/recording              the segments' list (JSON)
    GET /dashboard/sessions/{id}/recording/{segment}    one segment's rrweb events (JSON, gzip)
    GET /dashboard/player                               the player's host: an empty page

The recorded page is hostile input. The replay page (dashboard/static/replay.js) fetches
the segments with the analyst's cookie and posts their events to the player. The player
(rrweb's replayer and replay_player.js) runs in a data: document that /dashboard/player
holds (player_document; replay_sandbox.js builds it again if the browser's origin is not the
one the request named): an opaque origin, never the dashboard's, so neither it nor the
page it rebuilds can read the dashboard's cookies, storage or DOM. It inherits the host's
CSP below: scripts only from the dashboard's static files, no fetch of any kind
(`connect-src 'none'`), no form submissions, no frames but data: ones. rrweb rebuilds the
recorded page in a further iframe sandboxed with allow-same-origin only: no recorded script,
handler or javascript: URL runs, and no recorded form, popup or link to the top window acts.

Why not the plain `<iframe sandbox="allow-scripts">`: sandbox flags are inherited by nested
frames, so rrweb's iframe inside such a player gets an opaque origin of its own, which the
player cannot reach (rrweb fails with "requires root to be connected"). docs/DECISIONS.md
("DOM recording storage and replay") has the whole argument.
"""

from __future__ import annotations

import html
import urllib.parse
import uuid

import falcon

from ..errors import not_found
from ..queries import recordings
from ..resources.recording import send_segment
from ..services import Services
from . import web

# The player host's policy, inherited by the data: document the player runs in. Recorded
# pages need their styles (inline: rrweb inlines the stylesheets it could read), images and
# fonts, from wherever they were; nothing else.
PLAYER_CSP = "; ".join((
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self' 'unsafe-inline' http: https:",
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
))


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


def player_document(origin: str) -> str:
    """The player's data: URL: our own URLs only, never recorded data. A data: document has
    no base URL, so they are absolute (`origin`: the dashboard's, as the request named it).
    dashboard/static/replay_sandbox.js builds the same document in the browser when the
    browser's origin is another."""
    static = f"{origin}{web.PREFIX}/static/"

    def attr(value: str) -> str:
        return html.escape(value, quote=True)

    doc = ('<!doctype html><html lang="en"><head><meta charset="utf-8">'
           f'<meta name="hindsight-origin" content="{attr(origin)}">'
           f'<link rel="stylesheet" href="{attr(static + "dist/rrweb-replay.css")}">'
           f"<style>{PLAYER_STYLE}</style>"
           f'<script defer src="{attr(static + "dist/rrweb-replay.js")}"></script>'
           f'<script defer src="{attr(static + "replay_player.js")}"></script>'
           '</head><body><div id="player"></div><p id="message" hidden></p></body></html>')
    return "data:text/html;charset=utf-8," + urllib.parse.quote(doc, safe="")


class PlayerPage:
    """The player's host. It holds no data (the replay page posts the events), so it needs
    no login; only dashboard pages may frame it. Its HTML holds the player's data: frame
    (replayer scripts requested while it is parsed, no script of ours first)."""

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        origin = f"{req.scheme}://{req.netloc}"   # replay_sandbox.js redoes the frame if the browser's differs
        resp.content_type = falcon.MEDIA_HTML
        resp.text = web.ENV.get_template("replay_player.html").render(
            origin=origin, player_src=player_document(origin), player_style=PLAYER_STYLE)
        resp.set_header("Content-Security-Policy", PLAYER_CSP)
        resp.set_header("X-Content-Type-Options", "nosniff")
        resp.set_header("Referrer-Policy", "no-referrer")
        resp.cache_control = ["no-store"]
