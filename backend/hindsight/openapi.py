"""The OpenAPI 3 document (/api/v1/openapi.json), generated from the marshmallow schemas.

Requests are described by the schemas that validate them (hindsight.schemas and the
resources' own), answers by hindsight.response_schemas. Each operation lists the status
codes it really answers with, and every error has the one JSON shape of hindsight.errors.
Rules a JSON schema cannot state (`from` before `to`, the longest range, the time window
of writes) are in the descriptions. tests/test_openapi_fuzz.py holds a live server to this
document with schemathesis: a status, a body or a field it does not declare fails it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls

from . import __version__, schemas, timerange
from . import response_schemas as shapes
from .ingestion.window import MAX_FUTURE, MAX_PAST

Answers = dict[str, Any]

# The default text of each error; an operation may say more precisely why it answers one.
ERRORS = {
    "400": "Invalid input: `fields` names each invalid field and why.",
    "401": "Missing, malformed, unknown, expired or revoked credential (`WWW-Authenticate: Bearer`).",
    "403": "Not allowed for this credential (see `description`).",
    "404": "No such resource in this account (also: a path parameter of the wrong form).",
    "408": "The request's head or body did not arrive in time; the connection is then closed.",
    "409": "Conflict (see `description`).",
    "411": "A chunked body: send it with a Content-Length.",
    "413": "The body is larger than the limit (checked before it is read).",
    "414": "The request line (method, path and query string) is longer than 4094 bytes.",
    "415": "The body is not JSON: send `Content-Type: application/json` (or `text/plain`, for sendBeacon).",
    "429": "More than HINDSIGHT_RATE_LIMIT_PER_MINUTE requests a minute from this address (see Retry-After).",
    "431": "A request header field is too large.",
    "503": "The database is unreachable (see Retry-After); retrying is safe, as writes are idempotent.",
}
# What any request may be answered before an operation sees it (the server: hindsight.worker).
ANY_REQUEST = ("408", "414", "431")
# What a request with a JSON body may be answered by the body checks (hindsight.middleware).
BODY = "411 413 415"

WINDOW = (f"Timestamps must lie between {MAX_PAST.days} days before and "
          f"{int(MAX_FUTURE.total_seconds() // 3600)} hour after the server's clock "
          "(400 naming the field otherwise); inside that window they are stored as given.")

TOKEN_IN_BODY = ("The statistics token comes as `Authorization: Bearer <token>` or, for sendBeacon "
                 "(which cannot set headers), as the body's `token`. A browser's Origin must be "
                 "covered by the token's host (403 otherwise).")


def range_rules(default_days: int) -> str:
    """The time-range rules of a read endpoint (hindsight.timerange), in words."""
    return (f"`to` defaults to now and `from` to `to` minus {default_days} days; instants are ISO 8601 "
            f"(UTC when they name no zone) between {timerange.EARLIEST:%Y-%m-%d} and "
            f"{timerange.LATEST:%Y-%m-%d}. `from` must be before `to`, and the effective range (defaults "
            f"filled in) covers at most {timerange.MAX_SPAN.days} days; an hourly series at most "
            f"{timerange.MAX_HOURLY_SPAN.days} days. Otherwise 400 naming `from` or `to`.")


def _json(schema: Any, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _error(text: str) -> dict[str, Any]:
    return _json("Error", text)


def answers(ok: dict[str, dict[str, Any]], codes: str = "", **why: str) -> Answers:
    """An operation's responses: `ok`, the errors in `codes` ("400 401 404") with their
    default text or the operation's own (`why["e404"]`), and those of any request."""
    out: Answers = dict(ok)
    for code in codes.split():
        out[code] = _error(why.get(f"e{code}", ERRORS[code]))
    for code in ANY_REQUEST:
        out[code] = {"$ref": f"#/components/responses/{code}"}
    return out


def _schema_name(schema: Any) -> str:
    """Component names: the class' name without a leading underscore or a Schema/Shape suffix."""
    cls = resolve_schema_cls(schema)
    cls = cls[0] if isinstance(cls, list) else cls  # (a list only for a schema of several classes)
    name = cls.__name__.lstrip("_").removesuffix("Schema").removesuffix("Shape")
    return ("Seed" + name) if cls.__module__.startswith("hindsight.seed.") and not name.startswith("Seed") else name


