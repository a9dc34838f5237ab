"""tracker.js as the API serves it: caching headers, integrity, size budget, a deterministic
build, readable errors for registered sites (CORS), and the demo site."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import subprocess
import urllib.request
import uuid

import pytest

from browser import DIST, REPO
from hindsight.demo import DemoSite, tracker_snippet

GZIP_BUDGET = 6 * 1024  # the core, without the screenshot chunk


def test_tracker_js_has_caching_headers_etag_gzip_and_cors(client, manifest):
    info = manifest["files"]["tracker.js"]
    resp = client.simulate_get("/tracker.js")
    assert resp.status_code == 200
    assert hashlib.sha256(resp.content).hexdigest() == info["sha256"]
    assert resp.headers["content-type"].startswith("text/javascript")
    assert resp.headers["cache-control"] == "public, max-age=3600"
    assert resp.headers["access-control-allow-origin"] == "*"
    etag = resp.headers["etag"]
    assert client.simulate_get("/tracker.js", headers={"If-None-Match": etag}).status_code == 304
    zipped = client.simulate_get("/tracker.js", headers={"Accept-Encoding": "gzip, br"})
    assert zipped.headers["content-encoding"] == "gzip" and zipped.headers["etag"] != etag
    assert gzip.decompress(zipped.content) == resp.content
    assert "Accept-Encoding" in zipped.headers["vary"]
    assert client.simulate_head("/tracker.js").status_code == 200


def test_screenshot_chunk_is_immutable_and_nothing_else_is_served(client, manifest):
    chunk = manifest["capture_chunk"]
    resp = client.simulate_get(f"/tracker/{chunk}")
    assert resp.status_code == 200 and "immutable" in resp.headers["cache-control"]
    assert hashlib.sha256(resp.content).hexdigest() == manifest["files"][chunk]["sha256"]
    for name in ("capture.000000000000.js", "manifest.json", "..%2Fmanifest.json", "tracker.js"):
        assert client.simulate_get(f"/tracker/{name}").status_code == 404, name


def test_integrity_in_the_docs_matches_the_build_and_the_budget_holds(manifest):
    data = (DIST / "tracker.js").read_bytes()
    sri = "sha384-" + base64.b64encode(hashlib.sha384(data).digest()).decode()
    assert manifest["files"]["tracker.js"]["integrity"] == sri
    readme = (REPO / "tracker" / "README.md").read_text()
    assert f'integrity="{sri}"' in readme, "update the integrity hash in tracker/README.md"
    assert len(gzip.compress(data, 9)) <= GZIP_BUDGET
    assert manifest["files"]["tracker.js"]["gzip_bytes"] <= GZIP_BUDGET


def test_build_is_deterministic(manifest):
    subprocess.run(["node", "build.mjs"], cwd=REPO / "tracker", check=True, stdout=subprocess.DEVNULL)
    again = json.loads((DIST / "manifest.json").read_text())
    assert again["files"] == manifest["files"]


def test_refusals_are_readable_by_registered_sites_only(client, site):
    body = {"session_id": str(uuid.uuid4()),
            "events": [{"seq": 0, "timestamp": "2026-01-01T00:00:00Z", "event_type": "click"}]}
    stale = {"Authorization": f"Bearer {uuid.uuid4()}"}
    resp = client.simulate_post("/api/v1/track", json=body, headers={**stale, "Origin": site.origin})
    assert resp.status_code == 401
    # tracker.js must see the 401 (run the token flow again) rather than a CORS failure.
    assert resp.headers["access-control-allow-origin"] == site.origin
    assert "Retry-After" in resp.headers["access-control-expose-headers"]
    other = client.simulate_post("/api/v1/track", json=body,
                                 headers={**stale, "Origin": "https://not-registered.invalid"})
    assert other.status_code == 401 and "access-control-allow-origin" not in other.headers
    health = client.simulate_get("/health", headers={"Origin": site.origin})
    assert "access-control-allow-origin" not in health.headers


def test_demo_site_serves_the_pages_with_the_snippet():
    snippet = tracker_snippet("http://127.0.0.1:8000", "acc-1", {"data-mask": ".x"})
    assert snippet == ('<script src="http://127.0.0.1:8000/tracker.js" data-account="acc-1" '
                       'data-mask=".x" async></script>')
    site = DemoSite("http://127.0.0.1:8000", "acc-1", attrs={"data-mask": ".x"}).start()
    try:
        for path in ("/", "/app/settings", "/error.html", "/slow.html"):
            with urllib.request.urlopen(site.url("127.0.0.1") + path) as resp:
                page = resp.read().decode()
            assert snippet in page and "{{TRACKER}}" not in page, path
        with urllib.request.urlopen(site.url("127.0.0.1") + "/api/slow?ms=20") as resp:
            assert json.loads(resp.read()) == {"slept_ms": 20}
        with pytest.raises(urllib.error.HTTPError) as missing:
            urllib.request.urlopen(site.url("127.0.0.1") + "/../setup.cfg")
        assert missing.value.code == 404
    finally:
        site.stop()
