"""A DOM-recording segment's upload sends no CORS preflight (issue 11, wire).

Each segment has its own URL (`?session_id=…&segment=N&encoding=…`), and a browser caches a
preflight per URL, so an upload with an `Authorization` header cost an OPTIONS request every
time. tracker.js now sends a segment as a CORS simple request (POST, text/plain, no header of
its own: the statistics token in the query, as its beacon does); the API's checks are the
same (token, Origin, flags, limits, bounds, idempotency: tests/test_recording_api.py).

Real Chromium, `hindsight serve`, TimescaleDB; every request the page sends captured by the
reverse proxy of test_tracker_recording (OPTIONS included).
"""

from __future__ import annotations

import gzip
import json
import time
import uuid
from collections import Counter
from urllib.parse import urlsplit

import falcon.testing
import pytest
from test_ingestion_warnings import make_site, warnings_of
from test_tracker_recording import (
    RECORDING,
    VIEWPORT,
    beaconed,
    demo_site,
    next_segment,
    recording_when_stored,
    segment_number,
    session_id_of,
    wait_for_chunk,
)

from harness import wait_for
from hindsight.app import create_app
from hindsight.scheduler import Scheduler

pytestmark = pytest.mark.slow


def test_segment_uploads_are_simple_requests_without_a_preflight(db_url, api, browser):
    with demo_site(api, db_url) as site:
        wire = site.wire
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(site.url() + "/")
        wait_for_chunk(page)
        sid = session_id_of(page)
        # Three segments, each cut and sent by the outbox's fetch while the page lives.
        numbers = []
        for i in range(3):
            page.mouse.move(120 + 60 * i, 220)
            page.click("h1")
            numbers.append(next_segment(page))
            page.evaluate("() => hindsight.flush()")
            wait_for(lambda n=numbers[-1]: any(segment_number(r) == n for r in wire.segments()),
                     what=f"segment {numbers[-1]} sent", page=page)
        assert numbers == sorted(set(numbers)), numbers
        recording_when_stored(api, site.account, sid, list(range(numbers[-1] + 1)))

        uploads = [r for r in wire.segments() if r["query"]["session_id"] == [sid]]
        assert {segment_number(r) for r in uploads} >= set(numbers)
        for r in uploads:
            assert not beaconed(r)                                 # fetch (mode cors), not a beacon
            assert r["headers"]["sec-fetch-mode"] == "cors"
            assert r["query"]["token"] and "authorization" not in r["headers"]
            assert r["headers"]["content-type"] == "text/plain"
            assert r["headers"]["origin"] == site.url()
        # Not one preflight for a segment; the other writes' URLs do not change, so theirs is
        # asked once and cached (Access-Control-Max-Age).
        options = Counter(urlsplit(r["url"]).path for r in wire.requests if r["method"] == "OPTIONS")
        assert options[RECORDING] == 0, options
        assert options["/api/v1/track"] == 1 and all(n == 1 for n in options.values()), options

        # A refusal stays readable by the page (the tracker renews its token on a 401), also
        # for a simple request: no preflight, and the answer carries Access-Control-Allow-Origin.
        before = len(wire.requests)
        status = page.evaluate("""async ([url]) => {
            const r = await fetch(url, {method: 'POST', credentials: 'omit',
                                        body: new Blob(['[]'], {type: 'text/plain'})});
            return r.status;
        }""", [wire.url + RECORDING + f"?session_id={sid}&segment=999&encoding=json&token={uuid.uuid4()}"])
        assert status == 401
        # (Only this endpoint's requests: the page's tracker may call others meanwhile.)
        assert [r["method"] for r in wire.requests[before:] if urlsplit(r["url"]).path == RECORDING] == ["POST"]
        # Before: the same uploads with an Authorization header (as tracker.js sent them) cost
        # a preflight each, however recently the one of the segment before was answered.
        before = len(wire.requests)
        statuses = page.evaluate("""async ([urls]) => {
            const out = [];
            for (const url of urls) {
                const r = await fetch(url, {method: 'POST', credentials: 'omit', headers: {Authorization: 'Bearer x'},
                                            body: new Blob(['[]'], {type: 'text/plain'})});
                out.push(r.status);
            }
            return out;
        }""", [[wire.url + RECORDING + f"?session_id={sid}&segment={n}&encoding=json" for n in (997, 998)]])
        assert statuses == [401, 401]
        assert [r["method"] for r in wire.requests[before:]
                if urlsplit(r["url"]).path == RECORDING] == ["OPTIONS", "POST", "OPTIONS", "POST"]
        assert errors == []
        context.close()


def test_a_refused_segment_with_its_token_in_the_query_is_the_accounts_warning(settings, pool, db_url):
    scheduler = Scheduler()   # not started: the test runs the flush
    client = falcon.testing.TestClient(create_app(settings, pool, scheduler=scheduler))
    site = make_site(client, db_url)
    events = [{"type": 4, "data": {"href": site["origin"] + "/", "width": 800, "height": 600},
               "timestamp": int(time.time() * 1000) - 1000}]
    resp = client.simulate_post(RECORDING, body=gzip.compress(json.dumps(events).encode()), params={
        "session_id": str(uuid.uuid4()), "segment": 0, "encoding": "gzip", "token": site["token"]},
        headers={"Origin": site["origin"], "Content-Type": "text/plain"})
    assert resp.status_code == 404, resp.text
    scheduler.run_now("observe.flush")
    got = warnings_of(client, site)
    assert [w["status"] for w in got.values()] == [404], got
    assert next(iter(got.values()))["sample"]["route"] == RECORDING
