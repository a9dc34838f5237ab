"""The sessions list and the replay of one session (with their JSON twins).

    GET /dashboard/sessions                       the list; filters, sort and page in the URL
    GET /dashboard/sessions/{id}                  the replay page
    GET /dashboard/sessions/{id}?format=json      what the player needs first: the session's facts,
                                                  its screenshots, the timeline's markers and the
                                                  first page of events
    GET /dashboard/sessions/{id}/events           a further page of events (JSON), while it plays
    GET /dashboard/screenshots/{id}               a screenshot's bytes, for this account only
                                                  (served as /api/v1/screenshots/{id} serves them)
"""

from __future__ import annotations

import uuid

import falcon
from marshmallow import EXCLUDE, ValidationError, fields, validate

from .. import timerange
from ..errors import not_found
from ..queries import events as event_queries
from ..queries import recordings as recording_queries
from ..queries import replay
from ..queries import screenshots as screenshot_queries
from ..queries import sessions as session_queries
from ..resources.screenshots import send_screenshot
from ..schemas import DEVICE_TYPES, EventListQuerySchema, SessionListQuerySchema
from ..services import Services
from . import web
from .recording import PLAYER_BUILDS

PAGE_SIZE = 50
# The list counts matching sessions up to this many past the page ("1,050+" beyond):
# an exact count of a million sessions would cost more than the page itself.
COUNT_BEYOND = 1_000
FIRST_EVENTS = 500      # events in the replay's first answer: playback starts with these
EVENTS_PAGE = 2000      # and the player fetches the rest in pages of this size
FILTERS = ("range", "from", "to", "user_id", "device_type", "browser", "os", "page_url",
           "min_duration", "has_errors", "has_rage_clicks", "sort", "offset", "limit")
# Columns the analyst can sort by: (label, sort key).
SORTABLE = {"started": "started_at", "duration": "duration", "pages": "page_view_count",
            "events": "event_count"}


def _list_query(req: falcon.Request, now) -> tuple[dict, dict, dict]:
    """(query for list_sessions, the filters as given, validation errors)."""
    given = {k: v for k, v in req.params.items() if k in FILTERS and isinstance(v, str) and v.strip() != ""}
    raw = {k: v.strip() for k, v in given.items() if k != "range"}
    raw.setdefault("limit", str(PAGE_SIZE))
    try:
        start = timerange.preset_start(given, now)   # a preset wins over `from`
        if start is not None:
            raw["from"] = start.isoformat()
        return SessionListQuerySchema().load(raw), given, {}
    except ValidationError as ex:
        fallback = SessionListQuerySchema().load({"limit": str(PAGE_SIZE)})
        return fallback, given, ex.messages if isinstance(ex.messages, dict) else {"_": ex.messages}


def _row(row: dict) -> dict:
    keep = ("session_id", "user_id", "started_at", "last_activity_at", "duration_seconds",
            "page_url", "referrer", "device_type", "browser", "os", "event_count",
            "page_view_count", "click_count", "error_count", "rage_click_count", "screenshot_count",
            "host")
    return {k: row[k] for k in keep}


class SessionsPage:
    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        with self._s.pool.connection() as conn:  # the login: on the primary
            user = web.current_user(req, conn, self._s)
        with self._s.read_pool.connection() as conn:  # the data: may lag (SCALING.md)
            query, given, problems = _list_query(req, self._s.clock())
            page = session_queries.list_sessions(conn, user.account_id, query, count_beyond=COUNT_BEYOND)
        if problems:
            resp.status = falcon.HTTP_400
        view = {
            "account_id": user.account_id,
            "filters": given,
            "errors": problems,
            "sort": query["sort"],
            "total": page["total"],
            "total_exact": page["total_exact"],
            "limit": page["limit"],
            "offset": page["offset"],
            "data": [_row(r) for r in page["data"]],
        }
        web.respond(req, resp, "sessions.html", view, user, ranges=list(timerange.PRESETS), sortable=SORTABLE,
                    device_types=DEVICE_TYPES, nav="sessions")


def _facts(row: dict) -> dict:
    keep = ("session_id", "user_id", "started_at", "last_activity_at", "ended_at", "duration_seconds",
            "page_url", "referrer", "user_agent", "device_type", "browser", "os", "language",
            "timezone", "screen_width", "screen_height", "viewport_width", "viewport_height",
            "event_count", "page_view_count", "click_count", "error_count", "rage_click_count",
            "screenshot_count", "host")
    return {k: row[k] for k in keep}


