"""GET /health: is the database reachable, which TimescaleDB, which schema version, and
how the data lifecycle does (compression, lifecycle jobs and policies, roll-up freshness)."""

from __future__ import annotations

import falcon
import psycopg
from psycopg_pool import PoolTimeout

from .. import __version__
from ..db import Conn, timescaledb_info
from ..lifecycle.status import compression, lifecycle_status
from ..migrate import current_version
from ..services import Services


class Health:
    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.cache_control = ["no-store"]
        try:
            with self._s.pool.connection(timeout=2.0) as conn:
                info = timescaledb_info(conn)
                version = current_version(conn)
                lifecycle = _lifecycle(conn, info["edition"])
        except (psycopg.OperationalError, PoolTimeout) as ex:
            resp.status = falcon.HTTP_503
            resp.set_header("Retry-After", "5")
            resp.media = {"status": "unavailable", "version": __version__,
                          "database": {"reachable": False, "error": type(ex).__name__}}
            return
        edition = info["edition"]
        resp.media = {
            "status": "ok",
            "version": __version__,
            "database": {"reachable": True, "migration_version": version},
            "timescaledb": {
                "version": info["version"],
                "edition": edition,
                # Compression, continuous aggregates and policies exist only in the TSL
                # edition: "unavailable" on apache, else its state and ratio.
                "compression": lifecycle.pop("compression"),
            },
            "lifecycle": lifecycle,
            # HINDSIGHT_READ_DATABASE_URL: reachable, its replay lag, where reads go now.
            "read_replica": self._s.read_pool.status(),
        }


def _lifecycle(conn: Conn, edition: str | None) -> dict:
    """The lifecycle part of /health; its failure (e.g. before `hindsight migrate`) is shown, not raised."""
    try:
        with conn.transaction():
            return {"compression": compression(conn, edition or ""), **lifecycle_status(conn)}
    except psycopg.OperationalError:
        raise
    except psycopg.Error as ex:
        return {"compression": "unknown", "error": f"{type(ex).__name__}: {ex}".strip()}
