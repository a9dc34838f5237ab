"""Every request's id, its log line and its metrics: the first middleware of the app.

- **Id**: a sane incoming `X-Request-Id` (printable ASCII without spaces, at most 128
  characters) is kept, anything else is ignored and a new id is generated; it is
  `req.context.request_id` for everything below and is echoed in the `X-Request-Id`
  response header, error responses included.
- **Log line**: one line per request on the `hindsight.requests` logger with the id,
  method, route template, status, duration and account (when a resource learned it:
  `note_account`); JSON when HINDSIGHT_LOG_FORMAT=json (hindsight.observe.logs).
- **Metrics**: the request's latency and body bytes (hindsight.metrics, plain Python).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

import falcon

from . import metrics
from .observe import warnings
from .observe.service import Observer
from .observe.traces import start_trace

HEADER = "X-Request-Id"
MAX_LENGTH = 128
_SANE = re.compile(r"[\x21-\x7e]{1,128}")  # MAX_LENGTH
UNMATCHED = "(unmatched)"

log = logging.getLogger("hindsight.requests")


def new_request_id() -> str:
    return uuid.uuid4().hex


def sane_request_id(value: str | None) -> str | None:
    """`value` when it is a usable request id (printable ASCII, no spaces, 1..128 chars)."""
    if value is None or not _SANE.fullmatch(value):
        return None
    return value


def request_id(req: falcon.Request) -> str:
    """The request's id (one is made when the middleware did not run, as in unit tests)."""
    rid = getattr(req.context, "request_id", None)
    if rid is None:
        rid = req.context.request_id = new_request_id()
    return rid


def note_account(req: falcon.Request, account_id: Any) -> None:
    """The account this request acts for, once known: it goes into the request's log line."""
    if account_id is not None:
        req.context.account_id = str(account_id)


# Writes from sites: their refusals are ingestion warnings and counted by reason.
WRITE_PATHS = frozenset({"/api/v1/track", "/api/v1/track/screenshot", "/api/v1/track/recording",
                         "/api/v1/sessions", "/api/sessions/add", "/api/pages/add", "/api/events/add",
                         "/api/referrers/add"})
# Batches whose stages are traced (resources/track.py marks them; the seed's one-event
# batches are not traced).
TRACED_PATHS = frozenset({"/api/v1/track"})


# Refusals that come after the resource read the body: only then may its token be looked
# at (a 413, 411, 415 or 429 is refused before a byte of the body is read, and stays so).
BODY_READ = frozenset({400, 401, 403, 404})


def _token(req: falcon.Request, status: int) -> uuid.UUID | None:
    """The statistics token a refused write carried (header, else the body when it was
    parsed), only to learn whose warning it is."""
    header = req.get_header("Authorization") or ""
    scheme, _, value = header.partition(" ")
    raw: Any = value.strip() if scheme.lower() == "bearer" else None
    if raw is None and status in BODY_READ and req.path == "/api/v1/track/recording":
        raw = req.get_param("token")   # a segment's upload carries it in the query (tracker.js)
    if raw is None and status in BODY_READ:
        try:
            media = req.get_media(default_when_empty=None)
        except Exception:  # not JSON, or never read: no token to learn
            media = None
        raw = media.get("token") if isinstance(media, dict) else None
    try:
        return uuid.UUID(str(raw)) if raw else None
    except ValueError:
        return None


class RequestObserver:
    """Request id, one log line and the request metrics for every request; for refused
    writes the rejection metric and the account's ingestion warning; for event batches
    their pipeline trace (hindsight.observe)."""

    def __init__(self, observer: Observer | None = None) -> None:
        self._observer = observer

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.started = time.perf_counter()
        rid = sane_request_id(req.get_header(HEADER)) or new_request_id()
        req.context.request_id = rid
        resp.set_header(HEADER, rid)
        if (self._observer is not None and self._observer.traces_enabled and req.method == "POST"
                and req.path in TRACED_PATHS):
            req.context.trace = start_trace(rid, req.path)

    def process_response(self, req: falcon.Request, resp: falcon.Response,
                         resource: object, req_succeeded: bool) -> None:
        rid = request_id(req)
        resp.set_header(HEADER, rid)  # an error response may have been composed anew
        started = getattr(req.context, "started", None)
        finished = time.perf_counter()
        seconds = finished - started if started is not None else 0.0
        route = req.uri_template or UNMATCHED
        status = resp.status_code
        account = getattr(req.context, "account_id", None)
        metrics.observe_request(req.method, route, status, seconds, req.content_length or 0)
        error = None
        if status >= 400 and req.method in ("POST", "PUT") and req.path in WRITE_PATHS:
            error = self._refused(req, resp, rid, route, status)
        trace = getattr(req.context, "trace", None)
        if account is None and trace is not None and trace.account_id is not None:
            account = str(trace.account_id)
        if trace is not None and self._observer is not None:
            if trace.account_id is None and status >= 400:
                trace.token = _token(req, status)
            self._observer.traces.add(trace.row(status, error, finished))
        if log.isEnabledFor(logging.INFO):
            log.info("%s %s %s %d %.1fms account=%s", rid, req.method, route, status, seconds * 1000,
                     account or "-",
                     extra={"request": {"request_id": rid, "method": req.method, "route": route,
                                        "path": req.path, "status": status,
                                        "duration_ms": round(seconds * 1000, 3), "account_id": account}})

    def _refused(self, req: falcon.Request, resp: falcon.Response, rid: str, route: str,
                 status: int) -> str:
        media = resp.media if isinstance(resp.media, dict) else {}
        description = str(media.get("description") or "")
        fields = media.get("fields") if isinstance(media.get("fields"), dict) else {}
        reason = warnings.classify(status, description, fields)
        metrics.rejected(status, reason)
        if self._observer is not None and status < 500:
            sample: dict[str, Any] = {"route": route, "request_id": rid, "description": description[:300]}
            if fields:
                sample["fields"] = warnings.field_names(fields)
            account = getattr(req.context, "account_id", None)
            token = None if account else _token(req, status)
            self._observer.warnings.record(status=status, reason=reason, token=token,
                                           account_id=uuid.UUID(account) if account else None,
                                           sample=sample)
        return f"{status} {reason}: {description[:200]}"
