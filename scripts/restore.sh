#!/usr/bin/env bash
# Restore a backup made by scripts/backup.sh into an empty database.
#
#   createdb hindsight_restored            # or CREATE DATABASE ...
#   scripts/restore.sh [-d DATABASE_URL] FILE
#
# DATABASE_URL defaults to $HINDSIGHT_DATABASE_URL; the database must exist and be
# empty. TimescaleDB's steps for pg_dump backups:
#   1. CREATE EXTENSION timescaledb (the server's TimescaleDB must be the version the
#      backup was made with; set TIMESCALEDB_VERSION to pick one when several are
#      installed);
#   2. SELECT timescaledb_pre_restore();   -- stops its background workers, restore mode
#   3. pg_restore (everything but the extension itself, created in step 1);
#   4. SELECT timescaledb_post_restore();  -- back to normal, workers restarted
# Then the restored database is ready; `hindsight migrate` says it is up to date (or,
# restored from the apache edition into a timescale-edition server, upgrades it).
set -euo pipefail

usage() { echo "usage: $0 [-d DATABASE_URL] FILE" >&2; exit 2; }

url="${HINDSIGHT_DATABASE_URL:-}"
while getopts "d:h" opt; do
    case "$opt" in
        d) url="$OPTARG" ;;
        *) usage ;;
    esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || usage
[ -n "$url" ] || { echo "restore: no database (set HINDSIGHT_DATABASE_URL or pass -d)" >&2; exit 2; }
file="$1"
[ -r "$file" ] || { echo "restore: cannot read $file" >&2; exit 2; }

q() { psql -X -v ON_ERROR_STOP=1 -At -d "$url" -c "$1"; }

tables="$(q "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")"
if [ "$tables" != "0" ]; then
    echo "restore: the target database is not empty ($tables tables in public); restore into a new database" >&2
    exit 1
fi

list="$(mktemp)"
trap 'rm -f "$list"' EXIT
# The extension is created by step 1; restoring its entry (and its comment) again would fail.
pg_restore --list "$file" | grep -v -E ' EXTENSION - timescaledb$| COMMENT - EXTENSION timescaledb$' > "$list"

if [ -n "${TIMESCALEDB_VERSION:-}" ]; then
    q "CREATE EXTENSION IF NOT EXISTS timescaledb VERSION '${TIMESCALEDB_VERSION}'" >/dev/null
else
    q "CREATE EXTENSION IF NOT EXISTS timescaledb" >/dev/null
fi
q "SELECT timescaledb_pre_restore()" >/dev/null
status=0
pg_restore --no-owner --exit-on-error --use-list="$list" --dbname="$url" "$file" || status=$?
q "SELECT timescaledb_post_restore()" >/dev/null
if [ "$status" -ne 0 ]; then
    echo "restore: pg_restore failed (exit $status); the database is partly restored: drop it and start again" >&2
    exit "$status"
fi
echo "restore: $file restored into $(q "SELECT current_database()"), TimescaleDB $(q "SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'")"
