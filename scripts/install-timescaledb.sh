#!/usr/bin/env bash
# Install the TimescaleDB extension (Apache edition) into the local PostgreSQL.
#
# Debian 12 packages PostgreSQL 15 but not TimescaleDB. Debian 13 ("trixie") does
# package it as source, and that source builds against postgresql-server-dev-15.
# This script:
#   1. does nothing when the extension is already installed (idempotent);
#   2. installs PostgreSQL and the build tools with apt;
#   3. adds a deb-src entry for trixie, derived from this machine's own main
#      archive entry (so no mirror host is hard-coded here);
#   4. fetches the source with `apt-get source`, builds the Apache-only edition
#      with cmake and installs it.
# On any other distribution it explains what to install and stops.
set -euo pipefail

PG_MAJOR="${PG_MAJOR:-15}"
PG_CONFIG="/usr/lib/postgresql/${PG_MAJOR}/bin/pg_config"
SOURCES_FILE=/etc/apt/sources.list.d/debian.sources
SRC_ENTRY=/etc/apt/sources.list.d/hindsight-timescaledb-src.sources

log() { echo "install-timescaledb: $*" >&2; }

extension_installed() {
    [ -x "$PG_CONFIG" ] || return 1
    local sharedir libdir
    sharedir="$("$PG_CONFIG" --sharedir)"
    libdir="$("$PG_CONFIG" --pkglibdir)"
    [ -f "$sharedir/extension/timescaledb.control" ] && ls "$libdir"/timescaledb*.so >/dev/null 2>&1
}

if extension_installed; then
    log "TimescaleDB is already installed for PostgreSQL ${PG_MAJOR}; nothing to do."
    exit 0
fi

. /etc/os-release 2>/dev/null || true
if [ "${ID:-}" != "debian" ] || [ ! -f "$SOURCES_FILE" ]; then
    cat >&2 <<MSG
install-timescaledb: this script builds TimescaleDB only on Debian (12 or later).
Install these yourself, then run 'make run' or 'make test' again:
  - PostgreSQL ${PG_MAJOR} server and client (initdb, postgres, psql on disk)
  - the TimescaleDB extension for PostgreSQL ${PG_MAJOR}
    (https://docs.timescale.com/self-hosted/latest/install/)
or point HINDSIGHT_DATABASE_URL at an existing PostgreSQL with TimescaleDB.
MSG
    exit 1
fi

if [ "$(id -u)" -ne 0 ]; then
    log "must run as root (it installs apt packages); try: sudo $0"
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
log "installing PostgreSQL ${PG_MAJOR} and build tools"
apt-get update -qq
apt-get install -y -qq --no-install-recommends \
    "postgresql-${PG_MAJOR}" "postgresql-client-${PG_MAJOR}" "postgresql-server-dev-${PG_MAJOR}" \
    cmake dpkg-dev build-essential libssl-dev libkrb5-dev >/dev/null

if [ ! -f "$SRC_ENTRY" ]; then
    log "adding a deb-src entry for trixie derived from $SOURCES_FILE"
    # Only the first stanza (the main archive): the security archive has no trixie suite.
    awk 'BEGIN { RS=""; FS="\n" } NR == 1 {
            for (i = 1; i <= NF; i++) {
                if ($i ~ /^#/) continue
                if ($i ~ /^Types:/)  { print "Types: deb-src"; continue }
                if ($i ~ /^Suites:/) { print "Suites: trixie"; continue }
                print $i
            }
            exit
        }' "$SOURCES_FILE" > "$SRC_ENTRY"
fi
apt-get update -qq

BUILD_DIR="$(mktemp -d /tmp/hindsight-timescaledb.XXXXXX)"
trap 'rm -rf "$BUILD_DIR"' EXIT
cd "$BUILD_DIR"
log "fetching the timescaledb source package (trixie)"
apt-get source -qq timescaledb/trixie >/dev/null 2>&1 || apt-get source timescaledb/trixie
SRC="$(find . -maxdepth 1 -mindepth 1 -type d -name 'timescaledb-*' | head -n1)"
[ -n "$SRC" ] || { log "apt-get source produced no timescaledb-* directory"; exit 1; }
cd "$SRC"

log "building the Apache edition against PostgreSQL ${PG_MAJOR}"
./bootstrap -DPG_CONFIG="$PG_CONFIG" -DAPACHE_ONLY=ON -DREGRESS_CHECKS=OFF -DTAP_CHECKS=OFF \
    -DWARNINGS_AS_ERRORS=OFF -DSEND_TELEMETRY_DEFAULT=NO >/dev/null
make -C build -j"$(nproc)" >/dev/null
make -C build install >/dev/null

if extension_installed; then
    log "TimescaleDB installed: $(ls "$("$PG_CONFIG" --sharedir)"/extension/timescaledb--*.sql | sort -V | tail -n1 | xargs basename)"
else
    log "build finished but the extension files are missing"; exit 1
fi
