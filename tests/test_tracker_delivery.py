"""tracker.js delivers every batch: through an API outage and page reloads (each event
stored once), with its token renewed before expiry and re-fetched when revoked, quiet
and bounded when the site is refused (403), and harmless to the page when the API is down.

Real components: Debian's headless Chromium, `hindsight serve` (gunicorn) stopped and
started again on the same port, TimescaleDB.
"""

from __future__ import annotations

import psycopg
import pytest
from test_tracker_browser import VIEWPORT, event_rows, session_rows, wait_for

from browser import ApiServer, RequestLog, chromium, ensure_tracker_built, free_port
from conftest import new_account
from hindsight.demo import DemoSite

pytestmark = pytest.mark.slow

OUTBOX_EVENTS = """() => Object.keys(localStorage).filter(k => k.includes(':o:'))
    .map(k => JSON.parse(localStorage[k]).o.reduce((n, b) => n + b[1].length, 0))
    .reduce((a, b) => a + b, 0)"""


@pytest.fixture(scope="module")
def browser():
    ensure_tracker_built()
    with chromium() as b:
        yield b


@pytest.fixture
def api(db_url):
    server = ApiServer(db_url).start()
    yield server
    server.stop()


@pytest.fixture
def site(api, db_url):
    account = new_account(db_url, "localhost")
    demo = DemoSite(api.url, account["account_id"], attrs={"data-flush-interval": "500"}).start()
    demo.account = account
    yield demo
    demo.stop()


def test_outage_and_reloads_lose_nothing_and_store_nothing_twice(db_url, api, site, browser):
    context = browser.new_context(viewport=VIEWPORT)
    log = RequestLog(context)
    page = context.new_page()
    page.goto(site.url() + "/")
    session = wait_for(lambda: session_rows(db_url, site.account["account_id"]), what="the session",
                       page=page)[0]
    wait_for(lambda: len(event_rows(db_url, session["session_id"])) >= 2, page=page,
             what="the first batch")

    api.stop()  # the API goes down in the middle of the visit
    page.click("#buy")
    page.click("#name")
    page.keyboard.type("Grace")
    page.mouse.wheel(0, 500)
    page.wait_for_timeout(1200)  # flushes fail and back off
    page.click("header a[href='/app']")  # a page load while the API is down
    page.wait_for_url("**/app")
    page.click("#nav-settings")
    page.reload()  # and another one
    page.click("#nav-profile")
    page.wait_for_timeout(800)
    waiting = page.evaluate(OUTBOX_EVENTS)
    assert waiting > 5, "undelivered batches wait in localStorage"
    failed_before = len([r for r in log.requests if "/api/v1/track" in r["url"]])

    api.start()  # back on the same port
    page.reload()  # the next page load delivers them
    last_seq = page.evaluate("hindsight.flush().then(() => hindsight.health().seq)")
    events = wait_for(lambda: (rows := event_rows(db_url, session["session_id"]))
                      and len(rows) >= last_seq and rows, page=page, what="every event")
    seqs = sorted(e["seq"] for e in events)
    assert seqs == list(range(len(seqs))), "every event arrived, each once"
    assert len(seqs) >= last_seq
    assert session_rows(db_url, site.account["account_id"])[0]["event_count"] == len(events)
    assert len(session_rows(db_url, site.account["account_id"])) == 1
    types = [e["event_type"] for e in events]
    assert types.count("session_start") == 1 and types.count("click") >= 3
    assert {"/", "/app", "/app/settings", "/app/profile"} <= {
        e["page_url"].removeprefix(site.url()) for e in events if e["event_type"] == "page_view"}
    assert page.evaluate(OUTBOX_EVENTS) == 0
    assert failed_before > 0 and page.evaluate("hindsight.health().errors") == 0
    context.close()


