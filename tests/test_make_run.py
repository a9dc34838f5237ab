"""`hindsight dev` (what `make run` runs): embedded cluster, migrations, demo account and
dashboard login printed, API and demo site served; a second run reuses everything."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

import harness
from harness import free_port

HINDSIGHT = str(harness.HINDSIGHT)


def start(data_dir: Path, api: int, demo: int, db: int) -> tuple[subprocess.Popen, dict]:
    env = {k: v for k, v in os.environ.items() if k != "HINDSIGHT_DATABASE_URL"}
    env.update(HINDSIGHT_DATA_DIR=str(data_dir), HINDSIGHT_BIND=f"127.0.0.1:{api}",
               HINDSIGHT_DEMO_PORT=str(demo), HINDSIGHT_EMBEDDED_PORT=str(db), HINDSIGHT_WORKERS="1")
    proc = subprocess.Popen([HINDSIGHT, "dev"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    printed: dict[str, str] = {}
    deadline = time.monotonic() + 90
    for line in proc.stdout:
        for key, pattern in (("account", r"demo account id\s+(\S+)"), ("key", r"analyst API key\s+(\S+)"),
                             ("login", r"log in as (\S+), password (\S+)\)"), ("demo", r"demo site\s+(\S+)")):
            m = re.search(pattern, line)
            if m:
                printed[key] = m.group(1) if key != "login" else m.groups()
        if "Stop with Ctrl-C" in line or time.monotonic() > deadline:
            break
    return proc, printed


def wait_health(api: int) -> dict:
    import json

    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{api}/health", timeout=2) as resp:
                return json.loads(resp.read())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.slow
def test_make_run_starts_everything_and_a_second_run_reuses_it():
    # Not pytest's tmp_path: its parents are private to root, and PostgreSQL runs as postgres.
    tmp_path = Path(tempfile.mkdtemp(prefix="hindsight-make-run-"))
    tmp_path.chmod(0o755)
    api, demo, db = free_port(), free_port(), free_port()
    proc, first = start(tmp_path / "var", api, demo, db)
    try:
        assert {"account", "key", "login", "demo"} <= set(first), first
        health = wait_health(api)
        assert health["status"] == "ok" and health["timescaledb"]["edition"] in ("apache", "timescale")
        # The printed analyst key reads the API; the printed login opens the dashboard.
        req = urllib.request.Request(f"http://127.0.0.1:{api}/api/v1/sessions",
                                     headers={"Authorization": f"Bearer {first['key']}"})
        with urllib.request.urlopen(req, timeout=5) as resp:
            assert resp.status == 200

        import http.cookiejar
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        page = opener.open(f"http://127.0.0.1:{api}/dashboard/login", timeout=5).read().decode()
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        email, password = first["login"]
        from urllib.parse import urlencode
        form = urlencode({"email": email, "password": password, "csrf_token": csrf}).encode()
        after = opener.open(f"http://127.0.0.1:{api}/dashboard/login", data=form, timeout=10)
        assert "/dashboard" in after.url and "login" not in after.url
        with urllib.request.urlopen(first["demo"], timeout=5) as resp:
            assert b"tracker.js" in resp.read()
    finally:
        stop(proc)
    # The embedded cluster was stopped with the API.
    assert not (tmp_path / "var" / "postgres" / "data" / "postmaster.pid").exists()

    proc, second = start(tmp_path / "var", api, demo, db)
    try:
        wait_health(api)
        assert (second["account"], second["key"], second["login"]) == \
            (first["account"], first["key"], first["login"])
    finally:
        stop(proc)
        shutil.rmtree(tmp_path, ignore_errors=True)
