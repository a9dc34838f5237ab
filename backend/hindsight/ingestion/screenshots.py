"""Screenshots (POST /api/v1/track/screenshot): authorize, decode the image, store it
once per content, after the endpoint has decoded and validated the body. Not counted:
usage is events and sessions.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .. import images
from ..queries import screenshots as screenshot_queries
from ..services import Services
from .authorize import Sender, authorize


@dataclass(frozen=True)
class StoredScreenshot:
    screenshot_id: int
    created: bool   # False: the same upload was stored before


def store(services: Services, sender: Sender, body: dict[str, Any], now: datetime) -> StoredScreenshot:
    # Authorize first (cheap), then decode outside any transaction (CPU-bound).
    with services.pool.connection() as conn:
        writer = authorize(conn, sender, now, body["session_id"])
    image = images.decode_data_url(body["image_data"], body["width"], body["height"],
                                   services.settings.max_screenshot_bytes)
    with services.pool.connection() as conn, conn.transaction():
        screenshot_id, created = screenshot_queries.store(
            conn, content_hash=image.content_hash, image=image.data, image_format=image.format,
            width=image.width, height=image.height, session_id=body["session_id"],
            account_id=writer.account_id, host=writer.host, page_url=body["page_url"],
            timestamp=body["timestamp"], strip_query=writer.strip_query_strings,
            elements=body.get("elements"),
        )
    return StoredScreenshot(screenshot_id, created)
