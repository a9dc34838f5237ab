"""A person's data for admins: export it (right of access), erase it (right to be forgotten).

    POST /api/v1/admin/export   {"user_id": U} | {"visitor_id": V} | {"session_id": S}
    POST /api/v1/admin/erase    the same; answers what was deleted (rows per table)

Both need an *admin* API key of the account (`hindsight keys create --account ID --admin`);
an ordinary analyst key is refused with 403. POST, not GET: a user id is personal data and
has no place in URLs and access logs. The work is hindsight.erasure's.
"""

from __future__ import annotations

import falcon
from apispec import APISpec
from marshmallow import ValidationError, fields, validate, validates_schema

from .. import erasure
from .. import response_schemas as shapes
from ..errors import forbidden
from ..input_fields import storable_text
from ..queries.erasure import is_admin_key
from ..schemas import StrictSchema
from ..services import Services
from .http import analyst, json_body


class SelectorSchema(StrictSchema):
    user_id = fields.String(load_default=None, validate=[validate.Length(min=1, max=255), storable_text], metadata={
        "description": "The user id hindsight.identify attached to sessions."})
    visitor_id = fields.UUID(load_default=None, metadata={"description": "A stored visitor id."})
    session_id = fields.UUID(load_default=None)

    @validates_schema
    def _one(self, data: dict, **kwargs) -> None:
        given = [k for k in erasure.SELECTORS if data.get(k) is not None]
        if len(given) != 1:
            raise ValidationError("Give exactly one of user_id, visitor_id, session_id.", "_schema")


def _selection(body: dict) -> tuple[str, str]:
    kind = next(k for k in erasure.SELECTORS if body.get(k) is not None)
    return kind, str(body[kind])


class _Admin:
    schema = SelectorSchema()

    def __init__(self, services: Services) -> None:
        self._s = services

    def _admin(self, req: falcon.Request):
        with self._s.pool.connection() as conn:
            who = analyst(req, conn)
            if not is_admin_key(conn, who.key_id):
                raise forbidden("Exporting and erasing a person's data needs an admin API key "
                                "(hindsight keys create --admin).")
        return who


class Export(_Admin):
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        who = self._admin(req)
        kind, value = _selection(json_body(req, self.schema))
        with self._s.pool.connection() as conn:
            resp.media = erasure.export(conn, who.account_id, kind, value, self._s.clock())


class Erase(_Admin):
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        who = self._admin(req)
        kind, value = _selection(json_body(req, self.schema))
        with self._s.pool.connection() as conn:
            result = erasure.erase(conn, who.account_id, kind, value, actor=f"api key {who.key_id}")
        resp.media = {k: v for k, v in result.items() if k != "rollups"} | {"rollups": sorted(result["rollups"])}


ROUTES = {"/api/v1/admin/export": Export, "/api/v1/admin/erase": Erase}


class ExportShape(shapes.Shape):
    account_id = fields.UUID()
    selector = fields.String(validate=validate.OneOf(erasure.SELECTORS))
    exported_at = fields.AwareDateTime()
    sessions = fields.List(fields.Dict(), metadata={"description": "The sessions' rows."})
    events = fields.List(fields.Dict(), metadata={"description": "Their events."})
    screenshots = fields.List(fields.Dict(), metadata={"description": "Screenshot metadata; `image` is its URL."})
    recording_segments = fields.List(fields.Dict(), metadata={"description": "DOM recording segments, decoded."})
    journeys = fields.List(fields.Dict())


class ErasedShape(shapes.Shape):
    erasure_id = fields.Integer(metadata={"description": "The audit row (table erasure_audit)."})
    erased_at = fields.AwareDateTime()
    selector = fields.String(validate=validate.OneOf(erasure.SELECTORS))
    rows = fields.Dict(metadata={"description": "Rows deleted per table."})
    rollups = fields.List(fields.String(), metadata={"description": "The roll-ups recomputed over the range."})


shapes._require_keys(shapes.Shape)  # every key required, but OPTIONAL ones (as response_schemas)


def describe(spec: APISpec) -> None:
    from ..openapi import ANALYST, BODY, _body, _json, answers

    spec.components.schema("PersonSelector", schema=SelectorSchema)
    why = "An API key that is not an admin key."
    spec.path("/api/v1/admin/export", operations={"post": {
        "summary": "Everything stored about a person (right of access), as JSON.",
        "description": "Needs an admin API key of the account. Exactly one selector.",
        "security": ANALYST, "requestBody": _body("PersonSelector"),
        "responses": answers({"200": _json(ExportShape, "The person's data.")}, f"400 401 403 {BODY} 503",
                             e403=why)}})
    spec.path("/api/v1/admin/erase", operations={"post": {
        "summary": "Delete a person's sessions and all their data, audited; roll-ups recomputed.",
        "description": "Needs an admin API key of the account. Exactly one selector. Idempotent: erasing "
                       "again deletes nothing (and is audited again).",
        "security": ANALYST, "requestBody": _body("PersonSelector"),
        "responses": answers({"200": _json(ErasedShape, "Deleted and committed.")}, f"400 401 403 {BODY} 503",
                             e403=why)}})
