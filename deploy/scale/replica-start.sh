#!/bin/sh
# The streaming replica of `docker compose --profile scale up`: on an empty volume, a copy
# of the primary made with `pg_basebackup -R` (standby.signal + primary_conninfo), then
# PostgreSQL in hot standby. Runs as root in the timescale image (Alpine: su-exec).
set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    mkdir -p "$PGDATA"
    chown postgres:postgres "$PGDATA"
    chmod 700 "$PGDATA"
    until su-exec postgres pg_basebackup -h db -U hindsight -D "$PGDATA" -R -X stream -c fast; do
        echo "replica: waiting for the primary" >&2
        sleep 2
    done
fi
exec su-exec postgres postgres -D "$PGDATA" -c hot_standby=on -c shared_preload_libraries=timescaledb
