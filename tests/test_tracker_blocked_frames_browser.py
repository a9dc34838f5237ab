"""A blocked iframe is an empty box in the DOM recording, its document never recorded
(issue 11: privacy and size).

rrweb serializes a same-origin iframe's document once it loads, and then observes it,
whether or not the iframe element is blocked. tracker.js's recording chunk drops that
document (tracker/src/blocked-frames.js, docs/DECISIONS.md "Blocked iframes' documents").
Real components: Debian's headless Chromium, `hindsight serve` and TimescaleDB; every request
the page sends goes through the reverse proxy of test_tracker_recording (beacons included,
segments gunzipped) and is checked:

- a page with a same-origin iframe marked data-hindsight-block, whose document holds a
  distinctive text, an opted-in field the visitor types into, and text and an attribute the
  page changes after load: none of it in any upload, the iframe a blocked box of its size in
  the snapshot, the rest of the page (text, a list that grows after the iframe's changes)
  recorded as usual;
- the demo page with a screenshot taken while recording: html2canvas's copy of the page (a
  document in a hidden, blocked iframe) is not in any segment, only its empty box.
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from test_tracker_recording import VIEWPORT, demo_site, events_of, wait_for_chunk, walk_nodes

from harness import wait_for

pytestmark = pytest.mark.slow

INCREMENTAL, MUTATION, DOCUMENT = 3, 0, 0

# In the blocked iframe's document: never recorded.
FRAME_TEXT = "FRAME-STATEMENT-TEXT-5521"       # in its HTML
FRAME_TYPED = "FRAME-TYPED-VALUE-8830"         # typed into an opted-in field there
FRAME_LATER = "FRAME-LATER-TEXT-0923"          # text the parent page writes into it after load
FRAME_ATTR = "FRAME-LATER-ATTR-4471"           # an attribute set the same way
FRAME_NEEDLES = [FRAME_TEXT, FRAME_TYPED, FRAME_LATER, FRAME_ATTR]
# On the page itself: recorded as usual.
PARENT_TEXT = "PARENT-VISIBLE-TEXT-7731"
PARENT_ITEM = "PARENT-LIST-ITEM-"
OPEN_TEXT = "OPEN-FRAME-TEXT-6604"             # in a frame that is not blocked: recorded

OPEN_HTML = f"<!doctype html><html><body><p>{OPEN_TEXT}</p></body></html>"

FRAME_HTML = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Statement</title>
<style>p {{ color: #234; }}</style></head>
<body>
<p id="secret">{FRAME_TEXT}</p>
<label for="ref">Reference</label>
<input id="ref" name="ref" type="text" data-hindsight-unmask>
<div id="later"></div>
<div style="height: 600px">(scrolls)</div>
</body></html>"""

PAGE_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A page with a blocked frame</title>
{snippet}</head>
<body>
<h1>Your account</h1>
<p id="visible">{parent}</p>
<iframe id="statement" src="/blocked-frame-inner.html" data-hindsight-block
        style="width: 420px; height: 180px; border: 1px solid #999"></iframe>
<iframe id="open" src="/open-frame.html" style="width: 200px; height: 60px"></iframe>
<button id="change-frame" type="button">Change the frame</button>
<button id="grow" type="button">Grow the list</button>
<ul id="list"></ul>
<script>
  document.getElementById('change-frame').addEventListener('click', function () {{
    var doc = document.getElementById('statement').contentDocument;
    var later = doc.getElementById('later');
    later.textContent = {later!r};
    later.setAttribute('data-note', {attr!r});
    var p = doc.createElement('p');
    p.textContent = {later!r} + ' (added)';
    doc.body.appendChild(p);
    doc.getElementById('secret').firstChild.data = {text!r} + ' (changed)';
  }});
  var n = 0;
  document.getElementById('grow').addEventListener('click', function () {{
    var li = document.createElement('li');
    li.textContent = {item!r} + (++n);
    document.getElementById('list').appendChild(li);
  }});
