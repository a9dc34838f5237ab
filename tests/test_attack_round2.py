"""Round 2 of outside attacks on the surfaces added with recording blobs (0028), screenshot
element boxes and click offsets, and hash-route page keys (0029): each test is what an
attacker sends and what must come back (a 4xx or the exact bytes, never a 5xx)."""

from __future__ import annotations

import base64
import gzip
import io
import json
import time
import types

import falcon
import falcon.testing
import pytest
from dashboard_support import logged_in, record_session
from PIL import Image

from conftest import now_iso
from hindsight.dashboard import web
from hindsight.dashboard.static import StaticFiles
from hindsight.db import connect

PATH = "/api/v1/track/recording"


def now_ms(offset_seconds: float = 0.0) -> int:
    return int((time.time() + offset_seconds) * 1000)


def post(client, site, session_id, segment, body: bytes, encoding: str = "gzip"):
    return client.simulate_post(PATH, params={"session_id": session_id, "segment": segment, "encoding": encoding},
                                body=body, headers={"Content-Type": "text/plain;charset=UTF-8",
                                                    **site.write_headers()})


def read_back(client, site, session_id, segment) -> bytes:
    resp = client.simulate_get(f"/api/v1/sessions/{session_id}/recording/{segment}",
                               headers={**site.read_headers(), "Accept-Encoding": "identity"})
    assert resp.status_code == 200, resp.text[:300]
    return resp.content


def snapshot_events(node, start_ms: int | None = None) -> list[dict]:
    start = now_ms(-30) if start_ms is None else start_ms
    return [{"type": 4, "data": {"href": "https://x.example/", "width": 1280, "height": 800}, "timestamp": start},
            {"type": 2, "data": {"node": node, "initialOffset": {"left": 0, "top": 0}}, "timestamp": start + 1}]


# --------------------------------------------------------------------------- recording blobs


def test_a_segment_in_utf16_or_utf32_is_400_not_a_crash_of_the_blob_scanner(client, site, session_id):
    # json.loads takes UTF-16/32 bytes; in UTF-16-LE the character U+5D22 is the bytes `"]`,
    # which the byte scanner of recording_blobs took for the end of a literal and a bracket
    # (it popped an empty stack: IndexError, a 500 on every such upload).
    node = {"type": 0, "id": 1, "childNodes": [], "x": "\u5d22" * 40, "pad": "a" * 2000}
    text = json.dumps(snapshot_events(node), ensure_ascii=False)
    for encoding in ("utf-16-le", "utf-16", "utf-32"):
        body = text.encode(encoding)
        assert json.loads(body)  # Python's JSON takes it
        for sent, how in ((gzip.compress(body), "gzip"), (body, "json")):
            resp = post(client, site, session_id, 0, sent, how)
            assert resp.status_code == 400, (encoding, how, resp.status_code, resp.text[:200])
            assert "UTF-8" in resp.json["description"]


