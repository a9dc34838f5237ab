"""Database connections: the pool the API uses and one-off connections for the CLI."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeAlias, TypeVar

import psycopg
from psycopg.rows import DictRow, dict_row
from psycopg_pool import ConnectionPool

from .settings import Settings

# The pool's connections and connect()'s return rows as dicts (row_factory=dict_row): these
# aliases tell the type checker so, instead of psycopg's default tuple rows.
Conn: TypeAlias = psycopg.Connection[DictRow]
Pool: TypeAlias = ConnectionPool[Conn]

R = TypeVar("R")


class DatabaseUnavailable(Exception):
    """The database cannot be reached right now; the caller should retry later."""


def _configure(settings: Settings) -> Callable[[Conn], None]:
    timeout = int(settings.statement_timeout_ms)

    def configure(conn: Conn) -> None:
        # Every query the API runs has a time limit.
        conn.execute(f"SET statement_timeout = {timeout}")
        conn.commit()

    return configure


def create_pool(settings: Settings, *, open_wait: bool = True) -> Pool:
    """Return a pool for the API; with `open_wait`, fail fast when the database is down."""
    pool: Pool = ConnectionPool(
        settings.database_url,
        connection_class=Conn,
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


def connect(database_url: str, **kwargs: Any) -> Conn:
    """Open a single connection (CLI, migrations)."""
    return psycopg.connect(database_url, row_factory=dict_row, **kwargs)


def one(cursor: psycopg.Cursor[R]) -> R:
    """The row of a query that always returns exactly one: an aggregate, SHOW, a function
    call, INSERT ... RETURNING (without ON CONFLICT DO NOTHING), an upsert, or the re-read
    of a row whose insert just conflicted."""
    row = cursor.fetchone()
    if row is None:
        raise LookupError("a query that always returns a row returned none")
    return row


def timescaledb_info(conn: Conn) -> dict[str, str | None]:
    """Return the installed TimescaleDB version and edition ('apache' or 'timescale')."""
    row = conn.execute(
        "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'"
    ).fetchone()
    version = row["extversion"] if row else None
    edition = None
    if version:
        edition = one(conn.execute("SHOW timescaledb.license"))["timescaledb.license"]
    return {"version": version, "edition": edition}
