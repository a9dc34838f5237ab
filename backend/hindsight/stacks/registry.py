"""The in-memory statistics stacks of one process: one per account + host.

A stack holds what the monitor decides on: its counters per group (session starts, page
views, clicks, and other events, which are counted but are not journey steps), when it
was created and last updated, and the last token seen. The events themselves are not
copied here: they are already committed, and the ledger (`stack_pending`, see ledger.py)
holds each batch's counts and step keys. So memory per stack is constant and a crash
loses nothing a restart cannot rebuild.

Stacks are kept in least-recently-updated order, so finding the idle ones walks only
those (the monitor's cycle costs what it flushes, not how many stacks there are), and a
stack that reaches the event threshold is put on the due list at once.

Thread safety: request threads add, the scheduler thread takes; every structure here is
touched under one lock, held for microseconds (no I/O under it).
"""

from __future__ import annotations

import heapq
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

Key = tuple[uuid.UUID, str]

# Bytes one stack costs in this process: the Stack object, its key tuple and the
# OrderedDict entry (measured by bench/stacks.py with tracemalloc; see docs/BENCHMARKS.md).
BYTES_PER_STACK = 550

THRESHOLD, IDLE, MEMORY, REVOKED, ORPHAN = "threshold", "idle", "memory", "revoked", "orphan"


class Stack:
    __slots__ = ("account_id", "host", "token", "sessions", "pages", "clicks", "other",
                 "created_at", "updated_at")

    def __init__(self, account_id: uuid.UUID, host: str, token: uuid.UUID | None, now: float) -> None:
        self.account_id = account_id
        self.host = host
        self.token = token
        self.sessions = self.pages = self.clicks = self.other = 0
        self.created_at = self.updated_at = now

    @property
    def key(self) -> Key:
        return (self.account_id, self.host)

    @property
    def total(self) -> int:
        return self.sessions + self.pages + self.clicks + self.other

    def counters(self) -> dict[str, int]:
        return {"sessions": self.sessions, "pages": self.pages, "clicks": self.clicks,
                "other": self.other, "total": self.total}

    def __repr__(self) -> str:
        return f"Stack({self.account_id}, {self.host!r}, {self.counters()})"


@dataclass(frozen=True)
class Snapshot:
    active_stacks: int
    events: int
    empty_stacks: int
    memory_bytes: int
    oldest_created_at: float | None
    due: int


