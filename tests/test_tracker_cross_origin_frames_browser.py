"""Cross-origin iframes in the DOM recording (issue 11: privacy): `data-record-iframes="on"`.

With the option on both pages, a cross-origin iframe whose page runs tracker.js for the same
account posts rrweb's events up to the parent's recorder (rrweb's recordCrossOriginIframes),
which records them as part of the parent's page. tracker/src/blocked-frames.js then knows such
a frame's nodes by their ids only (they are not in the parent's mirror): this file is that
path's browser test (docs/DECISIONS.md "Blocked iframes' documents").

Real components: Debian's headless Chromium, `hindsight serve` and TimescaleDB. The parent
page and the framed page come from two origins (two HTTP servers on two ports of localhost:
two origins, one host, which the account's domain covers), both with tracker.js for one
account; every request either page sends goes through the reverse proxy of
test_tracker_recording (segments gunzipped) and is checked:

- the frame not blocked: its text, its text and attribute changed after load and the value
  typed into its opted-in field are in the parent's segments, attached under the iframe's
  node, and the dashboard's replay shows the changed document inside the replayed iframe; the
  value typed into its masked (default) field is in no request at all; no event names a node
  the recording never added;
- the same frame with `data-hindsight-block` on the <iframe>: none of its markers (text, the
  opted-in value, text and an attribute changed after load) is in any segment nor in any
  request the parent page sends; the frame is an empty box; the stored recording parses, holds
  the parent's own text, names no node it never added and replays to its end in the dashboard.
  The framed page's own tracker still records that page by the page's own rules (its page
  view, its own opted-in field's value in its own input event): the <iframe>'s attribute is in
  another origin's document, which the framed page cannot read;
- the parent without the option (the default): the frame's events reach the parent (counted)
  and none of its content is recorded;
- the framed page names its parents (`data-record-parents`): where the parent's origin is
  listed (every scenario above), the frame posts to that exact origin only, never "*" (an init
  script in the frame keeps each post's target origin); a parent of an origin it does not list
  (it listens to `message` and runs tracker.js with the option) receives no rrweb message and
  records nothing of the frame, which is recorded as a page of its own instead. Before the
  patch in tracker/build.mjs, rrweb posted to "*": both tests failed.

The first two run twice: with the parent's recorder starting first, and with the frame's
first (the parent's tracker.js added once the frame's document went by: rrweb sends a frame's
document once, so the parent must ask for it again). The build before the fix failed four of
the five (a blocked frame's text in the segments; a recorded frame's document missing, or a
document from inside the frame attached).
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from urllib.parse import urlsplit

import pytest
from dashboard_support import PASSWORD, make_user
from test_replay_dom_browser import open_replay, player_frame
from test_tracker_blocked_frames_browser import Pages, every_segment, ids_named, mutations, recorded_ids
from test_tracker_recording import (
    VIEWPORT,
    Wire,
    events_of,
    recording_when_stored,
    segment_number,
    session_id_of,
    wait_for_chunk,
    walk_nodes,
)

from conftest import new_account
from harness import wait_for
from hindsight.demo import tracker_snippet

pytestmark = pytest.mark.slow

INCREMENTAL, MUTATION, INPUT, DOCUMENT, FULL_SNAPSHOT = 3, 0, 5, 0, 2
ON = {"data-record-iframes": "on"}

# In the framed page (another origin).
FRAME_TEXT = "XO-FRAME-TEXT-3187"          # in its HTML
FRAME_TYPED = "XO-FRAME-OPTED-IN-6402"     # typed into its data-hindsight-unmask field
FRAME_MASKED = "XO-FRAME-MASKED-9925"      # typed into its masked (default) field: never sent
FRAME_LATER = "XO-FRAME-LATER-TEXT-5150"   # text the framed page writes after load
FRAME_ATTR = "XO-FRAME-LATER-ATTR-7714"    # an attribute it sets after load
FRAME_NEEDLES = [FRAME_TEXT, FRAME_TYPED, FRAME_MASKED, FRAME_LATER, FRAME_ATTR]
# On the parent page: recorded as usual.
PARENT_TEXT = "XO-PARENT-TEXT-2290"
PARENT_ITEM = "XO-PARENT-ITEM-"

FRAME_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Statement</title>
{snippet}</head>
<body>
<p id="secret">{text}</p>
<label for="ref">Reference</label>
<input id="ref" name="ref" type="text" data-hindsight-unmask>
<label for="note">Note</label>
<input id="note" name="note" type="text">
<div id="later"></div>
<button id="change" type="button">Change</button>
<script>
  document.getElementById('change').addEventListener('click', function () {{
    var later = document.getElementById('later');
    later.textContent = {later!r};
    later.setAttribute('data-note', {attr!r});
    document.getElementById('secret').firstChild.data = {text!r} + ' (changed)';
  }});
</script>
</body></html>"""

