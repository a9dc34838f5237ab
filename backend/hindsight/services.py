"""The collaborators every resource and the ingestion pipeline share, built once per
process by the app factory (no HTTP here: hindsight.resources.http reads requests)."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from .db import Pool
from .read_side import ReadSide
from .scheduler import Scheduler
from .settings import Settings
from .signing import KeyRing
from .stacks.service import StatisticsStacks


def utc_now() -> datetime:
    return datetime.now(UTC)


class IpHasher:
    """Keyed hash of client IPs: equal IPs match, but the IP cannot be read back."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def __call__(self, ip: str | None) -> bytes | None:
        if not ip:
            return None
        return hmac.new(self._key, ip.encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class Services:
    settings: Settings
    pool: Pool
    keys: KeyRing
    ip_hash: IpHasher
    scheduler: Scheduler
    stacks: StatisticsStacks
    # Reads that tolerate lag (docs/SCALING.md): the replica's pool, or `pool` without one.
    read_pool: ReadSide
    clock: Callable[[], datetime] = utc_now