class Registry:
    def __init__(self, threshold: int, memory_limit_bytes: int, clock: Callable[[], float]) -> None:
        self.threshold = threshold
        self.memory_limit_bytes = memory_limit_bytes
        self._clock = clock
        self._lock = threading.Lock()
        # Least recently updated first: the idle ones are at the front.
        self._stacks: OrderedDict[Key, Stack] = OrderedDict()
        # Keys to flush at the next due run, with why (insertion ordered).
        self._due: dict[Key, str] = {}

    # ------------------------------------------------------------------ request side

    def add(self, account_id: uuid.UUID, host: str, token: uuid.UUID | None, *,
            sessions: int = 0, pages: int = 0, clicks: int = 0, other: int = 0) -> None:
        """Count committed events on the stack of account + host (created if missing)."""
        now = self._clock()
        key = (account_id, host)
        with self._lock:
            stack = self._stacks.get(key)
            if stack is None:
                stack = self._stacks[key] = Stack(account_id, host, token, now)
                created = True
            else:
                self._stacks.move_to_end(key)
                created = False
            if token is not None:
                stack.token = token
            stack.sessions += sessions
            stack.pages += pages
            stack.clicks += clicks
            stack.other += other
            stack.updated_at = now
            if stack.total >= self.threshold and key not in self._due:
                self._due[key] = THRESHOLD
            if created and (len(self._stacks) - len(self._due)) * BYTES_PER_STACK > self.memory_limit_bytes:
                self._relieve_memory(keep=key)

    def register(self, account_id: uuid.UUID, host: str, token: uuid.UUID) -> None:
        """Start an (empty) stack for a new token, as the seed's POST /api/token does."""
        self.add(account_id, host, token)

    def drop(self, key: Key, reason: str = REVOKED) -> Stack | None:
        """Remove a stack now and queue its key for a final flush (what it had is in the ledger)."""
        with self._lock:
            self._due[key] = reason
            return self._stacks.pop(key, None)

    def pop(self, key: Key) -> Stack | None:
        """Remove a stack (and its place on the due list): the caller flushes it."""
        with self._lock:
            self._due.pop(key, None)
            return self._stacks.pop(key, None)

    def drop_account(self, account_id: uuid.UUID, reason: str = REVOKED) -> int:
        with self._lock:
            keys = [k for k in self._stacks if k[0] == account_id]
            for key in keys:
                del self._stacks[key]
                self._due[key] = reason
        return len(keys)

    # ------------------------------------------------------------------ monitor side

    def take_due(self) -> list[tuple[Key, str, Stack | None]]:
        """Remove and return every due key (with its stack, if it still has one)."""
        with self._lock:
            due, self._due = self._due, {}
            return [(key, reason, self._stacks.pop(key, None)) for key, reason in due.items()]

    def take_idle(self, cutoff: float) -> tuple[list[Stack], int]:
        """Remove the stacks not updated since `cutoff`; return the non-empty ones and how
        many empty ones were dropped (an empty stack has nothing to flush)."""
        idle: list[Stack] = []
        empty = 0
        with self._lock:
            stacks = self._stacks
            while stacks:
                key, stack = next(iter(stacks.items()))
                if stack.updated_at > cutoff:
                    break
                del stacks[key]
                self._due.pop(key, None)
                if stack.total:
                    idle.append(stack)
                else:
                    empty += 1
        return idle, empty

    def put_back(self, key: Key, reason: str, stack: Stack | None) -> None:
        """Return a key whose flush failed: its stack (merged with whatever arrived
        meanwhile) and, unless it was merely idle, its place on the due list."""
        with self._lock:
            if reason != IDLE:
                self._due.setdefault(key, reason)
            if stack is None:
                return
            current = self._stacks.get(key)
            if current is None:
                self._stacks[key] = stack
                first = next(iter(self._stacks.values()))
                if stack.updated_at <= first.updated_at:  # keep least recently updated first
                    self._stacks.move_to_end(key, last=False)
                return
            current.sessions += stack.sessions
            current.pages += stack.pages
            current.clicks += stack.clicks
            current.other += stack.other
            current.created_at = min(current.created_at, stack.created_at)

    def restore(self, rows: Iterable[dict]) -> int:
        """Rebuild stacks from the ledger's per-key totals (after a start or a crash).

        The ledger is the truth, so it replaces what is in memory for the key (a group
        counter only grows: the ledger may have been read before a request counted here).
        """
        restored = 0
        with self._lock:
            for row in sorted(rows, key=lambda r: r["last_at"], reverse=True):
                key = (row["account_id"], row["host"])
                stack = self._stacks.get(key)
                last = row["last_at"].timestamp()
                if stack is None:
                    stack = self._stacks[key] = Stack(key[0], key[1], None, row["first_at"].timestamp())
                    stack.updated_at = last
                    # Oldest first: rows come newest first, each goes to the front.
                    self._stacks.move_to_end(key, last=False)
                    restored += 1
                other = int(row["total"]) - int(row["sessions"]) - int(row["pages"]) - int(row["clicks"])
                stack.sessions = max(stack.sessions, int(row["sessions"]))
                stack.pages = max(stack.pages, int(row["pages"]))
                stack.clicks = max(stack.clicks, int(row["clicks"]))
                stack.other = max(stack.other, other)
                if stack.total >= self.threshold:
                    self._due.setdefault(key, THRESHOLD)
        return restored

    def __contains__(self, key: Key) -> bool:
        return key in self._stacks

    def __len__(self) -> int:
        return len(self._stacks)

    def get(self, key: Key) -> Stack | None:
        return self._stacks.get(key)

    def due_count(self) -> int:
        return len(self._due)

    def snapshot(self) -> Snapshot:
        with self._lock:
            stacks = list(self._stacks.values())
            due = len(self._due)
        events = empty = 0
        oldest = None
        for s in stacks:
            total = s.total
            events += total
            empty += total == 0
            if oldest is None or s.created_at < oldest:
                oldest = s.created_at
        return Snapshot(len(stacks), events, empty, len(stacks) * BYTES_PER_STACK, oldest, due)

    # ------------------------------------------------------------------ memory bound

    def _relieve_memory(self, keep: Key) -> None:
        """Over the memory limit: drop empty stacks, then queue the largest for an early
        flush, until the stacks not yet queued fit in 80% of the limit (so this runs
        again only after many more new stacks). Nothing is lost: a flush counts what
        they had, which is in the ledger. Caller holds the lock."""
        budget = int(0.8 * self.memory_limit_bytes) // BYTES_PER_STACK
        excess = len(self._stacks) - len(self._due) - budget
        if excess <= 0:
            return
        empty = [k for k, s in self._stacks.items() if s.total == 0 and k != keep and k not in self._due]
        for key in empty[:excess]:
            del self._stacks[key]
            excess -= 1
        if excess <= 0:
            return
        candidates = (s for k, s in self._stacks.items() if k not in self._due)
        for stack in heapq.nlargest(excess, candidates, key=lambda s: s.total):
            self._due[stack.key] = MEMORY
