"""Accounts, domains, widgets, API keys and instance secrets (statistics tokens: tokens.py)."""

from __future__ import annotations

import uuid
from datetime import datetime

from ..db import Conn, one
from ..hosts import candidate_domains
from ..principals import new_api_key


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


def instance_secret(conn: Conn, name: str, new_value: bytes) -> bytes:
    """Return the named instance secret, storing `new_value` if it does not exist yet."""
    with conn.transaction():
        conn.execute(
            "INSERT INTO instance_secrets (name, value) VALUES (%s, %s) ON CONFLICT DO NOTHING",
            (name, new_value),
        )
        row = one(conn.execute("SELECT value FROM instance_secrets WHERE name = %s", (name,)))
    return bytes(row["value"])


def live_api_key(conn: Conn, key_hash: bytes) -> dict | None:
    """The live analyst API key with this hash (`key_id`, `account_id`), or None."""
    return conn.execute(
        "SELECT key_id, account_id FROM api_keys WHERE key_hash = %s AND revoked_at IS NULL",
        (key_hash,),
    ).fetchone()


# ------------------------------------------------------------------ the account page

def account(conn: Conn, account_id: uuid.UUID) -> dict:
    """The signed-in user's account (accounts are never deleted)."""
    return one(conn.execute(
        "SELECT account_id, name, active, monthly_event_limit, created_at FROM accounts WHERE account_id = %s",
        (account_id,)))


HOSTS = """
SELECT d.name AS host, d.strip_query_strings, coalesce(f.enabled, true) AS statistics_enabled,
       f.disabled_reason, f.updated_at AS flag_updated_at,
       (SELECT count(*) FROM statistics_tokens t WHERE t.account_id = d.account_id AND t.host = d.name
          AND t.revoked_at IS NULL AND t.expires_at > %(now)s) AS live_tokens,
       (SELECT max(t.expires_at) FROM statistics_tokens t WHERE t.account_id = d.account_id
          AND t.host = d.name AND t.revoked_at IS NULL AND t.expires_at > %(now)s) AS token_expires_at
FROM domains d
LEFT JOIN statistics_flags f ON f.account_id = d.account_id AND f.host = d.name
WHERE d.account_id = %(account_id)s
ORDER BY d.name
"""


def hosts(conn: Conn, account_id: uuid.UUID, now: datetime) -> list[dict]:
    """Each registered domain with its statistics flag and its live tokens (never their values)."""
    return conn.execute(HOSTS, {"account_id": account_id, "now": now}).fetchall()


def api_keys(conn: Conn, account_id: uuid.UUID) -> list[dict]:
    return conn.execute(
        "SELECT key_id, prefix, created_at, revoked_at FROM api_keys WHERE account_id = %s "
        "ORDER BY revoked_at IS NOT NULL, created_at DESC, key_id DESC", (account_id,)).fetchall()


def revoke_api_key(conn: Conn, account_id: uuid.UUID, key_id: int) -> bool:
    row = conn.execute(
        "UPDATE api_keys SET revoked_at = now() WHERE key_id = %s AND account_id = %s "
        "AND revoked_at IS NULL RETURNING key_id", (key_id, account_id)).fetchone()
    return row is not None
