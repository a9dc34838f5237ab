"""docker-compose.yml and the Dockerfile (no Docker engine here: they are parsed and
checked): the official TimescaleDB image pinned, the API built from this repository
with the steps `make run` uses, health checks, a named volume, settings that exist."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from hindsight.settings import SETTINGS

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
DOCKERFILE = (ROOT / "Dockerfile").read_text()
DB_DOCKERFILE = (ROOT / "deploy" / "db" / "Dockerfile").read_text()


def db_base_image() -> str:
    """The official image the compose database is built FROM (deploy/db/Dockerfile adds hll)."""
    return next(rest for word, rest in instructions(DB_DOCKERFILE) if word == "FROM")


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", dockerfile)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_services_images_and_the_build():
    services = {name: s for name, s in COMPOSE["services"].items() if not s.get("profiles")}
    assert set(services) == {"db", "api"}  # `docker compose up`; the scale profile's: below
    assert services["db"]["build"] in ("deploy/db", {"context": "deploy/db"})
    image = db_base_image()
    assert re.fullmatch(r"timescale/timescaledb:2\.\d+\.\d+-pg15", image), image  # pinned, never "latest"
    # The visitor roll-ups need hll (sql/migrations/0023): built into the image, at Debian's version.
    build = " ".join(rest for word, rest in instructions(DB_DOCKERFILE) if word in ("ARG", "RUN"))
    assert "HLL_VERSION=2.17" in build and "postgresql-hll" in build and "make" in build
    assert services["api"]["build"] in (".", {"context": "."})
    assert services["api"]["depends_on"]["db"]["condition"] == "service_healthy"


def test_the_compose_timescaledb_is_make_runs_and_one_the_sql_is_tested_on():
    """DECISIONS.md, "The compose image's TimescaleDB": the same version as `make run` (Debian's
    source package), so backups move both ways, and one of those docs/operations.md lists as
    tested (its table of versions)."""
    version = re.fullmatch(r"timescale/timescaledb:(2\.\d+\.\d+)-pg15", db_base_image()).group(1)
    operations = (ROOT / "docs" / "operations.md").read_text()
    table = operations.split("## Versions the SQL runs on", 1)[1].split("\n## ", 1)[0]
    rows = {cells[0]: cells[1:] for cells in (
        [c.strip() for c in line.strip("|").split("|")] for line in table.splitlines() if line.startswith("| "))}
    make_run = next(v for k, v in rows.items() if "`make run`" in k)
    compose_where, compose = next((k, v) for k, v in rows.items() if "docker-compose.yml" in k)
    assert compose[0] == version == make_run[0], (version, rows)
    assert compose[1] == "timescale" and make_run[1] == "apache"
    assert f"timescale/timescaledb:{version}-pg15" in compose_where and "timescale-edition tests" in compose[2]


def test_ports_volumes_and_health_checks():
    db, api = COMPOSE["services"]["db"], COMPOSE["services"]["api"]
    assert any(str(p).endswith(":8000") for p in api["ports"])
    assert all(str(p).startswith("127.0.0.1:") for p in db["ports"])  # the database only on this host
    assert "pgdata" in COMPOSE["volumes"]
    assert "pgdata:/var/lib/postgresql/data" in db["volumes"]
    assert "pg_isready" in " ".join(db["healthcheck"]["test"])
    assert any("/health" in part for part in api["healthcheck"]["test"])
    for service in (db, api):
        assert service["healthcheck"]["interval"] and service["restart"] == "unless-stopped"


def test_settings_come_from_the_environment_and_exist():
    env = COMPOSE["services"]["api"]["environment"]
    known = {s.env for s in SETTINGS}
    assert set(env) <= known, set(env) - known
    url = env["HINDSIGHT_DATABASE_URL"]
    assert "@db:5432/" in url and url.endswith("/hindsight")
    assert env["HINDSIGHT_BIND"] == "0.0.0.0:8000"
    db_env = COMPOSE["services"]["db"]["environment"]
    assert db_env["POSTGRES_DB"] == "hindsight" and db_env["POSTGRES_USER"] in url


def test_the_dockerfile_runs_the_steps_make_run_uses():
    steps = instructions(DOCKERFILE)
    runs = " ; ".join(args for word, args in steps if word == "RUN")
    cmd = next(args for word, args in reversed(steps) if word == "CMD")
    # make run = scripts/bootstrap.sh (tracker build, pip install -e) + `hindsight dev`
    # (migrate, then serve): the same three steps, in the same order.
    bootstrap = (ROOT / "scripts" / "bootstrap.sh").read_text()
    makefile = (ROOT / "Makefile").read_text()
    embedded = (ROOT / "backend" / "hindsight" / "embedded.py").read_text()
    assert re.search(r"^run:.*\n\t\$\(VENV\)/bin/hindsight dev$", makefile, re.M)
    assert "pip install -q -e" in bootstrap and "pip install -e ." in runs
    assert "migrate(database_url)" in embedded and '"serve"' in embedded
    assert "hindsight migrate && exec hindsight serve" in cmd
    if "npm ci" in bootstrap:
        assert "npm ci" in runs and "npm run --silent build" in runs
        assert any(word == "COPY" and "--from=tracker" in args and "tracker/dist" in args for word, args in steps)
    froms = [args for word, args in steps if word == "FROM"]
    assert froms[-1].startswith("python:3.11")  # setup.cfg: python_requires >= 3.11
    assert any(word == "HEALTHCHECK" and "/health" in args for word, args in steps)
    assert ("EXPOSE", "8000") in steps


def test_the_build_context_leaves_local_state_out():
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "var", "tracker/node_modules"} <= ignored


# ---- the scale profile (docs/SCALING.md): `docker compose --profile scale up`.

SCALE = {name: s for name, s in COMPOSE["services"].items() if "scale" in s.get("profiles", ())}
SCALE_DIR = ROOT / "deploy" / "scale"


def test_the_scale_profile_has_a_balancer_three_hosts_a_replica_and_pgbouncer():
    assert set(SCALE) == {"replica", "pgbouncer", "api-1", "api-2", "api-3", "balancer"}
    primary = COMPOSE["services"]["db"]
    assert SCALE["replica"]["image"] == primary["image"]  # a physical copy needs the same server
    assert re.fullmatch(r"haproxy:2\.\d+", SCALE["balancer"]["image"])  # an LTS line, never "latest"
    assert "debian:bookworm" in SCALE["pgbouncer"]["build"]["dockerfile_inline"]
    assert "install -y --no-install-recommends pgbouncer" in SCALE["pgbouncer"]["build"]["dockerfile_inline"]
    for name in ("api-1", "api-2", "api-3"):
        assert SCALE[name]["image"] == COMPOSE["services"]["api"]["image"]  # built once, by api
        assert "ports" not in SCALE[name]  # reached through the balancer only
        assert any("/health" in part for part in SCALE[name]["healthcheck"]["test"])
    assert any(str(p).endswith(":8080") for p in SCALE["balancer"]["ports"])
    assert "replica-data" in COMPOSE["volumes"]
    assert any("replica-data:" in v for v in SCALE["replica"]["volumes"])
    # The replica is made with pg_basebackup -R from the primary, which lets it stream.
    start = (SCALE_DIR / "replica-start.sh").read_text()
    assert "pg_basebackup -h db" in start and " -R " in start
    assert "host replication" in (SCALE_DIR / "primary-replication.sh").read_text()
    assert any("primary-replication.sh:/docker-entrypoint-initdb.d/" in v for v in primary["volumes"])


def test_the_scale_hosts_settings_route_writes_reads_and_jobs():
    known = {s.env for s in SETTINGS}
    for name in ("api-1", "api-2", "api-3"):
        env = SCALE[name]["environment"]
        assert set(env) <= known, set(env) - known
        assert "@pgbouncer:6432/hindsight" in env["HINDSIGHT_DATABASE_URL"]
        assert env["HINDSIGHT_DATABASE_POOLER"] == "pgbouncer"
        assert "@replica:5432/hindsight" in env["HINDSIGHT_READ_DATABASE_URL"]
        assert "@db:5432/hindsight" in env["HINDSIGHT_DIRECT_DATABASE_URL"]
        assert env["HINDSIGHT_TRUST_FORWARDED_FOR"] == "true"  # behind HAProxy's forwardfor


def test_the_scale_configuration_files():
    ini = (SCALE_DIR / "pgbouncer.ini").read_text()
    assert re.search(r"^pool_mode = transaction$", ini, re.M)
    assert re.search(r"^hindsight = host=db port=5432 dbname=hindsight$", ini, re.M)
    cfg = (SCALE_DIR / "haproxy.cfg").read_text()
    assert re.search(r"^\s+balance roundrobin$", cfg, re.M)
    assert re.search(r"^\s+option httpchk GET /health$", cfg, re.M)
    assert sorted(re.findall(r"^\s+server (api-\d) (api-\d):8000 check$", cfg, re.M)) == \
        [("api-1", "api-1"), ("api-2", "api-2"), ("api-3", "api-3")]
    assert re.search(r"^frontend api\n\s+bind :8080$", cfg, re.M)
    mounted = " ".join(SCALE["balancer"]["volumes"])
    assert "haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg" in mounted and "503.http" in mounted
    assert re.search(r"errorfile 503 /usr/local/etc/haproxy/503.http", cfg)
    assert b"\r\nRetry-After: 5\r\n" in (SCALE_DIR / "503.http").read_bytes()
