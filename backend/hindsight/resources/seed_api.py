"""The seed's statistics-server API (seed 000), kept for widget scripts built against it.

- `POST /api/token`, `PUT /api/token/{token}`, `DELETE /api/token/{token}`: the internal
  token API, authenticated with `HINDSIGHT_INTERNAL_API_KEY` (Bearer).
- `POST /api/sessions/add`, `/api/pages/add`, `/api/events/add`, `/api/referrers/add`:
  one seed event each (`{"event": {"cklig-track-...": ...}, "timestamp": ...}`) with
  `Authorization: Bearer <statistics token>`, mapped onto sessions and events and written
  through the same path as /api/v1/sessions and /api/v1/track (same checks, same ledger).
- `GET /api/health/stacks`: the seed's health document for the statistics stacks.

Seed session ids are free strings: a UUID is used as it is, anything else is mapped to a
UUID (version 5) so that a re-sent event lands in the same session. An event's `seq` is
a hash of its content, so a re-sent event is stored (and counted) once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import timedelta
from typing import Any

import falcon
import psycopg
from marshmallow import Schema, fields, validate
from psycopg_pool import PoolTimeout

from .. import __version__, useragent
from ..auth import bearer
from ..errors import bad_request, conflict, forbidden, not_found, unauthorized
from ..queries import events as event_queries
from ..queries import sessions as session_queries
from ..queries import tenancy
from ..schemas import COORD, DIMENSION, MAX_URL, StrictSchema, _bounded_json, _text, _timestamp
from ..services import Services
from ..stacks import ledger, tokens
from .common import authorize_write, load_json, url_filter
from .track import MAX_FUTURE

SEED_SESSION_NAMESPACE = uuid.UUID("5b1f8f0e-3c8a-5d3e-9a51-6b1e0c2f7a10")
MAX_TTL = 365 * 24 * 3600


# ----------------------------------------------------------------------------- schemas

def _key(name: str, field: fields.Field) -> fields.Field:
    field.data_key = f"cklig-track-{name}"
    return field


def _json_object(**kwargs) -> fields.Dict:
    return fields.Dict(keys=fields.String(validate=validate.Length(max=100)), validate=_bounded_json,
                       load_default=None, allow_none=True, **kwargs)


class _Browser(StrictSchema):
    name = _text(100, load_default=None)
    version = _text(50, load_default=None)
    userAgent = _text(1024, load_default=None)
    platform = _text(100, load_default=None)
    language = _text(35, load_default=None)


class _Screen(StrictSchema):
    width = fields.Integer(validate=DIMENSION, load_default=None, allow_none=True)
    height = fields.Integer(validate=DIMENSION, load_default=None, allow_none=True)
    colorDepth = fields.Integer(validate=validate.Range(min=0, max=64), load_default=None, allow_none=True)
    orientation = _text(30, load_default=None)


class _Position(StrictSchema):
    clientX = fields.Integer(validate=COORD, load_default=None, allow_none=True)
    clientY = fields.Integer(validate=COORD, load_default=None, allow_none=True)


class _Target(StrictSchema):
    tagName = _text(50, load_default=None)
    id = _text(255, load_default=None)
    className = _text(1024, load_default=None)
    position = fields.Nested(_Position, load_default=None, allow_none=True)


class _SeedEvent(StrictSchema):
    account = _key("account", fields.UUID(load_default=None, allow_none=True))
    user_id = _key("user-id", _text(255, load_default=None))
    session = _key("user-session", fields.String(required=True, validate=validate.Length(min=1, max=255)))
    page_url = _key("event-page-url", _text(MAX_URL, load_default=None))


class SessionEventSchema(_SeedEvent):
    user_ip = _key("user-ip", fields.IP(load_default=None, allow_none=True))
    browser = _key("browser", fields.Nested(_Browser, load_default=None, allow_none=True))
    base_domain = _key("base-domain", _text(253, load_default=None))
    screen = _key("screen", fields.Nested(_Screen, load_default=None, allow_none=True))
    referrer = _key("referrer", _text(MAX_URL, load_default=None))


class PageEventSchema(_SeedEvent):
    event_type = _key("event-type", fields.String(required=True,
                                                  validate=validate.OneOf(("PageLoad", "PageUnload"))))
    time_on_page = _key("event-timeonpage", fields.Integer(
        validate=validate.Range(min=0, max=31 * 24 * 3600 * 1000), load_default=None, allow_none=True))
    page_details = _key("event-page-details", _json_object())
    referrer = _key("event-referrer", _text(MAX_URL, load_default=None))


class InteractionEventSchema(_SeedEvent):
    event_type = _key("event-type", fields.String(required=True,
                                                  validate=validate.OneOf(("Click", "Focus", "Blur"))))
    target = _key("event-target", fields.Nested(_Target, load_default=None, allow_none=True))
    form_data = _key("event-form-data", _json_object())


class ReferrerEventSchema(_SeedEvent):
    referrer = _key("referrer", fields.String(required=True, validate=validate.Length(min=1, max=MAX_URL)))


def _envelope(event_schema: type[Schema], seed_type: str) -> type[Schema]:
    class Envelope(StrictSchema):
        type = fields.String(load_default=None, allow_none=True, validate=validate.Equal(seed_type))
        event = fields.Nested(event_schema, required=True)
        timestamp = _timestamp(required=True)
        token = fields.UUID(load_default=None, metadata={"description": "Statistics token (for sendBeacon)."})

    Envelope.__name__ = f"Seed{seed_type.title().replace('-', '')}Schema"
    return Envelope


class TokenCreateSchema(StrictSchema):
    account_id = fields.UUID(required=True)
    host = fields.String(required=True, validate=validate.Length(min=1, max=253))
    ttl_seconds = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=60, max=MAX_TTL))


class TokenExtendSchema(StrictSchema):
    ttl_seconds = fields.Integer(load_default=None, allow_none=True, validate=validate.Range(min=60, max=MAX_TTL))
    expires_at = _timestamp(load_default=None, allow_none=True)


# ----------------------------------------------------------------------------- helpers

def seed_session_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        return uuid.uuid5(SEED_SESSION_NAMESPACE, value)


def content_seq(kind: str, event: dict[str, Any], timestamp) -> int:
    """A seq from the event's content: the same event sent twice is the same row."""
    raw = json.dumps([kind, event, timestamp.isoformat()], sort_keys=True, default=str).encode()
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big") >> 2


