"""Dashboard passwords: scrypt (memory-hard, in the standard library), self-describing hashes.

A hash reads `scrypt$<log2 n>$<r>$<p>$<salt>$<key>` (salt and key in base64), so the
cost can be raised later without invalidating stored hashes: `needs_rehash` tells when a
login should store a new one.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import secrets

from ..offload import run_in_thread

LOG2_N = 15          # n = 32768
R = 8                # block size: 128 * r * n = 32 MiB of memory per hash
P = 1
KEY_BYTES = 32
MIN_LENGTH = 10
MAX_LENGTH = 1024    # a long "password" would only cost us CPU


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text + "=" * (-len(text) % 4))


def _derive(password: str, salt: bytes, log2_n: int, r: int, p: int) -> bytes:
    n = 1 << log2_n
    # About 0.1 s of CPU: off the gevent hub, or it would hold the worker's other requests.
    return run_in_thread(hashlib.scrypt, password.encode(), salt=salt, n=n, r=r, p=p,
                         maxmem=2 * 128 * r * n * p + 1024 * 1024, dklen=KEY_BYTES)


def hash_password(password: str) -> str:
    """Return the scrypt hash to store for `password`."""
    salt = secrets.token_bytes(16)
    key = _derive(password, salt, LOG2_N, R, P)
    return f"scrypt${LOG2_N}${R}${P}${_b64(salt)}${_b64(key)}"


def verify_password(password: str, stored: str) -> bool:
    """True when `password` matches `stored` (compared in constant time)."""
    try:
        scheme, log2_n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt" or len(password) > MAX_LENGTH:
            return False
        derived = _derive(password, _unb64(salt), int(log2_n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(derived, _unb64(key))


def needs_rehash(stored: str) -> bool:
    return not stored.startswith(f"scrypt${LOG2_N}${R}${P}$")


@functools.cache
def dummy_hash() -> str:
    """Verified against when the e-mail is unknown, so a miss costs as much as a wrong
    password and response times do not tell which addresses have accounts."""
    return hash_password(secrets.token_urlsafe(16))


def check_new_password(password: str) -> str | None:
    """Return why `password` is not acceptable, or None."""
    if len(password) < MIN_LENGTH:
        return f"at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"at most {MAX_LENGTH} characters"
    return None