def test_hostile_segments_read_back_byte_for_byte(client, site, session_id, db_url):
    """Escapes, lone surrogates as escapes, large keys, quotes and colons in keys, text that
    looks like JSON structure, deep nesting, a UTF-8 BOM and odd whitespace: every read
    gives back the bytes sent, and the cut-out parts are really stored apart."""
    big = "x" * 1100
    tricky = ['\\"}]{[":,' * 150, "\ud800\udfff\ud83d" + "y" * 1100, "\u2028\u0000\t" * 400]
    deep: object = {"type": 3, "id": 9, "textContent": big + "deep"}
    for _ in range(400):
        deep = {"type": 2, "tagName": "div", "childNodes": [deep], "attributes": {}}
    node = {"type": 0, "id": 1, "childNodes": [deep, *({"type": 3, "textContent": t} for t in tricky)],
            big + '":{"node":[': {"k": big}, tricky[0]: tricky[1]}
    events = snapshot_events(node) + [{"type": 3, "timestamp": now_ms(-20), "data": {big: tricky, "n": [big] * 3}}]
    variants = [
        json.dumps(events, separators=(",", ":")).encode(),                          # \u escapes, lone surrogates
        json.dumps(events, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass"),
        b"\xef\xbb\xbf" + json.dumps(events, indent=1).encode(),                     # a BOM, newlines
        json.dumps(events, separators=(" , ", " :\t\r\n ")).encode(),                # whitespace before colons
    ]
    for number, text in enumerate(variants):
        assert post(client, site, session_id, number, gzip.compress(text)).status_code == 201, number
        assert read_back(client, site, session_id, number) == text, number
    with connect(db_url) as conn:
        row = conn.execute("SELECT count(*) AS n FROM recording_segments WHERE session_id = %s AND blobs IS NOT NULL",
                           (session_id,)).fetchone()
    assert row["n"] == len(variants)


# --------------------------------------------------------------------------- page keys, heatmaps

HOSTILE_PAGES = ["http://[::1/x", "https://[nothost]/#/a", "/\x00nul", "//evil.example/#/x",
                 "/#/../../etc/passwd", "/#!/", "/#!//", "x" * 2048, "/" + "é" * 1500 + "#/" + "路" * 400,
                 "javascript:alert(1)//#/<script>alert(1)</script>", "%00%2e%2e", "/#/%ZZ", "#/only",
                 "mailto:a@b#/x", "\\\\evil\\share#/y"]


@pytest.fixture
def analyst(client, db_url, site):
    return logged_in(client, db_url, site.account_id)


@pytest.mark.parametrize("page", HOSTILE_PAGES)
def test_the_heatmap_page_takes_any_page_parameter_without_a_5xx(analyst, page):
    for params in ({}, {"format": "json"}):
        resp = analyst.get("/dashboard/heatmaps", page=page, range="24h", **params)
        assert resp.status_code in (200, 400), (page[:40], params, resp.status_code, resp.text[:300])
        if resp.status_code == 200 and not params:
            assert "<script>alert" not in resp.text
    image = analyst.get("/dashboard/heatmaps/image.png", page=page, range="24h")
    assert image.status_code in (200, 400), (page[:40], image.status_code, image.text[:300])


@pytest.mark.parametrize("host", ["a\x00b.example", "[::1", "x" * 3000, "<b>h</b>"])
def test_the_heatmap_page_takes_any_host_parameter_without_a_5xx(analyst, host):
    for path, params in (("/dashboard/heatmaps", {}), ("/dashboard/heatmaps", {"format": "json"}),
                         ("/dashboard/heatmaps/image.png", {})):
        resp = analyst.get(path, page="/", host=host, range="24h", **params)
        assert resp.status_code in (200, 400), (host[:40], path, resp.status_code, resp.content[:300])
        if path == "/dashboard/heatmaps" and not params and resp.status_code == 200:
            assert b"<b>h</b>" not in resp.content


HOSTILE_URLS = ["https://a.example/#/../../etc/passwd", "https://a.example/#!/", "https://a.example/#!//",
                "https://a.example/#!/?x", "https://a.example/#/#/#/", "https://a.example/" + "😀" * 2000,
                "https://a.example/#/" + "😀" * 2000, "https://a.example/" + "a" * 399 + "#/" + "ü" * 600,
                "https://a.example/\n#/x\r\ny", "#/", "#!/a", "?#/q", "https://a.example/#/%00%2F..",
                "https://[::1/#/x", "//#/x", "https://a.example/#/<script>alert(1)</script>"]


def test_hostile_urls_give_page_keys_that_fit_an_index_and_their_views_are_counted(client, site, db_url, analyst):
    with connect(db_url) as conn:
        keys = [conn.execute("SELECT hindsight_url_path(%s::text) AS k", (u,)).fetchone()["k"] for u in HOSTILE_URLS]
        conn.execute("CREATE TEMP TABLE attack_keys (k text PRIMARY KEY)")
        for key in set(keys):   # a btree entry must fit a third of a page, as the roll-ups' keys
            conn.execute("INSERT INTO attack_keys VALUES (%s)", (key,))
    assert all(k.startswith("/") and len(k) <= 400 and len(k.encode()) <= 1600 for k in keys), keys
    assert keys[0] == "/#/../../etc/passwd" and keys[1] == "/" and keys[3] == "/"
    sid = record_session(client, site, [{"event_type": "page_view", "page_url": u.replace("https://a.example", site.origin)}
                                        for u in HOSTILE_URLS if u.startswith("https://a.example")])
    assert sid
    pages = client.simulate_get("/api/v1/stats/pages", headers=site.read_headers(), params={"limit": 100})
    assert pages.status_code == 200, pages.json
    listed = {r["path"] for r in pages.json["data"]}
    assert "/#/../../etc/passwd" in listed and all(len(p) <= 400 for p in listed)
    for path in listed:
        twin = analyst.get("/dashboard/heatmaps", page=path, range="24h", format="json")
        assert twin.status_code == 200, (path[:50], twin.text[:200])
        html = analyst.get("/dashboard/heatmaps", page=path, range="24h")
        assert html.status_code == 200 and "<script>alert(1)" not in html.text


# --------------------------------------------------------------------------- element boxes, click offsets

XSS = '"><img src=x onerror=alert(1)><script>alert(2)</script>'


def _screenshot(client, site, sid: str, page_url: str, size=(1280, 800), **more):
    buf = io.BytesIO()
    Image.new("RGB", size, (250, 250, 250)).save(buf, format="PNG")
    return client.simulate_post("/api/v1/track/screenshot", headers=site.write_headers(), json={
        "session_id": sid, "page_url": page_url, "timestamp": now_iso(), "width": size[0], "height": size[1],
        "image_data": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode(), **more})


def test_a_1px_viewport_hostile_selectors_and_offsets_cannot_blow_up_or_script_the_heatmap(
        client, site, analyst, monkeypatch):
    """The screenshot's scale is image width / the visitor's viewport width (client-sent): a
    viewport of 1 px made the blur kernel ~1,800 cells (200 M entries: minutes of CPU and
    gigabytes per picture) and the labels' font 19,200 px. Selectors with markup and every
    malformed offset are drawn or skipped, never executed, never a 5xx."""
    from hindsight.dashboard import heatmap

    asked: dict[str, list[float]] = {"sigma": [], "font": []}
    real_density, real_font = heatmap._density, heatmap.ImageFont.load_default

    def density(counts, grid_w, grid_h, sigma):
        asked["sigma"].append(sigma)
        assert sigma <= 32, sigma   # refuse to spend minutes on today's code: fail fast instead
        return real_density(counts, grid_w, grid_h, sigma)

    def font(size=None):
        asked["font"].append(size)
        assert size is not None and size <= 200, size
        return real_font(size=size)

    monkeypatch.setattr(heatmap, "_density", density)
    monkeypatch.setattr(heatmap.ImageFont, "load_default", font)
    page_url = f"{site.origin}/attack2"
    sid = record_session(client, site, [{"event_type": "page_view", "page_url": page_url}], page_url=page_url,
                         viewport_width=1, viewport_height=1)
    elements = [{"selector": XSS, "x": 10, "y": 10, "width": 100_000, "height": 100_000},
                {"selector": "a" * 1024, "x": -1_000_000, "y": 10_000_000, "width": 0, "height": 0}]
    elements += [{"selector": f"#e{i}", "x": i, "y": i, "width": 1, "height": 1} for i in range(498)]
    shot = _screenshot(client, site, sid, page_url, elements=elements)
    assert shot.status_code == 201, shot.json
    offsets = [[5, 5], "x", [1, 2, 3], [1e308, 1], [-1e6, 1e6], {"x": 1}, [[1], 2], [None, 1], [True, 0], []]
    clicks = [{"seq": 10 + i, "timestamp": now_iso(-5), "event_type": "click", "page_url": page_url,
               "viewport_x": 0, "viewport_y": 0, "target_selector": XSS if i % 2 else "#e3",
               "event_data": {"o": o, "rage": 4}} for i, o in enumerate(offsets)]
    # Placed by the roll-up's 4 px bins (0033) or by box + offset: at a 1280x scale only a click
    # at the page's first CSS pixel lands on the picture, so one click is placed exactly there
    # (#e0's box at 0,0, offset 0,0): the blur below must be drawn, and capped.
    clicks.append({"seq": 29, "timestamp": now_iso(-5), "event_type": "click", "page_url": page_url,
                   "viewport_x": 0, "viewport_y": 0, "target_selector": "#e0", "event_data": {"o": [0, 0]}})
    clicks.append({"seq": 30, "timestamp": now_iso(-4), "event_type": "scroll", "page_url": page_url,
                   "scroll_y": 200})
    resp = client.simulate_post("/api/v1/track", headers=site.write_headers(),
                                json={"session_id": sid, "events": clicks})
    assert resp.status_code in (200, 201), resp.json

    html = analyst.get("/dashboard/heatmaps", page="/attack2", range="24h")
    assert html.status_code == 200, html.text[:300]
    assert "<img src=x" not in html.text and "<script>alert(2)" not in html.text
    twin = analyst.get("/dashboard/heatmaps", page="/attack2", range="24h", format="json")
    assert twin.status_code == 200 and twin.headers["content-type"].startswith("application/json")
    result = twin.json["heatmap"]
    assert result["clicks"] == len(offsets) + 1
    assert {p["selector"] for p in result["points"]} == {XSS, "#e3", "#e0"}
    assert result["placed_on_elements"] >= 2      # [5, 5] on #e3 and the clamped [-1e6, 1e6] on the XSS box
    image = analyst.get("/dashboard/heatmaps/image.png", page="/attack2", range="24h")
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(image.content)).size == (1280, 800)
    assert asked["sigma"] and max(asked["sigma"]) <= heatmap.MAX_SIGMA_CELLS
    assert asked["font"] and max(asked["font"]) <= 15 * heatmap.MAX_DRAW_SCALE