def _tracked(event: dict[str, Any], **extra: Any) -> dict[str, Any]:
    data = {k: v for k, v in extra.items() if v is not None}
    if event.get("user_id") is not None:
        data["user_id"] = event["user_id"]
    return data


def _page_event(e: dict[str, Any]) -> dict[str, Any]:
    return {"event_type": "page_view" if e["event_type"] == "PageLoad" else "page_unload",
            "page_url": e["page_url"],
            "event_data": _tracked(e, time_on_page_ms=e["time_on_page"], page_details=e["page_details"],
                                   referrer=e["referrer"])}


def _interaction_event(e: dict[str, Any]) -> dict[str, Any]:
    target = e["target"] or {}
    position = target.get("position") or {}
    return {"event_type": e["event_type"].lower(), "page_url": e["page_url"],
            "target_tag": target.get("tagName"), "target_id": target.get("id"),
            "target_class": target.get("className"),
            "viewport_x": position.get("clientX"), "viewport_y": position.get("clientY"),
            "event_data": _tracked(e, form_data=e["form_data"])}


def _referrer_event(e: dict[str, Any]) -> dict[str, Any]:
    return {"event_type": "referrer", "page_url": e["page_url"],
            "event_data": _tracked(e, referrer=e["referrer"])}


def _check_account(writer, event: dict[str, Any]) -> None:
    if event.get("account") is not None and event["account"] != writer.account_id:
        raise forbidden("cklig-track-account is not the account of this token.")


def _internal(req: falcon.Request, services: Services) -> None:
    key = services.settings.internal_api_key
    if not key:
        raise forbidden("The internal API is disabled (HINDSIGHT_INTERNAL_API_KEY is not set).")
    given = bearer(req)
    if given is None or not hmac.compare_digest(given.encode(), key.encode()):
        raise unauthorized("The internal API needs Authorization: Bearer <internal API key>.")


def _token_json(row: dict) -> dict[str, Any]:
    return {"token": str(row["token"]), "account_id": str(row["account_id"]), "host": row["host"],
            "expires_at": row["expires_at"].isoformat()}


# ----------------------------------------------------------------------------- token API

