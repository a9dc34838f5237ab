"""`make run` (`hindsight dev`) prints the tracker snippet the README promises, also with
HINDSIGHT_DEMO_PORT=0 (no demo site) and when the demo site's port is taken (issue 11)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest
from test_make_run import stop, wait_health

from harness import HINDSIGHT, free_port
from hindsight.demo import DemoSite, startup_lines

SNIPPET = re.compile(r'tracker snippet  (<script src="(\S+)/tracker\.js" data-account="([0-9a-f-]{36})" async></script>)')


def test_the_snippet_is_printed_with_and_without_the_demo_site():
    account = "3f1c2b8e-4d5a-4e6f-8a9b-0c1d2e3f4a5b"
    api = "http://127.0.0.1:8000"
    expected = f'<script src="{api}/tracker.js" data-account="{account}" async></script>'

    off = startup_lines(api + "/", account, None, 0)
    assert off[-1] == f"  tracker snippet  {expected}"
    assert "HINDSIGHT_DEMO_PORT=0" in off[0]

    taken = startup_lines(api, account, None, 8001)
    assert taken[-1] == f"  tracker snippet  {expected}" and "port 8001 is taken" in taken[0]

    site = DemoSite(api, account).start()
    try:
        running = startup_lines(api, account, site, site.port)
    finally:
        site.stop()
    assert running == [f"  demo site        {site.url()}/  (tracker.js installed: click, type, browse)",
                       f"  tracker snippet  {expected}"]


@pytest.mark.slow
def test_make_run_with_demo_port_0_prints_a_snippet_that_loads_the_tracker():
    tmp_path = Path(tempfile.mkdtemp(prefix="hindsight-dev-snippet-"))
    tmp_path.chmod(0o755)   # PostgreSQL runs as postgres: not pytest's private tmp_path
    api, db = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if k != "HINDSIGHT_DATABASE_URL"}
    env.update(HINDSIGHT_DATA_DIR=str(tmp_path / "var"), HINDSIGHT_BIND=f"127.0.0.1:{api}",
               HINDSIGHT_DEMO_PORT="0", HINDSIGHT_EMBEDDED_PORT=str(db), HINDSIGHT_WORKERS="1")
    proc = subprocess.Popen([str(HINDSIGHT), "dev"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    printed: list[str] = []
    try:
        deadline = time.monotonic() + 120
        for line in proc.stdout:
            printed.append(line)
            if "Stop with Ctrl-C" in line or time.monotonic() > deadline:
                break
        text = "".join(printed)
        found = SNIPPET.search(text)
        assert found, text
        snippet, src, account = found.groups()
        assert re.search(rf"demo account id\s+{account}", text)
        assert "demo site        off" in text
        wait_health(api)
        with urllib.request.urlopen(f"{src}/tracker.js", timeout=5) as resp:
            assert resp.status == 200 and b"hindsight" in resp.read()
    finally:
        stop(proc)
        shutil.rmtree(tmp_path, ignore_errors=True)
