"""The seed's internal token API, on the `statistics_tokens` table the token flow uses."""

from __future__ import annotations

import uuid
from datetime import datetime

from ..db import Conn


def extend(conn: Conn, token: uuid.UUID, expires_at: datetime) -> dict | None:
    """Move a live token's expiry to `expires_at` (never earlier); None if unknown.

    The returned row has `revoked_at`: a revoked token is not extended.
    """
    row = conn.execute(
        """
        UPDATE statistics_tokens SET expires_at = greatest(expires_at, %(expires_at)s)
        WHERE token = %(token)s AND revoked_at IS NULL
        RETURNING token, account_id, host, expires_at, revoked_at
        """,
        {"token": token, "expires_at": expires_at},
    ).fetchone()
    if row is not None:
        return row
    return conn.execute(
        "SELECT token, account_id, host, expires_at, revoked_at FROM statistics_tokens WHERE token = %s",
        (token,),
    ).fetchone()


def revoke(conn: Conn, token: uuid.UUID) -> dict | None:
    """Revoke a token (idempotent); None if unknown. `revoked_at` is the database's clock,
    which every process's monitor compares with to drop the token's stack."""
    row = conn.execute(
        """
        UPDATE statistics_tokens SET revoked_at = now()
        WHERE token = %s AND revoked_at IS NULL
        RETURNING token, account_id, host, revoked_at
        """,
        (token,),
    ).fetchone()
    if row is not None:
        return row
    return conn.execute(
        "SELECT token, account_id, host, revoked_at FROM statistics_tokens WHERE token = %s",
        (token,),
    ).fetchone()
