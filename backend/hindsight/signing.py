"""RSA keys that sign widget JWTs, kept in the database so every worker and host
shares them, with key ids so they can rotate.

The newest unretired key signs. Retired keys keep verifying until `retire_after`
(one JWT lifetime after retirement), and all verifying keys are published as a JWKS.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from .db import Conn

ALGORITHM = "RS256"
AUDIENCE = "hindsight-widget"
ISSUER = "hindsight"
_KEY_LOCK = 0x4A574B  # advisory lock: only one process creates the first key


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: Any
    public_key: Any
    public_jwk: dict[str, Any]


def _generate() -> tuple[str, str, dict[str, Any]]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    kid = secrets.token_hex(8)
    jwk = json.loads(RSAAlgorithm.to_jwk(private.public_key()))
    jwk.update({"kid": kid, "use": "sig", "alg": ALGORITHM})
    return kid, pem, jwk


def ensure_signing_key(conn: Conn) -> None:
    """Create the first signing key if there is none (idempotent, race-free)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_KEY_LOCK,))
        row = conn.execute("SELECT 1 FROM jwt_signing_keys WHERE retired_at IS NULL").fetchone()
        if row is None:
            _insert_new(conn)


def rotate(conn: Conn, grace: timedelta) -> str:
    """Retire the current key (it verifies for `grace` more) and create a new one."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_KEY_LOCK,))
        conn.execute(
            "UPDATE jwt_signing_keys SET retired_at = now(), retire_after = now() + %s "
            "WHERE retired_at IS NULL",
            (grace,),
        )
        return _insert_new(conn)


def _insert_new(conn: Conn) -> str:
    kid, pem, jwk = _generate()
    conn.execute(
        "INSERT INTO jwt_signing_keys (kid, private_key_pem, public_jwk) VALUES (%s, %s, %s)",
        (kid, pem, json.dumps(jwk)),
    )
    return kid


class KeyRing:
    """The keys a process signs and verifies with, reloaded from the database
    at most every `refresh_seconds` so a rotation reaches every worker."""

    def __init__(self, pool, refresh_seconds: float = 60.0) -> None:
        self._pool = pool
        self._refresh = refresh_seconds
        self._lock = threading.Lock()
        self._loaded_at = -1e18
        self._signing: SigningKey | None = None
        self._verifying: dict[str, SigningKey] = {}

    def _load(self) -> None:
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT kid, private_key_pem, public_jwk, retired_at FROM jwt_signing_keys "
                "WHERE retire_after IS NULL OR retire_after > now() ORDER BY created_at"
            ).fetchall()
        verifying: dict[str, SigningKey] = {}
        signing = None
        for row in rows:
            private = serialization.load_pem_private_key(row["private_key_pem"].encode(), None)
            key = SigningKey(row["kid"], private, private.public_key(), row["public_jwk"])
            verifying[key.kid] = key
            if row["retired_at"] is None:
                signing = key
        self._verifying, self._signing = verifying, signing
        self._loaded_at = time.monotonic()

    def _fresh(self) -> None:
        with self._lock:
            if time.monotonic() - self._loaded_at > self._refresh or self._signing is None:
                self._load()

    def sign(self, claims: dict[str, Any]) -> str:
        self._fresh()
        if self._signing is None:
            raise RuntimeError("no JWT signing key; run `hindsight migrate` or start the API once")
        return jwt.encode(claims, self._signing.private_key, algorithm=ALGORITHM,
                          headers={"kid": self._signing.kid})

    def verify(self, token: str) -> dict[str, Any]:
        """Return the claims of a valid widget JWT; raise jwt.InvalidTokenError otherwise."""
        header = jwt.get_unverified_header(token)
        kid = header.get("kid")
        if header.get("alg") != ALGORITHM:
            raise jwt.InvalidAlgorithmError(f"only {ALGORITHM} is accepted")
        if not isinstance(kid, str):  # a missing or non-string kid matches no key
            raise jwt.InvalidKeyError("unknown key id")
        self._fresh()
        key = self._verifying.get(kid)
        if key is None and time.monotonic() - self._loaded_at > 5:
            # A key created by another process since our last load (at most one
            # reload per 5 s, so made-up key ids cannot hammer the database).
            with self._lock:
                self._load()
            key = self._verifying.get(kid)
        if key is None:
            raise jwt.InvalidKeyError("unknown key id")
        claims = jwt.decode(
            token, key.public_key, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=ISSUER,
            options={"require": ["exp", "iat", "widget_id", "account_id", "domain"]},
        )
        check_claim_types(claims)
        return claims

    def jwks(self) -> dict[str, Any]:
        self._fresh()
        return {"keys": [key.public_jwk for key in self._verifying.values()]}


# Our own claims are strings of bounded length: a token signed by this instance with
# other types (a bug, or a key used elsewhere) is refused like a forged one, not a 500.
CLAIM_MAX_LENGTHS = {"widget_id": 64, "account_id": 64, "domain": 253}


def check_claim_types(claims: dict[str, Any]) -> None:
    """Raise jwt.InvalidTokenError naming the first of our claims that is not a short string."""
    for name, longest in CLAIM_MAX_LENGTHS.items():
        value = claims.get(name)
        if not isinstance(value, str) or not 0 < len(value) <= longest:
            raise jwt.InvalidTokenError(f"the claim {name} must be a string of 1 to {longest} characters")


def widget_claims(widget_id: str, account_id: str, domain: str, now: datetime,
                  ttl: timedelta) -> dict[str, Any]:
    return {
        "iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + ttl,
        "widget_id": widget_id, "account_id": account_id, "domain": domain,
    }
