"""A screenshot's bytes: GET /api/v1/screenshots/{id} (analyst key), and the one way every
endpoint that serves them answers (the dashboard's replay uses `send_screenshot` too)."""

from __future__ import annotations

import falcon

from ..errors import not_found
from ..queries import screenshots as screenshot_queries
from ..services import Services
from .http import analyst

# Private: the bytes belong to one account; immutable: an id never changes content, so a
# year (the longest lifetime HTTP caches honour) everywhere.
CACHE_CONTROL = ["private", "max-age=31536000", "immutable"]


def send_screenshot(req: falcon.Request, resp: falcon.Response, row: dict | None) -> None:
    """Answer with a row of queries.screenshots.image: the bytes, or 304 for a copy the
    client has (ETag: the content hash); 404 when there is no row."""
    if row is None:
        raise not_found("No such screenshot in this account.")
    etag = f'"{row["content_hash"]}"'
    resp.etag = etag
    resp.cache_control = CACHE_CONTROL
    resp.set_header("X-Content-Type-Options", "nosniff")
    if req.get_header("If-None-Match") == etag:
        resp.status = falcon.HTTP_304
        return
    resp.content_type = f"image/{row['image_format']}"
    resp.data = bytes(row["image_data"])


class ScreenshotImage:
    """GET /api/v1/screenshots/{screenshot_id}: the image bytes, cacheable for a year."""

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, screenshot_id: int) -> None:
        with self._s.read_pool.connection() as conn:
            who = analyst(req, conn)
            row = screenshot_queries.image(conn, who.account_id, screenshot_id)
        send_screenshot(req, resp, row)
