"""Two parts of one request's work at once (the overview's statements on two connections).

`both(first, second)` runs `second` in another thread while `first` runs in the caller's:
under `hindsight serve` gevent's monkey patch makes that thread a greenlet, and psycopg
yields to the hub while PostgreSQL works, so two statements run in two server processes at
the same time (two cores); elsewhere (tests, benches, `hindsight` commands) it is a real
thread, and psycopg releases the GIL while it waits. The caller's context variables go
with `second` (the visitor readers' watermarks read once, `queries.visitors.same_watermarks`).
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import Any, TypeVar

A = TypeVar("A")
B = TypeVar("B")


def both(first: Callable[[], A], second: Callable[[], B]) -> tuple[A, B]:
    """(first(), second()), run at the same time; an error of either is raised once both
    are done (the first one's before the second's)."""
    context = contextvars.copy_context()
    outcome: dict[str, Any] = {}

    def run_second() -> None:
        try:
            outcome["value"] = context.run(second)
        except BaseException as ex:  # re-raised in the caller's thread below
            outcome["error"] = ex

    thread = threading.Thread(target=run_second, name="hindsight-side-by-side", daemon=True)
    thread.start()
    try:
        a = first()
    finally:
        thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return a, outcome["value"]
