"""Fixtures: one real TimescaleDB cluster for the test session, migrated with the
same sql/ files as production, and helpers that walk the real token flow."""

from __future__ import annotations

import tempfile
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import falcon.testing
import psycopg
import pytest
import testing.postgresql
from lifecycle_support import NO_TSL, TSL_MARK, server_description, tsl_server, tsl_summary

from hindsight.app import create_app, prepare_database
from hindsight.db import connect, create_pool, timescaledb_info
from hindsight.migrate import migrate
from hindsight.pgcluster import SERVER_OPTIONS, binaries
from hindsight.queries.tenancy import create_account, create_api_key
from hindsight.settings import Settings


def start_cluster() -> testing.postgresql.Postgresql:
    bins = binaries(Path(tempfile.mkdtemp(prefix="hindsight-pgbin-")))
    return testing.postgresql.Postgresql(
        initdb=bins.initdb,
        postgres=bins.postgres,
        postgres_args="-h 127.0.0.1 -F -c logging_collector=off " + " ".join(SERVER_OPTIONS),
    )


@pytest.fixture(scope="session")
def cluster():
    server = start_cluster()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def db_url(cluster) -> str:
    url = cluster.url()
    migrate(url)
    return url


def pytest_report_header(config):
    return "database: PostgreSQL + TimescaleDB started per test session (testing.postgresql)"


# ---- the timescale edition: tests that take `tsl_url` run on a timescale-edition server when
# one is configured (HINDSIGHT_TEST_TSL_URL or HINDSIGHT_TEST_TSL_BINDIR, tests/lifecycle_support.py)
# and are skipped otherwise; the terminal summary says which, and why.
_TSL_SERVER: dict[str, str] = {}


@pytest.fixture(scope="session")
def tsl_url():
    with tsl_server() as url:
        if url is None:
            pytest.skip(NO_TSL)
        _TSL_SERVER["description"] = server_description(url)
        yield url


# Both editions in one test: the apache case on the suite's cluster, the timescale case on
# tsl_url (taken by name at run time, so it is marked here and the run's summary counts it).
@pytest.fixture(params=["apache", pytest.param("timescale", marks=pytest.mark.tsl)])
def server_url(request, cluster):
    if request.param == "apache":
        return cluster.url()
    return request.getfixturevalue("tsl_url")


def pytest_configure(config):
    config.addinivalue_line("markers", f"{TSL_MARK}: needs a timescale-edition server (the tsl_url fixture)")


# ---- tests that drive a real Chromium run once more when they fail (pytest-rerunfailures),
# as Playwright's own runner does on CI: a browser, a server and a database sharing two cores
# miss a deadline now and then. A test fails if it fails twice, and every test that passed
# only on its second run is named in the run's summary with its first failure
# (docs/DEVELOPERS.md, "Browser tests run twice at most"). The benches' smoke tests drive
# Chromium through bench/ (recording, tracker, replay).
BROWSER_RERUNS = 1
DRIVE_CHROMIUM = {"test_bench_smoke.py"}


def drives_chromium(item) -> bool:
    from browser import chromium

    return ("browser" in getattr(item, "fixturenames", ()) or item.path.name in DRIVE_CHROMIUM
            or getattr(getattr(item, "module", None), "chromium", None) is chromium)


def pytest_collection_modifyitems(items):
    for item in items:
        if "tsl_url" in getattr(item, "fixturenames", ()):
            item.add_marker(TSL_MARK)
        if drives_chromium(item):
            item.add_marker(pytest.mark.flaky(reruns=BROWSER_RERUNS, reruns_delay=1))


