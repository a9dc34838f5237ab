"""Sessions (POST /api/v1/sessions and the seed's /api/sessions/add): complete, authorize,
store and count, after the endpoint has decoded and validated the body.

A session may be created with a client-generated id: the first time it is created (and
counted as a session start), after that the stored one is returned; an id taken by
another account is a 409.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .. import useragent, visitors
from ..errors import conflict
from ..principals import SiteWriter
from ..queries import sessions as session_queries
from ..services import Services
from .authorize import Sender, authorize


@dataclass(frozen=True)
class StoredSession:
    writer: SiteWriter
    session_id: uuid.UUID
    started_at: datetime
    created: bool   # False: the id existed (a re-sent session)


def complete(values: dict[str, Any]) -> dict[str, Any]:
    """Device type, browser and OS: as given, else read from the user agent."""
    missing = [k for k in ("device_type", "browser", "os") if values.get(k) is None]
    if not missing:
        return values
    client = useragent.describe(values.get("user_agent"))
    return {**values, **{k: getattr(client, k) for k in missing}}


def create(services: Services, sender: Sender, values: dict[str, Any], now: datetime,
           client_ip: str | None) -> StoredSession:
    """Store the session `values` (its columns: `session_id`, `started_at`, the page and the
    client) for the sender's account + host, once; count a new one as a session start."""
    values = dict(values)
    persistent = values.pop("visitor", None)  # data-visitor="persistent": the browser's own id
    row_values = {**complete(values), "last_activity_at": values["started_at"],
                  "ip_hash": services.ip_hash(client_ip)}
    with services.pool.connection() as conn, conn.transaction():
        writer = authorize(conn, sender, now)
        visitor_id = visitors.visitor_id(
            conn, services.ip_hash, account_id=writer.account_id, host=writer.host, now=now,
            client_ip=client_ip, user_agent=values.get("user_agent"), user_id=values.get("user_id"),
            persistent=persistent)
        row, created = session_queries.insert_session(
            conn, {**row_values, "account_id": writer.account_id, "host": writer.host,
                   "visitor_id": visitor_id},
            writer.strip_query_strings)
        if row["account_id"] != writer.account_id:
            raise conflict("This session id is already taken; generate another.")
    # Committed: a new session is a session start on the statistics stacks.
    services.stacks.session_stored(writer, created)
    return StoredSession(writer, row["session_id"], row["started_at"], created)
