#!/usr/bin/env bash
# Back up a Hindsight database: pg_dump, custom format (compressed, restorable in parallel).
#
#   scripts/backup.sh [-d DATABASE_URL] FILE
#
# DATABASE_URL defaults to $HINDSIGHT_DATABASE_URL. Safe while the API runs: pg_dump
# reads one consistent snapshot. The file holds everything: schema, the TimescaleDB
# catalog (hypertables, chunks, and on the timescale edition continuous aggregates and
# policies), data, and the migration ledgers. Restore it with scripts/restore.sh into a
# server with the same TimescaleDB version (printed below); the edition may go from
# apache to timescale (run `hindsight migrate` after the restore), not back.
#
# pg_dump warns about circular foreign keys in TimescaleDB's catalog tables; that is
# expected and harmless (TimescaleDB's documentation says so).
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
[ -n "$url" ] || { echo "backup: no database (set HINDSIGHT_DATABASE_URL or pass -d)" >&2; exit 2; }
file="$1"

version="$(psql -X -At -d "$url" -c "SELECT extversion || ' (' || current_setting('timescaledb.license') || ' edition)' FROM pg_extension WHERE extname = 'timescaledb'")"
[ -n "$version" ] || { echo "backup: this database has no TimescaleDB extension" >&2; exit 1; }

# Write next to the target, then rename: a failed run never leaves a truncated backup.
partial="$file.partial"
trap 'rm -f "$partial"' EXIT
pg_dump --format=custom --compress=6 --file="$partial" --dbname="$url"
mv "$partial" "$file"
trap - EXIT

echo "backup: wrote $file ($(du -h "$file" | cut -f1)), TimescaleDB $version"