def build_spec(server_url: str = "/") -> dict[str, Any]:
    spec = APISpec(
        title="Hindsight API", version=__version__, openapi_version="3.0.3",
        plugins=[MarshmallowPlugin(schema_name_resolver=_schema_name)], servers=[{"url": server_url}],
        info={"description": (
            "Session replay and behaviour analytics. Sites write with a statistics token; analysts "
            "read with an API key. Every error is `{error, description, fields}`; a 500 is always a "
            "bug. JSON bodies are typed strictly: an integer is a JSON integer (not 1.9 or \"12\"), "
            "a boolean a JSON boolean (not \"yes\" or 1); text holds no NUL character or unpaired "
            "surrogate; unknown fields are refused.")},
    )
    for name, scheme, text in (
        ("statisticsToken", {}, "A statistics token (a UUID) from "
                                "/site/widget/{widget_id}/account_statistics or /api/token."),
        ("analystKey", {}, "An analyst API key (`hsk_...`); only its account is visible."),
        ("widgetJwt", {"bearerFormat": "JWT"}, "A widget JWT from /site/account/{account_id}/widgets."),
        ("internalKey", {}, "HINDSIGHT_INTERNAL_API_KEY (the internal token API answers 403 without one)."),
    ):
        spec.components.security_scheme(name, {"type": "http", "scheme": "bearer", **scheme,
                                               "description": text})
    spec.components.schema("Error", schema=shapes.ErrorShape)
    for code in ANY_REQUEST:
        spec.components.response(code, _error(ERRORS[code]))
    _site_paths(spec)
    _session_paths(spec)
    _track_paths(spec)
    _stats_paths(spec)
    _custom_paths(spec)
    _observe_paths(spec)
    _recording_paths(spec)
    _live_paths(spec)
    _seed_paths(spec)
    _public_paths(spec)
    return _portable_patterns(_ip_addresses(_plain_query_parameters(spec.to_dict())))


