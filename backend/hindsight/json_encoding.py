"""The one JSON encoder of every answer (the API's media handler and the dashboard's JSON
twins) and of the event batches sent to the database.

Database values become JSON here: datetimes and dates as ISO 8601, UUIDs as strings,
`numeric` (Decimal) as numbers, `bytea` as hex. Compact separators.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from typing import Any


def default(value: Any) -> Any:
    """What `json` cannot encode by itself."""
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


# Built once: json.dumps with keyword arguments would build an encoder per call.
dumps = json.JSONEncoder(default=default, separators=(",", ":")).encode
