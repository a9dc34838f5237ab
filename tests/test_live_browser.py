"""The live page in a real headless Chromium, against a real `hindsight serve` (gevent
worker) and TimescaleDB: visitors on the site now, a batch sent after the page opened
appearing in the event list, errors highlighted, pause/resume, a filter, the rate chart;
and a live session's replay following the session as it grows (tail mode)."""

from __future__ import annotations

import pytest
from dashboard_support import PASSWORD, make_user
from test_live_stream import LiveSite

from conftest import new_account
from harness import wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def live(api, browser, db_url):
    account = new_account(db_url)
    site = LiveSite(api.port, account)
    email = make_user(db_url, account["account_id"])
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith("/favicon.ico") else None)
    page.goto(api.url + "/dashboard/login?next=/dashboard/live")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/**")
    yield page, site, api, errors
    context.close()


def count(page, selector: str) -> int:
    return page.locator(selector).count()


def test_live_page_follows_batches_pauses_and_counts_visitors(live):
    page, site, api, errors = live
    # Two visitors before the page opens.
    first, second = site.new_session(), site.new_session()
    site.send(first, range(0, 3), "page_view")
    site.send(second, range(0, 2), "click")
    page.goto(api.url + "/dashboard/live")
    assert page.locator("header.top nav a[aria-current=page]").inner_text() == "Live"
    wait_for(lambda: page.get_attribute("#live-state", "data-state") == "live", 20, "the stream open", page)
    wait_for(lambda: page.inner_text("#visitor-count") == "2", 20, "two visitors", page)
    assert site.account["domain"] in page.inner_text("#hosts")
    # (In the snapshot, or by the stream right after it when a transaction was still open.)
    wait_for(lambda: count(page, "#live-events li") == 5, 20, "the five events", page)
    assert count(page, "#rate-chart rect") == 60

    # A new visitor's batch, sent after the page opened, with an error and a failed request.
    third = site.new_session()
    site.send(third, range(0, 2), "error", event_data={"message": "TypeError: x is undefined"})
    site.send(third, range(2, 3), "network", event_data={"method": "POST", "url": "/api/cart", "status": 503})
    wait_for(lambda: count(page, f"#live-events li[data-session='{third}']") == 3, 20, "the new batch", page)
    wait_for(lambda: page.inner_text("#visitor-count") == "3", 20, "three visitors", page)
    assert count(page, f"#live-events li.problem[data-session='{third}']") == 3
    assert "TypeError: x is undefined" in page.inner_text("#live-events")
    newest = page.locator("#live-events li").first
    assert newest.get_attribute("data-session") == third and newest.get_attribute("data-type") == "network"

    # Pause: what arrives is counted, not shown; resume shows it.
    page.click("#pause")
    assert page.get_attribute("#live", "data-paused") == "true"
    messages = int(page.get_attribute("#live", "data-messages") or 0)
    site.send(first, range(3, 7), "click")
    wait_for(lambda: int(page.get_attribute("#live", "data-messages") or 0) > messages, 20,
             "the batch received while paused", page)
    assert "4 new while paused" in page.inner_text("#paused-note")
    assert count(page, f"#live-events li[data-session='{first}']") == 3
    page.click("#pause")
    wait_for(lambda: count(page, f"#live-events li[data-session='{first}']") == 7, 10, "resumed", page)

    # Filters: the errors and failed requests only, then one session only.
    page.select_option("#filter-type", "problems")
    assert count(page, "#live-events li") == 3
    page.select_option("#filter-type", "")
    page.fill("#filter-session", second[:8])
    assert count(page, "#live-events li") == 2
    page.fill("#filter-session", "")
    assert not errors, errors


def test_a_live_sessions_replay_follows_it(live):
    page, site, api, errors = live
    session = site.new_session()
    site.send(session, range(0, 3), "page_view")
    page.goto(api.url + f"/dashboard/sessions/{session}")
    wait_for(lambda: page.locator("#live-badge").is_visible(), 20, "the live badge", page)
    wait_for(lambda: page.get_attribute("#replay", "data-loaded") == "3", 20, "the first events", page)
    site.send(session, range(3, 8), "click")
    wait_for(lambda: page.get_attribute("#replay", "data-loaded") == "8", 20, "events sent later", page)
    assert count(page, "#event-list li") == 8