PAGE_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>A page with a cross-origin frame</title>
{snippet}
<script>
  // rrweb's messages from the frame (rrweb posts them to any parent): counted, to show the
  // frame's recorder did send its events up, whatever the parent's recorder made of them.
  // A late tracker (its attributes here) is added once the frame's full snapshot went by.
  window.__frameEvents = [];
  window.__late = {late};
  window.addEventListener('message', function (e) {{
    if (!e.data || e.data.type !== 'rrweb') return;
    window.__frameEvents.push(e.data.event.type);
    if (window.__late && e.data.event.type === 2) {{
      var s = document.createElement('script');
      for (var k in window.__late) s.setAttribute(k, window.__late[k]);
      document.head.appendChild(s);
      window.__late = null;
    }}
  }});
</script></head>
<body>
<h1>Your account</h1>
<p id="visible">{parent}</p>
<iframe id="statement" src="{frame}" {block}
        style="width: 420px; height: 220px; border: 1px solid #999"></iframe>
<button id="grow" type="button">Grow the list</button>
<ul id="list"></ul>
<script>
  var n = 0;
  document.getElementById('grow').addEventListener('click', function () {{
    var li = document.createElement('li');
    li.textContent = {item!r} + (++n);
    document.getElementById('list').appendChild(li);
  }});
