"""The funnels page: build and save a funnel, read it, open the drop-offs' replays.

    GET  /dashboard/funnels                          saved funnels and the builder (or ?format=json)
    POST /dashboard/funnels                          save a new funnel (form), then show it
    GET  /dashboard/funnels/{funnel_id}              its steps over a range and a segment; with
                                                     ?step=N&outcome=dropped|converted, those sessions
    POST /dashboard/funnels/{funnel_id}/delete       delete it

The builder's steps are lines of text, one step a line: a page path (`/pricing*`, `*` any
characters) or a custom event's name with property filters (`signup plan=pro`). The numbers
and the sessions are the API's (hindsight.funnels).
"""

from __future__ import annotations

from typing import Any

import falcon
from marshmallow import ValidationError

from .. import funnels, timerange
from ..errors import bad_request, not_found
from ..queries import funnels as q
from ..services import Services
from . import web

DEFAULT_RANGE = "30d"
SEGMENT_PARAMS = ("device_type", "browser", "referrer")


def parse_steps(text: str) -> list[dict[str, Any]]:
    """The builder's lines as steps: '/path*' is a page, 'name key=value ...' an event."""
    steps: list[dict[str, Any]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("/"):
            steps.append({"kind": "page", "path": line})
            continue
        name, *pairs = line.split()
        filters = {}
        for pair in pairs:
            key, eq, value = pair.partition("=")
            if not eq or not key:
                raise ValidationError({"steps": [f"'{pair}': a filter is property=value."]})
            filters[key] = value
        steps.append({"kind": "event", "name": name, "filters": filters})
    return steps


def steps_text(definition: dict[str, Any]) -> str:
    lines = []
    for s in definition["steps"]:
        if s["kind"] == "page":
            lines.append(s["path"])
        else:
            lines.append(" ".join([s["name"], *(f"{k}={v}" for k, v in s.get("filters", {}).items())]))
    return "\n".join(lines)


def _messages(ex: ValidationError) -> list[str]:
    out = []

    def walk(prefix: str, node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                walk(f"{prefix}{k} " if prefix or k != "_schema" else "", v)
        elif isinstance(node, list):
            for item in node:
                walk(prefix, item)
        else:
            out.append(f"{prefix}{node}".strip())

    walk("", ex.messages)
    return out


class FunnelsPage:
    def __init__(self, services: Services) -> None:
        self._s = services

    def _list(self, req, resp, conn, user, form: dict | None = None, errors: list[str] | None = None) -> None:
        rows = q.list_all(conn, user.account_id)
        view = {"funnels": [{"funnel_id": r["funnel_id"], "name": r["name"], **r["definition"]} for r in rows]}
        web.respond(req, resp, "funnels.html", view, user, nav="funnels", form=form or {},
                    errors=errors or [])

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        with self._s.pool.connection() as conn:
            user = web.current_user(req, conn, self._s)
            self._list(req, resp, conn, user)

    @falcon.before(web.logged_in_form)
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        user, data = req.context.user, req.context.form
        try:
            body = funnels.FUNNEL_SCHEMA.load({
                "name": data.get("name", ""), "per": data.get("per", "visitor"),
                "window_seconds": _window(data.get("window", "")),
                "steps": parse_steps(data.get("steps", ""))})
        except ValidationError as ex:
            with self._s.pool.connection() as conn:
                resp.status = falcon.HTTP_400
                self._list(req, resp, conn, user, form=data, errors=_messages(ex))
            return
        with self._s.pool.connection() as conn:
            row = q.create(conn, user.account_id, body["name"], funnels.normalize(body))
            if row is None:
                resp.status = falcon.HTTP_409
                self._list(req, resp, conn, user, form=data,
                           errors=["This account has a funnel of that name."])
                return
        raise falcon.HTTPSeeOther(f"{web.PREFIX}/funnels/{row['funnel_id']}")


WINDOWS = {"1h": 3600, "1d": 86400, "7d": 7 * 86400, "30d": 30 * 86400}


def _window(value: str) -> int:
    if value in WINDOWS:
        return WINDOWS[value]
    raise ValidationError({"window_seconds": ["Choose a window: " + ", ".join(WINDOWS) + "."]})


class FunnelPage:
    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, funnel_id: int) -> None:
        params = dict(req.params)
        chosen = timerange.dashboard_range(params, self._s.clock(), default_preset=DEFAULT_RANGE)
        segment: dict[str, str | None] = {"host": None}
        for k in SEGMENT_PARAMS:
            v = params.get(k) or None
            if v is not None and (not isinstance(v, str) or len(v) > 253 or "\x00" in v):
                raise bad_request(f"{k} is not a valid filter.", {k: ["At most 253 characters."]})
            segment[k] = v
        with self._s.pool.connection() as conn:
            user = web.current_user(req, conn, self._s)
            row = q.get(conn, user.account_id, funnel_id)
            if row is None:
                raise not_found("No such funnel in this account.")
            definition = row["definition"]
            result = funnels.results(conn, user.account_id, definition, chosen.start, chosen.end, segment)
            step_sessions = None
            step, outcome = params.get("step"), params.get("outcome", "dropped")
            if step is not None:
                if (not isinstance(step, str) or not step.isdigit() or not 1 <= int(step) <= len(definition["steps"])
                        or outcome not in q.OUTCOMES):
                    raise bad_request("step or outcome is not valid.", {"step": ["A step of this funnel."]})
                step_sessions = funnels.sessions_at(conn, user.account_id, definition, chosen.start, chosen.end,
                                                    segment, int(step), outcome, 50)
        peak = max((s["count"] for s in result["steps"]), default=0)
        view = {"funnel_id": funnel_id, "name": row["name"], "range": chosen.preset,
                "from": chosen.start, "to": chosen.end, "segment": segment, **result,
                "steps_text": steps_text(definition), "sessions": step_sessions}
        web.respond(req, resp, "funnel.html", view, user, nav="funnels", ranges=list(timerange.PRESETS),
                    peak=peak, segment_params=SEGMENT_PARAMS)

    @falcon.before(web.logged_in_form)
    def on_post_delete(self, req: falcon.Request, resp: falcon.Response, funnel_id: int) -> None:
        with self._s.pool.connection() as conn:
            if not q.delete(conn, req.context.user.account_id, funnel_id):
                raise not_found("No such funnel in this account.")
        raise falcon.HTTPSeeOther(f"{web.PREFIX}/funnels")
