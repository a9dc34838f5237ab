"""The live view (issue 13): one stream loop per API process reads the newest events from
PostgreSQL and fans them out to the viewers of that process (hub.py); the live page's
snapshot (snapshot.py). Plain Python: the HTTP layer (resources/live.py,
dashboard/live.py) serves them as Server-Sent Events and pages."""

from .hub import LiveFull, LiveHub, decode_position, encode_position, stop_all

__all__ = ["LiveFull", "LiveHub", "decode_position", "encode_position", "stop_all"]
