"""Funnels: their definition (validated here, saved per account), and their numbers — per
step, the units (visitors or sessions) that reached it, the conversion and the drop-off,
and from any step the sessions that converted or dropped off there, each with the moment
of the step for its replay link. The SQL is hindsight.queries.funnels.

A definition:

    {"name": "Signup", "per": "visitor", "window_seconds": 86400,
     "steps": [{"kind": "page", "path": "/pricing*"},
               {"kind": "event", "name": "signup_click", "filters": {"plan": "pro"}},
               {"kind": "page", "path": "/welcome"}]}
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from marshmallow import ValidationError, fields, validate, validates_schema

from .db import Conn
from .input_fields import storable_text
from .queries import funnels as q
from .schemas import StrictSchema

MAX_STEPS = 10
MAX_WINDOW_SECONDS = 90 * 86400
SEGMENTS = ("device_type", "browser", "referrer", "host")


def _scalar(value: Any) -> None:
    if isinstance(value, bool) or isinstance(value, int | float | str):
        if isinstance(value, str):
            if len(value) > 200:
                raise ValidationError("At most 200 characters.")
            storable_text(value)
        return
    raise ValidationError("A filter's value is a string, number or boolean.")


class StepSchema(StrictSchema):
    kind = fields.String(required=True, validate=validate.OneOf(("page", "event")))
    path = fields.String(load_default=None, validate=[validate.Regexp(r"^/[^\x00]{0,499}\Z", error=(
        "A path beginning with '/' (at most 500 characters); '*' matches any characters.")), storable_text])
    name = fields.String(load_default=None, validate=[validate.Regexp(r"^[^\x00]{1,200}\Z"), storable_text])
    filters = fields.Dict(keys=fields.String(validate=[validate.Regexp(r"^[^\x00]{1,100}\Z"), storable_text]),
                          values=fields.Raw(validate=_scalar), load_default=dict,
                          validate=validate.Length(max=10), metadata={
                              "description": "Property filters of an event step: each property equal "
                                             "(as text) to the value."})

    @validates_schema
    def _complete(self, data: dict, **kwargs) -> None:
        if data["kind"] == "page":
            if data.get("path") is None:
                raise ValidationError({"path": ["A page step needs a path."]})
            if data.get("name") is not None or data.get("filters"):
                raise ValidationError({"name": ["A page step has a path only."]})
        elif data.get("name") is None:
            raise ValidationError({"name": ["An event step needs the custom event's name."]})
        elif data.get("path") is not None:
            raise ValidationError({"path": ["An event step has a name and filters only."]})


class FunnelSchema(StrictSchema):
    name = fields.String(required=True, validate=[validate.Regexp(r"^[^\x00]{1,200}\Z",
                                                                  error="1 to 200 characters."), storable_text])
    per = fields.String(load_default="visitor", validate=validate.OneOf(("visitor", "session")), metadata={
        "description": "Who converts: a visitor (across their sessions) or a session."})
    window_seconds = fields.Integer(strict=True, load_default=86400,
                                    validate=validate.Range(min=1, max=MAX_WINDOW_SECONDS), metadata={
                                        "description": "The last step must come at most this long after "
                                                       "the first."})
    steps = fields.List(fields.Nested(StepSchema), required=True,
                        validate=validate.Length(min=2, max=MAX_STEPS))


FUNNEL_SCHEMA = FunnelSchema()


def normalize(definition: dict[str, Any]) -> dict[str, Any]:
    """A validated definition as stored: steps with only their own keys."""
    steps = [{"kind": "page", "path": s["path"]} if s["kind"] == "page"
             else {"kind": "event", "name": s["name"], "filters": dict(s["filters"])}
             for s in definition["steps"]]
    return {"per": definition["per"], "window_seconds": definition["window_seconds"], "steps": steps}


def step_label(step: dict[str, Any]) -> str:
    if step["kind"] == "page":
        return step["path"]
    filters = ", ".join(f"{k}={v}" for k, v in sorted(step.get("filters", {}).items()))
    return f"{step['name']} ({filters})" if filters else step["name"]


def results(conn: Conn, account_id: uuid.UUID, definition: dict[str, Any], start: datetime, end: datetime,
            segment: dict[str, str | None]) -> dict[str, Any]:
    counts = q.read(conn, account_id, definition, start, end, segment)
    first = counts[0] if counts else 0
    steps = []
    for i, (step, n) in enumerate(zip(definition["steps"], counts, strict=True)):
        before = counts[i - 1] if i else n
        steps.append({
            "step": i + 1, "label": step_label(step), "count": n,
            "conversion": (n / first) if first else None,              # from the first step
            "conversion_from_previous": (n / before) if before else None,
            "dropped": before - n,                                     # lost since the step before
        })
    return {"per": definition["per"], "window_seconds": definition["window_seconds"],
            "entered": first, "converted": counts[-1] if counts else 0, "steps": steps}


def replay_path(session_id: uuid.UUID, offset_seconds: float) -> str:
    """The dashboard's replay of a session at a moment (dashboard/static/replay.js fromHash)."""
    return f"/dashboard/sessions/{session_id}#t={max(offset_seconds, 0):.1f}"


def sessions_at(conn: Conn, account_id: uuid.UUID, definition: dict[str, Any], start: datetime, end: datetime,
                segment: dict[str, str | None], step: int, outcome: str, limit: int) -> dict[str, Any]:
    """The sessions that reached `step` (converted) or stopped just before it (dropped)."""
    if outcome == "dropped" and step == 1:
        return {"step": step, "outcome": outcome, "total": 0, "data": []}
    total, rows = q.step_sessions(conn, account_id, definition, start, end, segment, step, outcome, limit)
    for r in rows:
        r["replay"] = replay_path(r["session_id"], r["offset_seconds"])
    return {"step": step, "outcome": outcome, "total": total, "data": rows}
