"""Database connections: the pool the API uses and one-off connections for the CLI."""

from __future__ import annotations

import psycopg
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from .settings import Settings


class DatabaseUnavailable(Exception):
    """The database cannot be reached right now; the caller should retry later."""


def _configure(settings: Settings):
    timeout = int(settings.statement_timeout_ms)

    def configure(conn: psycopg.Connection) -> None:
        # Every query the API runs has a time limit.
        conn.execute(f"SET statement_timeout = {timeout}")
        conn.commit()

    return configure


def create_pool(settings: Settings, *, open_wait: bool = True) -> ConnectionPool:
    """Return a pool for the API; with `open_wait`, fail fast when the database is down."""
    pool = ConnectionPool(
        settings.database_url,
        min_size=settings.pool_min,
        max_size=settings.pool_max,
        timeout=settings.pool_timeout,
        kwargs={"row_factory": dict_row, "application_name": "hindsight"},
        configure=_configure(settings),
        open=False,
        name="hindsight",
        # Dead connections left by a database restart cost one 503 each (the tracker
        # retries); checking every connection on checkout would cost a round trip per request.
    )
    pool.open(wait=open_wait, timeout=settings.pool_timeout if open_wait else 30.0)
    return pool


def connect(database_url: str, **kwargs) -> psycopg.Connection:
    """Open a single connection (CLI, migrations)."""
    return psycopg.connect(database_url, row_factory=dict_row, **kwargs)


def timescaledb_info(conn: psycopg.Connection) -> dict[str, str | None]:
    """Return the installed TimescaleDB version and edition ('apache' or 'timescale')."""
    row = conn.execute(
        "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
    ).fetchone()
    version = row["extversion"] if row else None
    edition = None
    if version:
        edition = conn.execute("SHOW timescaledb.license").fetchone()["timescaledb.license"]
    return {"version": version, "edition": edition}
