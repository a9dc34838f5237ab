"""Decode and verify an uploaded screenshot (a data URL) with pillow."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import re
import warnings
from dataclasses import dataclass

from PIL import Image

from .errors import bad_request
from .offload import run_in_thread

MAX_PIXELS = 50_000_000  # 50 MP: far above any real page screenshot, far below a bomb
_DATA_URL = re.compile(r"^data:image/(jpeg|jpg|png|webp);base64,", re.IGNORECASE)
_PIL_FORMATS = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}


@dataclass(frozen=True)
class VerifiedImage:
    data: bytes
    format: str  # jpeg | png | webp
    width: int
    height: int
    content_hash: bytes


def decode_data_url(data_url: str, declared_width: int, declared_height: int,
                    max_bytes: int) -> VerifiedImage:
    """Return the verified image, or raise a 400 naming `image_data` (or width/height)."""
    match = _DATA_URL.match(data_url)
    if not match:
        raise bad_request("image_data must be a base64 data URL of a JPEG, PNG or WebP image.",
                          {"image_data": ["Expected data:image/(jpeg|png|webp);base64,..."]})
    declared = match.group(1).lower().replace("jpg", "jpeg")
    encoded = data_url[match.end():]
    if len(encoded) * 3 // 4 > max_bytes + 3:
        raise bad_request("The image is too large.",
                          {"image_data": [f"At most {max_bytes} bytes once decoded."]})
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError) as ex:
        raise bad_request("image_data is not valid base64.", {"image_data": ["Invalid base64."]}) from ex
    if len(raw) > max_bytes:
        raise bad_request("The image is too large.",
                          {"image_data": [f"At most {max_bytes} bytes once decoded."]})
    width, height = run_in_thread(_verify, raw, declared)  # most of a second of CPU for 48 MP
    if (width, height) != (declared_width, declared_height):
        message = f"The image is {width}x{height}, not {declared_width}x{declared_height}."
        raise bad_request(message, {"width": [message], "height": [message]})
    return VerifiedImage(raw, declared, width, height, hashlib.sha256(raw).digest())


def _verify(raw: bytes, declared: str) -> tuple[int, int]:
    def invalid(reason: str) -> Exception:
        return bad_request(f"image_data is not a valid image: {reason}", {"image_data": [reason]})

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw), formats=list(_PIL_FORMATS.values())) as probe:
                fmt, (width, height) = probe.format, probe.size
                if width * height > MAX_PIXELS:
                    raise invalid(f"{width}x{height} pixels is more than the {MAX_PIXELS} allowed.")
                if fmt != _PIL_FORMATS[declared]:
                    raise invalid(f"the data is {fmt}, but the data URL says {declared}.")
                probe.verify()
            # verify() does not decode pixels; load them, which catches truncated data.
            with Image.open(io.BytesIO(raw)) as full:
                full.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as ex:
        raise invalid("too many pixels (decompression bomb).") from ex
    except (OSError, SyntaxError, ValueError, Image.UnidentifiedImageError) as ex:
        if hasattr(ex, "status"):
            raise
        raise invalid("the data cannot be decoded as an image.") from ex
    return width, height
