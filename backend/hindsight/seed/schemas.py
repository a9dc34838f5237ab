"""The seed's request schemas (seed 000): one seed event per request, its `cklig-track-*`
fields in an envelope `{event, timestamp, type?, token?}`, and the internal token API's
bodies. Bounded like every other input (hindsight.schemas), unknown fields refused.
"""

from __future__ import annotations

from marshmallow import Schema, fields, validate

from ..input_fields import aware_timestamp, bounded_json, bounded_text, storable_text, strict_integer
from ..schemas import COORD, DIMENSION, MAX_URL, StrictSchema

MAX_TTL = 365 * 24 * 3600   # a token lives at most a year


def _key(name: str, field: fields.Field) -> fields.Field:
    field.data_key = f"cklig-track-{name}"
    return field


def _json_object(**kwargs) -> fields.Dict:
    return fields.Dict(keys=fields.String(validate=validate.Length(max=100)), validate=bounded_json,
                       load_default=None, allow_none=True, **kwargs)


class _Browser(StrictSchema):
    name = bounded_text(100, load_default=None)
    version = bounded_text(50, load_default=None)
    userAgent = bounded_text(1024, load_default=None)
    platform = bounded_text(100, load_default=None)
    language = bounded_text(35, load_default=None)


class _Screen(StrictSchema):
    width = strict_integer(validate=DIMENSION, load_default=None, allow_none=True)
    height = strict_integer(validate=DIMENSION, load_default=None, allow_none=True)
    colorDepth = strict_integer(validate=validate.Range(min=0, max=64), load_default=None, allow_none=True)
    orientation = bounded_text(30, load_default=None)


class _Position(StrictSchema):
    clientX = strict_integer(validate=COORD, load_default=None, allow_none=True)
    clientY = strict_integer(validate=COORD, load_default=None, allow_none=True)


class _Target(StrictSchema):
    tagName = bounded_text(50, load_default=None)
    id = bounded_text(255, load_default=None)
    className = bounded_text(1024, load_default=None)
    position = fields.Nested(_Position, load_default=None, allow_none=True)


class _SeedEvent(StrictSchema):
    account = _key("account", fields.UUID(load_default=None, allow_none=True))
    user_id = _key("user-id", bounded_text(255, load_default=None))
    session = _key("user-session", fields.String(required=True, validate=[validate.Length(min=1, max=255),
                                                                           storable_text]))
    page_url = _key("event-page-url", bounded_text(MAX_URL, load_default=None))


class SessionEventSchema(_SeedEvent):
    user_ip = _key("user-ip", fields.IP(load_default=None, allow_none=True))
    browser = _key("browser", fields.Nested(_Browser, load_default=None, allow_none=True))
    base_domain = _key("base-domain", bounded_text(253, load_default=None))
    screen = _key("screen", fields.Nested(_Screen, load_default=None, allow_none=True))
    referrer = _key("referrer", bounded_text(MAX_URL, load_default=None))


class PageEventSchema(_SeedEvent):
    event_type = _key("event-type", fields.String(required=True,
                                                  validate=validate.OneOf(("PageLoad", "PageUnload"))))
    time_on_page = _key("event-timeonpage", fields.Integer(strict=True,
        validate=validate.Range(min=0, max=31 * 24 * 3600 * 1000), load_default=None, allow_none=True))
    page_details = _key("event-page-details", _json_object())
    referrer = _key("event-referrer", bounded_text(MAX_URL, load_default=None))


class InteractionEventSchema(_SeedEvent):
    event_type = _key("event-type", fields.String(required=True,
                                                  validate=validate.OneOf(("Click", "Focus", "Blur"))))
    target = _key("event-target", fields.Nested(_Target, load_default=None, allow_none=True))
    form_data = _key("event-form-data", _json_object())


class ReferrerEventSchema(_SeedEvent):
    referrer = _key("referrer", fields.String(required=True, validate=[validate.Length(min=1, max=MAX_URL),
                                                                       storable_text]))


def _envelope(event_schema: type[Schema], seed_type: str) -> type[Schema]:
    class Envelope(StrictSchema):
        type = fields.String(load_default=None, allow_none=True, validate=validate.Equal(seed_type))
        event = fields.Nested(event_schema, required=True)
        timestamp = aware_timestamp(required=True)
        token = fields.UUID(load_default=None, metadata={"description": "Statistics token (for sendBeacon)."})

    Envelope.__name__ = f"Seed{seed_type.title().replace('-', '')}Schema"
    return Envelope


class TokenCreateSchema(StrictSchema):
    account_id = fields.UUID(required=True)
    host = fields.String(required=True, validate=[validate.Length(min=1, max=253), storable_text])
    ttl_seconds = strict_integer(load_default=None, allow_none=True, validate=validate.Range(min=60, max=MAX_TTL))


class TokenExtendSchema(StrictSchema):
    ttl_seconds = strict_integer(load_default=None, allow_none=True, validate=validate.Range(min=60, max=MAX_TTL))
    expires_at = aware_timestamp(load_default=None, allow_none=True)


SessionAddSchema = _envelope(SessionEventSchema, "sessions-added")
PageAddSchema = _envelope(PageEventSchema, "pages-added")
InteractionAddSchema = _envelope(InteractionEventSchema, "events-added")
ReferrerAddSchema = _envelope(ReferrerEventSchema, "referrers-added")
