"""The `hindsight` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from datetime import timedelta
from pathlib import Path

from .settings import Settings


def _database_url(settings: Settings) -> str:
    if not settings.database_url:
        raise SystemExit("HINDSIGHT_DATABASE_URL is not set (or use `make run` for the embedded database)")
    return settings.database_url


def cmd_migrate(args, settings: Settings) -> int:
    from .migrate import MigrationError, migrate

    try:
        applied = migrate(_database_url(settings))
    except MigrationError as ex:
        print(f"hindsight migrate: {ex}", file=sys.stderr)
        return 2
    if applied:
        for m in applied:
            print(f"applied {m.path.name}")
    else:
        print("database is up to date")
    _ensure_key(settings)
    return 0


def _ensure_key(settings: Settings) -> None:
    from .db import connect
    from .signing import ensure_signing_key

    with connect(_database_url(settings)) as conn:
        ensure_signing_key(conn)


def cmd_serve(args, settings: Settings) -> int:
    env = dict(os.environ)
    env["HINDSIGHT_BIND"] = args.bind or settings.bind
    env["HINDSIGHT_WORKERS"] = str(args.workers or settings.workers)
    _database_url(settings)
    conf = Path(__file__).with_name("gunicorn_conf.py")
    argv = [sys.executable, "-m", "gunicorn", "--config", str(conf)]
    os.execve(sys.executable, argv, env)
    return 0  # not reached


def cmd_accounts_create(args, settings: Settings) -> int:
    from .db import connect
    from .queries.tenancy import create_account

    with connect(_database_url(settings)) as conn:
        result = create_account(conn, args.name, args.domain, args.monthly_event_limit)
    print(json.dumps(result))
    return 0


def cmd_keys_create(args, settings: Settings) -> int:
    from .db import connect
    from .queries.tenancy import create_api_key

    with connect(_database_url(settings)) as conn:
        try:
            key = create_api_key(conn, args.account)
        except LookupError as ex:
            print(f"hindsight keys create: {ex}", file=sys.stderr)
            return 2
    print(key)
    return 0


def cmd_jwt_rotate(args, settings: Settings) -> int:
    from .db import connect
    from .signing import rotate

    with connect(_database_url(settings)) as conn:
        kid = rotate(conn, timedelta(seconds=settings.widget_jwt_ttl_seconds))
    print(kid)
    return 0


def cmd_dev(args, settings: Settings) -> int:
    from .embedded import run_embedded

    return run_embedded(settings)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hindsight", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("migrate", help="apply sql/migrations in order (idempotent)")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("serve", help="run the API under gunicorn")
    p.add_argument("--bind", help="HOST:PORT (default HINDSIGHT_BIND)")
    p.add_argument("--workers", type=int, help="worker processes (default HINDSIGHT_WORKERS)")
    p.set_defaults(func=cmd_serve)

    accounts = sub.add_parser("accounts", help="manage accounts").add_subparsers(dest="action", required=True)
    p = accounts.add_parser("create", help="create an account with a domain and a tracker widget")
    p.add_argument("--name", required=True)
    p.add_argument("--domain", required=True)
    p.add_argument("--monthly-event-limit", type=int, default=None)
    p.set_defaults(func=cmd_accounts_create)

    keys = sub.add_parser("keys", help="analyst API keys").add_subparsers(dest="action", required=True)
    p = keys.add_parser("create", help="print a new analyst API key (stored hashed)")
    p.add_argument("--account", required=True, type=uuid.UUID)
    p.set_defaults(func=cmd_keys_create)

    jwt = sub.add_parser("jwt", help="widget JWT signing keys").add_subparsers(dest="action", required=True)
    p = jwt.add_parser("rotate", help="start signing with a new key; the old one verifies for one JWT lifetime")
    p.set_defaults(func=cmd_jwt_rotate)

    p = sub.add_parser("dev", help="embedded TimescaleDB under var/, migrated, demo account, then serve")
    p.set_defaults(func=cmd_dev)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args, Settings.from_env())


if __name__ == "__main__":
    sys.exit(main())
