"""The DOM replay's first frame comes first (issue 11: < 300 ms for a 30-minute recording).

Real Chromium, `hindsight serve`, TimescaleDB. Orders and states are asserted, never wall
times (the machine is shared):

- the player draws the recording's first frame while the event list has no row yet and only
  the first window's segments were fetched; the session's JSON and the recording's index are
  asked for only after it; the list is built afterwards, in slices, and ends complete and in
  order, with its highlight and click-to-seek working;
- the player's chain: rrweb's replayer and the first window (the first segment) are
  preloaded by the replay page's HTML (each fetched once), the player's document is the data: frame of
  /dashboard/player and fetches nothing (no URL in it; rrweb's replayer comes from the
  replay page as text and runs as a blob: script allowed by its hash);
- the dashboard's static files come back gzip when the request takes it (with Vary, their
  own ETag, a 304 on revalidation) and plain when it does not; the player's scripts reach
  Chromium compressed.
"""

from __future__ import annotations

import gzip
import http.client
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import falcon.testing
import pytest
from dashboard_support import PASSWORD, make_user, record_session
from test_replay_dom_browser import ensure_dashboard_built, new_session, player_frame, send_segments

from conftest import new_account, token_flow
from harness import REPO, ServeProcess, wait_for

pytestmark = pytest.mark.slow

EVENTS = 2600          # tracker events: the first answer's 500, then pages of 2,000
SEGMENTS = 6           # a minute each; segments 0 and 3 start with a full snapshot
STATIC = REPO / "dashboard" / "static"

# What the replay page looked like whenever the player said a window was drawn
# (data-dom-loaded) and when the page said everything was in (data-complete): rows in the
# event list, segments fetched. Recorded by a MutationObserver, in the page's own order.
WATCH = """(() => {
  if (!location.pathname.startsWith('/dashboard/sessions/')) return;
  const log = window.__order = [];
  // When the player's first 'loaded' (its first frame drawn) reached this page: before replay.js sees it.
  window.addEventListener('message', (e) => {
    if (e.data && e.data.type === 'loaded' && window.__loadedAt == null) window.__loadedAt = performance.now();
  }, true);
  new MutationObserver((changes) => {
    for (const c of changes) {
      const root = c.target;
      if (root.id !== 'replay' || !root.hasAttribute(c.attributeName)) continue;
      log.push({
        what: c.attributeName,
        rows: document.querySelectorAll('#event-list li').length,
        fetched: +(root.dataset.fetched || 0),
        segments: performance.getEntriesByType('resource')
          .filter((e) => /\\/recording\\/\\d+$/.test(e.name)).length,
      });
    }
  }).observe(document, { subtree: true, attributes: true,
                         attributeFilter: ['data-dom-loaded', 'data-complete'] });
})();"""


def snapshot(ts: int, title: str) -> list[dict]:
    """rrweb's Meta and FullSnapshot events for a small page (rrweb's serialized node tree)."""
    text = {"type": 3, "textContent": title, "id": 7}
    h1 = {"type": 2, "tagName": "h1", "attributes": {"id": "title"}, "childNodes": [text], "id": 6}
    body = {"type": 2, "tagName": "body", "attributes": {}, "childNodes": [h1], "id": 5}
    head = {"type": 2, "tagName": "head", "attributes": {}, "childNodes": [], "id": 4}
    html = {"type": 2, "tagName": "html", "attributes": {}, "childNodes": [head, body], "id": 3}
    doctype = {"type": 1, "name": "html", "publicId": "", "systemId": "", "id": 2}
    return [{"type": 4, "data": {"href": "http://localhost/app", "width": 1000, "height": 700}, "timestamp": ts},
            {"type": 2, "data": {"node": {"type": 0, "childNodes": [doctype, html], "id": 1},
                                 "initialOffset": {"left": 0, "top": 0}}, "timestamp": ts + 1}]


def moves(start: int, end: int) -> list[dict]:
    return [{"type": 3, "data": {"source": 1, "positions": [{"x": t % 900, "y": t % 600, "id": 6, "timeOffset": 0}]},
             "timestamp": t} for t in range(start, end, 250)]


