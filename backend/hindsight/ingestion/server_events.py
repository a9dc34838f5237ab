"""Events from servers (POST /api/v1/events, seed 002's shape): validate each event on its
own, store the valid ones once, say what was wrong with the others.

The sender is the account's analyst API key (a server-side sender keeps it secret; a
statistics token is for browsers). Each event is:

    {"event_type": "widget_click", "occurred_at": "...", "session_id": "s_abc",
     "visitor_id": "v_xyz", "page_url": "https://shop.example/p/1",
     "properties": {"mapping_id": 456}, "event_id": "01HQ..."}

- `page_view` is stored as a page view (funnels' and paths' page steps see it); any other
  `event_type` is a custom event named by it: event_type 'custom', event_data
  `{name, props, source: "api"}` — what `hindsight.track(name, props)` stores.
- The session: a UUID is used as it is, any other string becomes a UUID (version 5, of the
  account and the string), so a re-sent event lands in the same session. A session that
  does not exist is created (a server-side session, metadata.source = "api") on the host
  of `page_url`, which must be one of the account's registered domains; without such a
  page_url the event is rejected. A session of another account is rejected.
- `visitor_id` is never stored as sent: the new session's visitor id is a keyed hash of
  the account and the value (like the tracker's persistent ids), so it cannot be matched
  across accounts.
- Idempotency: an event's `seq` is a hash of its `event_id` when it has one, else of the
  whole event; with the session and `occurred_at` that is the events table's key, so a
  re-sent event is stored (and counted) once (docs/DECISIONS.md).
- The write window (ingestion/window.py) applies to `occurred_at`.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from marshmallow import ValidationError, fields, validate

from ..hosts import covers, hostname_of
from ..input_fields import aware_timestamp, bounded_json, bounded_text, storable_text
from ..queries import custom_events as q
from ..queries import events as event_queries
from ..queries import sessions as session_queries
from ..schemas import EVENT_TYPE, MAX_URL, StrictSchema
from ..services import Services
from .window import window_problem

MAX_EVENTS = 100
SERVER_SESSION_NAMESPACE = uuid.UUID("0f6c4d3e-8a0b-5e51-9a2d-3b7c1e4f9d21")


class ServerEventSchema(StrictSchema):
    event_id = bounded_text(100, load_default=None, metadata={
        "description": "The sender's id of the event (e.g. a ULID); with it, the idempotency key is "
                       "(session, occurred_at, event_id), else the whole event's content."})
    event_type = fields.String(required=True, validate=EVENT_TYPE, metadata={
        "description": "`page_view`, or the name of a custom event (lower_snake_case)."})
    occurred_at = aware_timestamp(required=True)
    session_id = fields.String(required=True, validate=[validate.Length(min=1, max=200), storable_text], metadata={
        "description": "A UUID, or any string (mapped to a UUID per account)."})
    visitor_id = bounded_text(200, load_default=None)
    page_url = bounded_text(MAX_URL, load_default=None, metadata={
        "description": "Required when the session does not exist yet: its host must be a registered "
                       "domain of the account."})
    properties = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=100)),
                             validate=bounded_json, load_default=None, allow_none=True)


class ServerEventsBodySchema(StrictSchema):
    events = fields.List(fields.Dict(), required=True, validate=validate.Length(min=1, max=MAX_EVENTS),
                         metadata={"description": f"1 to {MAX_EVENTS} events, each validated on its own "
                                                  "(see ServerEvent)."})


EVENT_SCHEMA = ServerEventSchema()


@dataclass
class Outcome:
    accepted: int = 0
    stored: int = 0
    errors: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def reject(self, index: int, problems: dict[str, Any]) -> None:
        self.errors[str(index)] = problems

    def answer(self) -> dict[str, Any]:
        return {"accepted": self.accepted, "rejected": len(self.errors), "errors": self.errors}


def session_uuid(account_id: uuid.UUID, value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        return uuid.uuid5(SERVER_SESSION_NAMESPACE, f"{account_id}:{value}")


def event_seq(event: dict[str, Any]) -> int:
    """The idempotency key's seq: a hash of event_id, or of the event's content."""
    if event.get("event_id"):
        raw = json.dumps(["id", event["event_id"]]).encode()
    else:
        raw = json.dumps(["event", {k: v for k, v in event.items() if k != "event_id"}],
                         sort_keys=True, default=str).encode()
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big") >> 2


def as_stored_event(event: dict[str, Any]) -> dict[str, Any]:
    """One validated event as a row of a batch (queries/events.py)."""
    props = event["properties"] if event["properties"] is not None else {}
    data: dict[str, Any] = {"props": props, "source": "api"}
    if event["event_id"]:
        data["event_id"] = event["event_id"]
    if event["event_type"] == "page_view":
        kind = "page_view"
    else:
        kind = "custom"
        data["name"] = event["event_type"]
    return {"seq": event_seq(event), "timestamp": event["occurred_at"], "event_type": kind,
            "page_url": event["page_url"], "event_data": data}


def validate_each(raw_events: list[dict[str, Any]], now: datetime, outcome: Outcome) -> list[tuple[int, dict]]:
    valid = []
    for i, raw in enumerate(raw_events):
        try:
            event = EVENT_SCHEMA.load(raw)
        except ValidationError as ex:
            outcome.reject(i, ex.messages if isinstance(ex.messages, dict) else {"_schema": ex.messages})
            continue
        problem = window_problem(event["occurred_at"], now)
        if problem is not None:
            outcome.reject(i, {"occurred_at": [problem]})
            continue
        valid.append((i, event))
    return valid


def visitor_uuid(services: Services, account_id: uuid.UUID, value: str | None) -> uuid.UUID | None:
    """A sender's visitor id as a stored one: keyed by the instance and the account."""
    if not value:
        return None
    digest = services.ip_hash(f"visitor:{account_id}:{value}")
    return uuid.UUID(bytes=digest[:16]) if digest else None


