"""A segment cut as a page goes away leaves gzip-compressed, also when the next page load
sends it again from the outbox (issue 11, wire bytes).

tracker.js beacons the segment it cuts on `pagehide` and keeps it in its outbox (a beacon's
fate is unknown); the next page load re-sends it. The recording chunk gzips that segment at
once (fflate) instead of leaving it plain JSON because CompressionStream is asynchronous.
Real Chromium, `hindsight serve`, TimescaleDB; every request captured by the reverse proxy
of test_tracker_recording (beacons included), bodies checked byte for byte.
"""

from __future__ import annotations

import gzip
import json

import pytest
from test_tracker_recording import (
    RECORDING,
    VIEWPORT,
    demo_site,
    next_segment,
    segment_number,
    session_id_of,
    stored_recording,
    wait_for_chunk,
)

from harness import wait_for

pytestmark = pytest.mark.slow


def test_a_segment_beaconed_on_pagehide_is_resent_gzip_by_the_next_page(db_url, api, browser):
    with demo_site(api, db_url) as site:
        wire = site.wire
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(site.url() + "/")
        wait_for_chunk(page)
        page.mouse.move(200, 200)
        page.click("h1")
        sid = session_id_of(page)
        cut = next_segment(page)   # the number of the segment the page cuts as it goes away
        # Leave: pagehide cuts the segment, beacons it, keeps it in the outbox; the next page
        # load (same tab) sends the outbox again.
        page.goto(site.url() + "/checkout.html")

        def both():
            sends = [r for r in wire.segments() if segment_number(r) == cut
                     and r["query"]["session_id"] == [sid]]
            beacon = [r for r in sends if "token" in r["query"]]
            resend = [r for r in sends if "authorization" in r["headers"]]
            return (beacon[0], resend[0]) if beacon and resend else None

        beacon, resend = wait_for(both, timeout=30, what="the beacon and the outbox's re-send", page=page)
        def stored_segment():
            listing, events = stored_recording(api, site.account, sid)
            numbers = [s["segment"] for s in listing]
            return events[numbers.index(cut)] if cut in numbers else None

        stored = wait_for(stored_segment, what="the segment stored")
        for request in (beacon, resend):
            assert request["url"].split("?")[0].endswith(RECORDING)
            assert request["query"]["encoding"] == ["gzip"]
            raw = request["raw"]
            assert raw[:2] == b"\x1f\x8b"                       # gzip on the wire
            original = gzip.decompress(raw)
            assert len(raw) < len(original)
            assert json.loads(original) == stored        # decompressed: the segment as stored
        assert resend["raw"] == beacon["raw"]                  # the outbox re-sends what it beaconed
        assert stored and all("timestamp" in e for e in stored)
        # Nothing of this session left as plain JSON.
        assert {r["query"]["encoding"][0] for r in wire.segments() if r["query"]["session_id"] == [sid]} == {"gzip"}
        assert errors == []
        context.close()
