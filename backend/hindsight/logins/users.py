"""Dashboard users and their server-side sessions (sql/migrations/0015); failed logins
are limits.py's.

A session cookie holds a random token; the database keeps only its SHA-256, the user,
the account the session looks at and the CSRF token its forms carry.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..db import Conn
from . import passwords


@dataclass(frozen=True)
class DashboardUser:
    """Who is logged in, and which account this browser session looks at."""

    user_id: int
    email: str
    is_admin: bool
    home_account_id: uuid.UUID
    account_id: uuid.UUID
    account_name: str
    csrf_token: str
    token_hash: bytes


def token_hash(token: str) -> bytes:
    # The token is 256 random bits: a plain SHA-256 cannot be brute-forced.
    return hashlib.sha256(token.encode()).digest()


def normalize_email(email: str) -> str:
    return email.strip().lower()


def account_users(conn: Conn, account_id: uuid.UUID) -> list[dict]:
    """The dashboard users whose home is `account_id` (never their password hashes)."""
    return conn.execute(
        "SELECT user_id, email, is_admin, disabled_at IS NOT NULL AS disabled, last_login_at "
        "FROM dashboard_users WHERE account_id = %s ORDER BY email", (account_id,)).fetchall()


def create_user(conn: Conn, email: str, password: str, account_id: uuid.UUID,
                is_admin: bool = False) -> dict:
    """Create a dashboard user; raise LookupError for an unknown account, ValueError for a taken e-mail."""
    email = normalize_email(email)
    if "@" not in email or not 3 <= len(email) <= 254:
        raise ValueError(f"not an e-mail address: {email!r}")
    problem = passwords.check_new_password(password)
    if problem:
        raise ValueError(f"the password needs {problem}")
    if conn.execute("SELECT 1 FROM accounts WHERE account_id = %s", (account_id,)).fetchone() is None:
        raise LookupError(f"no account {account_id}")
    row = conn.execute(
        "INSERT INTO dashboard_users (email, password_hash, account_id, is_admin) "
        "VALUES (%s, %s, %s, %s) ON CONFLICT (email) DO NOTHING RETURNING user_id",
        (email, passwords.hash_password(password), account_id, is_admin),
    ).fetchone()
    if row is None:
        raise ValueError(f"a dashboard user {email} already exists")
    return {"user_id": row["user_id"], "email": email, "account_id": str(account_id), "admin": is_admin}


def authenticate(conn: Conn, email: str, password: str) -> dict | None:
    """Return the user row when the e-mail and password match an enabled user."""
    row = conn.execute(
        "SELECT user_id, password_hash, account_id, is_admin FROM dashboard_users "
        "WHERE email = %s AND disabled_at IS NULL",
        (normalize_email(email),),
    ).fetchone()
    stored = row["password_hash"] if row else passwords.dummy_hash()
    ok = passwords.verify_password(password, stored)
    if row is None or not ok:
        return None
    if passwords.needs_rehash(stored):
        conn.execute("UPDATE dashboard_users SET password_hash = %s WHERE user_id = %s",
                     (passwords.hash_password(password), row["user_id"]))
    return row


# ------------------------------------------------------------------ sessions

def start_session(conn: Conn, user: dict, now: datetime, lifetime: timedelta) -> str:
    """Create a server-side session for `user`; return the cookie token."""
    token = secrets.token_urlsafe(32)
    conn.execute(
        "INSERT INTO dashboard_sessions (token_hash, user_id, account_id, csrf_token, created_at, "
        "expires_at, last_seen_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (token_hash(token), user["user_id"], user["account_id"], secrets.token_urlsafe(32), now,
         now + lifetime, now),
    )
    conn.execute("UPDATE dashboard_users SET last_login_at = %s WHERE user_id = %s", (now, user["user_id"]))
    # Expired sessions of anyone go as new ones come (an index on expires_at keeps it cheap).
    conn.execute("DELETE FROM dashboard_sessions WHERE expires_at < %s", (now,))
    return token


SESSION_QUERY = """
SELECT s.token_hash, s.csrf_token, s.account_id, u.user_id, u.email, u.is_admin,
       u.account_id AS home_account_id, a.name AS account_name
FROM dashboard_sessions s
JOIN dashboard_users u ON u.user_id = s.user_id AND u.disabled_at IS NULL
JOIN accounts a ON a.account_id = s.account_id
WHERE s.token_hash = %s AND s.expires_at > %s
"""


def session_user(conn: Conn, token: str, now: datetime) -> DashboardUser | None:
    row = conn.execute(SESSION_QUERY, (token_hash(token), now)).fetchone()
    if row is None:
        return None
    # A user who lost admin rights is back on their own account at the next request.
    account_id = row["account_id"] if row["is_admin"] else row["home_account_id"]
    return DashboardUser(row["user_id"], row["email"], row["is_admin"], row["home_account_id"],
                         account_id, row["account_name"], row["csrf_token"], bytes(row["token_hash"]))


def end_session(conn: Conn, token_hash_: bytes) -> None:
    conn.execute("DELETE FROM dashboard_sessions WHERE token_hash = %s", (token_hash_,))


def switch_account(conn: Conn, user: DashboardUser, account_id: uuid.UUID) -> bool:
    """Point an admin's session at another account; False when there is no such account."""
    if not user.is_admin:
        return False
    row = conn.execute(
        "UPDATE dashboard_sessions SET account_id = a.account_id FROM accounts a "
        "WHERE token_hash = %s AND a.account_id = %s RETURNING a.account_id",
        (user.token_hash, account_id),
    ).fetchone()
    return row is not None


def all_accounts(conn: Conn) -> list[dict]:
    return conn.execute("SELECT account_id, name FROM accounts ORDER BY name, account_id").fetchall()
