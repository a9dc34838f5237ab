"""The seed's internal token API, authenticated with HINDSIGHT_INTERNAL_API_KEY (Bearer):

    POST   /api/token            a statistics token for account + host (the live one, or new)
    PUT    /api/token/{token}    extend its expiry (never shortens it)
    DELETE /api/token/{token}    revoke it (idempotent) and drop its stack

Tokens are issued like the site flow issues them (hindsight.ingestion.tokens).
"""

from __future__ import annotations

import hmac
import uuid
from datetime import timedelta
from typing import Any

import falcon

from ..errors import bad_request, conflict, forbidden, not_found, unauthorized
from ..ingestion import tokens
from ..queries import tokens as token_queries
from ..seed.schemas import MAX_TTL, TokenCreateSchema, TokenExtendSchema
from ..services import Services
from .http import bearer, json_body


def _internal(req: falcon.Request, services: Services) -> None:
    key = services.settings.internal_api_key
    if not key:
        raise forbidden("The internal API is disabled (HINDSIGHT_INTERNAL_API_KEY is not set).")
    given = bearer(req)
    if given is None or not hmac.compare_digest(given.encode(), key.encode()):
        raise unauthorized("The internal API needs Authorization: Bearer <internal API key>.")


def _token_json(row: dict) -> dict[str, Any]:
    return {"token": str(row["token"]), "account_id": str(row["account_id"]), "host": row["host"],
            "expires_at": row["expires_at"].isoformat()}


class TokenCollection:
    """POST /api/token: a statistics token for account + host (the live one, or a new one)."""

    schema = TokenCreateSchema()

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        _internal(req, self._s)
        body = json_body(req, self.schema)
        host = body["host"].strip().lower().rstrip(".")
        ttl = timedelta(seconds=body["ttl_seconds"] or self._s.settings.statistics_token_ttl_seconds)
        now = self._s.clock()
        with self._s.pool.connection() as conn, conn.transaction():
            domain = tokens.registered_domain(conn, body["account_id"], host)
            row = tokens.issue(conn, body["account_id"], domain, now, ttl)
        # The seed starts an (empty) stack for a new token.
        self._s.stacks.token_issued(body["account_id"], domain, row["token"])
        resp.status = falcon.HTTP_201
        resp.media = _token_json({**row, "account_id": body["account_id"], "host": domain})


class TokenItem:
    """PUT /api/token/{token} (extend its expiry), DELETE /api/token/{token} (revoke it)."""

    schema = TokenExtendSchema()

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_put(self, req: falcon.Request, resp: falcon.Response, token: uuid.UUID) -> None:
        _internal(req, self._s)
        body = json_body(req, self.schema) if req.content_length else self.schema.load({})
        now = self._s.clock()
        expires_at = body["expires_at"] or now + timedelta(
            seconds=body["ttl_seconds"] or self._s.settings.statistics_token_ttl_seconds)
        if expires_at <= now:
            raise bad_request("expires_at must be in the future.", {"expires_at": ["In the past."]})
        if expires_at > now + timedelta(seconds=MAX_TTL):
            raise bad_request("expires_at is more than a year away.", {"expires_at": ["Too far."]})
        with self._s.pool.connection() as conn, conn.transaction():
            row = token_queries.extend(conn, token, expires_at)
        if row is None:
            raise not_found("No such statistics token.")
        if row["revoked_at"] is not None:
            raise conflict("This statistics token was revoked; it cannot be extended.")
        resp.media = _token_json(row)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, token: uuid.UUID) -> None:
        _internal(req, self._s)
        with self._s.pool.connection() as conn, conn.transaction():
            row = token_queries.revoke(conn, token)
        if row is None:
            raise not_found("No such statistics token.")
        # Its stack goes now; what it counted is in the ledger and is flushed within a quarter second.
        self._s.stacks.token_revoked(row["account_id"], row["host"])
        resp.status = falcon.HTTP_204
