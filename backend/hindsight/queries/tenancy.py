"""Accounts, domains, widgets, tokens, flags and API keys."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from ..auth import new_api_key
from ..db import Conn, one
from ..hosts import candidate_domains


def create_account(conn: Conn, name: str, domain: str,
                   monthly_event_limit: int | None) -> dict:
    """Create an account with one registered domain and an active tracker widget."""
    with conn.transaction():
        account = one(conn.execute(
            "INSERT INTO accounts (name, monthly_event_limit) VALUES (%s, %s) RETURNING account_id",
            (name, monthly_event_limit),
        ))
        domain_row = one(conn.execute(
            "INSERT INTO domains (account_id, name) VALUES (%s, %s) RETURNING domain_id, name",
            (account["account_id"], domain.lower()),
        ))
        widget = one(conn.execute(
            "INSERT INTO widgets (account_id, domain_id, widget_type) VALUES (%s, %s, 'tracker') "
            "RETURNING widget_id",
            (account["account_id"], domain_row["domain_id"]),
        ))
    return {"account_id": str(account["account_id"]), "domain": domain_row["name"],
            "widget_id": str(widget["widget_id"])}


def add_domain(conn: Conn, account_id: uuid.UUID, domain: str) -> None:
    with conn.transaction():
        conn.execute(
            "INSERT INTO domains (account_id, name) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (account_id, domain.lower()),
        )


def create_api_key(conn: Conn, account_id: uuid.UUID) -> str:
    """Create an analyst API key; only its hash is stored, so this is the one chance to see it."""
    key, key_hash, prefix = new_api_key()
    with conn.transaction():
        found = conn.execute("SELECT 1 FROM accounts WHERE account_id = %s", (account_id,)).fetchone()
        if not found:
            raise LookupError(f"no account {account_id}")
        conn.execute(
            "INSERT INTO api_keys (account_id, key_hash, prefix) VALUES (%s, %s, %s)",
            (account_id, key_hash, prefix),
        )
    return key


def matching_domain(conn: Conn, account_id: uuid.UUID, host: str) -> dict | None:
    """Return the account (and its registered domain covering `host`), if any.

    The row always has the account's `active` flag when the account exists;
    `domain` is None when no registered domain covers the host.
    """
    return conn.execute(
        """
        SELECT a.account_id, a.active,
               (SELECT d.name FROM domains d
                 WHERE d.account_id = a.account_id AND d.name = ANY(%s)
                 ORDER BY length(d.name) DESC LIMIT 1) AS domain
        FROM accounts a WHERE a.account_id = %s
        """,
        (candidate_domains(host), account_id),
    ).fetchone()


def active_widgets(conn: Conn, account_id: uuid.UUID, domain: str) -> list[dict]:
    """Active widgets of an account usable on `domain` (bound to it, or to no domain)."""
    return conn.execute(
        """
        SELECT w.widget_id, w.widget_type
        FROM widgets w LEFT JOIN domains d ON d.domain_id = w.domain_id
        WHERE w.account_id = %s AND w.active AND (w.domain_id IS NULL OR d.name = %s)
        ORDER BY w.created_at
        """,
        (account_id, domain),
    ).fetchall()


def widget(conn: Conn, widget_id: uuid.UUID) -> dict | None:
    return conn.execute(
        """
        SELECT w.widget_id, w.account_id, w.active, a.active AS account_active
        FROM widgets w JOIN accounts a USING (account_id) WHERE w.widget_id = %s
        """,
        (widget_id,),
    ).fetchone()


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


def instance_secret(conn: Conn, name: str, new_value: bytes) -> bytes:
    """Return the named instance secret, storing `new_value` if it does not exist yet."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO instance_secrets (name, value) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (name, new_value),
        )
        row = one(conn.execute("SELECT value FROM instance_secrets WHERE name = %s", (name,)))
    return bytes(row["value"])