@pytest.fixture(scope="module")
def world(db_url, app, browser):
    ensure_dashboard_built()
    client = falcon.testing.TestClient(app)
    account = new_account(db_url, "localhost")
    origin = "http://localhost"
    token = token_flow(client, account, origin)

    class Site:
        def write_headers(self):
            return {"Authorization": f"Bearer {token}", "Origin": origin}

    Site.origin = origin
    start = datetime.now(UTC) - timedelta(minutes=30)
    t0 = int(start.timestamp() * 1000)
    # One session: its recording (30 minutes would be 30 segments; 6 show the same order) and
    # the tracker's events, which fill the event list.
    session_id = new_session(client, token, t0)
    segments = []
    for n in range(SEGMENTS):
        a, b = t0 + 100 + n * 60_000, t0 + 100 + (n + 1) * 60_000 - 1
        head = snapshot(a, f"Page {n}") if n in (0, 3) else []
        segments.append(head + moves(a + (2 if head else 0), b))
    send_segments(client, token, session_id, segments)
    # The tracker's events of the same session: unique times, so each row is one moment.
    events = [{"event_type": "page_view", "at": 0.2}] + [
        {"event_type": "click" if i % 50 == 0 else "mouse_move", "at": 0.3 + i * 0.12,
         "viewport_x": 10 + i % 800, "viewport_y": 10 + i % 500} for i in range(EVENTS - 1)]
    batch = []
    for seq, event in enumerate(events):
        event = dict(event)
        at = event.pop("at")
        batch.append({"seq": seq, "timestamp": (start + timedelta(seconds=at)).isoformat(),
                      "page_url": f"{origin}/app", **event})
    for i in range(0, len(batch), 100):
        resp = client.simulate_post("/api/v1/track", json={"session_id": session_id, "events": batch[i:i + 100]},
                                    headers=Site().write_headers())
        assert resp.status_code in (200, 201), resp.json
    other = record_session(client, Site(), [{"event_type": "page_view", "at": 0}], page_url=f"{origin}/x")
    api = ServeProcess(db_url).start()
    try:
        yield {"api": api, "account": account, "session": session_id, "other": other}
    finally:
        api.stop()


@pytest.fixture
def analyst(world, db_url, browser):
    email = make_user(db_url, world["account"]["account_id"])
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.add_init_script(WATCH)
    page = context.new_page()
    problems: list[str] = []
    responses: list = []
    page.on("pageerror", lambda e: problems.append(f"pageerror {e}"))
    context.on("response", lambda r: responses.append(r))
    page.goto(world["api"].url + "/dashboard/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/sessions")
    yield page, problems, responses
    context.close()


def test_the_first_frame_is_drawn_before_the_event_list_and_the_whole_recording(world, analyst):
    page, problems, responses = analyst
    page.goto(f"{world['api'].url}/dashboard/sessions/{world['session']}")
    stage = page.locator("#replay")
    wait_for(lambda: stage.get_attribute("data-complete") == "1", timeout=60, what="every event listed", page=page)
    order = page.evaluate("window.__order")
    first = next(o for o in order if o["what"] == "data-dom-loaded")
    done = next(o for o in order if o["what"] == "data-complete")
    # The first frame came first: no row of the event list yet, only the first window
    # (segment 0 of 6, which starts with the first full snapshot) fetched.
    assert order.index(first) < order.index(done)
    assert first["rows"] == 0, order
    assert first["segments"] == 1 < SEGMENTS, order
    assert stage.get_attribute("data-dom-window") == "0-0"
    # The frame is the recording's start: the first full snapshot's page.
    shown = player_frame(page).evaluate(
        "() => { const f = document.querySelector('.replayer-wrapper iframe');"
        " const t = f && f.contentDocument && f.contentDocument.getElementById('title');"
        " return t && t.textContent; }")
    assert shown == "Page 0"
    # The session's JSON and the recording's index were asked for after the first frame.
    started = dict(page.evaluate("performance.getEntriesByType('resource').map(e => [e.name.split('/').pop(), e.startTime])"
                                 ".reverse()"))   # the first request of each name wins
    loaded_at = page.evaluate("window.__loadedAt")
    assert started[f"{world['session']}?format=json"] >= loaded_at, (started, loaded_at)
    assert started["recording"] >= loaded_at, (started, loaded_at)
    # Then the list, complete and in order.
    assert done["rows"] == EVENTS and done["fetched"] == EVENTS
    assert int(stage.get_attribute("data-loaded")) == EVENTS
    indexes = page.eval_on_selector_all("#event-list li", "lis => lis.map(li => +li.dataset.index)")
    assert indexes == list(range(EVENTS))
    kinds = page.eval_on_selector_all("#event-list li .type", "spans => spans.map(s => s.textContent)")
    assert kinds[0] == "page_view" and kinds[1] == "click" and kinds.count("click") == len(range(0, EVENTS - 1, 50))
    # Click-to-seek on a row built in a late slice; the highlight follows.
    row = page.locator("#event-list li[data-index='2345']")
    row.scroll_into_view_if_needed()
    row.click()
    wait_for(lambda: page.locator("#event-list li.current").get_attribute("data-index") == "2345",
             what="the clicked row highlighted", page=page)
    when = int(stage.get_attribute("data-time"))
    assert abs(when - (300 + 2344 * 120)) <= 1   # the row's event: 0.3 s + 2,344 × 0.12 s after the start
    page.keyboard.press("End")
    wait_for(lambda: page.locator("#event-list li.current").get_attribute("data-index") == str(EVENTS - 1),
             what="the last row highlighted", page=page)
    assert problems == [], problems
    # The player's scripts and its page came compressed (Chromium asks for gzip).
    scripts = {urlsplit(r.url).path: r for r in responses if "/dashboard/static/" in r.url or "/player" in r.url}
    for path in ("/dashboard/static/replay.js", "/dashboard/static/dist/rrweb-replay.js", "/dashboard/player"):
        assert path in scripts, sorted(scripts)
        assert scripts[path].status == 200
        assert scripts[path].all_headers().get("content-encoding") == "gzip", path
    # Preloaded by the page's HTML, fetched once each: rrweb's replayer, the first window (the
    # first segment: it starts with the first full snapshot).
    paths = [urlsplit(r.url).path for r in responses]
    recording = f"/dashboard/sessions/{world['session']}/recording"
    assert [paths.count(p) for p in ("/dashboard/static/dist/rrweb-replay.js", f"{recording}/0",
                                     "/dashboard/player")] == [1, 1, 1], paths
    assert "/dashboard/static/replay_player.js" not in paths and "/dashboard/static/replay_sandbox.js" not in paths