# --------------------------------------------------------------------------- the blob scanner's CPU


class _Counting:
    """A compiled pattern that counts the matches its finditer hands to Python."""

    def __init__(self, pattern) -> None:
        self.pattern, self.matches = pattern, 0

    def finditer(self, text, *args):
        for m in self.pattern.finditer(text, *args):
            self.matches += 1
            yield m

    def __getattr__(self, name):
        return getattr(self.pattern, name)


def test_short_literals_cost_no_python_step_each(monkeypatch):
    """16 MiB of `"",` (16 KiB of gzip) with one long literal was 5.6 million Python steps
    (10 s, 6.5x the JSON parse: docs/BENCHMARKS.md); the long literals are found in C."""
    from hindsight import recording_blobs

    spy = _Counting(recording_blobs._LITERAL)
    monkeypatch.setattr(recording_blobs, "_LITERAL", spy)
    long_one = "q" * 1500
    events = [{"type": 3, "timestamp": 1, "data": {"v": [""] * 200_000 + ["a\\\"" * 300, long_one], "w": long_one}}]
    text = json.dumps(events, separators=(",", ":")).encode()
    cut = recording_blobs.extract(text)
    assert cut is not None and len(cut.hashes) == 3 and len(cut.literals) == 2
    assert spy.matches < 100, spy.matches
    found = cut.literals
    assert recording_blobs.splice(cut.rest, list(cut.offsets), list(cut.hashes), found, len(text)) == text


