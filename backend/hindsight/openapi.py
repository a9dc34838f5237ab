"""The OpenAPI 3 document, generated from the marshmallow schemas."""

from __future__ import annotations

from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from . import __version__, schemas

_ERRORS = {
    "400": "Invalid fields (named in `fields`).",
    "401": "Missing, unknown, expired or revoked token.",
    "403": "Statistics disabled for this host, or the origin is not the token's site.",
    "404": "No such resource in this account.",
    "413": "Body too large.",
    "415": "Not JSON.",
    "429": "Rate limited (see Retry-After).",
    "503": "Database unreachable (see Retry-After); retrying is safe (writes are idempotent).",
}


def _responses(ok_code: str, ok_schema: str | None, description: str) -> dict[str, Any]:
    responses: dict[str, Any] = {ok_code: {"description": description}}
    if ok_schema:
        responses[ok_code]["content"] = {"application/json": {"schema": ok_schema}}
    for code, text in _ERRORS.items():
        responses[code] = {"description": text,
                           "content": {"application/json": {"schema": "Error"}}}
    return responses


def build_spec(server_url: str = "/") -> dict[str, Any]:
    spec = APISpec(
        title="Hindsight API", version=__version__, openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()], servers=[{"url": server_url}],
        info={"description": "Session replay and behaviour analytics. Sites write with a "
                             "statistics token; analysts read with an API key."},
    )
    spec.components.security_scheme("statisticsToken", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme("analystKey", {"type": "http", "scheme": "bearer"})
    spec.components.security_scheme("widgetJwt", {"type": "http", "scheme": "bearer",
                                                  "bearerFormat": "JWT"})
    for name, schema in (
        ("SessionCreate", schemas.SessionCreateSchema), ("Event", schemas.EventSchema),
        ("TrackBatch", schemas.TrackBatchSchema), ("Screenshot", schemas.ScreenshotSchema),
        ("SessionCreated", schemas.SessionCreatedSchema), ("TrackResult", schemas.TrackResultSchema),
        ("ScreenshotCreated", schemas.ScreenshotCreatedSchema), ("Error", schemas.ErrorSchema),
    ):
        spec.components.schema(name, schema=schema)

    def body(name: str) -> dict[str, Any]:
        return {"required": True, "content": {"application/json": {"schema": name}}}

    site: list[dict[str, list[str]]] = [{"statisticsToken": []}]
    analyst: list[dict[str, list[str]]] = [{"analystKey": []}]
    uuid_param = {"in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
    spec.path("/site/account/{account_id}/widgets", operations={"get": {
        "summary": "Active widgets of the account, each with a widget JWT (Origin/Referer checked).",
        "parameters": [{"name": "account_id", **uuid_param}],
        "responses": _responses("200", None, "Widgets with JWTs.")}})
    spec.path("/site/widget/{widget_id}/account_statistics", operations={"get": {
        "summary": "Trade a widget JWT for a statistics token.", "security": [{"widgetJwt": []}],
        "parameters": [{"name": "widget_id", **uuid_param}],
        "responses": _responses("200", None, "{token, expires_at, host}")}})
    spec.path("/api/v1/sessions", operations={
        "post": {"summary": "Create a session.", "security": site, "requestBody": body("SessionCreate"),
                 "responses": _responses("201", "SessionCreated", "Created (200: already existed).")},
        "get": {"summary": "List sessions.", "security": analyst,
                "parameters": [{"in": "query", "schema": schemas.SessionListQuerySchema}],
                "responses": _responses("200", None, "{data, total, limit, offset}")},
    })
    spec.path("/api/v1/track", operations={"post": {
        "summary": "Store a batch of at most 100 events (idempotent by session + seq).",
        "security": site, "requestBody": body("TrackBatch"),
        "responses": _responses("201", "TrackResult", "Committed.")}})
    spec.path("/api/v1/track/screenshot", operations={"post": {
        "summary": "Upload a screenshot (data URL).", "security": site,
        "requestBody": body("Screenshot"),
        "responses": _responses("201", "ScreenshotCreated", "Stored (200: already stored).")}})
    spec.path("/api/v1/sessions/{session_id}", operations={"get": {
        "summary": "One session.", "security": analyst,
        "parameters": [{"name": "session_id", **uuid_param}],
        "responses": _responses("200", None, "The session.")}})
    spec.path("/api/v1/sessions/{session_id}/events", operations={"get": {
        "summary": "A session's events in time order.", "security": analyst,
        "parameters": [{"name": "session_id", **uuid_param},
                       {"in": "query", "schema": schemas.EventListQuerySchema}],
        "responses": _responses("200", None, "{data, total, limit, offset}")}})
    spec.path("/api/v1/sessions/{session_id}/screenshots", operations={"get": {
        "summary": "A session's screenshots (metadata).", "security": analyst,
        "parameters": [{"name": "session_id", **uuid_param}],
        "responses": _responses("200", None, "{data, total}")}})
    spec.path("/api/v1/screenshots/{screenshot_id}", operations={"get": {
        "summary": "The image bytes.", "security": analyst,
        "parameters": [{"name": "screenshot_id", "in": "path", "required": True,
                        "schema": {"type": "integer"}}],
        "responses": _responses("200", None, "image/jpeg, image/png or image/webp")}})
    _stats_paths(spec, analyst)
    _seed_paths(spec, body)
    spec.path("/health", operations={"get": {"summary": "Database, TimescaleDB edition, schema version.",
                                             "responses": {"200": {"description": "ok"},
                                                           "503": {"description": "database down"}}}})
    spec.path("/.well-known/jwks.json", operations={"get": {
        "summary": "Public keys verifying widget JWTs.", "responses": {"200": {"description": "JWKS"}}}})
    return spec.to_dict()


def _stats_paths(spec: APISpec, analyst: list) -> None:
    """The dashboard's time series and breakdowns, read from the roll-ups."""
    from .resources import stats

    for path in stats.ROUTES:
        query = (stats.SeriesQuerySchema if path.endswith("/series") else
                 stats.TopQuerySchema if not path.endswith("/event-types") else stats.StatsQuerySchema)
        spec.path(path, operations={"get": {
            "summary": f"{path.rsplit('/', 1)[1]} for a time range of the key's account (from roll-ups).",
            "security": analyst, "parameters": [{"in": "query", "schema": query}],
            "responses": _responses("200", None, "{data, ...}")}})


def _seed_paths(spec: APISpec, body) -> None:
    """The seed's endpoints, kept for widget scripts built against it."""
    from .resources import seed_api

    internal: list[dict[str, list[str]]] = [{"internalKey": []}]
    spec.components.security_scheme("internalKey", {"type": "http", "scheme": "bearer"})
    spec.components.schema("SeedTokenCreate", schema=seed_api.TokenCreateSchema)
    spec.components.schema("SeedTokenExtend", schema=seed_api.TokenExtendSchema)
    spec.path("/api/token", operations={"post": {
        "summary": "Create a statistics token (internal API).", "security": internal,
        "requestBody": body("SeedTokenCreate"), "responses": _responses("201", None, "{token, expires_at}")}})
    spec.path("/api/token/{token}", operations={
        "put": {"summary": "Extend a statistics token (internal API).", "security": internal,
                "parameters": [{"name": "token", "in": "path", "required": True,
                                "schema": {"type": "string", "format": "uuid"}}],
                "requestBody": body("SeedTokenExtend"), "responses": _responses("200", None, "extended")},
        "delete": {"summary": "Revoke a statistics token and drop its stack (internal API).",
                   "security": internal,
                   "parameters": [{"name": "token", "in": "path", "required": True,
                                   "schema": {"type": "string", "format": "uuid"}}],
                   "responses": _responses("204", None, "revoked")}})
    site: list[dict[str, list[str]]] = [{"statisticsToken": []}]
    for kind, schema in (("sessions", seed_api.SessionEventSchema), ("pages", seed_api.PageEventSchema),
                         ("events", seed_api.InteractionEventSchema),
                         ("referrers", seed_api.ReferrerEventSchema)):
        name = f"Seed{kind.capitalize()}Add"
        spec.components.schema(name, schema=schema)
        spec.path(f"/api/{kind}/add", operations={"post": {
            "summary": f"Seed API: add {kind} (same durable path as /api/v1/track).", "security": site,
            "requestBody": body(name), "responses": _responses("201", None, "stored")}})
    spec.path("/api/health/stacks", operations={"get": {
        "summary": "The statistics stacks' health document.", "responses": {"200": {"description": "ok"}}}})


class OpenApi:
    def __init__(self) -> None:
        self._doc = build_spec()

    def on_get(self, req, resp) -> None:
        resp.media = self._doc
