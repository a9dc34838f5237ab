"""tracker.js records the DOM with rrweb, private by default (issue 11, the browser side).

Real components: Debian's headless Chromium, `hindsight serve` (gunicorn) and TimescaleDB.
Every request the page sends to the API is captured by a small reverse proxy in front of it
(Playwright's request events miss beacons and Blob bodies), recording segments gunzipped
here, and checked:

- the demo checkout (tracker/demo/checkout.html: hash routes, two modals, a list that grows,
  validation errors, every kind of private field) after a sign-up page: no typed value of a
  masked field, no password, card number, security code or one-time code, no text under
  data-hindsight-mask and nothing inside data-hindsight-block appears in any request body
  (batches, screenshots, segments) nor in the stored recording; the value of a field that
  opted in does; segments arrive numbered 0, 1, 2... across page loads, each page load's
  first one starting with a full snapshot, and a re-sent segment is stored once;
- an outage of the recording endpoint and a reload in the middle: the outbox keeps the
  segments, retries them, and the server stores each exactly once;
- the options: data-record="off" loads no recorder and sends no segment (and screenshots
  stay one per page view); data-mask-all="off" records plain fields, data-mask-text="all"
  masks the page's text, and passwords stay masked whatever the options.
"""

from __future__ import annotations

import gzip
import hashlib
import http.client
import json
import re
import threading
import urllib.error
import urllib.request
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from browser import DIST, http_json
from conftest import new_account
from harness import wait_for
from hindsight.demo import DemoSite

pytestmark = pytest.mark.slow

VIEWPORT = {"width": 1280, "height": 800}
RECORDING = "/api/v1/track/recording"
META, FULL_SNAPSHOT = 4, 2

# What the visitor types, and whether it may leave the browser.
UNMASKED_NAME = "Ada Unmasked Lovelace"           # data-hindsight-unmask: recorded
PASSWORD = "Hunter2-Pa55word!xq"                   # never
EMAIL = "ada.secret.visitor@example.org"           # masked (an email field, and looks like one)
STREET = "221B Hidden Street"                      # masked: every field is, by default
PHONE = "+44 20 7946 0958"                         # masked (a tel field)
COUPON = "COUPON-SECRET-551"                       # masked, typed in a modal
CARD_IN_NOTES = "4242 4242 4242 4242"              # an unmasked field, but it looks like a card
GIFT = "GIFT-MESSAGE-SECRET"                       # contenteditable: masked like a field
CARD = "4000 0566 5566 5556"                       # cc-number, under data-hindsight-unmask: never
CVC = "cvc-7Q4Z"                                   # cc-csc: never
HOLDER = "Ada Cardholder-Name"                     # cc-name: never
OTP = "otp-Z9K2M"                                  # one-time-code, unmasked attribute: never
STATEMENT_REF = "REF-BLOCKED-3310"                 # typed inside data-hindsight-block
# On the page itself.
LOYALTY = "HS-LOYALTY-4417-NOVA"                   # text under data-hindsight-mask
STATEMENT = "STATEMENT-BALANCE-9921"               # text inside data-hindsight-block
NEVER_SENT = [PASSWORD, EMAIL, STREET, PHONE, COUPON, CARD_IN_NOTES, GIFT, CARD, CVC, HOLDER,
              OTP, STATEMENT_REF, LOYALTY, STATEMENT]


