"""Statistics tokens, issued the same way through both doors: the site flow
(/site/widget/{id}/account_statistics, with a widget JWT) and the seed's internal API
(POST /api/token, with the internal key).

A token is for an account and one of its registered domains (the one that covers the
requesting host); it is refused while statistics are switched off for that domain, and
the live token is handed out again while more than half its lifetime remains
(queries/tokens.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from ..db import Conn
from ..errors import forbidden, not_found
from ..queries import tenancy
from ..queries import tokens as token_queries

SWITCHED_OFF = "Statistics are disabled for this host (usage limit reached or switched off)."


def registered_domain(conn: Conn, account_id: uuid.UUID, host: str) -> str:
    """The account's registered domain that covers `host`; 404 no such account, 403 a
    disabled account or a host it has not registered."""
    found = tenancy.matching_domain(conn, account_id, host)
    if found is None:
        raise not_found("No such account.")
    if not found["active"]:
        raise forbidden("This account is disabled.")
    if found["domain"] is None:
        raise forbidden(f"The host {host} is not a registered domain of this account.")
    return found["domain"]


def issue(conn: Conn, account_id: uuid.UUID, domain: str, now: datetime, ttl: timedelta) -> dict:
    """The live token of account + domain, or a new one (`token`, `expires_at`); 403 while
    statistics are switched off there. Runs in the caller's transaction."""
    if token_queries.statistics_flag(conn, account_id, domain) is False:
        raise forbidden(SWITCHED_OFF)
    return token_queries.live_or_new_token(conn, account_id, domain, now, ttl)
