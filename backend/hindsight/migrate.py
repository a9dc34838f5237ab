"""Apply the numbered SQL files in sql/migrations/ in order, once each.

Safe to run while the API serves: an advisory lock serializes migrators and each
file runs in its own transaction, so a failure leaves the previous version intact.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "sql" / "migrations"
_LOCK_KEY = 0x48494E4453  # "HINDS": advisory lock id for migrations
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class MigrationError(Exception):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text()

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Return the migrations on disk, ordered by version."""
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise MigrationError("two migration files share a version number")
    return found


def _require_timescaledb(conn: psycopg.Connection) -> None:
    available = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    if not available:
        raise MigrationError(
            "this PostgreSQL server has no TimescaleDB extension installed; install it "
            "(scripts/install-timescaledb.sh on Debian) or use the timescale/timescaledb image"
        )
    preload = conn.execute("SHOW shared_preload_libraries").fetchone()
    value = preload[0] if isinstance(preload, tuple) else next(iter(preload.values()))
    if "timescaledb" not in value:
        raise MigrationError(
            "TimescaleDB is installed but not loaded: add timescaledb to "
            "shared_preload_libraries in postgresql.conf and restart PostgreSQL"
        )


def current_version(conn: psycopg.Connection) -> int | None:
    """Return the highest applied migration version, or None on an empty database."""
    exists = conn.execute("SELECT to_regclass('public.schema_migrations') IS NOT NULL").fetchone()
    if not (exists[0] if isinstance(exists, tuple) else next(iter(exists.values()))):
        return None
    row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    return row[0] if isinstance(row, tuple) else next(iter(row.values()))


def migrate(database_url: str, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply pending migrations; return the ones applied by this call."""
    migrations = discover(directory)
    applied_now: list[Migration] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        _require_timescaledb(conn)
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                """
                CREATE TABLE IF NOT EXISTS schema_migrations (
                    version     integer PRIMARY KEY,
                    name        text NOT NULL,
                    checksum    text NOT NULL,
                    applied_at  timestamptz NOT NULL DEFAULT now()
                )
                """
            )
            done = {
                version: checksum
                for version, checksum in conn.execute(
                    "SELECT version, checksum FROM schema_migrations"
                ).fetchall()
            }
            for migration in migrations:
                if migration.version in done:
                    if done[migration.version] != migration.checksum:
                        raise MigrationError(
                            f"{migration.path.name} changed after it was applied; "
                            "add a new migration instead of editing an old one"
                        )
                    continue
                with conn.transaction():
                    conn.execute(migration.sql)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                        (migration.version, migration.name, migration.checksum),
                    )
                applied_now.append(migration)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now
