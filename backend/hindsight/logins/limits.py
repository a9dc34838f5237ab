"""Failed dashboard logins and the lockouts they cause (sql/migrations/0020).

A failure is one row with two keys: a SHA-256 of the lower-cased e-mail and a SHA-256 of
the client address's keyed hash (never the e-mail or the IP in clear). Counted over
`FAILURE_WINDOW`, they lock a login out (429, even with the right password) when

- one address failed `per_pair` times for one e-mail (HINDSIGHT_LOGIN_FAILURES_PER_EMAIL):
  that address, for that e-mail. Someone guessing elsewhere does not lock the real user out;
- one address failed `per_address` times, whatever the e-mails (HINDSIGHT_LOGIN_FAILURES_PER_IP):
  that address (password spraying);
- one e-mail failed `FAILURES_PER_EMAIL_FROM_ALL_ADDRESSES` times from all addresses
  together: that e-mail, everywhere (a guess spread over many addresses still stops).

A lockout is logged when it starts, shown on the account page, and lifted by
`hindsight users unlock EMAIL` or an admin's button there (`clear_failures`). A
successful login forgets the failures of its own e-mail and address only.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..db import Conn, one
from .users import normalize_email

log = logging.getLogger("hindsight.dashboard")

FAILURE_WINDOW = timedelta(minutes=15)
FAILURES_PER_EMAIL_FROM_ALL_ADDRESSES = 100


@dataclass(frozen=True)
class Limits:
    per_pair: int       # failures of one e-mail from one address
    per_address: int    # failures from one address, any e-mail


@dataclass(frozen=True)
class RecentFailures:
    """Failed logins in the window: this e-mail from this address, this e-mail from
    anywhere, this address for any e-mail."""

    pair: int
    email: int
    address: int

    def lockout(self, limits: Limits) -> str | None:
        """What is locked out at these counts: "pair", "address", "email"; None: nothing."""
        if self.pair >= limits.per_pair:
            return "pair"
        if self.address >= limits.per_address:
            return "address"
        if self.email >= FAILURES_PER_EMAIL_FROM_ALL_ADDRESSES:
            return "email"
        return None

    def after_one_more(self) -> RecentFailures:
        return RecentFailures(self.pair + 1, self.email + 1, self.address + 1)


def email_key(email: str) -> bytes:
    return hashlib.sha256(b"email\0" + normalize_email(email).encode()).digest()


def address_key(ip_hash: bytes | None) -> bytes:
    return hashlib.sha256(b"ip\0" + (ip_hash or b"")).digest()


RECENT = """
SELECT count(*) FILTER (WHERE email_key = %(email)s AND address_key = %(address)s) AS pair,
       count(*) FILTER (WHERE email_key = %(email)s) AS email,
       count(*) FILTER (WHERE address_key = %(address)s) AS address
