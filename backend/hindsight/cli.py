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
        # Its advisory lock lasts a session: never through a transaction pooler.
        applied = migrate(settings.direct_database_url or _database_url(settings))
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


def _limit(value: str) -> int | None:
    if value.lower() in ("none", "unlimited"):
        return None
    limit = int(value)
    if limit < 0:
        raise argparse.ArgumentTypeError("the limit cannot be negative")
    return limit


def cmd_accounts_set_limit(args, settings: Settings) -> int:
    from .db import connect
    from .queries.usage import set_limit
    from .services import utc_now

    with connect(_database_url(settings)) as conn:
        try:
            result = set_limit(conn, args.account, args.monthly_event_limit, utc_now())
        except LookupError as ex:
            print(f"hindsight accounts set-limit: {ex}", file=sys.stderr)
            return 2
    print(json.dumps(result))
    return 0


def cmd_accounts_enable(args, settings: Settings) -> int:
    from .db import connect
    from .queries.usage import enable
    from .services import utc_now

    with connect(_database_url(settings)) as conn:
        try:
            result = enable(conn, args.account, args.host, utc_now())
        except LookupError as ex:
            print(f"hindsight accounts enable: {ex}", file=sys.stderr)
            return 2
    print(json.dumps(result))
    if result["at_limit"]:
        print("warning: the account is at its monthly limit; its next flush switches it off again "
              "(raise it with `hindsight accounts set-limit`)", file=sys.stderr)
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
        if args.admin:  # may also export and erase a person's data (hindsight.erasure)
            from .principals import hash_api_key
            from .queries.erasure import make_admin_key

            make_admin_key(conn, hash_api_key(key))
            conn.commit()
    print(key)
    return 0


def _selector(args) -> tuple[str, str]:
    for kind in ("user_id", "visitor_id", "session_id"):
        value = getattr(args, kind)
        if value is not None:
            return kind, value
    raise SystemExit("one of --user-id, --visitor-id, --session-id is required")


def cmd_export(args, settings: Settings) -> int:
    """Print everything stored for a person (right of access) as JSON."""
    from . import erasure
    from .db import connect
    from .json_encoding import dumps
    from .services import utc_now

    kind, value = _selector(args)
    with connect(_database_url(settings)) as conn:
        document = erasure.export(conn, args.account, kind, value, utc_now())
    print(dumps(document))
    return 0


def cmd_erase(args, settings: Settings) -> int:
    """Delete a person's data, audit it, recompute the roll-ups (hindsight.erasure)."""
    from . import erasure
    from .db import connect
    from .json_encoding import dumps

    kind, value = _selector(args)
    with connect(_database_url(settings), autocommit=True) as conn:
        result = erasure.erase(conn, args.account, kind, value, actor=args.actor)
    print(dumps(result))
    return 0


def _read_password(args) -> str:
    if args.password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    import getpass

    first = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != first:
        raise SystemExit("hindsight users create: the passwords differ")
    return first


def cmd_users_create(args, settings: Settings) -> int:
    from .db import connect
    from .logins.users import create_user

    password = _read_password(args)
    with connect(_database_url(settings)) as conn:
        try:
            user = create_user(conn, args.email, password, args.account, args.admin)
        except (LookupError, ValueError) as ex:
            print(f"hindsight users create: {ex}", file=sys.stderr)
            return 2
    print(json.dumps(user))
    return 0


def cmd_users_unlock(args, settings: Settings) -> int:
    """Forget an e-mail's failed dashboard logins (from every address): lifts its lockouts."""
    from .db import connect
    from .logins.limits import clear_failures
    from .logins.users import normalize_email

    with connect(_database_url(settings)) as conn:
        cleared = clear_failures(conn, args.email)
        known = conn.execute("SELECT 1 FROM dashboard_users WHERE email = %s",
                             (normalize_email(args.email),)).fetchone() is not None
    print(json.dumps({"email": normalize_email(args.email), "user_exists": known,
                      "failures_cleared": cleared}))
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
    p = accounts.add_parser("set-limit", help="set the monthly event limit (hosts under it are switched back on)")
    p.add_argument("--account", required=True, type=uuid.UUID)
    p.add_argument("--monthly-event-limit", required=True, type=_limit, help="events a month, or 'none'")
    p.set_defaults(func=cmd_accounts_set_limit)
    p = accounts.add_parser("enable", help="switch the account and its statistics back on")
    p.add_argument("--account", required=True, type=uuid.UUID)
    p.add_argument("--host", default=None, help="only this host (default: every host of the account)")
    p.set_defaults(func=cmd_accounts_enable)

    keys = sub.add_parser("keys", help="analyst API keys").add_subparsers(dest="action", required=True)
    p = keys.add_parser("create", help="print a new analyst API key (stored hashed)")
    p.add_argument("--account", required=True, type=uuid.UUID)
    p.add_argument("--admin", action="store_true", help="may also export and erase a person's data")
    p.set_defaults(func=cmd_keys_create)

    for name, func, text in (("export", cmd_export, "print a person's data as JSON (right of access)"),
                             ("erase", cmd_erase, "delete a person's data, audited; roll-ups recomputed")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--account", required=True, type=uuid.UUID)
        who = p.add_mutually_exclusive_group(required=True)
        who.add_argument("--user-id", dest="user_id", help="the user id sent by hindsight.identify")
        who.add_argument("--visitor-id", dest="visitor_id", help="a stored visitor id (a UUID)")
        who.add_argument("--session-id", dest="session_id", help="a session id (a UUID)")
        if name == "erase":
            p.add_argument("--actor", default="cli", help="who asked, for the audit (default: cli)")
        p.set_defaults(func=func)

    users = sub.add_parser("users", help="dashboard users").add_subparsers(dest="action", required=True)
    p = users.add_parser("create", help="create a dashboard user of an account (password prompted)")
    p.add_argument("--email", required=True)
    p.add_argument("--account", required=True, type=uuid.UUID)
    p.add_argument("--admin", action="store_true", help="may switch to any account")
    p.add_argument("--password-stdin", action="store_true", help="read the password from standard input")
    p.set_defaults(func=cmd_users_create)
    p = users.add_parser("unlock", help="lift the login lockouts of an e-mail (forgets its failed logins)")
    p.add_argument("email")
    p.set_defaults(func=cmd_users_unlock)

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
