"""Time ranges of read requests, in one place: the statistics API (/api/v1/stats/...) and
the dashboard's pages (overview, heatmaps, the sessions list) parse `from`, `to` and
`range` here, fill in the defaults here, and check the limits here.

Every check applies to the *effective* range, defaults filled in: `?from=1900-01-01`
alone is 1900 to now, which is more than `MAX_SPAN`, and is refused like the same
range given with both ends (issue 9: it used to answer 111 MB).

- An instant is ISO 8601; one without a zone is UTC. It must lie in
  [`EARLIEST`, `LATEST`]: nothing is recorded before 1970, and the ends of Python's
  calendar (years 1 and 9999) overflow when a default span is subtracted or a bucket
  is rounded up. Outside: a 400 naming the parameter, never an OverflowError.
- `to` defaults to now, `from` to `to` minus the endpoint's default span (never before
  `EARLIEST`); `from` must be before `to`.
- A range covers at most `MAX_SPAN` (the roll-ups keep two years); an hourly series at
  most `MAX_HOURLY_SPAN` (2,232 points).
- The dashboard's presets (`range=24h`...) are `PRESETS`: the span before `to` (or now).

Errors are marshmallow's `ValidationError` naming the parameter, which the API turns into
its 400 (errors.py) and the dashboard shows on the page.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from marshmallow import ValidationError, fields

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 1, 1, tzinfo=UTC)
MAX_SPAN = timedelta(days=800)          # the roll-ups keep 2 years
MAX_HOURLY_SPAN = timedelta(days=93)    # at most 2,232 points in an hourly series
PRESETS = {"1h": timedelta(hours=1), "24h": timedelta(days=1), "7d": timedelta(days=7),
           "30d": timedelta(days=30), "90d": timedelta(days=90)}

_CALENDAR = f"Must be between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d} (UTC)."


@dataclass(frozen=True)
class TimeRange:
    """[start, end) in UTC, and the preset it came from (None: from/to or the default)."""

    start: datetime
    end: datetime
    preset: str | None = None


class Instant(fields.AwareDateTime):
    """An ISO 8601 time (UTC when it names no zone), inside the calendar, returned in UTC."""

    default_error_messages = {"calendar": _CALENDAR}

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(default_timezone=UTC, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs) -> datetime:
        instant = super()._deserialize(value, attr, data, **kwargs)
        # Comparing aware datetimes cannot overflow; converting one out of range can.
        if not EARLIEST <= instant <= LATEST:
            raise self.make_error("calendar")
        return instant.astimezone(UTC)


def effective(start: datetime | None, end: datetime | None, now: datetime, *,
              default_span: timedelta, hourly: bool = False, preset: str | None = None) -> TimeRange:
    """The range asked for with its defaults filled in, checked; ValidationError otherwise.

    `start` and `end` come from `Instant` fields (inside the calendar, in UTC).
    """
    end = end if end is not None else now
    if start is None:
        start = max(end - default_span, EARLIEST)
    if start >= end:
        raise ValidationError({"from": ["`from` must be before `to`."]})
    if end - start > MAX_SPAN:
        raise ValidationError({"from": [f"At most {MAX_SPAN.days} days from `from` to `to` "
                                        "(`to` defaults to now)."]})
    if hourly and end - start > MAX_HOURLY_SPAN:
        raise ValidationError({"from": [f"An hourly series covers at most {MAX_HOURLY_SPAN.days} days "
                                        "(`to` defaults to now)."]})
    return TimeRange(start, end, preset)


_FROM, _TO = Instant(data_key="from"), Instant(data_key="to")


def instant(params: Mapping[str, Any], name: str) -> datetime | None:
    """The parameter `name` ("from" or "to") of a query, parsed; None when absent or empty."""
    value = params.get(name)
    if value is None or value == "":
        return None
    field = _FROM if name == "from" else _TO
    try:
        return field.deserialize(value)
    except ValidationError as ex:
        raise ValidationError({name: ex.messages}) from ex


def _preset(params: Mapping[str, Any]) -> str | None:
    value = params.get("range")
    return value if isinstance(value, str) and value in PRESETS else None


def dashboard_range(params: Mapping[str, Any], now: datetime, *, default_preset: str = "7d",
                    hourly: bool = False) -> TimeRange:
    """A dashboard page's range: `range` (a preset: that span before `to`, or before now),
    else `from`/`to`, else the default preset. An unknown preset is ignored (a link from
    an older page may carry one)."""
    preset = _preset(params)
    end = instant(params, "to")
    if preset is not None:
        return effective(None, end, now, default_span=PRESETS[preset], hourly=hourly, preset=preset)
    start = instant(params, "from")
    if start is None and end is None:
        return effective(None, None, now, default_span=PRESETS[default_preset], hourly=hourly,
                         preset=default_preset)
    return effective(start, end, now, default_span=PRESETS[default_preset], hourly=hourly)


def preset_start(params: Mapping[str, Any], now: datetime) -> datetime | None:
    """For a list filtered by time (no default range, no span limit): the start of the
    `range` preset, ending at `to` or now; None without a (known) preset."""
    preset = _preset(params)
    if preset is None:
        return None
    end = instant(params, "to") or now
    return max(end - PRESETS[preset], EARLIEST)
