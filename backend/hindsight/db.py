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


def _configure(settings: Settings) -> Callable[[Conn], None] | None:
    timeout = int(settings.statement_timeout_ms)
    if behind_pooler(settings):
        # Transaction pooling: a SET would stay on whichever server connection ran it, for
        # other clients; the limit is the role's instead (docs/SCALING.md, "PgBouncer").
        return None

    def configure(conn: Conn) -> None:
        # Every query the API runs has a time limit.
        conn.execute(f"SET statement_timeout = {timeout}")
        conn.commit()

    return configure


def behind_pooler(settings: Settings) -> bool:
    """True when the API's database URLs lead to PgBouncer in transaction pooling mode."""
    pooler = settings.database_pooler.strip().lower()
    if pooler not in ("", "pgbouncer"):
        raise SystemExit(f"HINDSIGHT_DATABASE_POOLER: {settings.database_pooler!r} is not '' or 'pgbouncer'")
    return pooler == "pgbouncer"


def connection_kwargs(settings: Settings) -> dict[str, Any]:
    """psycopg connection arguments: behind PgBouncer (1.18, transaction pooling) no
    statement is ever prepared, since the next transaction may run on another server."""
    kwargs: dict[str, Any] = {"row_factory": dict_row, "application_name": "hindsight"}
    if behind_pooler(settings):
        kwargs["prepare_threshold"] = None
    return kwargs


def create_pool(settings: Settings, *, open_wait: bool = True, url: str | None = None,
                name: str = "hindsight") -> Pool:
    """Return a pool for the API (on `url`, else the primary's); with `open_wait`, fail
    fast when the database is down."""
    pool: Pool = ConnectionPool(
        url or settings.database_url,
        connection_class=Conn,
        min_size=settings.pool_min,
        max_size=settings.pool_max,
        timeout=settings.pool_timeout,
        kwargs=connection_kwargs(settings),
        configure=_configure(settings),
        open=False,
        name=name,
        # A connection is checked (an empty query) when it leaves the pool: one left dead by
        # a database restart is replaced there, instead of failing its next request with a
        # 503. Its cost on ingestion is measured in docs/BENCHMARKS.md ("Pool check").
        check=ConnectionPool.check_connection if settings.pool_check else None,
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
