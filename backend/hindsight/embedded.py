"""`make run`: the whole product on one machine with no configuration.

Creates (or reuses) a TimescaleDB cluster under the data directory, migrates it,
makes sure a demo account for `localhost` exists, prints how to use it, then
serves the API until interrupted and stops the cluster it started.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

from .db import connect
from .demo import start_demo, startup_lines
from .logins.users import create_user
from .migrate import migrate
from .pgcluster import EmbeddedCluster
from .queries.tenancy import create_account, create_api_key
from .settings import Settings
from .signing import ensure_signing_key

DEMO_DOMAIN = "localhost"


DEMO_LOGIN = "demo@localhost"


def _demo_account(database_url: str, state_file: Path) -> dict:
    """Return the demo account's ids, API key and dashboard login, creating them on first run."""
    with connect(database_url) as conn:
        state = None
        if state_file.exists():
            state = json.loads(state_file.read_text())
            row = conn.execute("SELECT 1 FROM accounts WHERE account_id = %s",
                               (state["account_id"],)).fetchone()
            if row is None:
                state = None
        if state is None:
            state = create_account(conn, "Demo", DEMO_DOMAIN, None)
            state["api_key"] = create_api_key(conn, state["account_id"])
        user = conn.execute("SELECT 1 FROM dashboard_users WHERE email = %s", (DEMO_LOGIN,)).fetchone()
        if user is None or "dashboard_password" not in state:
            conn.execute("DELETE FROM dashboard_users WHERE email = %s", (DEMO_LOGIN,))
            state["dashboard_email"] = DEMO_LOGIN
            state["dashboard_password"] = secrets.token_urlsafe(12)
            create_user(conn, DEMO_LOGIN, state["dashboard_password"], state["account_id"], True)
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps(state, indent=2))
    state_file.chmod(0o600)
    return state


def run_embedded(settings: Settings) -> int:
    data_dir = Path(settings.data_dir).resolve()
    cluster = None
    database_url = settings.database_url
    if not database_url:
        cluster = EmbeddedCluster(data_dir, settings.embedded_port)
        if cluster.ensure_initialized():
            print(f"created a TimescaleDB cluster in {cluster.pgdata}", flush=True)
        cluster.start()
        database_url = cluster.url
    try:
        for m in migrate(database_url):
            print(f"applied migration {m.path.name}", flush=True)
        with connect(database_url) as conn:
            ensure_signing_key(conn)
        demo = _demo_account(database_url, data_dir / "demo-account.json")
        api_url = settings.with_(database_url=database_url).api_url
        demo_site = start_demo(api_url, demo["account_id"], settings.demo_port)
        demo_lines = startup_lines(api_url, demo["account_id"], demo_site, settings.demo_port)
        print(
            "\n".join([
                "",
                "Hindsight is starting.",
                f"  API URL          {api_url}",
                f"  health           {api_url}/health",
                f"  database         {database_url}",
                f"  demo account id  {demo['account_id']}  (domain {demo['domain']})",
                f"  tracker widget   {demo['widget_id']}",
                f"  analyst API key  {demo['api_key']}",
                f"  dashboard        {api_url}/dashboard/  (log in as {demo['dashboard_email']}, "
                f"password {demo['dashboard_password']})",
                *demo_lines,
                "",
                f"Try: curl -H 'Authorization: Bearer {demo['api_key']}' {api_url}/api/v1/sessions",
                "Stop with Ctrl-C.",
                "",
            ]),
            flush=True,
        )
        env = dict(os.environ, HINDSIGHT_DATABASE_URL=database_url,
                   HINDSIGHT_BIND=settings.bind, HINDSIGHT_WORKERS=str(settings.workers))
        server = subprocess.Popen([sys.executable, "-m", "hindsight.cli", "serve"], env=env)

        def forward(signum, frame):
            server.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        return server.wait()
    finally:
        if cluster is not None:
            cluster.stop()