class TokenCollection:
    """POST /api/token: a statistics token for account + host (the live one, or a new one)."""

    schema = TokenCreateSchema()

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        _internal(req, self._s)
        body = load_json(req, self.schema)
        host = body["host"].strip().lower().rstrip(".")
        ttl = timedelta(seconds=body["ttl_seconds"] or self._s.settings.statistics_token_ttl_seconds)
        now = self._s.clock()
        with self._s.pool.connection() as conn, conn.transaction():
            found = tenancy.matching_domain(conn, body["account_id"], host)
            if found is None:
                raise not_found("No such account.")
            if not found["active"]:
                raise forbidden("This account is disabled.")
            if found["domain"] is None:
                raise forbidden(f"The host {host} is not a registered domain of this account.")
            domain = found["domain"]
            if tenancy.statistics_flag(conn, body["account_id"], domain) is False:
                raise forbidden("Statistics are disabled for this host (usage limit reached or switched off).")
            row = tenancy.live_or_new_token(conn, body["account_id"], domain, now, ttl)
        self._s.stacks.token_issued(body["account_id"], domain, row["token"])
        resp.status = falcon.HTTP_201
        resp.media = _token_json({**row, "account_id": body["account_id"], "host": domain})


class TokenItem:
    """PUT /api/token/{token} (extend its expiry), DELETE /api/token/{token} (revoke it)."""

    schema = TokenExtendSchema()

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_put(self, req: falcon.Request, resp: falcon.Response, token: uuid.UUID) -> None:
        _internal(req, self._s)
        body = load_json(req, self.schema) if req.content_length else self.schema.load({})
        now = self._s.clock()
        expires_at = body["expires_at"] or now + timedelta(
            seconds=body["ttl_seconds"] or self._s.settings.statistics_token_ttl_seconds)
        if expires_at <= now:
            raise bad_request("expires_at must be in the future.", {"expires_at": ["In the past."]})
        if expires_at > now + timedelta(seconds=MAX_TTL):
            raise bad_request("expires_at is more than a year away.", {"expires_at": ["Too far."]})
        with self._s.pool.connection() as conn, conn.transaction():
            row = tokens.extend(conn, token, expires_at)
        if row is None:
            raise not_found("No such statistics token.")
        if row["revoked_at"] is not None:
            raise conflict("This statistics token was revoked; it cannot be extended.")
        resp.media = _token_json(row)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, token: uuid.UUID) -> None:
        _internal(req, self._s)
        with self._s.pool.connection() as conn, conn.transaction():
            row = tokens.revoke(conn, token)
        if row is None:
            raise not_found("No such statistics token.")
        # Its stack goes now; what it counted is in the ledger and is flushed within a quarter second.
        self._s.stacks.token_revoked(row["account_id"], row["host"])
        resp.status = falcon.HTTP_204


# ----------------------------------------------------------------------------- event API

class SeedSessions:
    """POST /api/sessions/add: a session start ("sessions-added")."""

    schema = _envelope(SessionEventSchema, "sessions-added")()

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = load_json(req, self.schema)
        e, now = body["event"], self._s.clock()
        started_at = min(body["timestamp"], now)
        browser, screen = e["browser"] or {}, e["screen"] or {}
        user_agent = browser.get("userAgent") or req.user_agent
        client = useragent.describe(user_agent)
        metadata = {k: v for k, v in {
            "seed_session": e["session"], "base_domain": e["base_domain"],
            "browser_version": browser.get("version"), "color_depth": screen.get("colorDepth"),
            "orientation": screen.get("orientation"),
        }.items() if v is not None}
        ip = str(e["user_ip"]) if e["user_ip"] is not None else self._s.client_ip(req)
        session_id = seed_session_id(e["session"])
        with self._s.pool.connection() as conn, conn.transaction():
            writer, _ = authorize_write(conn, req, body, now, None)
            _check_account(writer, e)
            strip = url_filter(writer)
            values = {
                "session_id": session_id, "account_id": writer.account_id, "host": writer.host,
                "user_id": e["user_id"], "started_at": started_at, "last_activity_at": started_at,
                "page_url": strip(e["page_url"]) if strip else e["page_url"],
                "referrer": e["referrer"], "user_agent": user_agent,
                "screen_width": screen.get("width"), "screen_height": screen.get("height"),
                "device_type": client.device_type, "browser": browser.get("name") or client.browser,
                "os": browser.get("platform") or client.os, "language": browser.get("language"),
                "metadata": metadata, "ip_hash": self._s.ip_hash(ip),
            }
            row, created = session_queries.insert_session(conn, values)
            if row["account_id"] != writer.account_id:
                raise conflict("This session id is already taken; generate another.")
        self._s.stacks.session_stored(writer, created)
        resp.status = falcon.HTTP_201 if created else falcon.HTTP_200
        resp.media = {"session_id": str(row["session_id"]), "started_at": row["started_at"].isoformat()}


