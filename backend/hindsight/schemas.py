"""Marshmallow schemas for every input the API accepts.

Every field is bounded (length, range or enum) so that nothing unbounded reaches
the database. Unknown fields are rejected, which names typos back to the client.

Event batches are the hot path (every tracker flush is one), so the list of events
is validated by `FastNestedList`: a loader compiled once from `EventSchema`'s own
fields and validators accepts the common, well-formed event in a few microseconds;
anything it is not sure about (a wrong type, a value out of bounds, an unknown or
missing field, a lenient conversion such as "12" -> 12) goes to marshmallow itself,
which then decides and names the errors exactly as before.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, missing, validate, validates_schema

MAX_EVENTS_PER_BATCH = 100
MAX_JSON_FIELD_BYTES = 16 * 1024
MAX_URL = 2048
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


def storable_text(value: str) -> None:
    """PostgreSQL text holds neither NUL nor unpaired surrogates (which are not UTF-8);
    both parse from JSON ("\\u0000", "\\ud800"), so refuse them here, naming the field."""
    if "\x00" in value:
        raise ValidationError("Must not contain NUL characters.")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValidationError("Must be valid Unicode (no unpaired surrogates).") from None


def _bounded_json(value: dict) -> None:
    try:
        text = json.dumps(value, separators=(",", ":"), allow_nan=False)
    except ValueError:
        raise ValidationError("Must not contain NaN or Infinity (not JSON).") from None
    except RecursionError:
        raise ValidationError("Nested too deeply.") from None
    if len(text) > MAX_JSON_FIELD_BYTES:
        raise ValidationError(f"Must serialize to at most {MAX_JSON_FIELD_BYTES} bytes of JSON.")
    # NUL and surrogates (paired ones too: non-BMP characters) are escaped as \\u0000 and
    # \\udXXX; only then look at every string (PostgreSQL's jsonb refuses what
    # `storable_text` refuses).
    if "\\u0000" in text or "\\ud" in text:
        todo: list[Any] = [value]
        while todo:
            item = todo.pop()
            if isinstance(item, str):
                storable_text(item)
            elif isinstance(item, dict):
                todo.extend(item.keys())
                todo.extend(item.values())
            elif isinstance(item, list):
                todo.extend(item)


def _text(max_len: int, **kwargs) -> fields.String:
    return fields.String(validate=[validate.Length(max=max_len), storable_text], allow_none=True,
                         **kwargs)


def _timestamp(**kwargs) -> fields.AwareDateTime:
    return fields.AwareDateTime(default_timezone=UTC, **kwargs)


class _Declined(Exception):
    """The fast path is not sure about a value: marshmallow decides (and words the errors)."""


_DECLINED = _Declined()
_Check = Callable[[Any], Any]


def _predicate(validator) -> Callable[[Any], bool]:
    """A validator as a plain test (True: valid) with its bounds bound at compile time."""
    if isinstance(validator, validate.Range):
        lo, hi, lo_inc, hi_inc = validator.min, validator.max, validator.min_inclusive, validator.max_inclusive
        if lo is not None and hi is not None and lo_inc and hi_inc:
            return lambda v: lo <= v <= hi
        return lambda v: ((lo is None or (v >= lo if lo_inc else v > lo))
                          and (hi is None or (v <= hi if hi_inc else v < hi)))
    if isinstance(validator, validate.Length):
        lo, hi, eq = validator.min, validator.max, validator.equal
        if eq is not None:
            return lambda v: len(v) == eq
        return lambda v: (lo is None or len(v) >= lo) and (hi is None or len(v) <= hi)
    if isinstance(validator, validate.Regexp):
        match = validator.regex.match
        return lambda v: match(v) is not None
    if isinstance(validator, validate.OneOf):
        choices = frozenset(validator.choices)
        return lambda v: v in choices

    def call(v) -> bool:  # any other validator: run it, as marshmallow would
        try:
            return validator(v) is not False
        except ValidationError:
            return False

    return call


def _converter(field: fields.Field) -> _Check | None:
    """Accept only the plain JSON type a field takes as is; None: no fast path for it."""
    kind = type(field)
    if kind is fields.Integer:
        def integer(v):
            if type(v) is not int:  # not bool, float or "12": marshmallow's call
                raise _DECLINED
            return v
        return integer
    if kind is fields.String:
        def string(v):
            if type(v) is not str:
                raise _DECLINED
            return v
        return string
    if kind is fields.Boolean:
        def boolean(v):
            if v is not True and v is not False:  # "true", 1, ... : marshmallow's call
                raise _DECLINED
            return v
        return boolean
    if (kind is fields.AwareDateTime and isinstance(field, fields.AwareDateTime)
            and field.format in (None, "iso", "iso8601") and field.default_timezone is not None):
        tz = field.default_timezone
        parse = datetime.fromisoformat  # what marshmallow uses for "iso"

        def aware(v):
            if type(v) is not str:
                raise _DECLINED
            try:
                ts = parse(v)
            except ValueError:
                raise _DECLINED from None
            if ts.tzinfo is None or ts.utcoffset() is None:
                ts = ts.replace(tzinfo=tz)
            return ts
        return aware
    if kind is fields.Dict and isinstance(field, fields.Dict) and field.value_field is None:
        key_check = _field_check(field.key_field) if field.key_field is not None else None
        if field.key_field is not None and key_check is None:
            return None

        def mapping(v):
            if type(v) is not dict:
                raise _DECLINED
            if key_check is not None:
                for k in v:
                    key_check(k)
            return dict(v)
        return mapping
    return None


def _special_check(field: fields.Field) -> _Check | None:
    """One closure for the commonest fields (a bounded integer; a string of bounded length,
    storable or not): the same checks as `_field_check` builds, with fewer calls per value."""
    kind, validators, allow_none = type(field), list(field.validators), field.allow_none
    if kind is fields.Integer and len(validators) == 1:
        (validator,) = validators
        if (isinstance(validator, validate.Range) and validator.min is not None
                and validator.max is not None and validator.min_inclusive and validator.max_inclusive):
            lo, hi = validator.min, validator.max

            def integer(v):
                if type(v) is int and lo <= v <= hi:
                    return v
                if v is None and allow_none:
                    return None
                raise _DECLINED
            return integer
        return None
    if kind is fields.String and validators and isinstance(validators[0], validate.Length):
        length, rest = validators[0], validators[1:]
        if (length.equal is not None or length.min or length.max is None
                or rest not in ([], [storable_text])):
            return None
        hi, storable = length.max, bool(rest)

        def text(v):
            if type(v) is str and len(v) <= hi:
                if not storable or ("\x00" not in v and (v.isascii() or _is_utf8(v))):
                    return v
            elif v is None and allow_none:
                return None
            raise _DECLINED
        return text
    return None


def _is_utf8(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _field_check(field: fields.Field) -> _Check | None:
    """The whole of `field.deserialize` for the values the fast path takes; None: none of it."""
    if field.pre_load or field.post_load:
        return None
    special = _special_check(field)
    if special is not None:
        return special
    convert = _converter(field)
    if convert is None:
        return None
    tests = tuple(_predicate(v) for v in field.validators)
    allow_none = field.allow_none
    if len(tests) == 1:
        test = tests[0]

        def check(v):
            if v is None:
                if allow_none:
                    return None
                raise _DECLINED
            out = convert(v)
            if not test(out):
                raise _DECLINED
            return out
    else:
        def check(v):
            if v is None:
                if allow_none:
                    return None
                raise _DECLINED
            out = convert(v)
            for test in tests:
                if not test(out):
                    raise _DECLINED
            return out
    return check


def compile_loader(schema: Schema) -> Callable[[Any], dict[str, Any]] | None:
    """A fast `schema.load` for well-formed input that raises `_Declined` on anything else.

    Built from the schema's own fields and validators, so a bound changed there changes
    here. Returns None (always use marshmallow) when the schema has hooks, or does not
    reject unknown fields: cases it does not reproduce.
    """
    if schema.unknown != RAISE or any(schema._hooks.values()):
        return None
    checks: dict[str, tuple[str, _Check]] = {}
    template: dict[str, Any] = {}
    callables: list[tuple[str, Callable[[], Any]]] = []
    required: set[str] = set()
    for name, field in schema.load_fields.items():
        key = field.data_key if field.data_key is not None else name
        attr = field.attribute or name
        check = _field_check(field)
        if check is None:
            def check(v, _d=_DECLINED):
                raise _d
        checks[key] = (attr, check)
        if field.required:
            required.add(key)
        elif field.load_default is not missing:
            if callable(field.load_default):
                callables.append((attr, field.load_default))
            else:
                template[attr] = field.load_default
    required_keys = frozenset(required)
    get = checks.get

    def load(item: Any) -> dict[str, Any]:
        if type(item) is not dict or not required_keys <= item.keys():
            raise _DECLINED
        out = template.copy()
        for attr, default in callables:
            out[attr] = default()
        for key, value in item.items():
            found = get(key)
            if found is None:  # unknown field
                raise _DECLINED
            out[found[0]] = found[1](value)
        return out

    return load


class FastNestedList(fields.List):
    """`fields.List(fields.Nested(S))` that loads well-formed items without marshmallow's
    per-field machinery (see `compile_loader`); any doubt, and the whole list goes
    through `fields.List` itself, so errors are the same, e.g. {"3": {"timestamp": [...]}}.
    """

    def __init__(self, inner: fields.Nested, **kwargs) -> None:
        super().__init__(inner, **kwargs)
        self._loader: Callable[[Any], dict[str, Any]] | None | bool = False

    def _fast_loader(self):
        if self._loader is False:
            inner = self.inner
            self._loader = (compile_loader(inner.schema)
                            if isinstance(inner, fields.Nested) and not inner.many else None)
        return self._loader

    def _deserialize(self, value, attr, data, **kwargs):
        load = self._fast_loader()
        if load is not None and type(value) is list:
            try:
                return [load(item) for item in value]
            except _Declined:
                pass
        return super()._deserialize(value, attr, data, **kwargs)


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
    events = FastNestedList(fields.Nested(EventSchema), required=True,
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
                 "-event_count", "last_activity_at", "-last_activity_at", "page_view_count",
                 "-page_view_count")


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
    has_errors = fields.Boolean(load_default=None,
                                metadata={"description": "Only sessions with (true) or without (false) errors."})
    has_rage_clicks = fields.Boolean(load_default=None, metadata={
        "description": "Only sessions with (true) or without (false) rage clicks."})


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
    fields = fields.Dict()  # type: ignore[assignment]  # the error shape's name for it