def _event(row: dict) -> dict:
    # Only what the player shows; nulls left out to keep long sessions light. `rage` is
    # the server's rule (queries.events.rage_click), so the player applies none of its own.
    return {k: v for k, v in row.items() if v is not None and (k != "rage" or v)}


def replay_data(conn, account_id: uuid.UUID, session_id: uuid.UUID) -> dict | None:
    """Everything the player needs to show its first frame (and the timeline)."""
    session = session_queries.get_session(conn, account_id, session_id)
    if session is None:
        return None
    shots = screenshot_queries.list_for_session(conn, session_id)
    for shot in shots:
        shot["url"] = f"{web.PREFIX}/screenshots/{shot['screenshot_id']}"
    marks = replay.markers(conn, account_id, session_id, session["started_at"])
    events = event_queries.list_events(conn, session_id, FIRST_EVENTS, 0, rage_flag=True)
    return {
        "session": _facts(session),
        "screenshots": shots,
        "markers": marks,
        "markers_truncated": len(marks) >= replay.MAX_MARKERS,
        "events": [_event(e) for e in events],
        "events_total": session["event_count"],
        "events_next": (f"{web.PREFIX}/sessions/{session_id}/events?offset={len(events)}&limit={EVENTS_PAGE}"
                        if len(events) == FIRST_EVENTS else None),
    }


class ReplayPage:
    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, session_id: uuid.UUID) -> None:
        json_twin = web.wants_json(req)
        with self._s.pool.connection() as conn:  # the login: on the primary
            user = web.current_user(req, conn, self._s)
        with self._s.read_pool.connection() as conn:  # the data: may lag (SCALING.md)
            if json_twin:
                view = replay_data(conn, user.account_id, session_id)
            else:
                row = session_queries.get_session(conn, user.account_id, session_id)
                # Its DOM recording's first segment (it starts with the first full snapshot:
                # the first frame's window, when it has one): the page preloads it and
                # replay.js hands it to the player at once.
                first = recording_queries.list_for_session(conn, user.account_id, session_id, limit=1)
                view = None if row is None else {"session": _facts(row),
                                                 "first_segments": [s["segment"] for s in first or ()]}
        if view is None:
            raise not_found("No such session in this account.")
        if json_twin:
            web.respond(req, resp, "replay.html", view, user)
            return
        # The player's host and rrweb's replayer by their versions (recording.py).
        build = PLAYER_BUILDS.current()
        web.respond(req, resp, "replay.html", view, user, nav="sessions",
                    player_url=f"{web.PREFIX}/player?v={build.version}",
                    replayer_url=f"{web.PREFIX}/static/dist/rrweb-replay.js?v={build.replayer_version}",
                    replayer_integrity=build.replayer_integrity,
                    data_url=f"{web.PREFIX}/sessions/{session_id}?format=json")


class ReplayEventsQuerySchema(EventListQuerySchema):
    """The API's paging (offset and limit bounded there), in pages of EVENTS_PAGE."""

    class Meta:
        unknown = EXCLUDE

    limit = fields.Integer(load_default=EVENTS_PAGE, validate=validate.Range(min=1, max=10_000))


class ReplayEvents:
    """A page of a session's events, in time order (the player's background loading)."""

    schema = ReplayEventsQuerySchema()

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, session_id: uuid.UUID) -> None:
        query = self.schema.load(dict(req.params))
        offset, limit = query["offset"], query["limit"]
        with self._s.pool.connection() as conn:  # the login: on the primary
            user = web.current_user(req, conn, self._s, json_twin=True)
        with self._s.read_pool.connection() as conn:  # the data: may lag (SCALING.md)
            session = session_queries.get_session(conn, user.account_id, session_id)
            if session is None:
                raise not_found("No such session in this account.")
            rows = event_queries.list_events(conn, session_id, limit, offset, rage_flag=True)
        following = offset + len(rows)
        view = {
            "data": [_event(e) for e in rows], "offset": offset, "total": session["event_count"],
            "next": (f"{web.PREFIX}/sessions/{session_id}/events?offset={following}&limit={limit}"
                     if len(rows) == limit else None),
        }
        web.secure_headers(resp)
        resp.content_type = falcon.MEDIA_JSON
        resp.text = web.dumps(view)


class ReplayScreenshot:
    """A screenshot's bytes for a logged-in user of its account (the replay's images)."""

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, screenshot_id: int) -> None:
        with self._s.pool.connection() as conn:  # the login: on the primary
            user = web.current_user(req, conn, self._s, json_twin=True)
        with self._s.read_pool.connection() as conn:  # the data: may lag (SCALING.md)
            row = screenshot_queries.image(conn, user.account_id, screenshot_id)
        send_screenshot(req, resp, row)