</script>
</body></html>"""


class Pages:
    """A tiny site on localhost (the demo account's host) that answers `pages` (path: HTML)."""

    def __init__(self, pages: dict[str, str]) -> None:
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format, *args):  # noqa: A002
                pass

            def do_GET(self) -> None:  # noqa: N802
                body = pages.get(self.path, "<h1>Not found</h1>").encode()
                self.send_response(200 if self.path in pages else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://localhost:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def every_segment(wire) -> bool:
    """Segments 0..n all uploaded (the outbox sends them in order, retries aside)."""
    numbers = {int(r["query"]["segment"][0]) for r in wire.segments()}
    return bool(numbers) and numbers == set(range(max(numbers) + 1))


def recorded_ids(recorded: list[list[dict]]) -> set[int]:
    """Ids of every node serialized in the events: full snapshots' and mutations' adds."""
    ids: set[int] = set()

    def walk(node: dict) -> None:
        ids.add(node["id"])
        for child in node.get("childNodes", []):
            walk(child)

    for events in recorded:
        for e in events:
            if e["type"] == 2:
                walk(e["data"]["node"])
            elif e["type"] == INCREMENTAL and e["data"]["source"] == MUTATION:
                for add in e["data"]["adds"]:
                    walk(add["node"])
    return ids


def ids_named(data: dict) -> list[int]:
    """The node ids an incremental event is about."""
    ids = [data["id"]] if isinstance(data.get("id"), int) else []
    ids += [p["id"] for p in data.get("positions", [])]
    ids += [x["id"] for key in ("texts", "attributes") for x in data.get(key, [])]
    ids += [x["parentId"] for key in ("adds", "removes") for x in data.get(key, [])]
    return ids


def mutations(requests: list[dict]) -> list[dict]:
    return [e["data"] for r in requests for e in events_of(r)
            if e["type"] == INCREMENTAL and e["data"]["source"] == MUTATION]


def test_a_blocked_iframes_document_is_never_recorded(db_url, api, browser):
    with demo_site(api, db_url) as site:
        wire = site.wire
        page_html = PAGE_HTML.format(snippet=site.snippet, parent=PARENT_TEXT, later=FRAME_LATER,
                                     attr=FRAME_ATTR, text=FRAME_TEXT, item=PARENT_ITEM)
        context = browser.new_context(viewport=VIEWPORT)
        # Both documents from one origin (same-origin: rrweb can read the frame's document).
        pages = Pages({"/blocked-frame.html": page_html, "/blocked-frame-inner.html": FRAME_HTML,
                       "/open-frame.html": OPEN_HTML})
        console_errors: list[str] = []
        page = context.new_page()
        page.on("pageerror", lambda e: console_errors.append(str(e)))
        page.goto(pages.url + "/blocked-frame.html")
        wait_for_chunk(page)
        frame = page.frame_locator("#statement")
        assert frame.locator("#secret").inner_text() == FRAME_TEXT
        # rrweb attaches a loaded frame's document in a task of its own: let it happen.
        page.wait_for_timeout(500)

        frame.locator("#ref").click()
        page.keyboard.type(FRAME_TYPED)
        page.keyboard.press("Tab")  # change: rrweb would record the opted-in value
        page.click("#change-frame")
        assert FRAME_LATER in frame.locator("#later").inner_text()
        frame.locator("body").evaluate("b => b.ownerDocument.defaultView.scrollTo(0, 300)")
        page.click("#grow")
        page.wait_for_timeout(300)
        page.click("#grow")
        page.evaluate("hindsight.flush()")
        # Everything above left in order: the second list item is the last thing done.
        wait_for(lambda: any(PARENT_ITEM + "2" in r["body"].decode("utf-8", "replace")
                             for r in wire.segments()), page=page, what="the last list item, uploaded")
        wait_for(lambda: every_segment(wire), page=page, what="every segment before it, uploaded")

        sent = wire.everything()
        for needle in FRAME_NEEDLES:
            assert needle not in sent, needle
        # The rest of the page is recorded as usual, a frame that is not blocked included.
        assert PARENT_TEXT in sent and PARENT_ITEM + "1" in sent and OPEN_TEXT in sent
        recorded = [events_of(r) for r in wire.segments()]
        # The blocked iframe is an empty box of its size (rrweb's blocked placeholder)...
        frames = [node for node in walk_nodes(recorded) if node.get("tagName") == "iframe"]
        blocked = {node["id"] for node in frames if "rr_width" in node["attributes"]}
        open_frame = {node["id"] for node in frames if node["attributes"].get("id") == "open"}
        assert blocked and open_frame and not blocked & open_frame
        assert all(not node.get("childNodes") for node in frames)
        # ...and no document hangs under it: the open frame's is the only one attached...
        attached = [m["adds"][0]["parentId"] for m in mutations(wire.segments()) if m.get("isAttachIframe")]
        assert attached and set(attached) == open_frame
        adds = [add for m in mutations(wire.segments()) for add in m.get("adds", [])]
        assert {add["parentId"] for add in adds if add["node"].get("type") == DOCUMENT} == open_frame
        # ...and no event names a node that was never recorded (the frame's field, its scroll).
        known = recorded_ids(recorded)
        named = {(e["data"]["source"], i) for events in recorded for e in events
                 if e["type"] == INCREMENTAL for i in ids_named(e["data"])}
        assert named and not {n for n in named if n[1] not in known}
        assert page.evaluate("hindsight.health().errors") == 0
        assert console_errors == []
        context.close()
        pages.close()


def test_the_screenshot_chunks_copy_of_the_page_is_not_recorded(db_url, api, browser):
    with demo_site(api, db_url) as site:
        wire = site.wire
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.goto(site.url() + "/")
        wait_for_chunk(page)
        wait_for(lambda: wire.posts("/api/v1/track/screenshot"), page=page, timeout=30,
                 what="a screenshot")
        # html2canvas removes its container once the picture is taken.
        wait_for(lambda: page.evaluate("!document.querySelector('iframe.html2canvas-container')"),
                 page=page, what="the screenshot's copy of the page, gone")
        page.click("#buy")
        page.evaluate("hindsight.flush()")
        wait_for(lambda: any("Added to cart" in r["body"].decode("utf-8", "replace")
                             for r in wire.segments()), page=page, what="the click's text, uploaded")

        recorded = [events_of(r) for r in wire.segments()]
        clones = [node for node in walk_nodes(recorded)
                  if "html2canvas-container" in str((node.get("attributes") or {}).get("class", ""))]
        assert clones, "a screenshot was taken while recording"
        assert all("rr_width" in node["attributes"] and not node.get("childNodes") for node in clones)
        clone_ids = {node["id"] for node in clones}
        adds = [add for m in mutations(wire.segments()) for add in m.get("adds", [])]
        assert not [add for add in adds if add["parentId"] in clone_ids], "the copy's document"
        assert not any(m.get("isAttachIframe") for m in mutations(wire.segments()))
        # The demo page has no frame of its own: no Document node but the full snapshots' roots.
        assert not [add for add in adds if add["node"].get("type") == DOCUMENT]
        context.close()
