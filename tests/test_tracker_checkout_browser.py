"""tracker.js's periodic full snapshot (a seek point every 5 minutes) is taken when the
browser is idle, not inside the visitor's next event.

rrweb's own `checkoutEveryNms` takes it inside whichever event first comes after the
interval: on a large page a click waited for the whole snapshot (hundreds of ms) before the
page could answer it. Here, in Chromium with Playwright's fake clock, five and a half minutes
pass on the demo page while its idle callbacks are held back and the visitor clicks: no full
snapshot is taken in the click (rrweb's way took it there), and one is taken as soon as the
page is idle.
"""

from __future__ import annotations

from test_tracker_recording import VIEWPORT, demo_site, events_of, session_id_of, wait_for_chunk

from harness import wait_for

META, FULL_SNAPSHOT = 4, 2


def _full_snapshots(site, sid: str) -> list[int]:
    """The timestamps of the session's full snapshots in everything the page sent."""
    return sorted({e["timestamp"] for r in site.wire.segments() if r["query"]["session_id"] == [sid]
                   for e in events_of(r) if e["type"] == FULL_SNAPSHOT})


# Idle callbacks held back once the test says so (window.__holdIdle), run when it says so.
HOLD_IDLE = """
(() => {
  const real = window.requestIdleCallback.bind(window);
  const held = (window.__heldIdle = []);
  window.requestIdleCallback = (fn, options) =>
    window.__holdIdle ? held.push(fn) : real(fn, options);
  window.__releaseIdle = () => {
    window.__holdIdle = false;
    held.splice(0).forEach((fn) => fn({ didTimeout: true, timeRemaining: () => 0 }));
  };
})();
"""


def test_the_periodic_full_snapshot_is_taken_when_the_page_is_idle(db_url, api, browser):
    with demo_site(api, db_url) as site:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.clock.install()   # fakes requestIdleCallback too: held back after it, on top of it
        page.add_init_script(HOLD_IDLE)
        page.goto(site.url() + "/")
        wait_for_chunk(page)
        sid = session_id_of(page)
        page.evaluate("hindsight.flush()")
        first = wait_for(lambda: _full_snapshots(site, sid), what="the page load's full snapshot")
        assert len(first) == 1

        # Five and a half minutes pass; the page is never idle, and the visitor clicks, which
        # changes the page: rrweb's way took the snapshot inside that click's task.
        page.evaluate("window.__holdIdle = true")
        page.clock.fast_forward(330_000)
        page.evaluate("""() => {
            document.body.appendChild(document.createElement('p')).textContent = 'clicked';
            document.body.click();
        }""")
        page.wait_for_timeout(500)
        page.evaluate("hindsight.flush()")
        page.wait_for_timeout(1000)
        page.evaluate("hindsight.flush()")
        assert _full_snapshots(site, sid) == first
        assert page.evaluate("window.__heldIdle.length") >= 1   # tracker.js waits for an idle moment

        # The page is idle at last: the snapshot is taken then.
        page.evaluate("window.__releaseIdle()")
        page.evaluate("hindsight.flush()")
        both = wait_for(lambda: (lambda s: s if len(s) >= 2 else None)(_full_snapshots(site, sid)),
                        timeout=30, what="a second full snapshot once the page is idle")
        assert both[1] - both[0] >= 300_000

        # The visitor opts out: no more full snapshots are taken (none would be kept).
        page.evaluate("""() => {
            const record = window.__hindsightRecord.record;
            const real = record.takeFullSnapshot;
            window.__taken = 0;
            record.takeFullSnapshot = (...args) => { window.__taken++; return real(...args); };
            hindsight.optOut();
        }""")
        page.evaluate("window.__releaseIdle()")
        page.clock.fast_forward(330_000)
        page.clock.run_for(60_000)
        page.wait_for_timeout(500)
        assert page.evaluate("window.__taken") == 0
        context.close()
