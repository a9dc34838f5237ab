"""DOM recording segments (POST /api/v1/track/recording): authorize, decode with limits
(segments.py), store once per (session, segment). Not counted on the statistics stacks
(docs/DECISIONS.md, "DOM recording storage and replay").

A re-sent segment is answered from what is stored, without decoding it again. Large
string literals (stylesheets) and full snapshots' subtrees are stored once per account
(hindsight.recording_blobs); the rest is zstd with the account's dictionary
(hindsight.recording_codec).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from .. import recording_codec
from ..db import Conn
from ..errors import bad_request, not_found
from ..queries import recordings
from ..services import Services
from . import segments
from .authorize import NO_SESSION, Sender, explain


@contextmanager
def _autocommit(services: Services) -> Iterator[Conn]:
    """A pooled connection in autocommit for one statement (no BEGIN/COMMIT round trips)."""
    with services.pool.connection() as conn:
        conn.autocommit = True
        try:
            yield conn
        finally:
            if not conn.closed:
                conn.autocommit = False


@dataclass(frozen=True)
class StoredSegment:
    segment: int
    events: int      # the events the stored segment holds
    created: bool    # False: it was stored before


def store(services: Services, sender: Sender, session_id: uuid.UUID, number: int, body: bytes,
          encoding: str, now: datetime) -> StoredSegment:
    """Two statements (DECISIONS.md, "Recording blobs"): the writer's checks with the
    re-send check, then (after decoding, outside any connection) the segment and its blobs
    in one autocommitted statement."""
    if not body:  # a re-sent segment is answered without decoding it, but not without a body
        raise bad_request("The request body is empty; send the segment.", {"body": ["Missing."]})
    # Authorize first (cheap); decode outside any transaction (CPU-bound).
    with _autocommit(services) as conn:
        row = recordings.writer_and_stored(conn, sender.params(now, session_id), number)
    writer = explain(row, sender.token)
    assert row is not None   # explain refused a missing token
    if row["stored_events"] is not None:
        return StoredSegment(number, row["stored_events"], created=False)
    # The account's dictionary (0030): from this process's cache, else one more statement;
    # a newer one is made of this segment's text when it is older than a day (or missing).
    dictionary = None
    if row["dictionary"] is not None:
        dictionary = recording_codec.DICTIONARIES.get(writer.account_id, bytes(row["dictionary"]))
        if dictionary is None:
            with _autocommit(services) as conn:
                dictionary = recordings.dictionary(conn, writer.account_id, bytes(row["dictionary"]))
    stale = row["dictionary_at"] is None or row["dictionary_at"] < now - recording_codec.ROTATE
    segment = segments.decode(body, encoding, number, now, dictionary, make_dictionary=stale)
    with _autocommit(services) as conn:  # one statement: its own transaction
        try:
            stored = recordings.store(conn, writer.account_id, writer.host, session_id, segment)
        except recordings.DictionaryGone:   # reclaimed meanwhile (rare): without it
            segment = segments.decode(body, encoding, number, now)
            stored = recordings.store(conn, writer.account_id, writer.host, session_id, segment)
    if stored is None:  # the session went away (retention, erasure) meanwhile
        raise not_found(NO_SESSION)
    created, count = stored
    return StoredSegment(number, count, created)