</script>
</body></html>"""


# In every frame (an init script): the target origin of each postMessage the frame's code
# makes through `window.parent` (rrweb's, with the patched call tracker/build.mjs puts in
# its place), in window.__posted. A cross-origin parent's postMessage cannot be replaced, so
# `parent` is: a Proxy that records the call and forwards everything; and MessageEvent's
# `source` gives that Proxy for the parent's messages, so that `e.source == parent` holds as
# before (the frame answers its parent's ASK).
SPY_ON_POSTS = """(() => {
  const real = window.parent;
  if (real === window) return;
  const posted = window.__posted = [];
  const proxy = new Proxy(real, {get(target, key) {
    if (key !== 'postMessage') return Reflect.get(target, key);
    return function (message, targetOrigin, ...rest) {
      posted.push([String(targetOrigin), message && message.type]);
      return target.postMessage(message, targetOrigin, ...rest);
    };
  }});
  Object.defineProperty(window, 'parent', {get: () => proxy, configurable: true});
  const source = Object.getOwnPropertyDescriptor(MessageEvent.prototype, 'source').get;
  Object.defineProperty(MessageEvent.prototype, 'source', {configurable: true, get() {
    const s = source.call(this);
    return s === real ? proxy : s;
  }});
})();"""


@contextmanager
def framed_visit(api, db_url, browser, *, parent: dict, block: bool, late: bool = False,
                 listed: bool = True, spy: bool = False):
    """A parent page (one origin) framing a page of another origin, both running tracker.js
    for one account through one Wire; yields (page, frame, wire, account, origins). `late`:
    the parent's tracker.js is added once the frame's recorder has sent its document up.
    `listed`: the framed page's data-record-parents names the parent's origin; else it names
    two others (one the parent's port on 127.0.0.1: an exact origin, not a host, is
    compared), and the parent is a page the framed site never meant to be framed by. `spy`:
    the frame's posts to its parent are kept (SPY_ON_POSTS)."""
    wire = Wire(api.url)
    account = new_account(db_url, "localhost")
    snippet = lambda attrs: tracker_snippet(wire.url, account["account_id"],  # noqa: E731
                                            {"data-flush-interval": "1000", **attrs})
    tag = {"src": wire.url + "/tracker.js", "data-account": account["account_id"], "async": "",
           "data-flush-interval": "1000", **parent}
    framed: dict[str, str] = {}  # its page names the parent's origin: written once that is known
    inner = Pages(framed)
    outer = Pages({"/account.html": PAGE_HTML.format(
        snippet="" if late else snippet(parent), late=json.dumps(tag) if late else "null",
        parent=PARENT_TEXT, item=PARENT_ITEM,
        frame=inner.url + "/statement.html", block="data-hindsight-block" if block else "")})
    assert urlsplit(inner.url).port != urlsplit(outer.url).port  # two origins
    port = urlsplit(outer.url).port
    # As a site owner may write them: a URL with a path names its origin.
    parents = outer.url + "/" if listed else f"https://shop.example/ http://127.0.0.1:{port}/ *"
    framed["/statement.html"] = FRAME_HTML.format(
        snippet=snippet({**ON, "data-record-parents": parents}), text=FRAME_TEXT,
        later=FRAME_LATER, attr=FRAME_ATTR)
    context = browser.new_context(viewport=VIEWPORT)
    if spy:
        context.add_init_script(SPY_ON_POSTS)
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(outer.url + "/account.html")
        wait_for_chunk(page)
        frame = wait_for(lambda: next((f for f in page.frames if f.url.startswith(inner.url)), None),
                         page=page, what="the framed page")
        # The framed page's own recorder started (it posts rrweb's events to the parent).
        frame.wait_for_function("() => !!window.__hindsightRecord && !!__hindsightRecord.started")
        frame.locator("#secret").wait_for()
        yield page, frame, wire, account, (outer.url, inner.url)
        assert errors == []
        assert page.evaluate("hindsight.health().errors") == 0
        assert frame.evaluate("hindsight.health().errors") == 0
    finally:
        context.close()
        outer.close()
        inner.close()
        wire.close()


def visit(page, frame, wire, frame_origin: str) -> None:
    """Type into both fields of the frame, let the frame change itself, grow the parent's list;
    then flush both trackers."""
    page.wait_for_function("() => window.__frameEvents.includes(2)")  # the frame's full snapshot
    # The framed page's screenshot: html2canvas copied that page into an iframe there, which
    # the frame's rrweb blocks and posts up all the same (its document included).
    wait_for(lambda: [r for r in wire.posts("/api/v1/track/screenshot")
                      if r["headers"].get("origin") == frame_origin], page=page, timeout=30,
             what="the framed page's screenshot")
    frame.locator("#ref").click()
    page.keyboard.type(FRAME_TYPED)
    frame.locator("#note").click()  # change on #ref: rrweb and the frame's tracker record it
    page.keyboard.type(FRAME_MASKED)
    page.keyboard.press("Tab")
    frame.locator("#change").click()
    assert FRAME_LATER in frame.locator("#later").inner_text()
    page.click("#grow")
    page.wait_for_timeout(300)
    page.click("#grow")
    frame.evaluate("hindsight.flush()")
    page.evaluate("hindsight.flush()")


def sent_by(wire, origin: str) -> list[dict]:
    """Requests a page of `origin` sent (its Origin header, else its Referer)."""
    return [r for r in wire.requests
            if (r["headers"].get("origin") or r["headers"].get("referer", "")).startswith(origin)]


def text_of(requests: list[dict]) -> str:
    return "\n".join(r["url"] + "\n" + r["body"].decode("utf-8", "replace") for r in requests)


