"""Step 1 of every JSON write: the parsed body to a validated dict.

The size limits come first, before a byte is read (hindsight.middleware.RequestLimits:
413 over the limit, 411 without a length, 415 for another media type); then the body is
parsed by the app's JSON media handler (hindsight.resources.http.json_body: 400 when it is
empty, not JSON or nested too deeply). Here it must be one JSON object (400 otherwise)
that the endpoint's schema accepts (400 naming each field, hindsight.errors).
"""

from __future__ import annotations

from typing import Any

from marshmallow import Schema

from ..errors import bad_request


def json_object(body: Any, schema: Schema) -> dict[str, Any]:
    """Validate a parsed body (application/json, or text/plain from sendBeacon)."""
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return schema.load(body)
