#!/bin/sh
# Start Debian's pgbouncer as the postgres user, its auth file written from the password
# in the environment (the primary's POSTGRES_PASSWORD).
set -eu
mkdir -p /etc/pgbouncer
printf '"hindsight" "%s"\n' "$HINDSIGHT_DB_PASSWORD" > /etc/pgbouncer/userlist.txt
chown -R postgres:postgres /etc/pgbouncer
exec setpriv --reuid=postgres --regid=postgres --clear-groups pgbouncer /etc/pgbouncer-conf/pgbouncer.ini
