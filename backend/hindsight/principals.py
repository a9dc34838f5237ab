"""Who writes and who reads: a site writing for account + host, an analyst with an API key.

Plain data, no HTTP: the ingestion pipeline, the statistics stacks and the queries use
these types; the HTTP layer (hindsight.resources.http) finds them from a request.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass

API_KEY_PREFIX = "hsk_"


@dataclass(frozen=True)
class SiteWriter:
    """The account + host a statistics token writes for (authorized by hindsight.ingestion)."""

    token: uuid.UUID
    account_id: uuid.UUID
    host: str
    strip_query_strings: bool


@dataclass(frozen=True)
class Analyst:
    """The account an analyst API key reads."""

    account_id: uuid.UUID
    key_id: int


def new_api_key() -> tuple[str, bytes, str]:
    """Return a new analyst API key, the hash we store and a display prefix."""
    key = API_KEY_PREFIX + secrets.token_urlsafe(32)
    return key, hash_api_key(key), key[:12]


def hash_api_key(key: str) -> bytes:
    # The key is 256 random bits: a plain SHA-256 cannot be brute-forced.
    return hashlib.sha256(key.encode()).digest()
