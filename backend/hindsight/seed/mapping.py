"""Seed events onto Hindsight's sessions and events.

Seed session ids are free strings: a UUID is used as it is, anything else becomes a
UUID (version 5) so that a re-sent event lands in the same session. An event's `seq` is
a hash of its content, so a re-sent event is stored (and counted) once. PageLoad is a
`page_view`, Click a `click` (journey steps); PageUnload, Focus, Blur and referrers are
other events (counted, not steps).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Any

SEED_SESSION_NAMESPACE = uuid.UUID("5b1f8f0e-3c8a-5d3e-9a51-6b1e0c2f7a10")

# The seed's event kinds (the envelope's `type`).
SESSIONS, PAGES, INTERACTIONS, REFERRERS = "sessions-added", "pages-added", "events-added", "referrers-added"


def seed_session_id(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        return uuid.uuid5(SEED_SESSION_NAMESPACE, value)


def content_seq(kind: str, event: dict[str, Any], timestamp: datetime) -> int:
    """A seq from the event's content: the same event sent twice is the same row."""
    raw = json.dumps([kind, event, timestamp.isoformat()], sort_keys=True, default=str).encode()
    return int.from_bytes(hashlib.blake2b(raw, digest_size=8).digest(), "big") >> 2


def session_values(e: dict[str, Any], started_at: datetime, user_agent_header: str | None) -> dict[str, Any]:
    """A "sessions-added" event as the columns of a session (hindsight.ingestion.sessions
    fills in device type, browser and OS from the user agent where the seed has none)."""
    browser, screen = e["browser"] or {}, e["screen"] or {}
    metadata = {k: v for k, v in {
        "seed_session": e["session"], "base_domain": e["base_domain"],
        "browser_version": browser.get("version"), "color_depth": screen.get("colorDepth"),
        "orientation": screen.get("orientation"),
    }.items() if v is not None}
    return {
        "session_id": seed_session_id(e["session"]), "user_id": e["user_id"], "started_at": started_at,
        "page_url": e["page_url"], "referrer": e["referrer"],
        "user_agent": browser.get("userAgent") or user_agent_header,
        "screen_width": screen.get("width"), "screen_height": screen.get("height"),
        "device_type": None, "browser": browser.get("name"), "os": browser.get("platform"),
        "language": browser.get("language"), "metadata": metadata,
    }


def _tracked(event: dict[str, Any], **extra: Any) -> dict[str, Any]:
    data = {k: v for k, v in extra.items() if v is not None}
    if event.get("user_id") is not None:
        data["user_id"] = event["user_id"]
    return data


def _page_event(e: dict[str, Any]) -> dict[str, Any]:
    return {"event_type": "page_view" if e["event_type"] == "PageLoad" else "page_unload",
            "page_url": e["page_url"],
            "event_data": _tracked(e, time_on_page_ms=e["time_on_page"], page_details=e["page_details"],
                                   referrer=e["referrer"])}


def _interaction_event(e: dict[str, Any]) -> dict[str, Any]:
    target = e["target"] or {}
    position = target.get("position") or {}
    return {"event_type": e["event_type"].lower(), "page_url": e["page_url"],
            "target_tag": target.get("tagName"), "target_id": target.get("id"),
            "target_class": target.get("className"),
            "viewport_x": position.get("clientX"), "viewport_y": position.get("clientY"),
            "event_data": _tracked(e, form_data=e["form_data"])}


def _referrer_event(e: dict[str, Any]) -> dict[str, Any]:
    return {"event_type": "referrer", "page_url": e["page_url"],
            "event_data": _tracked(e, referrer=e["referrer"])}


_EVENTS = {PAGES: _page_event, INTERACTIONS: _interaction_event, REFERRERS: _referrer_event}


def event(kind: str, e: dict[str, Any], timestamp: datetime) -> dict[str, Any]:
    """A seed event of `kind` (pages-, events-, referrers-added) as one event of a batch."""
    return {**_EVENTS[kind](e), "seq": content_seq(kind, e, timestamp), "timestamp": timestamp}
