"""DOM recording segments (POST /api/v1/track/recording): authorize, decode with limits
(segments.py), store once per (session, segment). Not counted on the statistics stacks
(docs/DECISIONS.md, "DOM recording storage and replay").

A re-sent segment is answered from what is stored, without decoding it again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from ..errors import bad_request, not_found
from ..queries import recordings
from ..services import Services
from . import segments
from .authorize import NO_SESSION, Sender, authorize


@dataclass(frozen=True)
class StoredSegment:
    segment: int
    events: int      # the events the stored segment holds
    created: bool    # False: it was stored before


def store(services: Services, sender: Sender, session_id: uuid.UUID, number: int, body: bytes,
          encoding: str, now: datetime) -> StoredSegment:
    if not body:  # a re-sent segment is answered without decoding it, but not without a body
        raise bad_request("The request body is empty; send the segment.", {"body": ["Missing."]})
    # Authorize first (cheap); decode outside any transaction (CPU-bound).
    with services.pool.connection() as conn:
        writer = authorize(conn, sender, now, session_id)
        known = recordings.stored_count(conn, writer.account_id, session_id, number)
    if known is not None:
        return StoredSegment(number, known, created=False)
    segment = segments.decode(body, encoding, number, now)
    with services.pool.connection() as conn, conn.transaction():
        stored = recordings.store(conn, writer.account_id, writer.host, session_id, segment)
    if stored is None:  # the session went away (retention, erasure) meanwhile
        raise not_found(NO_SESSION)
    created, count = stored
    return StoredSegment(number, count, created)
