"""Marshmallow schemas for every input the API accepts.

Every field is bounded (length, range or enum) so that nothing unbounded reaches
the database. Unknown fields are rejected, which names typos back to the client.

Event batches are the hot path (every tracker flush is one), so the list of events
is validated by `FastNestedList` (hindsight.fast_loader). The fields' building blocks are
in hindsight.input_fields.

JSON bodies are typed strictly: an integer field takes a JSON integer (not 1.9, not "12",
not true) and a boolean field a JSON boolean (not "yes", not 1), as the OpenAPI document
says; marshmallow's lenient conversions would store `scroll_y: 1.9` as 1. Query strings are
text, so their numbers and booleans are parsed from it.
"""

from __future__ import annotations

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from .fast_loader import FastNestedList
from .input_fields import (
    StrictBoolean,
    aware_timestamp,
    bounded_json,
    bounded_text,
    strict_integer,
)
from .timerange import Instant

MAX_EVENTS_PER_BATCH = 100
MAX_URL = 2048
MAX_OFFSET = 10_000_000                     # list offsets (a bigint overflows past 2**63)
MAX_DURATION_SECONDS = 10 * 366 * 24 * 3600  # duration filters
COORD = validate.Range(min=-1_000_000, max=10_000_000)
DIMENSION = validate.Range(min=0, max=100_000)
EVENT_TYPE = validate.Regexp(r"^[a-z][a-z0-9_]{0,49}\Z",
                             error="Must be lower_snake_case, 1 to 50 characters.")
DEVICE_TYPES = ("desktop", "mobile", "tablet", "bot", "other")
# The event types the tracker emits; others are accepted (extensible) and stored as given.
KNOWN_EVENT_TYPES = (
    "session_start", "page_view", "click", "input", "keypress", "scroll", "mouse_move",
    "visibility", "resize", "error", "network", "custom",
)


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class TokenInBodyMixin(Schema):
    # sendBeacon cannot set headers: the statistics token may come in the body instead.
    token = fields.UUID(load_default=None, metadata={"description": "Statistics token (for sendBeacon)."})


class SessionCreateSchema(StrictSchema, TokenInBodyMixin):
    session_id = fields.UUID(load_default=None, metadata={
        "description": "Client-generated id; re-sending the same id returns the existing session."})
    started_at = aware_timestamp(load_default=None)
    user_id = bounded_text(255, load_default=None)
    visitor = bounded_text(64, load_default=None, metadata={
        "description": "The browser's own visitor id (tracker.js with data-visitor=\"persistent\": a random id "
                       "kept in localStorage); the server stores only a keyed hash of it with the account."})
    page_url = bounded_text(MAX_URL, load_default=None)
    referrer = bounded_text(MAX_URL, load_default=None)
    user_agent = bounded_text(1024, load_default=None)
    screen_width = strict_integer(validate=DIMENSION, load_default=None, allow_none=True)
    screen_height = strict_integer(validate=DIMENSION, load_default=None, allow_none=True)
    viewport_width = strict_integer(validate=DIMENSION, load_default=None, allow_none=True)
    viewport_height = strict_integer(validate=DIMENSION, load_default=None, allow_none=True)
    device_type = fields.String(validate=validate.OneOf(DEVICE_TYPES), load_default=None, allow_none=True)
    browser = bounded_text(100, load_default=None)
    os = bounded_text(100, load_default=None)
    language = bounded_text(35, load_default=None)
    timezone = bounded_text(64, load_default=None)
    metadata = fields.Dict(keys=fields.String(validate=validate.Length(max=100)),
                           validate=bounded_json, load_default=dict)


class EventSchema(StrictSchema):
    seq = strict_integer(required=True, validate=validate.Range(min=0, max=2**62),
                         metadata={"description": "Per-session sequence number; identifies the event."})
    timestamp = aware_timestamp(required=True)
    event_type = fields.String(required=True, validate=EVENT_TYPE,
                               metadata={"description": "One of " + ", ".join(KNOWN_EVENT_TYPES)
                                         + " or a custom lower_snake_case name."})
    page_url = bounded_text(MAX_URL, load_default=None)
    target_element = bounded_text(1024, load_default=None)
    target_selector = bounded_text(1024, load_default=None)
    target_tag = bounded_text(50, load_default=None)
    target_id = bounded_text(255, load_default=None)
    target_class = bounded_text(1024, load_default=None)
    viewport_x = strict_integer(validate=COORD, load_default=None, allow_none=True)
    viewport_y = strict_integer(validate=COORD, load_default=None, allow_none=True)
    screen_x = strict_integer(validate=COORD, load_default=None, allow_none=True)
    screen_y = strict_integer(validate=COORD, load_default=None, allow_none=True)
    scroll_x = strict_integer(validate=COORD, load_default=None, allow_none=True)
    scroll_y = strict_integer(validate=COORD, load_default=None, allow_none=True)
    input_value = bounded_text(1024, load_default=None)
    input_masked = StrictBoolean(load_default=None, allow_none=True)
    key_pressed = bounded_text(50, load_default=None)
    mouse_button = strict_integer(validate=validate.Range(min=0, max=4), load_default=None, allow_none=True)
    click_count = strict_integer(validate=validate.Range(min=0, max=100), load_default=None, allow_none=True)
    event_data = fields.Dict(keys=fields.String(validate=validate.Length(max=100)),
                             validate=bounded_json, load_default=None, allow_none=True)


