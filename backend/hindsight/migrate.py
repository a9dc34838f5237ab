"""Apply the numbered SQL files in sql/migrations/ in order, once each.

Safe to run while the API serves: an advisory lock serializes migrators and each
file runs in its own transaction, so a failure leaves the previous version intact.

Then the files of the server's TimescaleDB edition (`SHOW timescaledb.license`), in
sql/editions/<edition>/ beside sql/migrations/, the same way, recorded per edition
in schema_editions. A database that ran the apache edition and now runs on the
timescale edition gets the timescale files on its next migrate (they upgrade it);
the other way round is refused. A file (numbered or edition) whose first line is
`-- migrate: no-transaction` runs statement by statement outside a transaction (for
commands such as refresh_continuous_aggregate or CREATE INDEX CONCURRENTLY); it must be
safe to repeat after a failure part-way, and its statements end with `;` at the end of a
line.

TimescaleDB policies (background jobs) that an edition file adds are held: paused in the
transaction that created them, so no background job ever sees them scheduled, and
resumed once every pending edition file has run. A refresh policy's job would otherwise
start at once and race the first refresh of a later file (`refresh_continuous_aggregate`
refuses to run beside another refresh of the same aggregate, and one of the two fails).
The held jobs are listed in `schema_held_jobs` (committed with the file), so a migrate that
stops part-way leaves them paused and the next one that finishes resumes them. Policies
must therefore be added by files that run in a transaction, never by no-transaction ones.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import TupleRow, tuple_row

from .db import one

MIGRATIONS_DIR = Path(__file__).resolve().parents[2] / "sql" / "migrations"
EDITIONS = ("apache", "timescale")
NO_TRANSACTION = "-- migrate: no-transaction"
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


def _value(conn: psycopg.Connection[Any], query: str, params: tuple = ()) -> Any:
    """The first column of the one row `query` returns, whatever the connection's row factory
    (migrate() uses tuples, /health the pool's dicts). Each query here (SHOW, an aggregate,
    a bare expression) always returns a row."""
    with conn.cursor(row_factory=tuple_row) as cur:
        return one(cur.execute(query, params or None))[0]


def _require_timescaledb(conn: psycopg.Connection[Any]) -> None:
    available = conn.execute(
        "SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    if not available:
        raise MigrationError(
            "this PostgreSQL server has no TimescaleDB extension installed; install it "
            "(scripts/install-timescaledb.sh on Debian) or use the timescale/timescaledb image"
        )
    if not conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'hll'").fetchone():
        raise MigrationError(
            "this PostgreSQL server has no hll extension (HyperLogLog, for unique visitors: "
            "sql/migrations/0023) installed; on Debian: apt-get install postgresql-15-hll "
            "(scripts/bootstrap.sh does), with Docker: deploy/db/Dockerfile (docker-compose.yml)"
        )
    if "timescaledb" not in _value(conn, "SHOW shared_preload_libraries"):
        raise MigrationError(
            "TimescaleDB is installed but not loaded: add timescaledb to "
            "shared_preload_libraries in postgresql.conf and restart PostgreSQL"
        )


def current_version(conn: psycopg.Connection[Any]) -> int | None:
    """Return the highest applied migration version, or None on an empty database."""
    if not _value(conn, "SELECT to_regclass('public.schema_migrations') IS NOT NULL"):
        return None
    version: int | None = _value(conn, "SELECT max(version) FROM schema_migrations")
    return version


def server_edition(conn: psycopg.Connection[Any]) -> str:
    """Return the TimescaleDB edition of the server: 'apache' or 'timescale'."""
    edition: str = _value(conn, "SHOW timescaledb.license")
    if edition not in EDITIONS:
        raise MigrationError(f"unknown TimescaleDB edition {edition!r} (timescaledb.license)")
    return edition


def _statements(sql_text: str) -> list[str]:
    """Split a no-transaction file into statements (each ends with ';' at a line end)."""
    parts = re.split(r";[ \t]*$", sql_text, flags=re.MULTILINE)
    code = [p for p in parts if any(line.strip() and not line.strip().startswith("--")
                                    for line in p.splitlines())]
    return [p.strip() for p in code]


def _lock(conn: psycopg.Connection[TupleRow]) -> None:
    """Take the migration lock, polling for it rather than queueing: a migrator waiting
    inside pg_advisory_lock() holds a snapshot for as long as it waits, and CREATE INDEX
    CONCURRENTLY in the migrator that has the lock waits for every such snapshot (deadlock)."""
    while not _value(conn, "SELECT pg_try_advisory_lock(%s)", (_LOCK_KEY,)):
        time.sleep(0.2)


def _apply(conn: psycopg.Connection[TupleRow], migration: Migration, record: str, values: tuple,
           hold_jobs_after: set[int] | None = None) -> None:
    """Run one file and record it: in one transaction, or (first line NO_TRANSACTION)
    statement by statement, recording it once every statement has succeeded.
    `hold_jobs_after`: the TimescaleDB jobs that existed before; any other job the file
    created is held (paused) before its transaction commits."""
    if migration.sql.startswith(NO_TRANSACTION):
        for statement in _statements(migration.sql):
            conn.execute(statement)
        conn.execute(record, values)
    else:
        with conn.transaction():
            conn.execute(migration.sql)
            if hold_jobs_after is not None:
                _hold_new_jobs(conn, hold_jobs_after)
            conn.execute(record, values)


# Jobs (TimescaleDB policies) created by edition files and paused until migrate is done.
HELD_JOBS = """
CREATE TABLE IF NOT EXISTS schema_held_jobs (
    job_id      integer PRIMARY KEY,
    held_at     timestamptz NOT NULL DEFAULT now()
)
"""


def _job_ids(conn: psycopg.Connection[TupleRow]) -> set[int]:
    return {job_id for (job_id,) in conn.execute("SELECT job_id FROM timescaledb_information.jobs")}


def _hold_new_jobs(conn: psycopg.Connection[TupleRow], known: set[int]) -> None:
    """Pause the scheduled jobs not in `known` and list them in schema_held_jobs."""
    conn.execute(
        """
        WITH held AS (
            INSERT INTO schema_held_jobs (job_id)
            SELECT job_id FROM timescaledb_information.jobs
            WHERE scheduled AND NOT job_id = ANY(%s::integer[])
            ON CONFLICT (job_id) DO NOTHING
            RETURNING job_id)
        SELECT alter_job(job_id, scheduled => false) FROM held
        """, (sorted(known),))


def release_held_jobs(conn: psycopg.Connection[TupleRow]) -> int:
    """Resume the jobs held by edition files (all of them have run); return how many."""
    with conn.transaction():
        resumed = conn.execute(
            """
            SELECT alter_job(h.job_id, scheduled => true)
            FROM schema_held_jobs h
            JOIN timescaledb_information.jobs j ON j.job_id = h.job_id
            ORDER BY h.job_id
            """).fetchall()
        conn.execute("DELETE FROM schema_held_jobs")
    return len(resumed)


def _apply_editions(conn: psycopg.Connection[TupleRow], editions_dir: Path, edition: str) -> list[Migration]:
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS schema_editions (
            edition     text NOT NULL,
            version     integer NOT NULL,
            name        text NOT NULL,
            checksum    text NOT NULL,
            applied_at  timestamptz NOT NULL DEFAULT now(),
            PRIMARY KEY (edition, version)
        )
        """
    )
    done = {(e, v): c for e, v, c in conn.execute(
        "SELECT edition, version, checksum FROM schema_editions").fetchall()}
    if edition == "apache" and any(e == "timescale" for e, _ in done):
        raise MigrationError(
            "this database was set up for TimescaleDB's timescale edition (continuous "
            "aggregates, compression) but the server runs the apache edition; run it on a "
            "timescale-edition server (e.g. the timescale/timescaledb image)"
        )
    applied: list[Migration] = []
    holds_jobs = edition == "timescale"
    if holds_jobs:
        conn.execute(HELD_JOBS)
    for migration in discover(editions_dir / edition):
        key = (edition, migration.version)
        if key in done:
            if done[key] != migration.checksum:
                raise MigrationError(
                    f"{edition}/{migration.path.name} changed after it was applied; "
                    "add a new file instead of editing an old one"
                )
            continue
        _apply(conn, migration,
               "INSERT INTO schema_editions (edition, version, name, checksum) VALUES (%s, %s, %s, %s)",
               (edition, migration.version, migration.name, migration.checksum),
               hold_jobs_after=_job_ids(conn) if holds_jobs else None)
        applied.append(migration)
    if holds_jobs:
        release_held_jobs(conn)
    return applied


def migrate(database_url: str, directory: Path = MIGRATIONS_DIR, *,
            edition: str | None = None) -> list[Migration]:
    """Apply pending migrations, then the edition's files; return the ones applied by this call.

    `edition` overrides the server's edition (tests set up an apache-edition schema on a
    timescale server to check the upgrade).
    """
    migrations = discover(directory)
    applied_now: list[Migration] = []
    with psycopg.connect(database_url, autocommit=True) as conn:
        _require_timescaledb(conn)
        _lock(conn)
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
                _apply(conn, migration,
                       "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                       (migration.version, migration.name, migration.checksum))
                applied_now.append(migration)
            applied_now += _apply_editions(conn, directory.parent / "editions",
                                           edition or server_edition(conn))
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now
