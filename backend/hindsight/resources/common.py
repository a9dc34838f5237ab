"""Helpers shared by resources: reading JSON bodies and authorizing site writes."""

from __future__ import annotations

import json
import uuid
from typing import Any

import falcon
from marshmallow import Schema

from ..auth import SiteWriter, check_token_row, statistics_token
from ..db import Conn
from ..errors import bad_request, forbidden, not_found
from ..hosts import covers, requesting_host, strip_query
from ..queries.sessions import WRITER_AND_SESSION


def load_json(req: falcon.Request, schema: Schema) -> dict[str, Any]:
    """Parse the body as JSON (application/json or, for sendBeacon, text/plain) and validate it."""
    raw = req.bounded_stream.read()
    if not raw:
        raise bad_request("The request body is empty; send a JSON object.")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as ex:
        raise bad_request(f"The request body is not valid JSON: {ex}.") from ex
    except RecursionError as ex:
        raise bad_request("The request body is nested too deeply.") from ex
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return schema.load(body)


def load_query(req: falcon.Request, schema: Schema) -> dict[str, Any]:
    params = dict(req.params)
    # PostgreSQL text cannot hold NUL: name the parameter instead of failing in the database.
    bad = sorted(k for k, v in params.items() if "\x00" in (v if isinstance(v, str) else "".join(v)))
    if bad:
        raise bad_request("Query parameters cannot contain NUL characters.",
                          {k: ["Contains a NUL character."] for k in bad})
    return schema.load(params)


def authorize_write(conn: Conn, req: falcon.Request, body: dict[str, Any],
                    now, session_id: uuid.UUID | None) -> tuple[SiteWriter, bool]:
    """Return who writes (and whether the session is theirs); raise 401/403 otherwise.

    A browser's Origin must be covered by the token's host, so a token copied to
    another site is useless there.
    """
    token = statistics_token(req, body.get("token"))
    row = conn.execute(WRITER_AND_SESSION, {"token": token, "session_id": session_id}).fetchone()
    writer = check_token_row(row, token, now)
    assert row is not None  # check_token_row raised 401 otherwise
    origin = req.get_header("Origin")
    if origin:
        host = requesting_host(req)
        if host is None or not covers(writer.host, host):
            raise forbidden(f"This token writes for {writer.host}, not for this origin.")
        req.context.cors_origin = origin
    return writer, bool(row["session_found"])


def require_session(found: bool) -> None:
    if not found:
        raise not_found("No such session for this account; create it with POST /api/v1/sessions.")


def url_filter(writer: SiteWriter):
    return strip_query if writer.strip_query_strings else None