class TrackBatchSchema(StrictSchema, TokenInBodyMixin):
    session_id = fields.UUID(required=True)
    events = FastNestedList(fields.Nested(EventSchema), required=True,
                            validate=validate.Length(min=1, max=MAX_EVENTS_PER_BATCH))

    @validates_schema
    def _unique_seq(self, data, **kwargs):
        seqs = [event["seq"] for event in data.get("events", [])]
        if len(set(seqs)) != len(seqs):
            raise ValidationError("Each event in a batch needs its own seq.", "events")


MAX_SCREENSHOT_ELEMENTS = 500


class ScreenshotElementSchema(StrictSchema):
    """Where one element of the page was when the screenshot was taken (CSS px of the page)."""
    selector = bounded_text(1024, required=True, metadata={
        "description": "The element's selector, computed as the tracker's click events compute it."})
    x = strict_integer(required=True, validate=COORD)
    y = strict_integer(required=True, validate=COORD)
    width = strict_integer(required=True, validate=DIMENSION)
    height = strict_integer(required=True, validate=DIMENSION)


class ScreenshotSchema(StrictSchema, TokenInBodyMixin):
    session_id = fields.UUID(required=True)
    page_url = bounded_text(MAX_URL, load_default=None)
    timestamp = aware_timestamp(required=True)
    image_data = fields.String(required=True, metadata={
        "description": "data:image/(jpeg|png|webp);base64,... at most 10 MB decoded."})
    width = strict_integer(required=True, validate=validate.Range(min=1, max=20_000))
    height = strict_integer(required=True, validate=validate.Range(min=1, max=50_000))
    elements = fields.List(fields.Nested(ScreenshotElementSchema), load_default=None,
                           validate=validate.Length(max=MAX_SCREENSHOT_ELEMENTS), metadata={
        "description": "The page's clickable elements and where they were: heatmaps place a click "
                       "on its element (selector) at its offset inside it."})


SESSION_SORTS = ("started_at", "-started_at", "duration", "-duration", "event_count",
                 "-event_count", "last_activity_at", "-last_activity_at", "page_view_count",
                 "-page_view_count")


class SessionListQuerySchema(StrictSchema):
    limit = fields.Integer(load_default=20, validate=validate.Range(min=1, max=500))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=MAX_OFFSET))
    sort = fields.String(load_default="-started_at", validate=validate.OneOf(SESSION_SORTS))
    start = Instant(load_default=None, data_key="from")  # hindsight.timerange: 1970 to 9999
    end = Instant(load_default=None, data_key="to")
    user_id = fields.String(load_default=None, validate=validate.Length(max=255))
    device_type = fields.String(load_default=None, validate=validate.OneOf(DEVICE_TYPES))
    browser = fields.String(load_default=None, validate=validate.Length(max=100))
    os = fields.String(load_default=None, validate=validate.Length(max=100))
    page_url = fields.String(load_default=None, validate=validate.Length(min=1, max=MAX_URL),
                             metadata={"description": "Sessions that viewed a page whose URL contains this."})
    # Bounded: PostgreSQL's make_interval overflows (to a negative interval) past ~292,000 years.
    min_duration = fields.Float(load_default=None, validate=validate.Range(min=0, max=MAX_DURATION_SECONDS),
                                metadata={"description": "Minimum duration in seconds (at most 10 years)."})
    min_events = fields.Integer(load_default=None, validate=validate.Range(min=0, max=2**31 - 1))
    has_errors = fields.Boolean(load_default=None,
                                metadata={"description": "Only sessions with (true) or without (false) errors."})
    has_rage_clicks = fields.Boolean(load_default=None, metadata={
        "description": "Only sessions with (true) or without (false) rage clicks."})


class EventListQuerySchema(StrictSchema):
    limit = fields.Integer(load_default=1000, validate=validate.Range(min=1, max=10_000))
    offset = fields.Integer(load_default=0, validate=validate.Range(min=0, max=MAX_OFFSET))