def uploaded(wire, page) -> list[list[dict]]:
    """Every segment of the parent's recording, once its last list item is uploaded."""
    wait_for(lambda: any(PARENT_ITEM + "2" in r["body"].decode("utf-8", "replace")
                         for r in wire.segments()), page=page, what="the last list item, uploaded")
    wait_for(lambda: every_segment(wire), page=page, what="every segment before it, uploaded")
    return [events_of(r) for r in wire.segments()]


def unknown_ids(recorded: list[list[dict]]) -> set[tuple[int, int]]:
    """(source, id) of incremental events that name a node no snapshot or add introduced."""
    known = recorded_ids(recorded)
    named = {(e["data"]["source"], i) for events in recorded for e in events
             if e["type"] == INCREMENTAL for i in ids_named(e["data"])}
    assert named
    return {n for n in named if n[1] not in known}


REPLAYED = """() => {
  const stage = document.querySelector('.replayer-wrapper iframe');
  const doc = stage && stage.contentDocument;
  if (!doc || !doc.body) return null;
  const frame = doc.querySelector('iframe');
  const inner = frame && frame.contentDocument;
  return {items: doc.querySelectorAll('#list li').length, page: doc.body.textContent,
          frame: inner && inner.body ? inner.body.textContent : null};
}"""


def replayed_at_the_end(api, db_url, browser, account: dict, session_id: str) -> dict:
    """What the dashboard's DOM replay shows at the recording's end: the parent's text, and the
    text of the document rebuilt inside its <iframe> (None: no document there)."""
    email = make_user(db_url, account["account_id"])
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    try:
        page = context.new_page()
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(api.url + "/dashboard/login")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", PASSWORD)
        page.click("button[type=submit]")
        page.wait_for_url("**/dashboard/sessions")
        open_replay(page, api.url, session_id)
        page.keyboard.press("End")
        seen: list = []

        def last_state():
            seen.append(player_frame(page).evaluate(REPLAYED))
            return seen[-1] if seen[-1] and seen[-1]["items"] else None

        try:
            shown = wait_for(last_state, page=page, timeout=15, what="the replay's last state")
        except AssertionError as ex:
            raise AssertionError(f"{ex}: the replay shows {seen[-1]}") from None
        assert errors == []
        return shown
    finally:
        context.close()


def iframe_nodes(recorded: list[list[dict]]) -> list[dict]:
    """The parent's <iframe> as its full snapshots serialized it."""
    snapshots = [e["data"]["node"] for events in recorded for e in events if e["type"] == FULL_SNAPSHOT]
    return [n for n in walk_nodes(snapshots) if n.get("tagName") == "iframe"]


@pytest.mark.parametrize("late", [False, True], ids=["parent-first", "frame-first"])
def test_a_cross_origin_frame_is_recorded_with_its_fields_masked(db_url, api, browser, late):
    """frame-first: the frame's recorder sent its document before the parent's recorder
    listened (rrweb sends it once): the parent's full snapshot asks for it again."""
    with framed_visit(api, db_url, browser, parent=ON, block=False, late=late, spy=True) as (page, frame, wire, account, origins):
        visit(page, frame, wire, origins[1])
        recorded = uploaded(wire, page)
        # The frame posted its recording to its listed parent's origin only, never to "*".
        posted = frame.evaluate("window.__posted")
        assert ["rrweb"] == sorted({kind for _, kind in posted}), posted
        assert {target for target, _ in posted} == {origins[0]}, posted
        # The frame's own tracker sent its input events (masked here, the opted-in value whole).
        wait_for(lambda: FRAME_TYPED in text_of(sent_by(wire, origins[1])), page=page,
                 what="the framed page's own input event")
        segments = "\n".join(r["body"].decode("utf-8", "replace") for r in wire.segments())
        # The frame's document, its later changes and its opted-in value: in the parent's recording.
        for needle in (FRAME_TEXT, FRAME_LATER, FRAME_ATTR, FRAME_TYPED, PARENT_TEXT):
            assert needle in segments, needle
        # Its masked field's value: in no request at all, from either page.
        assert FRAME_MASKED not in wire.everything()
        # The document hangs under the iframe's node, and every event names a node it added.
        [iframe_id] = {n["id"] for n in iframe_nodes(recorded)}
        attached = [m for m in mutations(wire.segments()) if m.get("isAttachIframe")]
        assert attached and {m["adds"][0]["parentId"] for m in attached} == {iframe_id}
        assert all(m["adds"][0]["node"]["type"] == DOCUMENT for m in attached)
        assert not unknown_ids(recorded)
        # The typed values as rrweb recorded them inside the frame: the opted-in one whole,
        # the masked one as asterisks.
        inputs = {e["data"]["id"]: e["data"]["text"] for events in recorded for e in events
                  if e["type"] == INCREMENTAL and e["data"]["source"] == INPUT}
        assert len(inputs) == 2 and FRAME_TYPED in inputs.values()
        assert [t for t in inputs.values() if t != FRAME_TYPED and set(t) == {"*"}]
        # The dashboard replays it: the frame's document, changed, inside the page's <iframe>.
        sid = session_id_of(page)
        numbers = sorted({segment_number(r) for r in wire.segments()})
        wait_for(lambda: recording_when_stored(api, account, sid, numbers), page=page,
                 what="the stored recording")
        shown = replayed_at_the_end(api, db_url, browser, account, sid)
        assert PARENT_TEXT in shown["page"] and FRAME_LATER in (shown["frame"] or ""), shown