class Wire:
    """A reverse proxy in front of the API that keeps every request the page sends to it:
    tracker.js, its chunks and all its calls go through it (the demo's snippet points at it),
    beacons and Blob bodies included, which Playwright's request events do not show.
    Recording segments sent gzip-encoded are decompressed (`body`) next to the raw bytes.
    `refuse(method, path)` may answer a request itself, for an outage."""

    HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}

    def __init__(self, api_url: str) -> None:
        self.api = urlsplit(api_url)
        self.requests: list[dict] = []
        self.refuse = lambda method, path: None  # a status to answer instead, or None
        wire = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format, *args):  # noqa: A002
                pass

            def _relay(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                kept = wire._keep(self.command, self.path, dict(self.headers.items()), raw)
                status = wire.refuse(self.command, self.path)
                kept["status"] = status
                if status:
                    self.send_response(status)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                conn = http.client.HTTPConnection(wire.api.hostname, wire.api.port, timeout=30)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in Wire.HOP}
                    conn.request(self.command, self.path, body=raw or None, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    kept["status"] = resp.status
                finally:
                    conn.close()
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in Wire.HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_OPTIONS = do_HEAD = _relay

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _keep(self, method: str, path: str, headers: dict, raw: bytes) -> dict:
        """Keeps a request as it arrived; its `status` is set once answered (None until then,
        or when the API could not be reached)."""
        query = parse_qs(urlsplit(path).query)
        body = raw
        if path.startswith(RECORDING) and query.get("encoding") == ["gzip"] and raw:
            body = gzip.decompress(raw)
        kept = {"url": self.url + path, "method": method, "raw": raw, "body": body, "query": query,
                "headers": {k.lower(): v for k, v in headers.items()}, "status": None}
        self.requests.append(kept)
        return kept

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def to(self, fragment: str) -> list[dict]:
        return [r for r in self.requests if fragment in r["url"]]

    def posts(self, fragment: str) -> list[dict]:
        return [r for r in self.to(fragment) if r["method"] == "POST"]

    def segments(self) -> list[dict]:
        """Recording uploads, in the order they arrived (retries and beacons included)."""
        return self.posts(RECORDING)

    def everything(self) -> str:
        """All URLs and bodies as one text, for needles."""
        return "\n".join(r["url"] + "\n" + r["body"].decode("utf-8", "replace") for r in self.requests)


def segment_number(request: dict) -> int:
    return int(request["query"]["segment"][0])


def beaconed(request: dict) -> bool:
    """Sent by sendBeacon (a no-cors request), not by the outbox's fetch (cors). Both carry a
    segment's token in the query (a CORS simple request: no preflight)."""
    return request["headers"].get("sec-fetch-mode") == "no-cors"


def events_of(request: dict) -> list[dict]:
    return json.loads(request["body"])


@contextmanager
def demo_site(api, db_url, **attrs: str):
    """The demo site for a new account, its tracker.js loaded (and calling) through a Wire."""
    wire = Wire(api.url)
    account = new_account(db_url, "localhost")
    site = DemoSite(wire.url, account["account_id"],
                    attrs={"data-flush-interval": "1000", **attrs}).start()
    site.account, site.wire = account, wire
    try:
        yield site
    finally:
        site.stop()
        wire.close()


def analyst_get(api, account: dict, path: str):
    return http_json(api.url + path, {"Authorization": f"Bearer {account['api_key']}"})


def stored_recording(api, account: dict, session_id: str) -> tuple[list[dict], list[list[dict]]]:
    """The session's stored segments (the list) and each one's events, through the API."""
    listing = analyst_get(api, account, f"/api/v1/sessions/{session_id}/recording")["segments"]
    events = [analyst_get(api, account, f"/api/v1/sessions/{session_id}/recording/{s['segment']}")
              for s in listing]
    return listing, events


def recording_when_stored(api, account: dict, session_id: str, numbers: list[int]):
    """The stored recording once it holds exactly `numbers`; None before (404: no session yet)."""
    try:
        listing, events = stored_recording(api, account, session_id)
    except urllib.error.HTTPError as e:
        if e.code != 404:
            raise
        return None
    return (listing, events) if [s["segment"] for s in listing] == numbers else None


def session_id_of(page) -> str:
    return page.evaluate("""() => Object.keys(sessionStorage).filter(k => k.endsWith(':s'))
        .map(k => JSON.parse(sessionStorage[k]).i)[0]""")


def next_segment(page) -> int:
    """The number the page's next segment will get (kept in sessionStorage)."""
    return page.evaluate("""() => Object.keys(sessionStorage).filter(k => k.endsWith(':g'))
        .map(k => JSON.parse(sessionStorage[k]).n)[0] || 0""")


def wait_for_chunk(page) -> None:
    """The recording chunk ran and started rrweb (when the page was next idle): its first full
    snapshot is being (or was) segmented."""
    page.wait_for_function("() => !!window.__hindsightRecord && !!__hindsightRecord.started")
    page.wait_for_timeout(300)


def test_recording_chunk_is_served_immutable_and_tracker_js_stays_small(client, manifest):
    chunk = manifest["record_chunk"]
    assert re.fullmatch(r"record\.[0-9a-f]{8}\.js", chunk)
    resp = client.simulate_get(f"/tracker/{chunk}")
    assert resp.status_code == 200 and "immutable" in resp.headers["cache-control"]
    assert hashlib.sha256(resp.content).hexdigest() == manifest["files"][chunk]["sha256"]
    assert b"takeFullSnapshot" in resp.content  # rrweb's recorder is in it, not in tracker.js
    core = manifest["files"]["tracker.js"]
    assert core["gzip_bytes"] <= 6 * 1024
    assert b"takeFullSnapshot" not in (DIST / "tracker.js").read_bytes()
    assert client.simulate_get("/tracker/record.000000000000.js").status_code == 404


def test_checkout_visit_is_recorded_privately_and_stored_once(db_url, api, browser):
    with demo_site(api, db_url) as site:
        wire = site.wire
        context = browser.new_context(viewport=VIEWPORT)
        console_errors: list[str] = []
        page = context.new_page()
        page.on("pageerror", lambda e: console_errors.append(str(e)))

        # 1. The sign-up page: a password typed there never leaves the browser.
        page.goto(site.url() + "/")
        wait_for_chunk(page)
        page.click("#password")
        page.keyboard.type(PASSWORD)
        page.keyboard.press("Tab")

        # 2. The checkout: a list that grows, a modal with a validation error, hash routes.
        page.click("header a[href='/checkout.html']")
        page.wait_for_url("**/checkout.html")
        wait_for_chunk(page)
        page.click("#add-item")
        page.click("#add-item")
        page.click("#open-coupon")
        page.click("#coupon")
        page.keyboard.type(COUPON)
        page.click("#apply-coupon")
        assert page.locator("#coupon-error").inner_text() == "This coupon is not valid."
        page.click("#close-coupon")
        page.click("#to-shipping")
        page.wait_for_url("**#/shipping")
        page.click("#to-payment")  # empty: a validation error
        assert "Please fill in" in page.locator("#shipping-error").inner_text()
        for field, value in (("#full-name", UNMASKED_NAME), ("#street", STREET),
                             ("#ship-email", EMAIL), ("#ship-phone", PHONE),
                             ("#delivery-notes", CARD_IN_NOTES)):
            page.click(field)
            page.keyboard.type(value)
            page.keyboard.press("Tab")  # change: rrweb records the field's final value
        page.click("#gift")
        page.keyboard.type(GIFT)
        page.evaluate("hindsight.flush()")  # a segment now, mid-visit
        page.click("#to-payment")
        page.wait_for_url("**#/payment")
        for field, value in (("#card-number", CARD), ("#card-cvc", CVC), ("#card-holder", HOLDER),
                             ("#statement-ref", STATEMENT_REF)):
            page.click(field)
            page.keyboard.type(value)
            page.keyboard.press("Tab")
        page.click("#pay")
        page.wait_for_selector("#otp")
        page.keyboard.type(OTP)
        page.click("#confirm-otp")
        page.wait_for_url("**#/done")
        sid = session_id_of(page)
        assert page.evaluate("hindsight.health().errors") == 0
        last = next_segment(page)  # the segment cut when the page goes away
        page.click("h1")
        # Closing runs pagehide: the last segment leaves as a beacon.
        page.close(run_before_unload=True)

        # Stored: every segment the browser numbered, 0, 1, 2..., each once.
        listing, stored = wait_for(
            lambda: recording_when_stored(api, site.account, sid, list(range(last + 1))),
            what="every segment the browser numbered, stored")
        assert last >= 2
        sent_numbers = sorted({segment_number(r) for r in wire.segments()})
        assert set(sent_numbers) <= set(range(last + 1)) and len(sent_numbers) >= last
        # Each page load starts with a full snapshot: two page loads, two seek points at least.
        seek_points = [s for s, events in zip(listing, stored, strict=True)
                       if events[0]["type"] == META and events[1]["type"] == FULL_SNAPSHOT]
        assert listing[0]["full_snapshot"] and seek_points and seek_points[0] is listing[0]
        hrefs = [events[0]["data"]["href"] for events in stored if events[0]["type"] == META]
        assert hrefs[0] == site.url() + "/" and any(h.endswith("/checkout.html") for h in hrefs)
        assert all(s["full_snapshot"] for s in seek_points)
        # Sent not necessarily in the order they were numbered: a segment still being
        # compressed when the page goes away leaves after the plain-JSON one cut at `pagehide`
        # (from the outbox); the store and the replay order them by number.
        assert [s["segment"] for s in listing] == list(range(last + 1))
        for r in wire.segments():  # what was sent is what is stored
            assert events_of(r) == stored[segment_number(r)]
        # gzip (CompressionStream) while the page lives; the segment cut as the page goes away
        # is gzipped at once (fflate) and sent by beacon: no segment leaves as plain JSON.
        assert {r["query"]["encoding"][0] for r in wire.segments()} == {"gzip"}
        beacons = [r for r in wire.segments() if beaconed(r)]
        assert any(segment_number(r) == last for r in beacons)
        assert all(r["headers"]["content-type"].startswith("text/plain") for r in wire.segments())

        recording = json.dumps(stored)
        assert UNMASKED_NAME in recording, "a field that opted in is recorded"
        assert "Demo item #3" in recording, "the list that grew"
        assert "This coupon is not valid." in recording and "coupon-backdrop" in recording, "the modal"
        assert "*****" in recording, "masked values are recorded as a constant mask"
        # The blocked element is an empty box of its size.
        assert re.search(r'"rr_width":\s*"\d+(\.\d+)?px"', recording)

        # The screenshot chunk's copy of the page (html2canvas clones it into a hidden iframe
        # while the recorder runs) is an empty blocked box in the recording, never a document.
        clones = [node for node in walk_nodes(stored)
                  if "html2canvas-container" in str((node.get("attributes") or {}).get("class", ""))]
        assert clones, "a screenshot was taken while recording"
        assert all("rr_width" in node["attributes"] and not node.get("childNodes") for node in clones)

        # Nothing private left the browser, in any request (batches, screenshots, segments).
        sent = wire.everything()
        assert UNMASKED_NAME in sent and "/api/v1/track/screenshot" in sent
        for secret in NEVER_SENT:
            assert secret not in sent, secret
            assert secret not in recording, secret
        assert console_errors == []

        # A re-sent segment is stored once: 200 with what is stored, the list unchanged.
        first = next(r for r in wire.segments() if segment_number(r) == 0)
        headers = {k: v for k, v in first["headers"].items() if k in ("authorization", "content-type")}
        again = urllib.request.Request(first["url"], data=first["raw"], method="POST",
                                       headers={**headers, "Origin": site.url()})
        with urllib.request.urlopen(again, timeout=10) as resp:
            assert resp.status == 200
            assert json.loads(resp.read()) == {"segment": 0, "events": len(stored[0])}
        assert stored_recording(api, site.account, sid)[0] == listing
        context.close()


def walk_nodes(value):
    """Every serialized DOM node (a dict with a numeric `type` and an `id`) in rrweb events."""
    if isinstance(value, dict):
        if isinstance(value.get("type"), int) and "id" in value and ("tagName" in value or "childNodes" in value):
            yield value
        for item in value.values():
            yield from walk_nodes(item)
    elif isinstance(value, list):
        for item in value:
            yield from walk_nodes(item)


OUTBOX_UPLOADS = """() => Object.keys(localStorage).filter(k => k.includes(':o:'))
    .map(k => (JSON.parse(localStorage[k]).r || []).length).reduce((a, b) => a + b, 0)"""


def test_segments_wait_out_an_outage_and_a_reload_and_are_stored_once(db_url, api, browser):
    with demo_site(api, db_url) as site:
        wire = site.wire
        down = {"on": True, "refused": 0}

        def outage(method: str, path: str) -> int | None:
            if down["on"] and method == "POST" and path.startswith(RECORDING):
                down["refused"] += 1
                return 503
            return None

        wire.refuse = outage
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.goto(site.url() + "/checkout.html")
        wait_for_chunk(page)
        page.click("#add-item")
        page.evaluate("hindsight.flush()")
        wait_for(lambda: down["refused"] >= 1, page=page, what="a refused segment")
        page.click("#open-coupon")
        page.evaluate("hindsight.flush()")
        wait_for(lambda: page.evaluate(OUTBOX_UPLOADS) >= 2, page=page,
                 what="the segments waiting in the outbox")
        page.reload()  # a new page load, the same session: the numbering goes on
        wait_for_chunk(page)
        page.click("#add-item")
        down["on"] = False
        page.evaluate("dispatchEvent(new Event('online'))")  # retry now, not after the back-off
        page.evaluate("hindsight.flush()")
        wait_for(lambda: page.evaluate(OUTBOX_UPLOADS) == 0, page=page, what="an empty outbox")
        sid = session_id_of(page)
        last = next_segment(page) - 1

        listing, stored = wait_for(
            lambda: recording_when_stored(api, site.account, sid, list(range(last + 1))),
            what="every segment, stored")
        assert last >= 2
        assert down["refused"] >= 2, "segments were refused, kept and sent again"
        sent = [segment_number(r) for r in wire.segments()]
        assert len(sent) > last + 1, "retries and re-sends: more uploads than segments"
        assert set(sent) == set(range(last + 1))
        # Both page loads start a segment with a full snapshot; the reload's comes later.
        seeks = [s["segment"] for s, events in zip(listing, stored, strict=True)
                 if events[0]["type"] == META and events[1]["type"] == FULL_SNAPSHOT]
        assert len(seeks) >= 2 and seeks[0] == 0
        assert json.dumps(stored).count("Demo item #2") >= 2, "before and after the reload"
        assert page.evaluate("hindsight.health().errors") == 0
        context.close()


def test_options_turn_recording_off_and_masking_down_but_never_for_secrets(db_url, api, browser):
    # data-record="off": no recorder, no segment; a screenshot per page view as before.
    with demo_site(api, db_url, **{"data-record": "off"}) as site:
        wire = site.wire
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.goto(site.url() + "/")
        wait_for(lambda: wire.posts("/api/v1/track/screenshot"), page=page, what="a screenshot")
        page.reload()
        wait_for(lambda: len(wire.posts("/api/v1/track/screenshot")) >= 2, page=page,
                 what="a screenshot for the second page view")
        page.evaluate("hindsight.flush()")
        assert not wire.to("/tracker/record.") and not wire.segments()
        assert page.evaluate("!window.__hindsightRecord")
        context.close()

    # Recording on (the default): one screenshot per page and viewport in a session.
    with demo_site(api, db_url) as site:
        wire = site.wire
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.goto(site.url() + "/")
        wait_for(lambda: wire.posts("/api/v1/track/screenshot"), page=page, what="a screenshot")
        page.reload()
        wait_for_chunk(page)
        page.wait_for_timeout(2500)  # the second page view settles: no screenshot is wanted
        # One picture: an upload the reload cut short before its answer is sent again by the
        # outbox (the server stores it once), so count distinct screenshots, not requests.
        taken = {(json.loads(r["body"])["session_id"], json.loads(r["body"])["timestamp"])
                 for r in wire.posts("/api/v1/track/screenshot")}
        assert len(taken) == 1, taken
        assert wire.to("/tracker/record.")
        context.close()

    # data-mask-all="off" and data-mask-text="all": plain fields recorded, page text masked,
    # passwords and cards masked all the same.
    with demo_site(api, db_url, **{"data-mask-all": "off", "data-mask-text": "all"}) as site:
        wire = site.wire
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.goto(site.url() + "/checkout.html#/shipping")
        wait_for_chunk(page)
        page.click("#street")
        page.keyboard.type(STREET)
        page.keyboard.press("Tab")
        page.goto(site.url() + "/")
        wait_for_chunk(page)
        page.click("#password")
        page.keyboard.type(PASSWORD)
        page.keyboard.press("Tab")
        page.click("#card")
        page.keyboard.type(CARD)
        page.keyboard.press("Tab")
        page.click("#buy")
        page.evaluate("hindsight.flush()")
        recording = json.dumps([events_of(r) for r in wire.segments()])
        assert STREET in recording, "data-mask-all=off: a plain field is recorded"
        assert "Create your account" not in recording, "data-mask-text=all: the page's text is masked"
        assert "****** **** *******" in recording  # the heading, as asterisks
        sent = wire.everything()
        for secret in (PASSWORD, CARD, LOYALTY):
            assert secret not in sent, secret
        batches = [json.loads(r["body"]) for r in wire.requests
                   if r["method"] == "POST" and urlsplit(r["url"]).path == "/api/v1/track"]
        clicks = [e for b in batches for e in b["events"]
                  if e["event_type"] == "click" and e.get("target_id") == "buy"]
        assert clicks and clicks[0]["event_data"]["text"] is None, "click texts are page text too"
        context.close()
