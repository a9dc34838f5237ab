"""CPU-bound work off the gevent hub.

In a `hindsight serve` worker every request is a greenlet of one thread: code that computes
for a long time without doing I/O (pillow decoding a screenshot, scrypt hashing a password)
holds every other request of that worker until it is done. Such work goes through
`run_in_thread`, which runs it in gevent's pool of real threads; the C code it calls releases
the GIL, so the worker's other requests go on meanwhile. Outside a gevent worker (tests,
the CLI) the function simply runs in the calling thread.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def _gevent_hub() -> Any | None:
    """The gevent hub when this process was monkey-patched by gevent, else None."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None or not monkey.is_module_patched("threading"):
        return None
    import gevent

    return gevent.get_hub()


def run_in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Return fn(*args, **kwargs), computed in a real thread when the caller is a greenlet;
    its exceptions are raised here as if it had run in place."""
    hub = _gevent_hub()
    if hub is None:
        return fn(*args, **kwargs)
    return hub.threadpool.apply(fn, args, kwargs)
