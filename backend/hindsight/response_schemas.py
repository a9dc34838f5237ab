"""The JSON the API answers with, as marshmallow schemas: the OpenAPI document's response
bodies (hindsight.openapi). Nothing serializes with them; tests/test_openapi_fuzz.py holds
every answer of a live server to them.

Each shape names every key the server sends (all required; `allow_none` where the value
may be null) and no other (`additionalProperties: false`): a key added to an answer
without being added here fails that test. Free-form parts (a session's `metadata`, the
health documents' sections) are objects without a fixed set of keys.
"""

from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate

OPTIONAL = "optional"  # metadata flag: a key sent only sometimes (said in its description)


class Shape(Schema):
    """A response body: every declared key is always sent (see `_require_keys`), and no other."""

    class Meta:
        unknown = RAISE  # apispec: additionalProperties: false


def _nullable(field: type[fields.Field], **kwargs) -> fields.Field:
    return field(allow_none=True, **kwargs)


class ErrorShape(Shape):
    """Every error (hindsight.errors): what went wrong, and which fields."""

    error = fields.String(metadata={"description": "The status' reason phrase, e.g. \"Bad Request\"."})
    description = fields.String(metadata={"description": "What went wrong, for a person."})
    fields = fields.Dict(metadata={  # type: ignore[assignment]  # the error shape's name for it
        "description": "Each invalid field with its messages (for a batch: "
                       "`{\"events\": {\"3\": {\"timestamp\": [...]}}}`); `{}` for other errors."})


class SessionCreatedShape(Shape):
    session_id = fields.UUID()
    started_at = fields.AwareDateTime()


class TrackResultShape(Shape):
    count = fields.Integer(metadata={"description": "Events newly stored (re-sent ones are not counted)."})
    received = fields.Integer(metadata={"description": "Events in the batch."})


class ScreenshotCreatedShape(Shape):
    screenshot_id = fields.Integer()


class ScreenshotWantedShape(Shape):
    wanted = fields.Boolean(metadata={"description": "false: the account has a fresh screenshot of this "
                                                     "page and device class; take none."})
    known = fields.Boolean(metadata={"description": "false: no such session (yet: tracker.js creates it "
                                                    "with its first batch); ask again after that."})


class SessionShape(Shape):
    session_id = fields.UUID()
    host = fields.String(metadata={"description": "The registered domain the session was recorded on."})
    user_id = _nullable(fields.String)
    started_at = fields.AwareDateTime()
    ended_at = _nullable(fields.AwareDateTime)
    last_activity_at = fields.AwareDateTime()
    duration_seconds = fields.Float(metadata={"description": "last_activity_at - started_at."})
    page_url = _nullable(fields.String)
    referrer = _nullable(fields.String)
    user_agent = _nullable(fields.String)
    screen_width = _nullable(fields.Integer)
    screen_height = _nullable(fields.Integer)
    viewport_width = _nullable(fields.Integer)
    viewport_height = _nullable(fields.Integer)
    device_type = _nullable(fields.String)
    browser = _nullable(fields.String)
    os = _nullable(fields.String)
    language = _nullable(fields.String)
    timezone = _nullable(fields.String)
    metadata = fields.Dict()
    event_count = fields.Integer()
    page_view_count = fields.Integer()
    click_count = fields.Integer()
    error_count = fields.Integer()
    rage_click_count = fields.Integer()
    screenshot_count = fields.Integer()


class _PageShape(Shape):
    total = fields.Integer()
    limit = fields.Integer()
    offset = fields.Integer()


class SessionListShape(_PageShape):
    data = fields.List(fields.Nested(SessionShape))


