"""No long task from tracker.js on the demo single-page app (issue 11), the parts that can be
checked without a clock: the screenshot chunk drives html2canvas stage by stage and lets the
event loop through between stages (html2canvas's own entry did the whole picture in two
tasks), its sliced parse builds exactly the tree html2canvas's parseTree builds, and the
session's timezone comes from `Temporal` where the browser has it (the first
`Intl.DateTimeFormat` of a page loads ICU's data: 35-180 ms in one call); rrweb starts without
building a throw-away iframe, and the page load's screenshot waits until 2 s after the load
event. How long the tasks are is measured, not tested: bench/tracker.py --spa-only
(docs/BENCHMARKS.md)."""

from __future__ import annotations

import json

from test_tracker_recording import VIEWPORT, analyst_get, demo_site, session_id_of, wait_for_chunk

from harness import wait_for

LOAD_CHUNK = """async chunk => {
  if (!window.__hindsightCapture || !window.__hindsightCapture.parseSliced) {
    await new Promise((ok, fail) => {
      const s = document.createElement('script');
      s.src = document.querySelector('script[src$="tracker.js"]').src.replace('tracker.js', 'tracker/' + chunk);
      s.onload = ok; s.onerror = fail; document.head.appendChild(s);
    });
  }
}"""

# Both parses of the live page, as JSON: each container's class, flags, box, its text boxes
# and its children (html2canvas's ElementContainer / TextContainer fields).
BOTH_TREES = """async () => {
  const c = window.__hindsightCapture;
  const box = (b) => [b.left, b.top, b.width, b.height].map(Math.round);
  const tree = (x) => ({k: x.constructor.name, f: x.flags, b: box(x.bounds),
    t: x.textNodes.map((t) => [t.text, t.textBounds.map((w) => [w.text, ...box(w.bounds)])]),
    e: x.elements.map(tree)});
  const sliced = await c.parseSliced(c.newContext(innerWidth), document.documentElement);
  const whole = c.parseWhole(c.newContext(innerWidth), document.documentElement);
  const count = (x) => 1 + x.elements.reduce((n, e) => n + count(e), 0);
  return [JSON.stringify(tree(sliced)), JSON.stringify(tree(whole)), count(whole)];
}"""

# One screenshot with tracker.js's default masking, counting the times it let the event loop
# through (scheduler.yield, or setTimeout where there is none).
COUNTED_SHOT = """async () => {
  let yields = 0;
  const real = scheduler.yield.bind(scheduler);
  scheduler.yield = () => { yields++; return real(); };
  try {
    const shot = await window.__hindsightCapture.shoot({mask: '', maskAll: true, maskText: false},
                                                       {maxWidth: 1024, format: 'jpeg', quality: 0.6});
    return [yields, shot && shot.image_data.slice(0, 23), shot && shot.width, shot && shot.elements.length];
  } finally {
    scheduler.yield = real;
  }
}"""

# Counts the page's Intl.DateTimeFormat objects (before any script of the page runs).
COUNT_INTL = """window.__intlMade = 0;
const RealDateTimeFormat = Intl.DateTimeFormat;
Intl.DateTimeFormat = function (...args) { window.__intlMade++; return new RealDateTimeFormat(...args); };
Intl.DateTimeFormat.prototype = RealDateTimeFormat.prototype;"""

GROW = """n => {
  const items = [];
  for (let i = 0; i < n; i++) items.push('<li class="row"><b>Item ' + i + '</b> <span>in stock, ' + i + ' left</span></li>');
  document.querySelector('main').insertAdjacentHTML('beforeend', '<ul id="many">' + items.join('') + '</ul>');
}"""


def test_the_sliced_parse_builds_html2canvas_own_tree(api, db_url, browser, manifest):
    with demo_site(api, db_url, **{"data-screenshots": "off"}) as site:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        try:
            for path, grow in (("/app", 0), ("/", 0), ("/checkout.html", 0), ("/todo.html", 0), ("/app", 300)):
                page.goto(site.url() + path)
                page.wait_for_load_state("load")
                page.evaluate(LOAD_CHUNK, manifest["capture_chunk"])
                if grow:
                    page.evaluate(GROW, grow)
                sliced, whole, containers = page.evaluate(BOTH_TREES)
                assert containers > 10 + grow, (path, containers)
                assert json.loads(sliced) == json.loads(whole), path
        finally:
            context.close()


def test_a_screenshot_lets_the_event_loop_through_between_its_stages(api, db_url, browser, manifest):
    with demo_site(api, db_url, **{"data-screenshots": "off"}) as site:
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        try:
            page.goto(site.url() + "/app")
            page.wait_for_load_state("load")
            page.evaluate(LOAD_CHUNK, manifest["capture_chunk"])
            yields, head, width, elements = page.evaluate(COUNTED_SHOT)
        finally:
            context.close()
    # Unconditional pauses: before the clone, after it, after the iframe is made (the copy is
    # written into it in the next task), after the masking, after the parse, after the paint,
    # after the encoding (more in the parse and the paint, by the clock).
    assert yields >= 7, yields
    assert head == "data:image/jpeg;base64,", head
    assert width == 1024 and elements > 5, (width, elements)


