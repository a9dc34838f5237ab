"""Who is calling: a site with a statistics token, or an analyst with an API key."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

import falcon

from .db import Conn
from .errors import forbidden, unauthorized

API_KEY_PREFIX = "hsk_"


@dataclass(frozen=True)
class SiteWriter:
    """The account + host a statistics token writes for."""

    token: uuid.UUID
    account_id: uuid.UUID
    host: str
    strip_query_strings: bool


@dataclass(frozen=True)
class Analyst:
    account_id: uuid.UUID
    key_id: int


def bearer(req: falcon.Request) -> str | None:
    header = req.get_header("Authorization")
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise unauthorized("The Authorization header must be 'Bearer <token>'.")
    return value.strip()


def statistics_token(req: falcon.Request, body_token: uuid.UUID | None) -> uuid.UUID:
    """Return the statistics token from the Authorization header or, for sendBeacon, the body."""
    raw = bearer(req)
    if raw is None:
        if body_token is None:
            raise unauthorized("A statistics token is required (Authorization: Bearer <token>).")
        return body_token
    try:
        return uuid.UUID(raw)
    except ValueError as ex:
        raise unauthorized("The statistics token is not a valid token.") from ex


TOKEN_QUERY = """
SELECT t.account_id, t.host, t.expires_at, t.revoked_at, a.active AS account_active,
       coalesce(f.enabled, true) AS enabled, coalesce(d.strip_query_strings, false) AS strip_query
FROM statistics_tokens t
JOIN accounts a ON a.account_id = t.account_id
LEFT JOIN statistics_flags f ON f.account_id = t.account_id AND f.host = t.host
LEFT JOIN domains d ON d.account_id = t.account_id AND d.name = t.host
WHERE t.token = %s
"""


def check_token_row(row: dict | None, token: uuid.UUID, now: datetime) -> SiteWriter:
    """Turn the TOKEN_QUERY row into a SiteWriter, or raise 401/403 saying why."""
    if row is None:
        raise unauthorized("Unknown statistics token; request a new one.")
    # 403 first: a token revoked because its host was switched off (the usage limit) must
    # tell the tracker to stop, not to fetch a new token.
    if not row["account_active"]:
        raise forbidden("This account is disabled.")
    if not row["enabled"]:
        raise forbidden("Statistics are disabled for this host (usage limit reached or switched off).")
    if row["revoked_at"] is not None:
        raise unauthorized("This statistics token was revoked; request a new one.")
    if row["expires_at"] <= now:
        raise unauthorized("This statistics token has expired; request a new one.")
    return SiteWriter(token, row["account_id"], row["host"], row["strip_query"])


def new_api_key() -> tuple[str, bytes, str]:
    """Return a new analyst API key, the hash we store and a display prefix."""
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return key, hash_api_key(key), key[:12]


def hash_api_key(key: str) -> bytes:
    # The key is 256 random bits: a plain SHA-256 cannot be brute-forced.
    return hashlib.sha256(key.encode()).digest()


def analyst(req: falcon.Request, conn: Conn) -> Analyst:
    """Return the analyst behind the request's API key, or raise 401."""
    key = bearer(req)
    if key is None:
        raise unauthorized("An analyst API key is required (Authorization: Bearer <key>).")
    row = conn.execute(
        "SELECT key_id, account_id FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL",
        (hash_api_key(key),),
    ).fetchone()
    if row is None:
        raise unauthorized("Unknown or revoked API key.")
    return Analyst(row["account_id"], row["key_id"])
