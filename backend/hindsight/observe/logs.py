"""The service's log lines: plain text, or one JSON object a line (HINDSIGHT_LOG_FORMAT=json).

Every line has its time, process, level, logger and message; the per-request line of
hindsight.request_ids also carries its fields (`request_id`, `method`, `route`, `path`,
`status`, `duration_ms`, `account_id`) as keys of the JSON object.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

TEXT_FORMAT = "%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"
FORMATS = ("text", "json")


class JsonFormatter(logging.Formatter):
    """A record as one JSON object (stdlib json; no field is ever a multi-line string
    without escaping, so one record is one line)."""

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "pid": record.process,
            "message": record.getMessage(),
        }
        request = getattr(record, "request", None)
        if isinstance(request, dict):
            line.update(request)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, separators=(",", ":"))


def configure(level: str, fmt: str) -> None:
    """Set up the root logger once (gunicorn's worker, `hindsight` commands)."""
    if fmt not in FORMATS:
        raise SystemExit(f"HINDSIGHT_LOG_FORMAT: {fmt!r} is not one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler()
    handler.setFormatter(JsonFormatter() if fmt == "json" else logging.Formatter(TEXT_FORMAT))
    logging.basicConfig(level=level.upper(), handlers=[handler])