def pytest_terminal_summary(terminalreporter):
    reports = [r for key in ("passed", "failed", "skipped", "error") for r in terminalreporter.stats.get(key, [])]
    line = tsl_summary(reports, _TSL_SERVER.get("description"))
    if line:
        terminalreporter.section("timescale edition")
        terminalreporter.write_line(line)
    reruns = terminalreporter.stats.get("rerun", [])
    if reruns:
        terminalreporter.section("browser tests run a second time")
        for report in reruns:
            lines = (report.longreprtext or "").strip().splitlines()
            said = [line[1:].strip() for line in lines if line.startswith("E ")] or lines[-1:] or ["?"]
            terminalreporter.write_line(f"{report.nodeid}: its first run failed: {said[0]} ({lines[-1] if lines else '?'})")


@pytest.fixture(scope="session")
def settings(db_url) -> Settings:
    return Settings(database_url=db_url, rate_limit_per_minute=0, pool_max=4)


@pytest.fixture(scope="session")
def pool(settings):
    pool = create_pool(settings)
    prepare_database(pool)
    yield pool
    pool.close()


@pytest.fixture(scope="session")
def tsdb_info(pool):
    with pool.connection() as conn:
        return timescaledb_info(conn)


@pytest.fixture(scope="session")
def app(settings, pool):
    return create_app(settings, pool)


@pytest.fixture
def client(app) -> falcon.testing.TestClient:
    return falcon.testing.TestClient(app)


@pytest.fixture
def conn(db_url):
    with psycopg.connect(db_url, autocommit=True) as c:
        yield c


@dataclass
class Site:
    """An account with its domain, tracker widget, analyst key and live statistics token."""

    account_id: str
    domain: str
    widget_id: str
    api_key: str
    token: str
    origin: str

    def write_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Origin": self.origin}

    def read_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


def new_account(db_url: str, domain: str | None = None, limit: int | None = None) -> dict:
    domain = domain or f"site-{uuid.uuid4().hex[:8]}.example"
    with connect(db_url) as c:
        account = create_account(c, "Test", domain, limit)
        account["api_key"] = create_api_key(c, account["account_id"])
    return account


def token_flow(client, account: dict, origin: str) -> str:
    """Walk the real site flow: widgets (JWT) -> statistics token."""
    widgets = client.simulate_get(f"/site/account/{account['account_id']}/widgets",
                                  headers={"Origin": origin})
    assert widgets.status_code == 200, widgets.json
    jwt = widgets.json["widgets"][0]["token"]
    stats = client.simulate_get(f"/site/widget/{account['widget_id']}/account_statistics",
                                headers={"Authorization": f"Bearer {jwt}", "Origin": origin})
    assert stats.status_code == 200, stats.json
    return stats.json["token"]


@pytest.fixture
def make_site(client, db_url):
    def make(domain: str | None = None) -> Site:
        account = new_account(db_url, domain)
        origin = f"https://{account['domain']}"
        token = token_flow(client, account, origin)
        return Site(account["account_id"], account["domain"], account["widget_id"],
                    account["api_key"], token, origin)

    return make


@pytest.fixture
def site(make_site) -> Site:
    return make_site()


def now_iso(offset_seconds: float = 0.0) -> str:
    return datetime.fromtimestamp(datetime.now(UTC).timestamp() + offset_seconds, UTC).isoformat()


@pytest.fixture
def session_id(client, site) -> str:
    resp = client.simulate_post("/api/v1/sessions", json={"page_url": f"{site.origin}/"},
                                headers=site.write_headers())
    assert resp.status_code == 201, resp.json
    return resp.json["session_id"]


# ---- browser tests: tracker.js built, a real `hindsight serve`, Debian's Chromium (tests/browser.py).
# Module-scoped: each test file gets its own server and browser.

@pytest.fixture(scope="module")
def manifest() -> dict:
    """tracker/dist's manifest, after building tracker.js if a source is newer."""
    from browser import ensure_tracker_built

    return ensure_tracker_built()


@pytest.fixture(scope="module")
def api(db_url, manifest):
    """`hindsight serve` (one worker) serving the built tracker.js, for this test file."""
    from browser import ApiServer

    server = ApiServer(db_url).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium via Playwright, for this test file."""
    from browser import chromium

    with chromium() as chromium_browser:
        yield chromium_browser