def test_the_timezone_is_the_browsers_own(api, db_url, browser):
    with demo_site(api, db_url, **{"data-screenshots": "off", "data-record": "off"}) as site:
        context = browser.new_context(viewport=VIEWPORT, timezone_id="America/Argentina/Buenos_Aires")
        context.add_init_script(COUNT_INTL)
        page = context.new_page()
        try:
            page.goto(site.url() + "/app")
            page.wait_for_function("() => window.hindsight && hindsight.health")
            sid = session_id_of(page)
            page.evaluate("hindsight.flush()")
            session = wait_for(lambda: _session(api, site.account, sid), what="the session", page=page)
            made = page.evaluate("window.__intlMade")
            has_temporal, expected = page.evaluate(
                "[!!window.Temporal, Intl.DateTimeFormat().resolvedOptions().timeZone]")
        finally:
            context.close()
    assert has_temporal  # Chromium has it: the cheap path is the one taken here
    assert made == 0, made  # tracker.js made no Intl.DateTimeFormat
    assert session["timezone"] == expected == "America/Buenos_Aires", session["timezone"]


def _session(api, account, sid):
    import urllib.error
    try:
        return analyst_get(api, account, f"/api/v1/sessions/{sid}")
    except urllib.error.HTTPError:
        return None


def _first_segment(api, db_url, browser, init_script: str = "", look=lambda page: None):
    """The demo SPA loaded with recording on (no screenshots): its segment 0's event types,
    and what `look(page)` read from the page meanwhile."""
    with demo_site(api, db_url, **{"data-screenshots": "off"}) as site:
        context = browser.new_context(viewport=VIEWPORT)
        if init_script:
            context.add_init_script(init_script)
        page = context.new_page()
        try:
            page.goto(site.url() + "/app")
            wait_for_chunk(page)
            page.evaluate("hindsight.flush()")
            first = wait_for(lambda: [r for r in site.wire.posts("/api/v1/track/recording")
                                      if "segment=0&" in r["url"]], what="segment 0", page=page)
            seen = look(page)
        finally:
            context.close()
    return [e["type"] for e in json.loads(first[0]["body"])], seen


def _opens_with_a_full_snapshot(types: list[int]) -> bool:
    """Started while the page still loads, rrweb first marks DOMContentLoaded (0) and load
    (1), then takes its snapshot at load: nothing else may come before its Meta (4) and full
    snapshot (2)."""
    lead = 2 if types[:2] == [0, 1] else 0
    return types[lead:lead + 2] == [4, 2]


def test_recording_still_starts_with_a_full_snapshot(api, db_url, browser):
    """rrweb now starts in a task after the chunk's own: the page's first segment still opens
    with rrweb's Meta and FullSnapshot events."""
    types, _ = _first_segment(api, db_url, browser)
    assert _opens_with_a_full_snapshot(types), types[:4]


# Every <iframe> the page's document gains (a MutationObserver from before any script), with
# when; and the page's load event's end.
WATCH_FRAMES = """window.__frames = [];
new MutationObserver((records) => {
  for (const r of records) for (const n of r.addedNodes) {
    if (n.nodeName == 'IFRAME') window.__frames.push([n.className, performance.now()]);
  }
}).observe(document, {childList: true, subtree: true});"""
LOAD_END = "performance.getEntriesByType('navigation')[0].loadEventEnd"


def test_rrweb_starts_without_a_throwaway_iframe(api, db_url, browser):
    """@rrweb/record 2.1.6 takes two methods of Element for accessors, finds Element "patched"
    on every page and builds a hidden iframe (a new document: half of rrweb's start task on the
    demo SPA) to read its prototype from a clean window; the build moves them to the methods
    (tracker/build.mjs). The recording starts, with its full snapshot, and no iframe was ever
    added to the page."""
    types, frames = _first_segment(api, db_url, browser, WATCH_FRAMES, lambda page: page.evaluate("window.__frames"))
    assert _opens_with_a_full_snapshot(types), types[:4]
    assert frames == [], frames


def test_the_page_loads_screenshot_waits_until_after_its_busiest_seconds(api, db_url, browser, manifest):
    """The page load's screenshot (html2canvas's copy of the page, in its hidden iframe) is
    begun no earlier than AFTER_LOAD (2 s) after the load event, then when the browser is idle;
    a route change's is still taken (800 ms after its page view, then idle). Lower bounds only:
    a loaded machine only makes them later."""
    with demo_site(api, db_url, **{"data-record": "off"}) as site:  # a screenshot per page view
        context = browser.new_context(viewport=VIEWPORT)
        context.add_init_script(WATCH_FRAMES)
        page = context.new_page()
        try:
            page.goto(site.url() + "/app")
            wait_for(lambda: page.evaluate("window.__frames.length"), what="the load's screenshot", page=page)
            [(name, begun)], load_end = page.evaluate("window.__frames"), page.evaluate(LOAD_END)
            after_load = page.evaluate("window.__hindsightCapture.AFTER_LOAD")
            wait_for(lambda: len(site.wire.posts("/api/v1/track/screenshot")), what="the upload", page=page)
            clicked = page.evaluate("performance.now()")
            page.click("#nav-settings")
            wait_for(lambda: page.evaluate("window.__frames.length") > 1, what="the route's screenshot", page=page)
            route_begun = page.evaluate("window.__frames[1][1]")
        finally:
            context.close()
    assert name == "html2canvas-container", name
    assert after_load == 2000
    assert load_end > 0 and begun >= load_end + after_load, (begun, load_end)
    assert clicked + 800 <= route_begun, (clicked, route_begun)