@pytest.mark.parametrize("late", [False, True], ids=["parent-first", "frame-first"])
def test_a_blocked_cross_origin_frame_is_never_recorded(db_url, api, browser, late):
    """frame-first: the parent's recorder hears the frame's events before (or without) the
    frame's document: dropped all the same."""
    with framed_visit(api, db_url, browser, parent=ON, block=True, late=late) as (page, frame, wire, account, origins):
        visit(page, frame, wire, origins[1])
        recorded = uploaded(wire, page)
        wait_for(lambda: FRAME_TYPED in text_of(sent_by(wire, origins[1])), page=page,
                 what="the framed page's own input event")
        # The frame posted its recording up (a full snapshot and the changes after it)...
        posted = page.evaluate("window.__frameEvents")
        assert FULL_SNAPSHOT in posted and INCREMENTAL in posted
        # ...and none of it is in any segment, nor in anything the parent page sent.
        segments = "\n".join(r["body"].decode("utf-8", "replace") for r in wire.segments())
        parents = text_of(sent_by(wire, origins[0]))
        for needle in FRAME_NEEDLES:
            assert needle not in segments, needle
            assert needle not in parents, needle
        assert PARENT_TEXT in segments and PARENT_ITEM + "1" in segments
        # The framed page's own tracker records its own page by its own rules: its own
        # opted-in value (never its text, its later changes nor its masked field's value).
        frames = text_of(sent_by(wire, origins[1]))
        for needle in (FRAME_TEXT, FRAME_MASKED, FRAME_LATER, FRAME_ATTR):
            assert needle not in frames, needle
        assert FRAME_MASKED not in wire.everything()
        # The frame is an empty box, nothing attached under it, no event about its nodes.
        nodes = iframe_nodes(recorded)
        assert nodes and all("rr_width" in n["attributes"] and not n.get("childNodes") for n in nodes)
        assert not [m for m in mutations(wire.segments()) if m.get("isAttachIframe")]
        adds = [add for m in mutations(wire.segments()) for add in m.get("adds", [])]
        assert not [add for add in adds if add["node"].get("type") == DOCUMENT]
        assert not unknown_ids(recorded)
        # The stored recording, read back through the API: the same segments, valid JSON,
        # the parent's own text in it and nothing of the frame.
        sid = session_id_of(page)
        numbers = sorted({segment_number(r) for r in wire.segments()})
        _, stored = wait_for(lambda: recording_when_stored(api, account, sid, numbers), page=page,
                             what="the stored recording")
        text = repr(stored)
        assert PARENT_TEXT in text and not [n for n in FRAME_NEEDLES if n in text]
        assert not unknown_ids(stored)
        # The dashboard replays it to its end: the page, the frame an empty box.
        shown = replayed_at_the_end(api, db_url, browser, account, sid)
        assert PARENT_TEXT in shown["page"] and not (shown["frame"] or "").strip(), shown


