#!/bin/sh
# Run once by the TimescaleDB image when it creates the primary's database: let the replica
# of the scale profile stream (pg_basebackup, replication connections) with a password.
set -eu
echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