FROM dashboard_login_failures
WHERE (email_key = %(email)s OR address_key = %(address)s) AND failed_at > %(since)s
"""


def recent_failures(conn: Conn, email: str, ip_hash: bytes | None, now: datetime) -> RecentFailures:
    row = one(conn.execute(RECENT, {"email": email_key(email), "address": address_key(ip_hash),
                                    "since": now - FAILURE_WINDOW}))
    return RecentFailures(row["pair"], row["email"], row["address"])


def record_failure(conn: Conn, email: str, ip_hash: bytes | None, now: datetime) -> None:
    """Count a failed login; forget every failure past the window (the table stays small)."""
    conn.execute("DELETE FROM dashboard_login_failures WHERE failed_at <= %s", (now - FAILURE_WINDOW,))
    conn.execute("INSERT INTO dashboard_login_failures (email_key, address_key, failed_at) "
                 "VALUES (%s, %s, %s)", (email_key(email), address_key(ip_hash), now))


def log_new_lockout(before: RecentFailures, limits: Limits, email: str, ip_hash: bytes | None,
                    now: datetime) -> None:
    """Log the lockout that the failure just recorded (after `before`) started, if any."""
    after = before.after_one_more()
    started = after.lockout(limits)
    if started is None or before.lockout(limits) is not None:
        return
    quoted = json.dumps(normalize_email(email))   # typed by anyone: quoted, control characters escaped
    address = address_key(ip_hash).hex()[:12]
    until = (now + FAILURE_WINDOW).isoformat(timespec="seconds")
    if started == "pair":
        log.warning("dashboard login locked out: e-mail %s from address %s after %d failures "
                    "(until %s); lift it with `hindsight users unlock %s`",
                    quoted, address, after.pair, until, quoted)
    elif started == "address":
        log.warning("dashboard login locked out: address %s after %d failures for any e-mail "
                    "(until %s)", address, after.address, until)
    else:
        log.warning("dashboard login locked out everywhere: e-mail %s after %d failures from all "
                    "addresses (until %s); lift it with `hindsight users unlock %s`",
                    quoted, after.email, until, quoted)


def clear_failures(conn: Conn, email: str, ip_hash: bytes | None = None,
                   *, from_address: bool = False) -> int:
    """Forget an e-mail's failures (only those from `ip_hash`'s address with `from_address`):
    lifts its lockouts. Returns how many were forgotten."""
    if from_address:
        cur = conn.execute("DELETE FROM dashboard_login_failures WHERE email_key = %s AND address_key = %s",
                           (email_key(email), address_key(ip_hash)))
    else:
        cur = conn.execute("DELETE FROM dashboard_login_failures WHERE email_key = %s", (email_key(email),))
    return cur.rowcount


# Per e-mail: its failures in the window, the addresses it is locked out from (the
# per_pair-th newest failure of a pair is in the window) and when its last lockout ends
# (when that failure leaves the window).
LOCKOUTS = """
WITH f AS (
    SELECT email_key, failed_at,
           row_number() OVER (PARTITION BY email_key, address_key ORDER BY failed_at DESC) AS pair_rank,
           row_number() OVER (PARTITION BY email_key ORDER BY failed_at DESC) AS email_rank
    FROM dashboard_login_failures
    WHERE email_key = ANY(%(keys)s) AND failed_at > %(since)s
)
SELECT email_key, count(*) AS failures,
       count(*) FILTER (WHERE pair_rank = %(per_pair)s) AS locked_addresses,
       bool_or(email_rank = %(per_email)s) AS locked_everywhere,
       greatest(max(failed_at) FILTER (WHERE pair_rank = %(per_pair)s),
                max(failed_at) FILTER (WHERE email_rank = %(per_email)s)) + %(window)s AS locked_until
FROM f
GROUP BY email_key
"""


def lockouts(conn: Conn, users: list[dict], limits: Limits, now: datetime) -> list[dict]:
    """`users` (rows with `email`), each with its failures and lockouts in the window."""
    keys = {email_key(u["email"]): u for u in users}
    rows = {bytes(r["email_key"]): r for r in conn.execute(LOCKOUTS, {
        "keys": list(keys), "since": now - FAILURE_WINDOW, "per_pair": limits.per_pair,
        "per_email": FAILURES_PER_EMAIL_FROM_ALL_ADDRESSES, "window": FAILURE_WINDOW})}
    listed = []
    for key, user in keys.items():
        row = rows.get(key)
        listed.append({**user, "failures": row["failures"] if row else 0,
                       "locked_addresses": row["locked_addresses"] if row else 0,
                       "locked_everywhere": bool(row and row["locked_everywhere"]),
                       "locked_until": row["locked_until"] if row else None})
    return listed


def unlock_user(conn: Conn, account_id: uuid.UUID, user_id: int) -> str | None:
    """Lift the lockouts of a user of `account_id`; its e-mail, or None: no such user there."""
    row = conn.execute("SELECT email FROM dashboard_users WHERE user_id = %s AND account_id = %s",
                       (user_id, account_id)).fetchone()
    if row is None:
        return None
    clear_failures(conn, row["email"])
    return row["email"]
