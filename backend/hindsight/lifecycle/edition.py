"""Which TimescaleDB edition the server runs, and which one the schema was set up for."""

from __future__ import annotations

from ..db import Conn

APACHE = "apache"
TIMESCALE = "timescale"


def _scalar(row):
    return None if row is None else (row[0] if isinstance(row, tuple) else next(iter(row.values())))


def server_edition(conn: Conn) -> str:
    """Return 'apache' or 'timescale' (`SHOW timescaledb.license`)."""
    return _scalar(conn.execute("SHOW timescaledb.license").fetchone())


def schema_edition(conn: Conn) -> str | None:
    """Return the edition whose files `hindsight migrate` applied (timescale wins), or None."""
    if not _scalar(conn.execute("SELECT to_regclass('public.schema_editions') IS NOT NULL").fetchone()):
        return None
    return _scalar(conn.execute(
        "SELECT edition FROM schema_editions ORDER BY edition = 'timescale' DESC, applied_at DESC LIMIT 1"
    ).fetchone())
