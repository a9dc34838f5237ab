"""The time window of writes: one rule for every endpoint that stores a timestamp.

A timestamp more than `MAX_FUTURE` ahead of the server's clock, or more than `MAX_PAST`
behind it, is refused with a 400 naming the field; inside the window it is stored as
given (never clamped). An offline tracker delivers late, but not years late: older is a
broken clock, and a 1900-era timestamp would make the hypertable a chunk for it (issue 9:
100 such requests took `events` from 4 to 104 chunks). Retention decides what is kept.

Used by POST /api/v1/track, /api/v1/track/screenshot, /api/v1/sessions (`started_at`),
and the seed's /api/sessions/add, /api/pages/add, /api/events/add, /api/referrers/add.
A new write endpoint calls `check_window(timestamp, now, "field")` after validating its body.

Refusals are marshmallow `ValidationError`s (the schema layer's), which the API answers
as its 400 with `fields` (hindsight.errors).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any

from marshmallow import ValidationError

MAX_FUTURE = timedelta(hours=1)
MAX_PAST = timedelta(days=366)

IN_THE_FUTURE = "More than an hour in the future."
TOO_OLD = "More than a year old."


def window_problem(timestamp: datetime, now: datetime) -> str | None:
    """Why `timestamp` is outside the window around `now`; None when it is inside."""
    if timestamp > now + MAX_FUTURE:
        return IN_THE_FUTURE
    if timestamp < now - MAX_PAST:
        return TOO_OLD
    return None


def check_window(timestamp: datetime, now: datetime, field: str = "timestamp") -> None:
    """Refuse `timestamp` (the body's `field`) unless it is inside the window around `now`."""
    problem = window_problem(timestamp, now)
    if problem is not None:
        raise ValidationError({field: [problem]})


def check_each_in_window(items: Iterable[Mapping[str, Any]], now: datetime, field: str = "events",
                         key: str = "timestamp") -> None:
    """The same for a list (a batch's events): the errors name each item by its index."""
    problems = {}
    for i, item in enumerate(items):
        problem = window_problem(item[key], now)
        if problem is not None:
            problems[str(i)] = {key: [problem]}
    if problems:
        raise ValidationError({field: problems})
