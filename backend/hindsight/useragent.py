"""Device type, browser and OS from a User-Agent string (ua-parser)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ua_parser import parse

_TABLET_DEVICES = ("iPad", "Kindle", "Nexus 7", "Nexus 9", "Nexus 10", "Galaxy Tab")


@dataclass(frozen=True)
class Client:
    device_type: str | None
    browser: str | None
    os: str | None


@functools.lru_cache(maxsize=4096)
def describe(user_agent: str | None) -> Client:
    """Return the device type (desktop/mobile/tablet/bot), browser and OS of a user agent."""
    if not user_agent:
        return Client(None, None, None)
    result = parse(user_agent)
    browser = result.user_agent.family if result.user_agent else None
    os_name = result.os.family if result.os else None
    device = result.device.family if result.device else ""
    lowered = user_agent.lower()
    if device == "Spider" or "bot" in lowered or "crawler" in lowered:
        device_type = "bot"
    elif any(name in (device or "") for name in _TABLET_DEVICES) or "tablet" in lowered or (
        os_name == "Android" and "mobile" not in lowered
    ):
        device_type = "tablet"
    elif "mobi" in lowered or os_name in ("iOS", "Android", "Windows Phone"):
        device_type = "mobile"
    else:
        device_type = "desktop"
    return Client(device_type, _known(browser), _known(os_name))


def _known(name: str | None) -> str | None:
    return None if name in (None, "Other") else name