def store(services: Services, account_id: uuid.UUID, raw_events: list[dict[str, Any]],
          now: datetime) -> Outcome:
    """Validate each event, store the valid ones (per session: one transaction), count them."""
    outcome = Outcome()
    valid = validate_each(raw_events, now, outcome)
    by_session: dict[uuid.UUID, list[tuple[int, dict]]] = defaultdict(list)
    for i, event in valid:
        by_session[session_uuid(account_id, event["session_id"])].append((i, event))
    if not by_session:
        return outcome
    with services.pool.connection() as conn:
        domains = q.account_domains(conn, account_id)
        existing = q.sessions_by_id(conn, list(by_session))
    for sid, items in by_session.items():
        _store_session(services, account_id, sid, items, existing.get(sid), domains, outcome)
    return outcome


def _store_session(services: Services, account_id: uuid.UUID, sid: uuid.UUID, items: list[tuple[int, dict]],
                   session: dict | None, domains: list[dict], outcome: Outcome) -> None:
    if session is not None and session["account_id"] != account_id:
        for i, _ in items:
            outcome.reject(i, {"session_id": ["This session id is taken by another account."]})
        return
    host = session["host"] if session is not None else None
    if host is None:
        # A new server-side session: on the host of the first page_url a domain covers.
        for _, event in items:
            page_host = hostname_of(event["page_url"])
            domain = next((d for d in domains if page_host and covers(d["name"], page_host)), None)
            if domain is not None:
                host = domain["name"]
                break
        if host is None:
            for i, _ in items:
                outcome.reject(i, {"page_url": [
                    "The session does not exist: page_url must be on a registered domain of the account "
                    "(its session is then created)."]})
            return
    domain_row = next((d for d in domains if d["name"] == host), None)
    if domain_row is not None and not domain_row["statistics_enabled"]:
        for i, _ in items:
            outcome.reject(i, {"session_id": ["Statistics are disabled for this session's host "
                                              "(usage limit reached or switched off)."]})
        return
    strip = bool(domain_row and domain_row["strip_query_strings"])
    batch_events = [as_stored_event(e) for _, e in items]
    created = False
    with services.pool.connection() as conn, conn.transaction():
        if session is None:
            first = min(e["occurred_at"] for _, e in items)
            visitor = next((e["visitor_id"] for _, e in items if e["visitor_id"]), None)
            page = next((e["page_url"] for _, e in items if e["page_url"]), None)
            values = {"session_id": sid, "account_id": account_id, "host": host, "started_at": first,
                      "last_activity_at": first, "page_url": page, "device_type": "other",
                      "metadata": {"source": "api"}}
            vid = visitor_uuid(services, account_id, visitor)
            if vid is not None:
                values["visitor_id"] = vid
            row, created = session_queries.insert_session(conn, values, strip)
            if row["account_id"] != account_id:  # created by another account meanwhile
                for i, _ in items:
                    outcome.reject(i, {"session_id": ["This session id is taken by another account."]})
                return
        inserted = event_queries.insert_batch(conn, sid, account_id, host,
                                              event_queries.encode_batch(batch_events), strip)
    outcome.accepted += len(items)
    outcome.stored += inserted
    # Committed: count on the statistics stacks (no token: a server-side sender).
    pages = sum(1 for e in batch_events if e["event_type"] == "page_view") if inserted else 0
    if inserted or created:
        services.stacks.registry.add(account_id, host, None, sessions=int(created), pages=pages,
                                     other=max(inserted - pages, 0))

