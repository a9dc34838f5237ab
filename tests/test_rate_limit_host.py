"""The rate limit holds per host, whatever the number of gunicorn workers: the counts live in
shared memory that the master creates before forking (hindsight.ratelimit)."""

from __future__ import annotations

import fcntl
import http.client
import os
import signal
import threading
import time

from browser import ApiServer
from conftest import new_account
from hindsight.ratelimit import PROBES, HostCounter


def _in_children(counter: HostCounter, n_children: int, hits: int, address: str, window: int) -> None:
    pids = []
    for _ in range(n_children):
        pid = os.fork()
        if pid == 0:  # child: count, then leave without running the parent's cleanup
            try:
                for _ in range(hits):
                    counter.hit(address, window)
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        assert os.waitpid(pid, 0)[1] == 0


def test_forked_processes_share_one_count_per_address_and_minute():
    counter = HostCounter(slots=1024)
    try:
        _in_children(counter, n_children=4, hits=250, address="203.0.113.7", window=42)
        # Every increment of the four processes is in the one entry, none lost to a race.
        assert counter.hit("203.0.113.7", 42) == 1001
        assert counter.hit("203.0.113.8", 42) == 1            # another address: its own count
        assert counter.hit("203.0.113.7", 43) == 1            # the next minute starts again
        assert counter.hit("203.0.113.8", 43) == 1
    finally:
        counter.close()


def test_a_full_neighbourhood_fails_open_and_frees_up_next_minute():
    counter = HostCounter(slots=PROBES)                        # room for PROBES addresses
    try:
        for i in range(PROBES):
            assert counter.hit(f"198.51.100.{i}", 7) == 1
        assert counter.hit("192.0.2.1", 7) is None             # not counted, not refused
        assert counter.hit("192.0.2.1", 8) == 1                # an older minute's slots are free
    finally:
        counter.close()


def test_a_process_killed_holding_the_lock_does_not_block_the_others():
    counter = HostCounter(slots=1024)
    try:
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            fcntl.lockf(counter.lock_fd, fcntl.LOCK_EX)    # the inherited descriptor
            os.write(write, b"x")
            time.sleep(60)
            os._exit(0)
        assert os.read(read, 1) == b"x"                        # the child holds the lock
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        done = []
        worker = threading.Thread(target=lambda: done.append(counter.hit("203.0.113.9", 1)))
        worker.start()
        worker.join(timeout=5)
        assert done == [1], "the kernel released the dead process's lock"
    finally:
        counter.close()


def _status(port: int, path: str) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)  # a new connection each time
    try:
        conn.request("GET", path, headers={"Origin": "http://ratelimit.example", "Connection": "close"})
        return conn.getresponse().status
    finally:
        conn.close()


def test_two_gunicorn_workers_enforce_the_limit_once_for_the_host(db_url):
    account = new_account(db_url, "ratelimit.example")
    path = f"/site/account/{account['account_id']}/widgets"
    api = ApiServer(db_url, workers=2, env={"HINDSIGHT_RATE_LIMIT_PER_MINUTE": "20", "HINDSIGHT_THREADS": "2"})
    api.start()
    try:
        # All 40 requests in one window (the limiter's minutes are CLOCK_MONOTONIC's, the
        # same clock in every process).
        if time.monotonic() % 60 > 45:
            time.sleep(60.5 - time.monotonic() % 60)
        statuses: list[int] = []
        lock = threading.Lock()

        def client():
            for _ in range(5):
                status = _status(api.port, path)
                with lock:
                    statuses.append(status)

        threads = [threading.Thread(target=client) for _ in range(8)]   # both workers accept
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # Per worker, each of the two would have let 20 through; the host lets 20 through.
        assert len(statuses) == 40
        assert statuses.count(429) == 20, statuses
        assert set(statuses) == {200, 429}, statuses
    finally:
        api.stop()
