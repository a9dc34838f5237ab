"""hindsight.side_by_side.both: the two parts really overlap, errors come back to the
caller, context variables travel; ReadSide.spare: a second connection only when one is
free at once (never a wait, never the replica marked down)."""

from __future__ import annotations

import contextvars
import threading
import time

import pytest
from psycopg_pool import ConnectionPool

from hindsight.read_side import ReadSide
from hindsight.side_by_side import both

NAME: contextvars.ContextVar[str] = contextvars.ContextVar("name", default="unset")


def test_both_run_at_the_same_time_and_return_both_results():
    met = threading.Barrier(2, timeout=5)  # each part waits for the other: only overlap passes

    def part(value):
        met.wait()
        return value

    assert both(lambda: part("a"), lambda: part("b")) == ("a", "b")


def test_the_second_part_sees_the_callers_context_variables():
    token = NAME.set("caller")
    try:
        assert both(NAME.get, NAME.get) == ("caller", "caller")
    finally:
        NAME.reset(token)


def test_an_error_of_either_part_reaches_the_caller_after_both_are_done():
    finished = []

    def slow_ok():
        time.sleep(0.2)
        finished.append("first")
        return 1

    def boom():
        raise ValueError("second part failed")

    with pytest.raises(ValueError, match="second part failed"):
        both(slow_ok, boom)
    assert finished == ["first"]  # the caller's part was not cut short
    with pytest.raises(KeyError):
        both(lambda: {}["missing"], lambda: 2)


def test_spare_lends_a_free_connection_and_none_when_the_pool_is_used_up(cluster):
    pool = ConnectionPool(cluster.url(), min_size=1, max_size=2, open=True)
    try:
        side = ReadSide(pool)
        with side.connection() as first, side.spare() as second:
            assert second is not None and second is not first
            assert second.execute("SELECT 1").fetchone() == (1,)
            started = time.monotonic()
            with side.spare() as third:  # both connections lent: no third, and no long wait
                assert third is None
            assert time.monotonic() - started < 1.0
        assert pool.get_stats()["pool_available"] == 2
    finally:
        pool.close()


def test_a_busy_replica_pool_does_not_mark_the_replica_down(cluster):
    primary = ConnectionPool(cluster.url(), min_size=1, max_size=1, open=True)
    replica = ConnectionPool(cluster.url(), min_size=1, max_size=1, open=True)
    try:
        side = ReadSide(primary, replica)
        with side.connection(), side.spare() as spare:
            assert spare is None
        assert side.replica_up
    finally:
        primary.close()
        replica.close()


def test_under_gevents_monkey_patch_the_parts_are_greenlets_that_overlap(tmp_path):
    """As under `hindsight serve` (gevent worker): the second part is a greenlet, and the two
    parts still overlap (each waits for the other at a barrier; with no overlap it times out)."""
    import ast
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "gevent_both.py"
    script.write_text(
        "from gevent import monkey\n"
        "monkey.patch_all()\n"
        "import threading, gevent\n"
        "from hindsight.side_by_side import both\n"
        "met = threading.Barrier(2, timeout=5)\n"
        "def part(v):\n"
        "    met.wait()\n"
        "    return (v, type(gevent.getcurrent()).__name__)\n"
        "print(both(lambda: part('a'), lambda: part('b')))\n")
    backend = Path(__file__).resolve().parent.parent / "backend"
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60,
                         env={"PYTHONPATH": str(backend), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    first, second = ast.literal_eval(out.stdout.strip())  # (("a", kind), ("b", kind))
    assert first[0] == "a" and second[0] == "b"
    assert second[1] == "Greenlet"  # the second part ran in a greenlet of the same process


def test_the_spare_comes_from_the_pool_that_lent_the_connection(cluster):
    """The replica marked down (or up) between the two checkouts: the spare still comes from
    the pool of the request's first connection, so both read one server (and can share one
    snapshot: rollup_rows.snapshot)."""
    primary = ConnectionPool(cluster.url(), min_size=2, max_size=2, open=True)
    replica = ConnectionPool(cluster.url(), min_size=2, max_size=2, open=True)
    primary.wait()
    replica.wait()

    def lent(pool) -> int:
        stats = pool.get_stats()
        return stats["pool_size"] - stats["pool_available"]

    try:
        side = ReadSide(primary, replica)
        with side.connection():
            side._mark_down(RuntimeError("gone"))   # another request found it down meanwhile
            with side.spare() as spare:
                assert spare is not None
                assert (lent(replica), lent(primary)) == (2, 0)
        with side.connection():                     # down: the primary's
            side._mark_up()                         # a probe found it up meanwhile
            with side.spare() as spare:
                assert spare is not None
                assert (lent(replica), lent(primary)) == (0, 2)
        with side.spare():                          # outside a request's connection: as up says
            assert (lent(replica), lent(primary)) == (1, 0)
    finally:
        primary.close()
        replica.close()