def test_a_snapshot_walk_stops_after_max_tree_tokens_and_still_reads_back_exactly(monkeypatch):
    """A full snapshot whose node tree is millions of `[]` was walked token by token (21 s for
    16 MiB, 3.4x the parse); past MAX_TREE_TOKENS only literals are cut."""
    from hindsight import recording_blobs

    monkeypatch.setattr(recording_blobs, "MAX_TREE_TOKENS", 2_000)
    spy = _Counting(recording_blobs._TOKEN)
    monkeypatch.setattr(recording_blobs, "_TOKEN", spy)
    style = "s" * 1200
    node = {"type": 0, "id": 1, "childNodes": [[]] * 50_000 + [{"textContent": style, "id": 2}]}
    events = snapshot_events(node, 1) + [{"type": 3, "timestamp": 3, "data": {"css": style}}]
    text = json.dumps(events, separators=(",", ":")).encode()
    cut = recording_blobs.extract(text, snapshots={1})
    assert spy.matches <= 2_001, spy.matches
    assert cut is not None and len(cut.hashes) == 2 and len(cut.literals) == 1   # the stylesheet, twice
    found = cut.literals
    assert recording_blobs.splice(cut.rest, list(cut.offsets), list(cut.hashes), found, len(text)) == text
    # Below the limit the tree is still cut into subtrees as before.
    small = snapshot_events({"type": 0, "id": 1, "childNodes": [{"id": i, "t": "x" * 40} for i in range(100)]}, 1)
    text = json.dumps(small, separators=(",", ":")).encode()
    cut = recording_blobs.extract(text, snapshots={1})
    assert cut is not None and next(iter(cut.literals.values())).startswith(b'{"type":0')