def test_without_the_option_a_cross_origin_frame_is_never_recorded(db_url, api, browser):
    with framed_visit(api, db_url, browser, parent={}, block=False) as (page, frame, wire, _, origins):
        visit(page, frame, wire, origins[1])
        recorded = uploaded(wire, page)
        # The frame did post its events; the parent's recorder does not listen to them.
        assert FULL_SNAPSHOT in page.evaluate("window.__frameEvents")
        segments = "\n".join(r["body"].decode("utf-8", "replace") for r in wire.segments())
        for needle in FRAME_NEEDLES:
            assert needle not in segments, needle
        assert PARENT_TEXT in segments
        nodes = iframe_nodes(recorded)
        assert nodes and all(not n.get("childNodes") for n in nodes)
        assert not [m for m in mutations(wire.segments()) if m.get("isAttachIframe")]
        assert not unknown_ids(recorded)
        assert FRAME_MASKED not in wire.everything()


def test_a_parent_the_framed_page_does_not_list_receives_nothing_of_it(db_url, api, browser):
    """A page of an origin the framed site does not list in data-record-parents frames it (and
    listens to `message`, and runs tracker.js with the option): the frame posts nothing to it,
    and is recorded as a page of its own instead, as with the option off. rrweb (before the
    patch in tracker/build.mjs) posted the frame's recording to any parent, with "*"."""
    with framed_visit(api, db_url, browser, parent=ON, block=False, listed=False, spy=True) as (page, frame, wire, _, origins):
        frame.locator("#ref").click()
        page.keyboard.type(FRAME_TYPED)
        frame.locator("#note").click()
        page.keyboard.type(FRAME_MASKED)
        page.keyboard.press("Tab")
        frame.locator("#change").click()
        page.click("#grow")
        page.wait_for_timeout(300)
        page.click("#grow")
        frame.evaluate("hindsight.flush()")
        page.evaluate("hindsight.flush()")

        def uploads_of(origin: str) -> list[dict]:
            return [r for r in sent_by(wire, origin) if r["method"] == "POST" and "/track/recording" in r["url"]]

        def segments_of(origin: str) -> str:
            return "\n".join(r["body"].decode("utf-8", "replace") for r in uploads_of(origin))

        # Until the parent's last list item and the frame's last change are uploaded (or,
        # should the frame post after all, until the parent heard it).
        wait_for(lambda: page.evaluate("window.__frameEvents.length")
                 or (PARENT_ITEM + "2" in segments_of(origins[0]) and FRAME_LATER in segments_of(origins[1])),
                 page=page, timeout=30, what="both pages' recordings, uploaded")
        # Not one rrweb message reached the parent, and the frame posted nothing to it (its
        # recorder did run: the frame's own segments below).
        assert page.evaluate("window.__frameEvents") == []
        assert frame.evaluate("window.__posted") == []
        # The parent's recording and everything the parent page sent: nothing of the frame.
        parents = text_of(sent_by(wire, origins[0]))
        assert PARENT_TEXT in segments_of(origins[0])
        for needle in FRAME_NEEDLES:
            assert needle not in parents, needle
        recorded = [events_of(r) for r in uploads_of(origins[0])]
        assert not [m for m in mutations(uploads_of(origins[0])) if m.get("isAttachIframe")]
        assert iframe_nodes(recorded) and not [n for n in iframe_nodes(recorded) if n.get("childNodes")]
        # The framed page recorded itself as a page of its own (its own segments, its site's
        # rules: the masked field's value in no request at all).
        own = segments_of(origins[1])
        for needle in (FRAME_TEXT, FRAME_LATER, FRAME_ATTR, FRAME_TYPED):
            assert needle in own, needle
        assert FRAME_MASKED not in wire.everything()
