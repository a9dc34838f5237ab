"""Statistics tokens: issued (the live one of account + host, or a new one), extended
and revoked, on `statistics_tokens`. Issuing is hindsight.ingestion.tokens' (both doors:
the site flow and the seed's internal token API); extending and revoking the seed's.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from ..db import Conn, one


def statistics_flag(conn: Conn, account_id: uuid.UUID, host: str) -> bool | None:
    row = conn.execute(
        "SELECT enabled FROM statistics_flags WHERE account_id = %s AND host = %s",
        (account_id, host),
    ).fetchone()
    return None if row is None else row["enabled"]


def live_or_new_token(conn: Conn, account_id: uuid.UUID, host: str,
                      now: datetime, ttl: timedelta) -> dict:
    """Return the live statistics token of account + host, or create one.

    A token with less than half its lifetime left is not handed out again, so a
    tracker renewing before expiry gets a fresh one. The first token of a host
    switches its statistics flag on. Runs in the caller's transaction.
    """
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                 (f"statistics-token:{account_id}:{host}",))
    row = conn.execute(
        """
        SELECT token, expires_at FROM statistics_tokens
        WHERE account_id = %s AND host = %s AND revoked_at IS NULL AND expires_at > %s
        ORDER BY expires_at DESC LIMIT 1
        """,
        (account_id, host, now + ttl / 2),
    ).fetchone()
    if row:
        return row
    conn.execute(
        "INSERT INTO statistics_flags (account_id, host, enabled) VALUES (%s, %s, true) "
        "ON CONFLICT DO NOTHING",
        (account_id, host),
    )
    return one(conn.execute(
        "INSERT INTO statistics_tokens (account_id, host, expires_at) VALUES (%s, %s, %s) "
        "RETURNING token, expires_at",
        (account_id, host, now + ttl),
    ))


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
