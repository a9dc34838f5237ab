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
import time
from urllib.parse import urlsplit

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
from test_tracker_recording import (
    beaconed as by_beacon,
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
            beacon = [r for r in sends if by_beacon(r)]
            resend = [r for r in sends if not by_beacon(r)]
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


def test_each_segment_and_batch_is_beaconed_once_as_the_page_goes_away(db_url, api, browser):
    """The outbox used to beacon everything twice as a page went away: on `pagehide`, and again
    on the `visibilitychange` Chrome fires after it (56 uploads for 21 segments in
    bench/recording.py's visit). Now each item is beaconed at most once, also a segment whose
    upload is still on its way (its fate unknown: a fetch of a page being unloaded may be
    cancelled by the browser); the next page load still sends both again (a beacon's fate is
    unknown too), and the server stores each once."""
    with demo_site(api, db_url) as site:
        wire = site.wire
        hold = {"on": False, "held": []}

        def slow(method: str, path: str) -> None:
            # The first upload of a segment while `on`: answered 3 s late (on its way as the page goes).
            if hold["on"] and method == "POST" and path.startswith(RECORDING):
                hold["on"] = False
                hold["held"].append(path)
                time.sleep(3)

        wire.refuse = slow
        context = browser.new_context(viewport=VIEWPORT)
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(site.url() + "/")
        wait_for_chunk(page)
        page.mouse.move(200, 200)
        page.click("h1")
        sid = session_id_of(page)
        on_its_way = next_segment(page)
        hold["on"] = True
        page.evaluate("() => { hindsight.flush(); }")    # cut now: its upload is held by the proxy
        wait_for(lambda: hold["held"], page=page, what="the held upload")
        page.mouse.move(300, 260)
        page.click("#name")
        cut = next_segment(page)          # cut as the page goes away: beaconed
        assert cut == on_its_way + 1
        page.goto(site.url() + "/checkout.html")
        wait_for_chunk(page)

        def sends(number: int) -> list[dict]:
            return [r for r in wire.segments() if segment_number(r) == number and r["query"]["session_id"] == [sid]]

        def resent() -> bool:   # both sent again by the new page (its fetch, not a beacon)
            return all(any(not by_beacon(r) and r is not sends(n)[0] for r in sends(n))
                       for n in (on_its_way, cut))

        wait_for(resent, timeout=30, what="the new page's re-sends", page=page)
        page.wait_for_timeout(1000)       # a late beacon would have arrived by now
        beacons = {n: [r for r in sends(n) if by_beacon(r)] for n in (on_its_way, cut)}
        assert len(beacons[cut]) == 1, "one beacon, not one per pagehide and visibilitychange"
        assert len(beacons[on_its_way]) == 1
        assert len(sends(on_its_way)) == 3 and len(sends(cut)) == 2   # + the held upload; + the re-sends
        # Batches alike: no batch beaconed twice.
        beaconed = [r["raw"] for r in wire.posts("/api/v1/track") if urlsplit(r["url"]).path == "/api/v1/track"
                    and b'"token"' in r["raw"]]
        assert beaconed and len(beaconed) == len(set(beaconed))
        def numbers() -> list[int] | None:   # the new page's own segments may follow
            found = [s["segment"] for s in stored_recording(api, site.account, sid)[0]]
            return found if set(found) >= set(range(cut + 1)) else None

        found = wait_for(numbers, what="every segment stored")
        assert found == sorted(set(found)) and found[:cut + 1] == list(range(cut + 1)), "each stored once"
        assert errors == [] and page.evaluate("hindsight.health().errors") == 0
        context.close()
