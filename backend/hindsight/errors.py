"""One error shape for the whole API: JSON `{error, description, fields}`.

Library errors are translated here, once, at the boundary. A 500 never echoes
internals; it is logged with the request path and is always a bug.
"""

from __future__ import annotations

import logging
from typing import Any

import falcon
import psycopg
from marshmallow import ValidationError
from psycopg_pool import PoolTimeout

from . import metrics
from .db import DatabaseUnavailable

log = logging.getLogger("hindsight.errors")

RETRY_AFTER_SECONDS = 5


class ApiError(falcon.HTTPError):
    """An HTTP error that may name the offending fields."""

    def __init__(self, status: str, title: str, description: str,
                 fields: dict[str, Any] | None = None, headers: dict[str, str] | None = None):
        super().__init__(status, title=title, description=description, headers=headers)
        self.fields = fields or {}


def bad_request(description: str, fields: dict[str, Any] | None = None) -> ApiError:
    return ApiError(falcon.HTTP_400, "Bad Request", description, fields)


def unauthorized(description: str) -> ApiError:
    return ApiError(falcon.HTTP_401, "Unauthorized", description,
                    headers={"WWW-Authenticate": "Bearer"})


def forbidden(description: str) -> ApiError:
    return ApiError(falcon.HTTP_403, "Forbidden", description)


def not_found(description: str = "The requested resource does not exist.") -> ApiError:
    return ApiError(falcon.HTTP_404, "Not Found", description)


def conflict(description: str) -> ApiError:
    return ApiError(falcon.HTTP_409, "Conflict", description)


def payload_too_large(description: str) -> ApiError:
    return ApiError(falcon.HTTP_413, "Payload Too Large", description)


def request_timeout() -> ApiError:
    """The body did not arrive in time (raised by hindsight.worker, which then closes the connection)."""
    return ApiError(falcon.HTTP_408, "Request Timeout", "The request body did not arrive in time.")


def serialize_error(req: falcon.Request, resp: falcon.Response, exception: falcon.HTTPError) -> None:
    """Render every HTTPError as the one JSON error shape."""
    resp.content_type = falcon.MEDIA_JSON
    resp.media = {
        "error": exception.title,
        "description": exception.description or exception.title,
        "fields": getattr(exception, "fields", {}) or {},
    }


def _validation_error(req, resp, ex: ValidationError, params) -> None:
    messages = ex.messages if isinstance(ex.messages, dict) else {"_schema": ex.messages}
    names = ", ".join(sorted(str(k) for k in messages))
    raise bad_request(f"Invalid fields: {names}.", messages) from ex


def _database_unavailable(req, resp, ex: Exception, params) -> None:
    if isinstance(ex, PoolTimeout):
        metrics.POOL_TIMEOUTS.inc()
    log.warning("database unavailable on %s %s: %s", req.method, req.path, ex)
    raise ApiError(
        falcon.HTTP_503, "Service Unavailable",
        "The database is unreachable; the request may not have been stored. Retrying is safe.",
        headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
    ) from ex


def _unexpected(req, resp, ex: Exception, params) -> None:
    if isinstance(ex, falcon.HTTPError):
        raise ex
    log.exception("unhandled error on %s %s", req.method, req.path)
    raise ApiError(falcon.HTTP_500, "Internal Server Error",
                   "An unexpected error occurred; it has been logged.") from ex


def _is_connection_failure(ex: psycopg.Error) -> bool:
    # OperationalError covers lost connections and admin shutdowns; those are retryable.
    # It also covers SQLSTATE class 54 (a value past one of PostgreSQL's limits, e.g. an index
    # entry too large): the same request fails the same way again, so it is not "unreachable".
    if isinstance(ex, psycopg.errors.ProgramLimitExceeded):
        return False
    return isinstance(ex, (psycopg.OperationalError, psycopg.errors.AdminShutdown,
                           psycopg.errors.CannotConnectNow))


def _psycopg_error(req, resp, ex: psycopg.Error, params) -> None:
    if isinstance(ex, psycopg.errors.QueryCanceled):
        metrics.STATEMENT_TIMEOUTS.inc()
    if _is_connection_failure(ex):
        _database_unavailable(req, resp, ex, params)
    _unexpected(req, resp, ex, params)


def install(app: falcon.App) -> None:
    """Register the error serializer and handlers on `app`."""
    app.set_error_serializer(serialize_error)
    # Falcon picks the most specific handler for an exception's class.
    app.add_error_handler(Exception, _unexpected)
    app.add_error_handler(ValidationError, _validation_error)
    app.add_error_handler(psycopg.Error, _psycopg_error)
    app.add_error_handler(PoolTimeout, _database_unavailable)
    app.add_error_handler(DatabaseUnavailable, _database_unavailable)
