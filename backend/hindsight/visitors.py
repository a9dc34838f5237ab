"""Visitor ids: who a session belongs to, counted without cookies by default.

A session's `visitor_id` (a uuid: 16 bytes of an HMAC-SHA256) is computed by the server
when the session is created, from the first of these that applies:

* `user`: the session carries a `user_id` (`hindsight.identify(...)` before the session
  was sent): HMAC(instance key, account id + user id) — the same person on every device
  and every day, for the sites that identify their users;
* `persistent`: the tracker runs with `data-visitor="persistent"` and sends the random id it
  keeps in localStorage: HMAC(instance key, account id + that id) — the same browser across
  days; the account in the message means two sites sharing a browser id still get two
  unrelated visitor ids, and the stored id cannot be matched with the browser's value;
* `daily` (the default; nothing is stored in the browser): HMAC(salt of the day, the
  account's host + client address + user agent) — the same browser on the same site is the
  same visitor for one UTC day. The salts are random, one per day (`visitor_salts`), and
  deleted two days later by the scheduler's `visitor_salts` job: from then on nobody, the
  operator included, can recompute which address a visitor id came from, nor link it to
  the next day's id.

The client address is read as for `ip_hash` (resources/http.client_ip) and never stored.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta

from .db import Conn
from .queries import visitors as visitor_queries

SALT_BYTES = 32
# A salt is deleted once it is this many days old (today's and yesterday's are kept).
SALT_KEEP_DAYS = 2


def _uuid(digest: bytes) -> uuid.UUID:
    return uuid.UUID(bytes=digest[:16])


def daily_id(salt: bytes, host: str, client_ip: str | None, user_agent: str | None) -> uuid.UUID:
    """The default, cookieless id: one per (site, address, user agent) and UTC day."""
    message = "\x00".join((host, client_ip or "", user_agent or "")).encode()
    return _uuid(hmac.new(salt, message, hashlib.sha256).digest())


def keyed_id(keyed_hash: Callable[[str], bytes | None], account_id: uuid.UUID, kind: str,
             value: str) -> uuid.UUID:
    """An id that lasts (`kind` 'user' or 'persistent'): the instance's keyed hash (the one
    of ip_hash) of the account and the value, so it is the same value for this account only."""
    digest = keyed_hash("\x00".join(("visitor", kind, str(account_id), value)))
    assert digest is not None  # the message is never empty
    return _uuid(digest)


class Salts:
    """The salt of each UTC day, created by the first process that needs it.

    Creation is race-safe across processes: INSERT ... ON CONFLICT DO NOTHING, then read
    the row that won. The salt of the current day is remembered in memory (a salt never
    changes while it exists)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cached: tuple[tuple, bytes] | None = None

    def for_day(self, conn: Conn, day: date) -> bytes:
        # Per database (a process may talk to several: the tests) and day.
        key = (conn.info.host, conn.info.port, conn.info.dbname, day)
        with self._lock:
            if self._cached is not None and self._cached[0] == key:
                return self._cached[1]
        with conn.transaction():
            salt = visitor_queries.salt(conn, day, secrets.token_bytes(SALT_BYTES))
        with self._lock:
            self._cached = (key, salt)
        return salt


SALTS = Salts()


def visitor_id(conn: Conn, keyed_hash: Callable[[str], bytes | None], *, account_id: uuid.UUID,
               host: str, now: datetime, client_ip: str | None, user_agent: str | None,
               user_id: str | None = None, persistent: str | None = None) -> uuid.UUID:
    """The visitor id of a new session (see the module's docstring for the order)."""
    if user_id:
        return keyed_id(keyed_hash, account_id, "user", user_id)
    if persistent:
        return keyed_id(keyed_hash, account_id, "persistent", persistent)
    salt = SALTS.for_day(conn, now.astimezone(UTC).date())
    return daily_id(salt, host, client_ip, user_agent)


def delete_old_salts(conn: Conn, now: datetime) -> int:
    """The scheduler's job: delete the salts of the days before yesterday (UTC)."""
    today = now.astimezone(UTC).date()
    return visitor_queries.delete_salts_before(conn, today - timedelta(days=SALT_KEEP_DAYS - 1))



def drop_browser_ids(events: list[dict]) -> None:
    """tracker.js records its session's creation body as the session_start event's data;
    with data-visitor="persistent" that body carries the browser's own id, which only the
    session's keyed hash may keep: drop it from the event (in place)."""
    for event in events:
        data = event.get("event_data")
        if event.get("event_type") == "session_start" and isinstance(data, dict):
            data.pop("visitor", None)
