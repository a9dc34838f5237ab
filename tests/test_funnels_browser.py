"""The funnels page in a real headless Chromium against a real `hindsight serve`: an analyst
builds a funnel, saves it, reads its counts, opens the drop-offs of a step and follows one
to its replay at the moment of the step."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dashboard_support import PASSWORD, make_user
from lifecycle_support import add_events, add_session, connect

from browser import ApiServer, chromium
from conftest import new_account

pytestmark = pytest.mark.slow
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"  # git-ignored: for a person to look at


@pytest.fixture(scope="module")
def world(db_url):
    account = new_account(db_url)
    host = account["domain"]
    t = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    sessions = {}
    with connect(db_url) as conn:
        for i, pages in enumerate((["/", "/pricing", "/signup"], ["/", "/pricing"], ["/", "/pricing"], ["/"])):
            start = t + timedelta(hours=i)
            sid = add_session(conn, account["account_id"], host, start)
            conn.execute("UPDATE sessions SET visitor_id = %s WHERE session_id = %s", (uuid.uuid4(), sid))
            add_events(conn, sid, account["account_id"], host,
                       [(start + timedelta(seconds=30 * (n + 1)), "page_view", f"https://{host}{p}")
                        for n, p in enumerate(pages)])
            sessions[i] = sid
    api = ApiServer(db_url).start()
    try:
        yield {"api": api, "account": account, "sessions": sessions}
    finally:
        api.stop()


def test_build_a_funnel_read_it_and_open_a_dropoff_replay(world, db_url):
    email = make_user(db_url, world["account"]["account_id"])
    with chromium() as browser:
        page = browser.new_context(viewport={"width": 1300, "height": 900}).new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(world["api"].url + "/dashboard/funnels")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/dashboard/funnels", timeout=30_000)
        page.click("nav >> text=Funnels")  # linked in the navigation
        page.fill("#funnel-builder input[name=name]", "Home to signup")
        page.fill("#funnel-builder textarea[name=steps]", "/\n/pric*\n/signup")
        page.select_option("#funnel-builder select[name=window]", "1h")
        page.click("#funnel-builder button[type=submit]")
        page.wait_for_url("**/dashboard/funnels/*", timeout=30_000)
        counts = page.locator("#funnel-steps td.count").all_inner_texts()
        assert counts == ["4", "3", "1"]
        page.click("#funnel-steps tr[data-step='3'] a.dropped")
        page.wait_for_selector("#step-sessions a.replay", timeout=30_000)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard-funnel.png"), full_page=True)
        links = page.locator("#step-sessions a.replay")
        assert links.count() == 2     # sessions 1 and 2 saw pricing, not signup
        href = links.first.get_attribute("href")
        assert href is not None and href.endswith("#t=60.0")   # pricing: 60 s into the session
        links.first.click()
        page.wait_for_url("**/dashboard/sessions/*", timeout=30_000)
        opened = page.url.split("/dashboard/sessions/")[1].split("#")[0]
        assert opened in {str(world["sessions"][1]), str(world["sessions"][2])}
        assert page.url.endswith("#t=60.0")
        assert not errors, errors
