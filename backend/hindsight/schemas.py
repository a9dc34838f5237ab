"""Marshmallow schemas for every input the API accepts.

Every field is bounded (length, range or enum) so that nothing unbounded reaches
the database. Unknown fields are rejected, which names typos back to the client.
"""

from __future__ import annotations

import json
from datetime import UTC

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

MAX_EVENTS_PER_BATCH = 100
MAX_JSON_FIELD_BYTES = 16 * 1024
MAX_URL = 2048
COORD = validate.Range(min=-1_000_000, max=10_000_000)
DIMENSION = validate.Range(min=0, max=100_000)
EVENT_TYPE = validate.Regexp(r"^[a-z][a-z0-9_]{0,49}$",
                             error="Must be lower_snake_case, 1 to 50 characters.")
DEVICE_TYPES = ("desktop", "mobile", "tablet", "bot", "other")
# The event types the tracker emits; others are accepted (extensible) and stored as given.
KNOWN_EVENT_TYPES = (
    "session_start", "page_view", "click", "input", "keypress", "scroll", "mouse_move",
    "visibility", "resize", "error", "network", "custom",
)


def _bounded_json(value: dict) -> None:
    if len(json.dumps(value, separators=(",", ":"))) > MAX_JSON_FIELD_BYTES:
        raise ValidationError(f"Must serialize to at most {MAX_JSON_FIELD_BYTES} bytes of JSON.")


def _text(max_len: int, **kwargs) -> fields.String:
    return fields.String(validate=validate.Length(max=max_len), allow_none=True, **kwargs)


def _timestamp(**kwargs) -> fields.AwareDateTime:
    return fields.AwareDateTime(default_timezone=UTC, **kwargs)


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class TokenInBodyMixin(Schema):
    # sendBeacon cannot set headers: the statistics token may come in the body instead.
    token = fields.UUID(load_default=None, metadata={"description": "Statistics token (for sendBeacon)."})


class SessionCreateSchema(StrictSchema, TokenInBodyMixin):
    session_id = fields.UUID(load_default=None, metadata={
        "description": "Client-generated id; re-sending the same id returns the existing session."})
    started_at = _timestamp(load_default=None)
    user_id = _text(255, load_default=None)
    page_url = _text(MAX_URL, load_default=None)
    referrer = _text(MAX_URL, load_default=None)
    user_agent = _text(1024, load_default=None)
    screen_width = fields.Integer(validate=DIMENSION, load_default=None, allow_none=True)
    screen_height = fields.Integer(validate=DIMENSION, load_default=None, allow_none=True)
    viewport_width = fields.Integer(validate=DIMENSION, load_default=None, allow_none=True)
    viewport_height = fields.Integer(validate=DIMENSION, load_default=None, allow_none=True)
    device_type = fields.String(validate=validate.OneOf(DEVICE_TYPES), load_default=None, allow_none=True)
    browser = _text(100, load_default=None)
    os = _text(100, load_default=None)
    language = _text(35, load_default=None)
    timezone = _text(64, load_default=None)
    metadata = fields.Dict(keys=fields.String(validate=validate.Length(max=100)),
                           validate=_bounded_json, load_default=dict)


