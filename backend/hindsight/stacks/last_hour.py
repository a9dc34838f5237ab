"""What the stacks and their monitor did in the last hour: counters in one-minute buckets
(constant memory), summed for the health document."""

from __future__ import annotations

import threading
from collections import Counter, deque

WINDOW_MINUTES = 60


class LastHourCounts:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._buckets: deque[tuple[int, Counter]] = deque()

    def add(self, now: float, **amounts: float) -> None:
        minute = int(now // 60)
        with self._lock:
            if not self._buckets or self._buckets[-1][0] != minute:
                self._buckets.append((minute, Counter()))
                while self._buckets and self._buckets[0][0] <= minute - WINDOW_MINUTES:
                    self._buckets.popleft()
            self._buckets[-1][1].update(amounts)

    def sum(self, now: float) -> Counter:
        """Sums over the buckets of the last 60 minutes."""
        start = int(now // 60) - WINDOW_MINUTES
        total: Counter = Counter()
        with self._lock:
            for minute, counts in self._buckets:
                if minute > start:
                    total.update(counts)
        return total
