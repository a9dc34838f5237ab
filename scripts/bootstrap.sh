#!/usr/bin/env bash
# Install everything `make run` and `make test` need on a fresh machine:
# system packages, TimescaleDB (built from Debian's source package when missing),
# and the Python virtualenv with Hindsight and its pinned dependencies.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV="${VENV:-.venv}"
PYTHON="${PYTHON:-python3}"

log() { echo "bootstrap: $*" >&2; }

apt_install() {
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
    else
        log "please install: $*"; exit 1
    fi
}

# setpriv (util-linux) lets root run PostgreSQL as the postgres user.
command -v setpriv >/dev/null || apt_install util-linux

bash scripts/install-timescaledb.sh

if ! "$PYTHON" -m venv --help >/dev/null 2>&1; then
    apt_install python3-venv
fi
if [ ! -x "$VENV/bin/python" ]; then
    log "creating the virtualenv in $VENV"
    "$PYTHON" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e '.[dev]'
# tracker.js: built with Node from tracker/package-lock.json (esbuild, terser, html2canvas);
# its browser tests drive Debian's Chromium with Playwright (Playwright's own download does
# not work here). apt lists may be empty on a fresh machine: update once if a package is missing.
apt_get_or_update() { apt_install "$@" 2>/dev/null || { apt-get update -qq && apt_install "$@"; }; }
# hll (citusdata/postgresql-hll): the visitor roll-ups' HyperLogLog sketches (sql/migrations/0023).
# Debian packages it for its PostgreSQL; the test clusters and `make run`'s embedded one use that server.
PG_MAJOR="${PG_MAJOR:-15}"
if [ ! -f "/usr/share/postgresql/${PG_MAJOR}/extension/hll.control" ]; then
    log "installing postgresql-${PG_MAJOR}-hll"
    apt_get_or_update "postgresql-${PG_MAJOR}-hll"
fi
command -v npm >/dev/null || apt_get_or_update nodejs npm
command -v chromium >/dev/null || apt_get_or_update chromium fonts-dejavu-core
# The scale-out test (tests/test_scale.py, bench/scale.py, docs/SCALING.md) runs a real PgBouncer
# (transaction pooling) and HAProxy on loopback; Debian's packages, started by the test itself.
command -v pgbouncer >/dev/null || [ -x /usr/sbin/pgbouncer ] || apt_get_or_update pgbouncer
command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || apt_get_or_update haproxy
log "building tracker.js (npm ci + npm run build in tracker/)"
(cd tracker && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build)
log "ready"
