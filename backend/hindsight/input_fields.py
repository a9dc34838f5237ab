"""The building blocks of input fields: text PostgreSQL can store, JSON of bounded size,
strict integers and booleans for JSON bodies, timestamps that carry a zone.

Used by the API's schemas (hindsight.schemas) and the seed's (hindsight.seed.schemas).
"""

from __future__ import annotations

import json
from datetime import UTC
from typing import Any

from marshmallow import ValidationError, fields, validate

MAX_JSON_FIELD_BYTES = 16 * 1024


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


def bounded_json(value: dict) -> None:
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


def bounded_text(max_len: int, **kwargs) -> fields.String:
    return fields.String(validate=[validate.Length(max=max_len), storable_text], allow_none=True,
                         **kwargs)


def aware_timestamp(**kwargs) -> fields.AwareDateTime:
    return fields.AwareDateTime(default_timezone=UTC, **kwargs)


def strict_integer(**kwargs) -> fields.Integer:
    """An integer of a JSON body: a JSON integer only (1.9, "12" and true are refused)."""
    return fields.Integer(strict=True, **kwargs)


class StrictBoolean(fields.Boolean):
    """A boolean of a JSON body: `true` or `false` only ("yes", 1 and "true" are refused)."""

    def _deserialize(self, value, attr, data, **kwargs) -> bool:
        if value is True or value is False:
            return value
        raise self.make_error("invalid", input=value)