def test_the_player_chain_has_no_request_of_its_own(world, analyst):
    """Frames: the replay page, /dashboard/player (its CSP), the player's data: document, rrweb's
    iframe. The player's document names no URL and fetches nothing: rrweb's replayer comes
    from the replay page, runs as a blob: script allowed by its hash (compiled off the main
    thread), and no request leaves from the player's frames."""
    page, problems, responses = analyst
    page.goto(f"{world['api'].url}/dashboard/sessions/{world['session']}")
    wait_for(lambda: page.locator("#replay").get_attribute("data-dom-loaded"), what="the first frame", page=page)
    urls = [f.url for f in page.frames]
    assert len(urls) == 4, urls
    assert urls[0].endswith(f"/dashboard/sessions/{world['session']}")
    assert urlsplit(urls[1]).path == "/dashboard/player" and urlsplit(urls[1]).query.startswith("v=")
    assert urls[2].startswith("data:text/html") and urls[3] in ("about:blank", urls[2])
    player = player_frame(page)
    inside = player.evaluate("""() => ({
      replayer: document.body.dataset.replayer,
      scripts: [...document.scripts].map((s) => s.src),
      urls: [...document.querySelectorAll('[href], link')].length,
      requests: performance.getEntriesByType('resource').map((e) => e.name),
    })""")
    assert inside["replayer"] == "blob", inside
    assert all(src == "" or src.startswith("blob:null/") for src in inside["scripts"]), inside
    assert inside["urls"] == 0 and all(r.startswith("blob:") for r in inside["requests"]), inside
    inner = [f for f in page.frames if f.url.startswith(("data:", "about:"))]
    from_player = [r.url for r in responses if r.url.startswith("http") and r.frame in inner]
    assert from_player == [], from_player
    assert problems == [], problems


def test_a_session_without_a_recording_lists_its_events_too(world, analyst):
    page, problems, _ = analyst
    page.goto(f"{world['api'].url}/dashboard/sessions/{world['other']}")
    stage = page.locator("#replay")
    wait_for(lambda: stage.get_attribute("data-complete") == "1", what="the events", page=page)
    assert stage.get_attribute("data-mode") == "screenshots"
    assert page.locator("#event-list li").count() == 1
    assert page.locator("#event-list li.current").count() == 1   # the page view, at its moment
    assert problems == []


def get(url: str, headers: dict) -> tuple[int, dict, bytes]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("GET", parts.path, headers=headers)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize("name", ["dist/rrweb-replay.js", "replay.js", "dashboard.css"])
def test_static_files_are_gzip_when_asked_and_plain_when_not(world, name):
    url = f"{world['api'].url}/dashboard/static/{name}"
    original = (STATIC / name).read_bytes()
    status, headers, body = get(url, {"Accept-Encoding": "gzip, deflate, br"})
    assert status == 200
    assert headers["content-encoding"] == "gzip"
    assert headers["vary"] == "Accept-Encoding"
    assert headers["content-type"].startswith("text/javascript" if name.endswith(".js") else "text/css")
    assert int(headers["content-length"]) == len(body) < len(original)
    assert gzip.decompress(body) == original
    assert headers["etag"].endswith('-gz"') and "last-modified" in headers
    # Revalidation of the gzip copy: 304, no body.
    status, again, body304 = get(url, {"Accept-Encoding": "gzip", "If-None-Match": headers["etag"]})
    assert status == 304 and body304 == b"" and again["etag"] == headers["etag"]
    # Not asked (or refused): the file as it is, its own ETag, still Vary.
    for accept in ({}, {"Accept-Encoding": "identity"}, {"Accept-Encoding": "gzip;q=0"}):
        status, plain, body = get(url, accept)
        assert status == 200 and body == original, accept
        assert "content-encoding" not in plain and plain["vary"] == "Accept-Encoding"
        assert plain["etag"] != headers["etag"] and not plain["etag"].endswith('-gz"')
    # A range is served from the plain file.
    status, ranged, body = get(url, {"Accept-Encoding": "gzip", "Range": "bytes=0-9"})
    assert status == 206 and body == original[:10] and "content-encoding" not in ranged
    assert get(f"{world['api'].url}/dashboard/static/nope.js", {"Accept-Encoding": "gzip"})[0] == 404
