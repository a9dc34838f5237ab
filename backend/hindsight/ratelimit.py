"""Requests per client address and minute, counted once for all gunicorn workers of a host.

The gunicorn master creates the table before it forks (gunicorn_conf.on_starting): anonymous
shared memory that every worker inherits, so an address gets the configured limit per host,
not per worker. Updates are serialized by a POSIX record lock (`fcntl.lockf`) on a file
that is unlinked as soon as it is opened (nothing is left behind, even after kill -9; the
workers inherit the descriptor). Record locks belong to a process, not to a descriptor, so
each worker locks for itself, and the kernel releases a lock when its holder dies: a worker
killed mid-update (kill -9, the OOM killer) cannot block the others; at worst that one
increment is lost. Threads of one worker take a thread lock first (record locks do not
exclude threads of the same process).

Under `hindsight serve` (gevent: hindsight.worker) a worker's requests are greenlets of one
thread. Nothing between taking and releasing the locks lets gevent switch greenlets
(`fcntl.lockf` is a plain system call, not patched: while another worker holds the record
lock, for the microseconds of its update, this whole worker waits), so a greenlet never finds
the thread lock taken; the lock, created in the master before gevent patches the worker, is
the real one, and still excludes real threads if there are any.

The table is open-addressed: an address hashes to a slot and probes the next few. Entries
belong to one fixed minute ("window"); an entry of an older window is free. Within a window
entries are never removed, so an address's entry always comes before the first free slot of
its probe sequence. When all of its probe slots hold other addresses of the current minute
(tens of thousands of addresses in one minute on one host), the request is not counted
(the limiter fails open) rather than refused.
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import tempfile
import threading

SLOTS = 65_536          # addresses per minute per host before probing gets long
PROBES = 8              # slots an address may take before it is not counted
_WORDS = 4              # uint32 per entry: key low, key high, window, count


class HostCounter:
    """A shared table of per-address counts for the current minute (see the module doc)."""

    def __init__(self, slots: int = SLOTS) -> None:
        self._slots = slots
        self._memory = mmap.mmap(-1, slots * _WORDS * 4)   # MAP_SHARED | MAP_ANONYMOUS
        self._words = memoryview(self._memory).cast("I")
        fd, path = tempfile.mkstemp(prefix="hindsight-ratelimit-",
                                    dir="/dev/shm" if os.access("/dev/shm", os.W_OK) else None)
        os.unlink(path)
        self.lock_fd = fd
        self._thread_lock = threading.Lock()

    def hit(self, address: str, window: int) -> int | None:
        """Count one request of `address` in minute `window` (> 0); return the address's
        count in that minute across all workers, or None when it could not be counted."""
        digest = int.from_bytes(hashlib.blake2b(address.encode(), digest_size=8).digest(), "little") or 1
        low, high = digest & 0xFFFFFFFF, digest >> 32
        words, window = self._words, window & 0xFFFFFFFF
        with self._thread_lock:
            fd = self.lock_fd
            fcntl.lockf(fd, fcntl.LOCK_EX)
            try:
                for probe in range(PROBES):
                    at = ((digest + probe) % self._slots) * _WORDS
                    if words[at + 2] != window:              # free: empty, or an older minute
                        words[at], words[at + 1], words[at + 2], words[at + 3] = low, high, window, 1
                        return 1
                    if words[at] == low and words[at + 1] == high:
                        count = words[at + 3] + 1
                        words[at + 3] = min(count, 0xFFFFFFFF)
                        return count
                return None
            finally:
                fcntl.lockf(fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Give the lock file's descriptor back (the master, when gunicorn exits)."""
        os.close(self.lock_fd)


# The table of this host's gunicorn, set in the master before it forks; None elsewhere
# (tests in one process, `falcon.testing`): the limiter then counts in its own process.
host_counter: HostCounter | None = None


def start_host_counter() -> HostCounter:
    """Create the host's table (the gunicorn master calls this once, before forking)."""
    global host_counter
    host_counter = HostCounter()
    return host_counter
