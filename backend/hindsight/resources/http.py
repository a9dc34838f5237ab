"""What resources read from a request: its credential, its body, its query, the page
and the address it comes from. The rest of a write is hindsight.ingestion's.
"""

from __future__ import annotations

import uuid
from typing import Any

import falcon
from marshmallow import Schema

from ..db import Conn
from ..errors import bad_request, unauthorized
from ..hosts import hostname_of
from ..ingestion import decode
from ..ingestion.authorize import Sender
from ..principals import Analyst, hash_api_key
from ..queries.tenancy import live_api_key
from ..settings import Settings


def bearer(req: falcon.Request) -> str | None:
    header = req.get_header("Authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise unauthorized("The Authorization header must be 'Bearer <token>'.")
    return value.strip()


def statistics_token(req: falcon.Request, body_token: uuid.UUID | None) -> uuid.UUID:
    """The statistics token from the Authorization header or, for sendBeacon, the body."""
    raw = bearer(req)
    if raw is None:
        if body_token is None:
            raise unauthorized("A statistics token is required (Authorization: Bearer <token>).")
        return body_token
    try:
        return uuid.UUID(raw)
    except ValueError as ex:
        raise unauthorized("The statistics token is not a valid token.") from ex


def requesting_host(req: falcon.Request) -> str | None:
    """The host of the page that made the request: Origin, else Referer."""
    return hostname_of(req.get_header("Origin")) or hostname_of(req.get_header("Referer"))


def sender(req: falcon.Request, body_token: uuid.UUID | None,
           claimed_account: uuid.UUID | None = None) -> Sender:
    """Who sends this write: the token, and the page's host when a browser sent it (a
    request with an Origin; '' when no host can be read from it or the Referer)."""
    origin_host = (requesting_host(req) or "") if req.get_header("Origin") else None
    return Sender(statistics_token(req, body_token), origin_host, claimed_account)


def accept_origin(req: falcon.Request) -> None:
    """The write was accepted: let the page that sent it read the answer (CORS)."""
    origin = req.get_header("Origin")
    if origin:
        req.context.cors_origin = origin


def analyst(req: falcon.Request, conn: Conn) -> Analyst:
    """The analyst behind the request's API key, or 401."""
    key = bearer(req)
    if key is None:
        raise unauthorized("An analyst API key is required (Authorization: Bearer <key>).")
    row = live_api_key(conn, hash_api_key(key))
    if row is None:
        raise unauthorized("Unknown or revoked API key.")
    req.context.account_id = str(row["account_id"])  # for the request's log line (request_ids)
    return Analyst(row["account_id"], row["key_id"])


def client_ip(req: falcon.Request, settings: Settings) -> str:
    """The client's address: the first of X-Forwarded-For behind a trusted proxy."""
    if settings.trust_forwarded_for:
        forwarded = req.get_header("X-Forwarded-For")
        if forwarded:
            return forwarded.split(",")[0].strip()
    return req.remote_addr or ""


EMPTY_BODY = "The request body is empty; send a JSON object."


def parsed_body(req: falcon.Request) -> Any:
    """The body as parsed by the app's JSON media handler (`req.get_media()`; app.py installs
    it for application/json and sendBeacon's text/plain; the middleware checked the size and
    type before it was read), or 400: empty, not JSON, nested too deeply."""
    if not req.content_length:  # empty: no media type to consult
        raise bad_request(EMPTY_BODY)
    try:
        return req.get_media()
    except falcon.MediaNotFoundError as ex:  # a body shorter than its Content-Length
        raise bad_request(EMPTY_BODY) from ex
    except falcon.MediaMalformedError as ex:  # the parser's own words, e.g. "Expecting value: ..."
        raise bad_request(f"The request body is not valid JSON: {ex.__cause__}.") from ex
    except RecursionError as ex:
        raise bad_request("The request body is nested too deeply.") from ex


def json_body(req: falcon.Request, schema: Schema) -> dict[str, Any]:
    """The body, parsed (`parsed_body`) and validated (hindsight.ingestion.decode)."""
    return decode.json_object(parsed_body(req), schema)


def load_query(req: falcon.Request, schema: Schema) -> dict[str, Any]:
    params = dict(req.params)
    # PostgreSQL text cannot hold NUL: name the parameter instead of failing in the database.
    bad = sorted(k for k, v in params.items() if "\x00" in (v if isinstance(v, str) else "".join(v)))
    if bad:
        raise bad_request("Query parameters cannot contain NUL characters.",
                          {k: ["Contains a NUL character."] for k in bad})
    return schema.load(params)