class StoredEventShape(Shape):
    seq = fields.Integer()
    timestamp = fields.AwareDateTime()
    event_type = fields.String()
    page_url = _nullable(fields.String)
    target_element = _nullable(fields.String)
    target_selector = _nullable(fields.String)
    target_tag = _nullable(fields.String)
    target_id = _nullable(fields.String)
    target_class = _nullable(fields.String)
    viewport_x = _nullable(fields.Integer)
    viewport_y = _nullable(fields.Integer)
    screen_x = _nullable(fields.Integer)
    screen_y = _nullable(fields.Integer)
    scroll_x = _nullable(fields.Integer)
    scroll_y = _nullable(fields.Integer)
    input_value = _nullable(fields.String)
    input_masked = _nullable(fields.Boolean)
    key_pressed = _nullable(fields.String)
    mouse_button = _nullable(fields.Integer)
    click_count = _nullable(fields.Integer)
    event_data = _nullable(fields.Dict)


class EventListShape(_PageShape):
    data = fields.List(fields.Nested(StoredEventShape))


class ScreenshotInfoShape(Shape):
    screenshot_id = fields.Integer()
    url = fields.String(metadata={"description": "Where the image is: /api/v1/screenshots/{screenshot_id}."})
    page_url = _nullable(fields.String)
    timestamp = fields.AwareDateTime()
    width = fields.Integer()
    height = fields.Integer()
    image_format = fields.String(validate=validate.OneOf(("jpeg", "png", "webp")))
    file_size = fields.Integer(metadata={"description": "Bytes."})
    content_hash = fields.String(metadata={"description": "SHA-256 of the image, hex (the ETag)."})


class ScreenshotListShape(Shape):
    data = fields.List(fields.Nested(ScreenshotInfoShape))
    total = fields.Integer()


class WidgetShape(Shape):
    widget_id = fields.UUID()
    type = fields.String()
    token = fields.String(metadata={"description": "Widget JWT (RS256), for "
                                                  "/site/widget/{widget_id}/account_statistics."})
    expires_at = fields.AwareDateTime()


class WidgetsShape(Shape):
    account_id = fields.UUID()
    domain = fields.String(metadata={"description": "The registered domain that covers the Origin."})
    widgets = fields.List(fields.Nested(WidgetShape))


class StatisticsTokenShape(Shape):
    token = fields.UUID()
    expires_at = fields.AwareDateTime()
    host = fields.String()


class InternalTokenShape(StatisticsTokenShape):
    account_id = fields.UUID()


class SeedEventStoredShape(Shape):
    count = fields.Integer(metadata={"description": "1 when stored now, 0 when it already was."})
    session_id = fields.UUID()
    event_type = fields.String(metadata={"description": "The event type it was stored as."})


class _RangeShape(Shape):
    start = fields.AwareDateTime(data_key="from", metadata={"description": "Start of the range covered."})
    end = fields.AwareDateTime(data_key="to", metadata={"description": "End (exclusive) of the range covered."})


class SeriesPointShape(Shape):
    bucket = fields.AwareDateTime()
    events = fields.Integer()
    sessions = fields.Integer()
    page_views = fields.Integer()
    clicks = fields.Integer()
    errors = fields.Integer()
    visitors = fields.Integer(metadata={"description": "Unique visitors with a session started in the bucket."})
    bounces = fields.Integer(metadata={"description": "Sessions started in the bucket with at most one page view."})


class SeriesShape(_RangeShape):
    interval = fields.String(validate=validate.OneOf(("hour", "day")))
    data = fields.List(fields.Nested(SeriesPointShape), metadata={"description": "One per bucket, zeros included."})


class EventTypeCountShape(Shape):
    event_type = fields.String()
    events = fields.Integer()


class EventTypesShape(_RangeShape):
    data = fields.List(fields.Nested(EventTypeCountShape))


class _PageVisitsFields(Shape):
    visitors = fields.Integer(metadata={"description": "Unique visitors who viewed the page."})
    avg_time_on_page_s = _nullable(fields.Float, metadata={
        "description": "Seconds to the session's next page view (its last activity after its last page "
                       "view), each gap at most 30 minutes; null without page views."})
    entries = fields.Integer(metadata={"description": "Sessions that started on the page."})
    bounces = fields.Integer(metadata={"description": "Of those, the sessions with at most one page view."})
    bounce_rate = _nullable(fields.Float, metadata={"description": "bounces / entries (null: no entries)."})
    exits = fields.Integer(metadata={"description": "Page views that were their session's last."})
    exit_rate = _nullable(fields.Float, metadata={"description": "exits / page views (null: no page views)."})