class _SeedEventResource:
    """One seed event, stored as an event row through the /api/v1/track path."""

    seed_type = ""
    schema: Schema

    def __init__(self, services: Services) -> None:
        self._s = services

    def to_event(self, event: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        body = load_json(req, self.schema)
        e, now = body["event"], self._s.clock()
        if body["timestamp"] > now + MAX_FUTURE:
            raise bad_request("The timestamp is more than an hour in the future.",
                              {"timestamp": ["In the future."]})
        event = self.to_event(e)
        event.update(seq=content_seq(self.seed_type, e, body["timestamp"]), timestamp=body["timestamp"])
        session_id = seed_session_id(e["session"])
        with self._s.pool.connection() as conn, conn.transaction():
            writer, found = authorize_write(conn, req, body, now, session_id)
            _check_account(writer, e)
            if not found:
                raise not_found("No such session for this account; send it to /api/sessions/add first.")
            batch = event_queries.encode_batch([event], url_filter(writer))
            inserted = event_queries.insert_batch(conn, session_id, writer.account_id, writer.host, batch)
        self._s.stacks.events_stored(writer, [event], inserted)
        resp.status = falcon.HTTP_201 if inserted else falcon.HTTP_200
        resp.media = {"count": inserted, "session_id": str(session_id), "event_type": event["event_type"]}


class SeedPages(_SeedEventResource):
    """POST /api/pages/add: PageLoad (a page view, a journey step) or PageUnload."""

    seed_type = "pages-added"
    schema = _envelope(PageEventSchema, seed_type)()

    def to_event(self, event: dict[str, Any]) -> dict[str, Any]:
        return _page_event(event)


class SeedInteractions(_SeedEventResource):
    """POST /api/events/add: Click (a journey step), Focus or Blur."""

    seed_type = "events-added"
    schema = _envelope(InteractionEventSchema, seed_type)()

    def to_event(self, event: dict[str, Any]) -> dict[str, Any]:
        return _interaction_event(event)


class SeedReferrers(_SeedEventResource):
    """POST /api/referrers/add: where the visitor came from (counted, not a journey step)."""

    seed_type = "referrers-added"
    schema = _envelope(ReferrerEventSchema, seed_type)()

    def to_event(self, event: dict[str, Any]) -> dict[str, Any]:
        return _referrer_event(event)


# ----------------------------------------------------------------------------- health

class StacksHealth:
    """GET /api/health/stacks: this process's stacks and monitor, and the shared ledger."""

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.cache_control = ["no-store"]
        database: dict[str, Any]
        try:
            with self._s.pool.connection(timeout=2.0) as conn:
                totals = ledger.pending_totals(conn)
            database = {"reachable": True, "ledger": {
                "pending_batches": totals["batches"], "pending_events": totals["events"],
                "pending_stacks": totals["keys"],
                "oldest_pending_at": totals["oldest"].isoformat() if totals["oldest"] else None,
            }}
        except (psycopg.OperationalError, PoolTimeout):
            database = {"reachable": False, "ledger": None}
        doc = self._s.stacks.health(database)
        doc["version"] = __version__
        if not database["reachable"]:
            resp.status = falcon.HTTP_503
            resp.set_header("Retry-After", "5")
        resp.media = doc


def add_routes(app: falcon.App, services: Services) -> None:
    app.add_route("/api/token", TokenCollection(services))
    app.add_route("/api/token/{token:uuid}", TokenItem(services))
    app.add_route("/api/sessions/add", SeedSessions(services))
    app.add_route("/api/pages/add", SeedPages(services))
    app.add_route("/api/events/add", SeedInteractions(services))
    app.add_route("/api/referrers/add", SeedReferrers(services))
    app.add_route("/api/health/stacks", StacksHealth(services))