def test_a_segment_of_millions_of_empty_containers_is_refused_before_parsing(client, site, session_id, monkeypatch):
    """16 KiB of gzip inflating to 16 MiB of `[],` parsed into 5.6 million lists (415 MiB, 4 s)
    before any check; now more than MAX_CONTAINERS brackets is a 413 (counted in C first)."""
    from hindsight.ingestion import segments

    parsed: list[int] = []
    spy = types.SimpleNamespace(detect_encoding=json.detect_encoding,   # segments' own view of json
                                loads=lambda text, **kw: parsed.append(len(text)) or json.loads(text, **kw))
    monkeypatch.setattr(segments, "json", spy)
    n = segments.MAX_CONTAINERS + 10
    body = f'[{{"type":3,"timestamp":{now_ms(-5)},"data":{{"v":['.encode() + b"[]," * n + b"[]]}}]"
    resp = post(client, site, session_id, 0, gzip.compress(body))
    assert resp.status_code == 413, (resp.status_code, resp.text[:200])
    assert parsed == []
    assert post(client, site, session_id, 2, gzip.compress(b"[]")).status_code == 400 and parsed == [2]
    # Stylesheets' braces count too, and a real page stays far below: 20,000 rules pass.
    ok = snapshot_events({"type": 0, "id": 1, "childNodes": [], "css": "a{b:c}" * 20_000})
    assert post(client, site, session_id, 1, gzip.compress(json.dumps(ok).encode())).status_code == 201


def test_two_accounts_with_the_same_content_share_nothing_and_a_resend_cannot_replace_a_segment(
        client, make_site, db_url):
    """Same stylesheet, same snapshot in two accounts: each has its own blob rows (B losing
    all of its blobs never touches A's reads), and a re-send of a stored segment number with
    other bytes is answered from what is stored, which reads back unchanged."""
    a, b = make_site(), make_site()
    style = "body { color: red } " * 100
    events = snapshot_events({"type": 0, "id": 1, "childNodes": [{"type": 3, "textContent": style, "id": 2}]})
    text = json.dumps(events, separators=(",", ":")).encode()
    sessions = {}
    for site in (a, b):
        resp = client.simulate_post("/api/v1/sessions", json={"page_url": f"{site.origin}/"},
                                    headers=site.write_headers())
        sessions[site.account_id] = sid = resp.json["session_id"]
        assert post(client, site, sid, 0, gzip.compress(text)).status_code == 201
    with connect(db_url) as conn:
        owners = conn.execute("SELECT account_id, count(*) AS n FROM recording_blobs WHERE account_id = ANY(%s) "
                              "GROUP BY 1", ([a.account_id, b.account_id],)).fetchall()
        assert sorted(r["n"] for r in owners) == [1, 1]
        conn.execute("DELETE FROM recording_blobs WHERE account_id = %s", (b.account_id,))
    assert read_back(client, a, sessions[a.account_id], 0) == text
    # B cannot read A's session, and B's own segment is now refused, not served from A's blob.
    other = client.simulate_get(f"/api/v1/sessions/{sessions[a.account_id]}/recording/0", headers=b.read_headers())
    assert other.status_code == 404
    broken = client.simulate_get(f"/api/v1/sessions/{sessions[b.account_id]}/recording/0", headers=b.read_headers())
    assert broken.status_code >= 500 and style.encode() not in broken.content
    # A re-send with other bytes (and another stylesheet) changes nothing.
    evil = json.dumps(snapshot_events({"type": 0, "id": 1, "x": "evil " * 400}), separators=(",", ":")).encode()
    again = post(client, a, sessions[a.account_id], 0, gzip.compress(evil))
    assert again.status_code == 200 and again.json["events"] == len(events), again.json
    assert read_back(client, a, sessions[a.account_id], 0) == text


# Dashboard static files (hindsight.dashboard.static): one file, one compressed copy.

def static_client():
    app = falcon.App()
    files = StaticFiles("/dashboard/static", web.STATIC)
    app.add_route("/dashboard/static/{name:path}", files)
    return falcon.testing.TestClient(app), files


def test_path_variants_of_one_file_share_one_compressed_copy():
    # falcon resolves ./, a/../ and a trailing / to the same file, but the gzip cache is keyed
    # by req.path: every variant recompresses the file at level 9 (24x the CPU of a cached
    # hit for dist/rrweb-replay.js, measured) and 256 variants clear the whole cache.
    c, files = static_client()
    for i in range(1, 40):
        resp = c.simulate_get("/dashboard/static/" + "./" * i + "live.js", headers={"Accept-Encoding": "gzip"})
        assert resp.status_code == 200 and resp.headers["content-encoding"] == "gzip"
    assert len(files._gzipped) == 1, len(files._gzipped)


def test_a_trailing_slash_is_not_a_second_uncompressed_uncached_variant():
    c, _ = static_client()
    resp = c.simulate_get("/dashboard/static/live.js/", headers={"Accept-Encoding": "gzip"})
    # (was: 200, plain, no Vary: Accept-Encoding: the suffix check ran on req.path)
    assert resp.status_code == 404 or resp.headers.get("content-encoding") == "gzip"