class EventSchema(StrictSchema):
    seq = fields.Integer(required=True, strict=True, validate=validate.Range(min=0, max=2**62),
                         metadata={"description": "Per-session sequence number; identifies the event."})
    timestamp = _timestamp(required=True)
    event_type = fields.String(required=True, validate=EVENT_TYPE,
                               metadata={"description": "One of " + ", ".join(KNOWN_EVENT_TYPES)
                                         + " or a custom lower_snake_case name."})
    page_url = _text(MAX_URL, load_default=None)
    target_element = _text(1024, load_default=None)
    target_selector = _text(1024, load_default=None)
    target_tag = _text(50, load_default=None)
    target_id = _text(255, load_default=None)
    target_class = _text(1024, load_default=None)
    viewport_x = fields.Integer(validate=COORD, load_default=None, allow_none=True)
    viewport_y = fields.Integer(validate=COORD, load_default=None, allow_none=True)
    screen_x = fields.Integer(validate=COORD, load_default=None, allow_none=True)
    screen_y = fields.Integer(validate=COORD, load_default=None, allow_none=True)
    scroll_x = fields.Integer(validate=COORD, load_default=None, allow_none=True)
    scroll_y = fields.Integer(validate=COORD, load_default=None, allow_none=True)
    input_value = _text(1024, load_default=None)
    input_masked = fields.Boolean(load_default=None, allow_none=True)
    key_pressed = _text(50, load_default=None)
    mouse_button = fields.Integer(validate=validate.Range(min=0, max=4), load_default=None, allow_none=True)
    click_count = fields.Integer(validate=validate.Range(min=0, max=100), load_default=None, allow_none=True)
    event_data = fields.Dict(keys=fields.String(validate=validate.Length(max=100)),
                             validate=_bounded_json, load_default=None, allow_none=True)


class TrackBatchSchema(StrictSchema, TokenInBodyMixin):
    session_id = fields.UUID(required=True)
    events = fields.List(fields.Nested(EventSchema), required=True,
                         validate=validate.Length(min=1, max=MAX_EVENTS_PER_BATCH))

    @validates_schema
    def _unique_seq(self, data, **kwargs):
        seqs = [event["seq"] for event in data.get("events", [])]
        if len(set(seqs)) != len(seqs):
            raise ValidationError("Each event in a batch needs its own seq.", "events")


class ScreenshotSchema(StrictSchema, TokenInBodyMixin):
    session_id = fields.UUID(required=True)
    page_url = _text(MAX_URL, load_default=None)
    timestamp = _timestamp(required=True)
    image_data = fields.String(required=True, metadata={
        "description": "data:image/(jpeg|png|webp);base64,... at most 10 MB decoded."})
    width = fields.Integer(required=True, validate=validate.Range(min=1, max=20_000))
    height = fields.Integer(required=True, validate=validate.Range(min=1, max=50_000))


SESSION_SORTS = ("started_at", "-started_at", "duration", "-duration", "event_count",
                 "-event_count", "last_activity_at", "-last_activity_at")


class SessionListQuerySchema(StrictSchema):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=500))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=10_000_000))
    sort = fields.String(load_default="-started_at", validate=validate.OneOf(SESSION_SORTS))
    start = _timestamp(load_default=None, data_key="from")
    end = _timestamp(load_default=None, data_key="to")
    user_id = fields.String(load_default=None, validate=validate.Length(max=255))
    device_type = fields.String(load_default=None, validate=validate.OneOf(DEVICE_TYPES))
    browser = fields.String(load_default=None, validate=validate.Length(max=100))
    os = fields.String(load_default=None, validate=validate.Length(max=100))
    page_url = fields.String(load_default=None, validate=validate.Length(min=1, max=MAX_URL),
                             metadata={"description": "Sessions that viewed a page whose URL contains this."})
    min_duration = fields.Float(load_default=None, validate=validate.Range(min=0),
                                metadata={"description": "Minimum duration in seconds."})
    min_events = fields.Integer(load_default=None, validate=validate.Range(min=0))


class EventListQuerySchema(StrictSchema):
    limit = fields.Integer(load_default=1000, validate=validate.Range(min=1, max=10_000))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0))


# Response shapes, for the OpenAPI document.
class SessionCreatedSchema(Schema):
    session_id = fields.UUID()
    started_at = fields.AwareDateTime()


class TrackResultSchema(Schema):
    count = fields.Integer(metadata={"description": "Events newly stored (re-sent ones are not counted)."})
    received = fields.Integer()


class ScreenshotCreatedSchema(Schema):
    screenshot_id = fields.Integer()


class ErrorSchema(Schema):
    error = fields.String()
    description = fields.String()
    fields = fields.Dict()