def test_token_is_renewed_before_expiry_and_fetched_again_when_revoked(db_url, browser):
    # Statistics tokens living 8 s: tracker.js renews each one after about half of it.
    server = ApiServer(db_url, env={"HINDSIGHT_STATISTICS_TOKEN_TTL_SECONDS": "8"}).start()
    account = new_account(db_url, "localhost")
    demo = DemoSite(server.url, account["account_id"], attrs={"data-flush-interval": "500"}).start()
    try:
        context = browser.new_context(viewport=VIEWPORT)
        log = RequestLog(context)
        page = context.new_page()
        page.goto(demo.url() + "/app")
        for i in range(24):  # 12 s of activity: custom events every half second
            page.evaluate("i => hindsight.track('tick', {i})", i)
            page.wait_for_timeout(500)
        page.evaluate("hindsight.flush()")
        used = {r["authorization"] for r in log.to("/api/v1/track") if r["authorization"]}
        assert len(used) >= 2, "a new token before the old one expired"
        assert not [s for s, u in log.responses if s == 401], "never used an expired token"

        with psycopg.connect(db_url, autocommit=True) as conn:
            conn.execute("UPDATE statistics_tokens SET revoked_at = now() WHERE account_id = %s",
                         (account["account_id"],))
        before = len(log.to("/account_statistics"))
        page.evaluate("hindsight.track('after_revocation', {})")
        page.evaluate("hindsight.flush()")
        session = session_rows(db_url, account["account_id"])[0]
        events = wait_for(lambda: [e for e in event_rows(db_url, session["session_id"])
                                   if e["event_data"] and e["event_data"].get("name") == "after_revocation"],
                          page=page, what="the event sent after the token was revoked")
        assert len(events) == 1
        assert [s for s, u in log.responses if s == 401 and "/api/v1/track" in u], "the revoked token was refused"
        assert len(log.to("/account_statistics")) > before, "and the token flow ran again"
        ticks = [e for e in event_rows(db_url, session["session_id"]) if e["event_type"] == "custom"]
        assert len(ticks) == 25
        context.close()
    finally:
        demo.stop()
        server.stop()


def test_refused_site_stops_sending_and_keeps_a_bounded_buffer(db_url, api, site, browser):
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("INSERT INTO statistics_flags (account_id, host, enabled) VALUES (%s, 'localhost', false) "
                     "ON CONFLICT (account_id, host) DO UPDATE SET enabled = false",
                     (site.account["account_id"],))
    context = browser.new_context(viewport=VIEWPORT)
    log = RequestLog(context)
    page = context.new_page()
    page.goto(site.url() + "/")
    wait_for(lambda: [s for s, u in log.responses if s == 403], page=page, what="the 403")
    page.evaluate("for (let i = 0; i < 1500; i++) hindsight.track('burst', {i})")
    page.evaluate("hindsight.flush()")
    page.wait_for_timeout(700)
    page.reload()  # a new page load does not ask again (it stays quiet for a while)
    page.evaluate("hindsight.flush()")
    page.wait_for_timeout(700)
    assert len(log.to("/account_statistics")) == 1
    assert not log.to("/api/v1/"), "nothing is sent to a site that was refused"
    buffered = page.evaluate(OUTBOX_EVENTS)
    assert 900 <= buffered <= 1000, buffered
    assert page.evaluate("hindsight.health().dropped") >= 500
    assert page.evaluate("hindsight.health().errors") == 0
    context.close()


def test_api_down_breaks_nothing_on_the_page(db_url, browser):
    account = new_account(db_url, "localhost")
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    api = ApiServer(db_url).start()  # serves tracker.js only; the endpoint is dead
    demo = DemoSite(api.url, account["account_id"],
                    attrs={"data-endpoint": dead, "data-flush-interval": "300"}).start()
    try:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(demo.url() + "/slow.html")
        page.wait_for_function("window.hindsight && hindsight.health().seq > 1")
        # The page's own calls still work, through tracker.js's fetch and XHR wrappers.
        assert page.evaluate("fetch('/api/slow?ms=10').then(r => r.json()).then(d => d.slept_ms)") == 10
        assert page.evaluate("""() => new Promise(ok => { const x = new XMLHttpRequest();
            x.open('GET', '/api/slow?ms=5'); x.onload = () => ok(x.status + ' ' + x.responseText); x.send(); })""") == '200 {"slept_ms": 5}'
        page.goto(demo.url() + "/app")
        page.click("#nav-settings")
        assert page.locator("h1").inner_text() == "Settings"
        page.keyboard.press("Escape")
        page.wait_for_timeout(1000)
        assert errors == []
        assert page.evaluate("hindsight.health().errors") == 0
        assert page.evaluate(OUTBOX_EVENTS) > 0
        assert page.evaluate("hindsight.flush().then(() => 'settled')") == "settled"
        context.close()
    finally:
        demo.stop()
        api.stop()