def _plain_query_parameters(doc: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or a string, never null: drop the `nullable` and the
    `default: null` that an optional marshmallow field (load_default=None) brings along."""
    for operations in doc["paths"].values():
        for operation in operations.values():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                if parameter.get("in") == "query" and schema.pop("nullable", False):
                    if schema.get("default", 0) is None:
                        del schema["default"]
    return doc


SITE: list[dict[str, list[str]]] = [{"statisticsToken": []}]
ANALYST: list[dict[str, list[str]]] = [{"analystKey": []}]
INTERNAL: list[dict[str, list[str]]] = [{"internalKey": []}]
NO_CREDENTIAL: list[dict[str, list[str]]] = []
UUID_PARAM = {"in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}


def _body(schema: Any, required: bool = True) -> dict[str, Any]:
    return {"required": required, "content": {"application/json": {"schema": schema}}}


def _site_paths(spec: APISpec) -> None:
    spec.path("/site/account/{account_id}/widgets", operations={"get": {
        "summary": "The account's active widgets for the requesting site, each with a widget JWT.",
        "description": "The page's Origin (or Referer) must be a registered domain of the account, "
                       "or a subdomain of one.",
        "security": NO_CREDENTIAL, "parameters": [{"name": "account_id", **UUID_PARAM}],
        "responses": answers({"200": _json(shapes.WidgetsShape, "The widgets.")}, "403 404 429 503",
                             e403="No Origin or Referer, a host the account has not registered, or a "
                                  "disabled account.")}})
    spec.path("/site/widget/{widget_id}/account_statistics", operations={"get": {
        "summary": "Trade a widget JWT for a statistics token (account + host).",
        "description": "The live token is returned while more than half its lifetime remains; the "
                       "Origin (or Referer) must be covered by the JWT's domain.",
        "security": [{"widgetJwt": []}], "parameters": [{"name": "widget_id", **UUID_PARAM}],
        "responses": answers({"200": _json(shapes.StatisticsTokenShape, "A statistics token.")},
                             "401 403 404 429 503",
                             e403="The JWT is for another widget or site; the widget or account is "
                                  "disabled; statistics are switched off for the host.",
                             e404="widget_id is not a UUID.")}})


def _session_paths(spec: APISpec) -> None:
    spec.components.schema("SessionCreate", schema=schemas.SessionCreateSchema)
    created = _json(shapes.SessionCreatedShape, "Created.")
    spec.path("/api/v1/sessions", operations={
        "post": {
            "summary": "Create a session (idempotent by session_id).",
            "description": f"{TOKEN_IN_BODY} {WINDOW} (`started_at`, default now.) Re-sending a "
                           "session_id answers 200 with the stored session.",
            "security": SITE, "requestBody": _body("SessionCreate"),
            "responses": answers({"201": created, "200": {**created, "description": "Already existed."}},
                                 f"400 401 403 409 {BODY} 429 503",
                                 e409="The session_id is taken by another account.")},
        "get": {
            "summary": "List the account's sessions, filtered and sorted.",
            "description": "`from` <= started_at < `to` (ISO 8601, UTC when no zone is named, "
                           f"{timerange.EARLIEST:%Y-%m-%d} to {timerange.LATEST:%Y-%m-%d}); "
                           "a `from` after `to` matches nothing.",
            "security": ANALYST, "parameters": [{"in": "query", "schema": schemas.SessionListQuerySchema}],
            "responses": answers({"200": _json(shapes.SessionListShape, "A page of sessions.")},
                                 "400 401 503")},
    })
    session_id = {"name": "session_id", **UUID_PARAM}
    spec.path("/api/v1/sessions/{session_id}", operations={"get": {
        "summary": "One session.", "security": ANALYST, "parameters": [session_id],
        "responses": answers({"200": _json(shapes.SessionShape, "The session.")}, "401 404 503")}})
    spec.path("/api/v1/sessions/{session_id}/events", operations={"get": {
        "summary": "A session's events in time order (ties by seq), paged.", "security": ANALYST,
        "parameters": [session_id, {"in": "query", "schema": schemas.EventListQuerySchema}],
        "responses": answers({"200": _json(shapes.EventListShape, "A page of events; `total` is the "
                                                                  "session's event count.")},
                             "400 401 404 503")}})
    spec.path("/api/v1/sessions/{session_id}/screenshots", operations={"get": {
        "summary": "A session's screenshots (metadata, with each image's URL).", "security": ANALYST,
        "parameters": [session_id],
        "responses": answers({"200": _json(shapes.ScreenshotListShape, "The screenshots.")}, "401 404 503")}})
    image = {"schema": {"type": "string", "format": "binary"}}
    spec.path("/api/v1/screenshots/{screenshot_id}", operations={"get": {
        "summary": "A screenshot's image bytes (private, immutable: cacheable for a year).",
        "security": ANALYST,
        "parameters": [
            {"name": "screenshot_id", "in": "path", "required": True,
             "schema": {"type": "integer", "minimum": 1}},
            {"name": "If-None-Match", "in": "header", "required": False, "schema": {"type": "string"},
             "description": "The ETag of a copy the client has: 304 when it is this image."}],
        "responses": answers({
            "200": {"description": "The image.",
                    "content": {f"image/{kind}": image for kind in ("jpeg", "png", "webp")}},
            "304": {"description": "Not modified (If-None-Match is this image's ETag)."},
        }, "401 404 503")}})


def _track_paths(spec: APISpec) -> None:
    spec.components.schema("Event", schema=schemas.EventSchema)
    spec.components.schema("TrackBatch", schema=schemas.TrackBatchSchema)
    spec.components.schema("Screenshot", schema=schemas.ScreenshotSchema)
    spec.path("/api/v1/track", operations={"post": {
        "summary": f"Store a batch of 1 to {schemas.MAX_EVENTS_PER_BATCH} events of a session, once "
                   "(idempotent by session + seq).",
        "description": f"{TOKEN_IN_BODY} {WINDOW} Each event of a batch needs its own `seq`. The 201 "
                       "is sent once the batch is committed; a re-sent batch answers 201 with `count` 0.",
        "security": SITE, "requestBody": _body("TrackBatch"),
        "responses": answers({"201": _json(shapes.TrackResultShape, "Committed.")},
                             f"400 401 403 404 {BODY} 429 503",
                             e404="No such session for this account (create it first).")}})
    stored = _json(shapes.ScreenshotCreatedShape, "Stored.")
    spec.path("/api/v1/track/screenshot", operations={"post": {
        "summary": "Upload a screenshot of a session's page (a data URL), stored once per content.",
        "description": f"{TOKEN_IN_BODY} {WINDOW} The image must be a JPEG, PNG or WebP of the declared "
                       "width and height (at most HINDSIGHT_MAX_SCREENSHOT_BYTES decoded).",
        "security": SITE, "requestBody": _body("Screenshot"),
        "responses": answers({"201": stored, "200": {**stored, "description": "Already stored."}},
                             f"400 401 403 404 {BODY} 429 503",
                             e404="No such session for this account.")}})
    from .resources.track import ScreenshotWantedQuerySchema
    spec.path("/api/v1/track/screenshot/wanted", operations={"get": {
        "summary": "Whether a visitor's browser should take a screenshot of this page.",
        "description": "No token: the session id is the capability, and the page's Origin must be "
                       "covered by the session's host (otherwise, and for unknown sessions, `wanted` is "
                       "true). False when the account holds a screenshot of the same page (its path and hash "
                       "route: a fragment starting with `/` or `!/`; an anchor is its page), for the "
                       "same device class, newer than "
                       "HINDSIGHT_SCREENSHOT_FRESHNESS_HOURS.",
        "parameters": [{"in": "query", "schema": ScreenshotWantedQuerySchema}],
        "responses": answers({"200": _json(shapes.ScreenshotWantedShape, "The answer.")}, "400 503")}})


def _stats_paths(spec: APISpec) -> None:
    """The dashboard's time series and breakdowns, read from the roll-ups."""
    from .resources import stats

    for path in stats.ROUTES:
        kind = path.rsplit("/", 1)[1]
        query, shape = {
            "series": (stats.SeriesQuerySchema, shapes.SeriesShape),
            "event-types": (stats.StatsQuerySchema, shapes.EventTypesShape),
            "pages": (stats.TopQuerySchema, shapes.TopPagesShape),
            "visitors": (stats.StatsQuerySchema, shapes.VisitorsShape),
            "entry-pages": (stats.TopQuerySchema, shapes.PageVisitsListShape),
            "exit-pages": (stats.TopQuerySchema, shapes.PageVisitsListShape),
        }.get(kind, (stats.TopQuerySchema, shapes.BreakdownShape))
        spec.path(path, operations={"get": {
            "summary": f"{kind} for a time range of the key's account (from the roll-ups).",
            "description": range_rules(stats.DEFAULT_SPAN.days), "security": ANALYST, "parameters": [{"in": "query", "schema": query}],
            "responses": answers({"200": _json(shape, "The numbers, and the range they cover.")},
                                 "400 401 503")}})


def _custom_paths(spec: APISpec) -> None:
    """Custom events, funnels, paths, erasure (issue 14): each module describes its own."""
    from .resources import erasure, events, funnels

    events.describe(spec)
    funnels.describe(spec)
    erasure.describe(spec)


def _observe_paths(spec: APISpec) -> None:
    """Ingestion warnings and the pipeline's traces (issue 13): described by their module."""
    from .resources import pipeline

    pipeline.describe(spec)


def _live_paths(spec: APISpec) -> None:
    """The live stream (issue 13), described by its module (resources/live.py)."""
    from .resources import live

    live.describe(spec)


def _recording_paths(spec: APISpec) -> None:
    """The DOM recording's endpoints, described by their module (resources/recording.py)."""
    from .resources import recording

    def legacy(ok_code: str, ok_schema: Any, description: str, codes: str = "401 404 503") -> Answers:
        ok = {"description": description}
        if ok_code == "201":  # the upload: 201 stored now, 200 stored before
            return answers({"201": ok, "200": {"description": "Already stored."}},
                           f"400 401 403 404 {BODY} 429 503")
        return answers({ok_code: ok}, codes)

    recording.document(spec, SITE, ANALYST, legacy)


def _seed_paths(spec: APISpec) -> None:
    """The seed's endpoints, kept for widget scripts built against it."""
    from .resources import seed_events
    from .seed import schemas as seed_schemas

    spec.components.schema("SeedTokenCreate", schema=seed_schemas.TokenCreateSchema)
    spec.components.schema("SeedTokenExtend", schema=seed_schemas.TokenExtendSchema)
    token_param = {"name": "token", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
    internal_403 = "The internal API is disabled (no HINDSIGHT_INTERNAL_API_KEY)."
    token = _json(shapes.InternalTokenShape, "The token.")
    spec.path("/api/token", operations={"post": {
        "summary": "A statistics token for account + host: the live one, or a new one (internal API).",
        "security": INTERNAL, "requestBody": _body("SeedTokenCreate"),
        "responses": answers({"201": token}, f"400 401 403 404 {BODY} 503",
                             e403=internal_403[:-1] + "; a disabled account; a host the account has not "
                                  "registered; statistics switched off for the host.",
                             e404="No such account.")}})
    spec.path("/api/token/{token}", operations={
        "put": {"summary": "Extend a statistics token (internal API).",
                "description": "`expires_at` (or now + `ttl_seconds`, default "
                               "HINDSIGHT_STATISTICS_TOKEN_TTL_SECONDS) must be in the future and at "
                               f"most {seed_schemas.MAX_TTL // 86400} days away. The body is optional.",
                "security": INTERNAL, "parameters": [token_param],
                "requestBody": _body("SeedTokenExtend", required=False),
                "responses": answers({"200": token}, f"400 401 403 404 409 {BODY} 503",
                                     e403=internal_403, e404="No such statistics token.",
                                     e409="The token was revoked; it cannot be extended.")},
        "delete": {"summary": "Revoke a statistics token and drop its stack (internal API).",
                   "security": INTERNAL, "parameters": [token_param],
                   "responses": answers({"204": {"description": "Revoked."}}, "401 403 404 503",
                                        e403=internal_403, e404="No such statistics token.")}})
    created = _json(shapes.SessionCreatedShape, "Stored.")
    stored = _json(shapes.SeedEventStoredShape, "Stored.")
    for kind, resource in (("sessions", seed_events.SeedSessions), ("pages", seed_events.SeedPages),
                           ("events", seed_events.SeedInteractions), ("referrers", seed_events.SeedReferrers)):
        name = f"Seed{kind.capitalize()}Add"
        spec.components.schema(name, schema=type(resource.schema))
        session = kind == "sessions"
        ok = created if session else stored
        spec.path(f"/api/{kind}/add", operations={"post": {
            "summary": f"Seed API: one {kind[:-1]} event (the same durable path as "
                       f"{'/api/v1/sessions' if session else '/api/v1/track'}).",
            "description": (
                f"{TOKEN_IN_BODY} The body is `{{event, timestamp, type?, token?}}`; `event` holds the "
                f"seed's `cklig-track-*` fields; `cklig-track-account`, when given, must be the token's "
                f"account (403). {WINDOW} (`timestamp`.) "
                + ("Seed session ids are free strings: the same string is the same session. "
                   if session else "The session must exist (/api/sessions/add first: 404). ")
                + "Idempotent: the same event re-sent answers 200."),
            "security": SITE, "requestBody": _body(name),
            "responses": answers({"201": ok, "200": {**ok, "description": "Already stored."}},
                                 f"400 401 403 {'409' if session else '404'} {BODY} 429 503",
                                 e409="The session id is taken by another account.",
                                 e404="No such session for this account.")}})
    stacks = _json(shapes.StacksHealthShape, "The statistics stacks' health.")
    spec.path("/api/health/stacks", operations={"get": {
        "summary": "The statistics stacks' health document (this process, and the shared ledger).",
        "security": NO_CREDENTIAL,
        "responses": answers({"200": stacks, "503": {**stacks, "description": "The database is unreachable."}})}})


def _public_paths(spec: APISpec) -> None:
    health = _json(shapes.HealthShape, "Database, TimescaleDB edition, schema version, lifecycle.")
    spec.path("/health", operations={"get": {
        "summary": "Is the database reachable; which TimescaleDB; which schema version.",
        "security": NO_CREDENTIAL,
        "responses": answers({"200": health, "503": {**health, "description": "The database is unreachable."}})}})
    spec.path("/.well-known/jwks.json", operations={"get": {
        "summary": "The public keys that verify widget JWTs.", "security": NO_CREDENTIAL,
        "responses": answers({"200": _json(shapes.JwksShape, "JWKS.")}, "503")}})
    spec.path("/api/v1/openapi.json", operations={"get": {
        "summary": "This document.", "security": NO_CREDENTIAL,
        "responses": answers({"200": _json({"type": "object"}, "The OpenAPI 3 document.")})}})


def _walk(node: Any, visit: Callable[[dict[str, Any]], None]) -> None:
    if isinstance(node, dict):
        visit(node)
        for value in node.values():
            _walk(value, visit)
    elif isinstance(node, list):
        for value in node:
            _walk(value, visit)


def _ip_addresses(doc: dict[str, Any]) -> dict[str, Any]:
    """marshmallow's IP field is "format: ip", which JSON Schema does not know: IPv4 or IPv6."""
    def visit(node: dict[str, Any]) -> None:
        if node.get("format") == "ip":
            del node["format"]
            node["anyOf"] = [{"format": "ipv4"}, {"format": "ipv6"}]
    _walk(doc, visit)
    return doc


def _portable_patterns(doc: dict[str, Any]) -> dict[str, Any]:
    """Python's end of text (\\Z: no newline may follow, as `$` allows) is ECMA-262's `$`."""
    def visit(node: dict[str, Any]) -> None:
        pattern = node.get("pattern")
        if isinstance(pattern, str) and pattern.endswith("\\Z"):
            node["pattern"] = pattern[:-2] + "$"
    _walk(doc, visit)
    return doc


class OpenApi:
    def __init__(self) -> None:
        self._doc = build_spec()

    def on_get(self, req, resp) -> None:
        resp.media = self._doc