class PageCountShape(_PageVisitsFields):
    host = fields.String()
    path = fields.String()
    page_views = fields.Integer()
    clicks = fields.Integer()
    errors = fields.Integer()


class PageVisitsShape(_PageVisitsFields):
    host = fields.String()
    path = fields.String()
    page_views = fields.Integer()


class PageVisitsListShape(_RangeShape):
    data = fields.List(fields.Nested(PageVisitsShape))


class VisitorsShape(_RangeShape):
    visitors = fields.Integer(metadata={"description": "Unique visitors of the sessions started in the range."})
    sessions = fields.Integer()
    bounces = fields.Integer(metadata={"description": "Sessions with at most one page view."})
    bounce_rate = _nullable(fields.Float, metadata={"description": "bounces / sessions (null: no sessions)."})
    avg_session_duration_s = _nullable(fields.Float, metadata={
        "description": "Mean of last activity - start, in seconds."})
    pages_per_session = _nullable(fields.Float)


class TopPagesShape(_RangeShape):
    data = fields.List(fields.Nested(PageCountShape))


class BreakdownRowShape(Shape):
    value = _nullable(fields.String, metadata={"description": "null: unknown (or, for referrers, direct)."})
    sessions = fields.Integer()
    visitors = fields.Integer(metadata={"description": "Unique visitors of those sessions."})


class BreakdownShape(_RangeShape):
    dimension = fields.String(validate=validate.OneOf(("referrer", "device_type", "browser", "os")))
    total = fields.Integer(metadata={"description": "Sessions started in the range."})
    data = fields.List(fields.Nested(BreakdownRowShape))


class HealthShape(Shape):
    status = fields.String(validate=validate.OneOf(("ok", "unavailable")))
    version = fields.String()
    database = fields.Dict(metadata={"description": "{reachable, migration_version} or {reachable: false, error}."})
    timescaledb = fields.Dict(metadata={OPTIONAL: True, "description": "{version, edition, compression}; "
                                                                      "not when the database is unreachable."})
    lifecycle = fields.Dict(metadata={OPTIONAL: True, "description": "Lifecycle jobs and roll-up freshness; "
                                                                    "not when the database is unreachable."})
    read_replica = fields.Dict(metadata={OPTIONAL: True, "description": (
        "HINDSIGHT_READ_DATABASE_URL: {configured, reads_on} and, with a replica, {reachable, "
        "error, in_recovery, lag_seconds, replayed_at, fallback_reads}; not when the database "
        "is unreachable.")})


class StacksHealthShape(Shape):
    status = fields.String(validate=validate.OneOf(("healthy", "degraded", "unhealthy")))
    timestamp = fields.AwareDateTime()
    uptime_seconds = fields.Float()
    statistics_server = fields.Dict()
    idle_monitor_statistics = fields.Dict()
    flush_statistics = fields.Dict()
    ledger = _nullable(fields.Dict, metadata={"description": "Pending ledger rows; null when the "
                                                             "database is unreachable."})
    health_score = fields.Float()
    version = fields.String()


class JwksShape(Shape):
    keys = fields.List(fields.Dict(), metadata={"description": "RSA public keys (kty, kid, alg, use, n, e)."})


def _require_keys(shape: type[Shape]) -> None:
    """Mark every key of `shape` and of its subclasses required, but those flagged OPTIONAL."""
    for field in shape._declared_fields.values():
        field.required = not field.metadata.get(OPTIONAL, False)
    for sub in shape.__subclasses__():
        _require_keys(sub)


_require_keys(Shape)
