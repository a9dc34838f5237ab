"""POST /api/v1/track/recording and the recording reads, against the real cluster.

A segment is a JSON array of rrweb events, gzip (CompressionStream) or plain JSON, stored
once per (session, segment); bounded while it is inflated; read back by analysts of its
account only.
"""

from __future__ import annotations

import gzip
import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from hindsight import recording_codec
from hindsight.db import connect
from hindsight.ingestion.segments import MAX_EVENTS, MAX_JSON_BYTES

PATH = "/api/v1/track/recording"


def now_ms(offset_seconds: float = 0.0) -> int:
    return int((time.time() + offset_seconds) * 1000)


def rrweb_events(start_ms: int, n: int = 5, full_snapshot: bool = True) -> list[dict]:
    """A small, well-formed rrweb stream: meta, full snapshot, then mouse moves."""
    events: list[dict] = []
    if full_snapshot:
        events.append({"type": 4, "data": {"href": "https://x.example/", "width": 1280, "height": 800},
                       "timestamp": start_ms})
        events.append({"type": 2, "data": {"node": {"type": 0, "childNodes": [], "id": 1},
                                           "initialOffset": {"left": 0, "top": 0}}, "timestamp": start_ms + 1})
    while len(events) < n:
        i = len(events)
        events.append({"type": 3, "data": {"source": 1, "positions": [{"x": i, "y": i, "id": 1, "timeOffset": 0}]},
                       "timestamp": start_ms + 100 * i})
    return events


def post(client, site, session_id, segment, body: bytes, encoding: str = "gzip", *, headers=None,
         content_type: str = "application/octet-stream", **params):
    query = {"session_id": session_id, "segment": segment, "encoding": encoding, **params}
    return client.simulate_post(PATH, params=query, body=body,
                                headers={"Content-Type": content_type,
                                         **(site.write_headers() if headers is None else headers)})


def gz(events) -> bytes:
    return gzip.compress(json.dumps(events).encode())


def stored_rows(db_url, session_id) -> list[dict]:
    with connect(db_url) as conn:
        return conn.execute(
            "SELECT segment, event_count, full_snapshot, gzip_bytes, json_bytes, started_at, ended_at, data, "
            "account_id, host FROM recording_segments WHERE session_id = %s ORDER BY segment",
            (session_id,)).fetchall()


def test_a_gzip_segment_is_stored_and_moves_the_sessions_last_activity(client, site, session_id, db_url):
    start = now_ms(5)
    events = rrweb_events(start, 12)
    body = gz(events)
    resp = post(client, site, session_id, 0, body)
    assert resp.status_code == 201, resp.json
    assert resp.json == {"segment": 0, "events": 12}
    assert resp.headers["access-control-allow-origin"] == site.origin
    [row] = stored_rows(db_url, session_id)
    # Stored as zstd (0030: recording_codec; with rrweb's vocabulary until the account has a
    # dictionary of its own, 0035), the JSON the browser sent byte for byte.
    assert recording_codec.unpack(bytes(row["data"]), recording_codec.VOCABULARY,
                                  row["json_bytes"]) == gzip.decompress(body)
    assert row["gzip_bytes"] == len(row["data"]) and row["json_bytes"] == len(json.dumps(events).encode())
    assert row["event_count"] == 12 and row["full_snapshot"] is True
    assert row["started_at"] == datetime.fromtimestamp(start / 1000, UTC)
    assert row["ended_at"] == datetime.fromtimestamp(events[-1]["timestamp"] / 1000, UTC)
    assert str(row["account_id"]) == site.account_id and row["host"] == site.domain
    session = client.simulate_get(f"/api/v1/sessions/{session_id}", headers=site.read_headers()).json
    assert datetime.fromisoformat(session["last_activity_at"]) == row["ended_at"]


def test_plain_json_is_compressed_for_storage_and_text_plain_with_a_query_token_works(client, site, session_id,
                                                                                      db_url):
    events = rrweb_events(now_ms(), 3, full_snapshot=False)
    raw = json.dumps(events).encode()
    # sendBeacon: no Authorization header, the token in the query, text/plain.
    resp = post(client, site, session_id, 4, raw, "json", headers={"Origin": site.origin},
                content_type="text/plain", token=site.token)
    assert resp.status_code == 201, resp.json
    [row] = stored_rows(db_url, session_id)
    assert recording_codec.unpack(bytes(row["data"]), recording_codec.VOCABULARY, len(raw)) == raw
    assert row["full_snapshot"] is False


def test_a_resent_segment_is_stored_once(client, site, session_id, db_url):
    body = gz(rrweb_events(now_ms(), 6))
    first = post(client, site, session_id, 1, body)
    again = post(client, site, session_id, 1, body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json == again.json == {"segment": 1, "events": 6}
    # Even a different body for the same (session, segment) does not make a second row.
    other = post(client, site, session_id, 1, gz(rrweb_events(now_ms(1), 9)))
    assert other.status_code == 200 and other.json == {"segment": 1, "events": 6}
    assert [r["segment"] for r in stored_rows(db_url, session_id)] == [1]


def test_authentication_and_authorization(client, site, session_id, db_url):
    body = gz(rrweb_events(now_ms()))
    assert post(client, site, session_id, 0, body, headers={}).status_code == 401
    unknown = post(client, site, session_id, 0, body, headers={"Authorization": f"Bearer {uuid.uuid4()}"})
    assert unknown.status_code == 401 and unknown.json["error"] == "Unauthorized"
    stranger = post(client, site, session_id, 0, body,
                    headers={"Authorization": f"Bearer {site.token}", "Origin": "https://evil.example"})
    assert stranger.status_code == 403
    with connect(db_url) as conn:  # statistics switched off for the host (e.g. its usage limit)
        conn.execute("INSERT INTO statistics_flags (account_id, host, enabled) VALUES (%s, %s, false) "
                     "ON CONFLICT (account_id, host) DO UPDATE SET enabled = false", (site.account_id, site.domain))
    try:
        off = post(client, site, session_id, 0, body)
        assert off.status_code == 403 and "disabled" in off.json["description"]
        assert off.headers["access-control-allow-origin"] == site.origin   # readable by the tracker
    finally:
        with connect(db_url) as conn:
            conn.execute("UPDATE statistics_flags SET enabled = true WHERE account_id = %s", (site.account_id,))
    assert post(client, site, str(uuid.uuid4()), 0, body).status_code == 404
    assert stored_rows(db_url, session_id) == []


def test_a_session_of_another_account_is_404_and_untouched(client, make_site, db_url):
    a, b = make_site(), make_site()
    created = client.simulate_post("/api/v1/sessions", json={"page_url": f"{a.origin}/"}, headers=a.write_headers())
    sid_a = created.json["session_id"]
    body = gz(rrweb_events(now_ms()))
    resp = post(client, b, sid_a, 0, body)                      # B's token, A's session
    assert resp.status_code == 404
    assert stored_rows(db_url, sid_a) == []
    assert post(client, a, sid_a, 0, body).status_code == 201
    # Reads: A's key sees it, B's key sees nothing of it.
    assert client.simulate_get(f"/api/v1/sessions/{sid_a}/recording", headers=a.read_headers()).status_code == 200
    for path in (f"/api/v1/sessions/{sid_a}/recording", f"/api/v1/sessions/{sid_a}/recording/0"):
        denied = client.simulate_get(path, headers=b.read_headers())
        assert denied.status_code == 404, path
        assert "segments" not in denied.json
    assert client.simulate_get(f"/api/v1/sessions/{sid_a}/recording").status_code == 401


@pytest.mark.parametrize(("body", "field", "fragment"), [
    (b"\x1f\x8bnot really gzip", "body", "not valid gzip"),
    (gzip.compress(b"[1, 2")[:-12], "body", "truncated"),
    (gzip.compress(b"[]") + b"junk", "body", "after the gzip stream"),
    (gzip.compress(b"{\"type\": 2}"), "body", "non-empty JSON array"),
    (gzip.compress(b"[]"), "body", "non-empty JSON array"),
    (gzip.compress(b"[{\"type\": 2, \"timestamp\": NaN}]"), "body", "not valid JSON"),
    (gzip.compress(b"not json"), "body", "not valid JSON"),
    (b"", "body", "empty"),
])
def test_malformed_bodies_are_400_naming_the_body(client, site, session_id, db_url, body, field, fragment):
    resp = post(client, site, session_id, 0, body)
    assert resp.status_code == 400, resp.json
    assert field in resp.json["fields"] and fragment in resp.json["description"]
    assert stored_rows(db_url, session_id) == []


def test_events_are_checked_one_by_one(client, site, session_id, db_url):
    good = now_ms()
    events = [
        {"type": 4, "timestamp": good, "data": {}},
        {"type": "2", "timestamp": good},                       # type not an integer
        {"type": 3, "timestamp": float(good) + 0.5},            # timestamp not an integer
        {"type": 3},                                            # no timestamp
        {"type": 3, "timestamp": now_ms(2 * 3600)},             # two hours ahead
        {"type": 3, "timestamp": now_ms(-400 * 86400)},         # over a year old
        [3, good],                                              # not an object
        {"type": True, "timestamp": good},                      # a boolean is no integer
    ]
    resp = post(client, site, session_id, 0, gz(events))
    assert resp.status_code == 400
    named = resp.json["fields"]["events"]
    assert set(named) == {"1", "2", "3", "4", "5", "6", "7"}
    assert named["1"] == {"type": ["Must be an integer."]}
    assert "timestamp" in named["2"] and "timestamp" in named["3"]
    assert named["4"] == {"timestamp": ["More than an hour in the future."]}
    assert named["5"] == {"timestamp": ["More than a year old."]}
    assert "_schema" in named["6"] and "type" in named["7"]
    assert stored_rows(db_url, session_id) == []
    # The query string is checked too, each parameter by name.
    for params, name in (({"segment": -1}, "segment"), ({"segment": 1_000_001}, "segment"),
                         ({"encoding": "br"}, "encoding"), ({"segment": "x"}, "segment")):
        query = {"session_id": session_id, "segment": 0, "encoding": "gzip", **params}
        bad = client.simulate_post(PATH, params=query, body=gz(rrweb_events(good)),
                                   headers={"Content-Type": "application/octet-stream", **site.write_headers()})
        assert bad.status_code == 400 and name in bad.json["fields"], (params, bad.json)
    no_session = client.simulate_post(PATH, params={"segment": 0, "encoding": "gzip"}, body=b"x",
                                      headers={"Content-Type": "application/octet-stream", **site.write_headers()})
    assert no_session.status_code == 400 and "session_id" in no_session.json["fields"]


def test_size_limits(client, site, session_id, db_url, settings):
    # As sent: over HINDSIGHT_MAX_RECORDING_BODY_BYTES (2 MiB) is refused before it is read.
    assert settings.max_recording_body_bytes == 2 * 1024 * 1024
    big = post(client, site, session_id, 0, b"\x1f\x8b" + b"\0" * (2 * 1024 * 1024 + 1))
    assert big.status_code == 413
    # Too many events.
    many = rrweb_events(now_ms(), MAX_EVENTS + 1)
    assert post(client, site, session_id, 0, gz(many)).status_code == 413
    # Plain JSON over the decompressed limit cannot even be sent (it is over 2 MiB).
    assert post(client, site, session_id, 0, b"[" + b" " * (3 * 1024 * 1024) + b"]", "json").status_code == 413
    # Only bytes are taken here: JSON bodies are for the other endpoints.
    wrong = post(client, site, session_id, 0, gz(rrweb_events(now_ms())), content_type="image/png")
    assert wrong.status_code == 415
    assert stored_rows(db_url, session_id) == []


def test_a_decompression_bomb_is_413_after_inflating_at_most_the_limit(client, site, session_id, db_url):
    # 1 GiB of spaces inside a JSON array, about 1 MB compressed: under the 2 MiB body limit.
    compressor_input = b"[" + b" " * (1024 * 1024 * 1024) + b"]"
    bomb = gzip.compress(compressor_input, compresslevel=9)
    del compressor_input
    assert len(bomb) < 2 * 1024 * 1024
    started = time.perf_counter()
    resp = post(client, site, session_id, 0, bomb)
    elapsed = time.perf_counter() - started
    assert resp.status_code == 413 and str(MAX_JSON_BYTES) in resp.json["description"]
    # Inflating all of it would take seconds; stopping at 16 MiB takes a fraction of one.
    assert elapsed < 2.0, elapsed
    assert stored_rows(db_url, session_id) == []


def test_reads_list_the_segments_in_order_and_serve_the_events(client, site, session_id, db_url):
    start = now_ms(-60)
    first = rrweb_events(start, 4)
    second = rrweb_events(start + 10_000, 3, full_snapshot=False)
    third = rrweb_events(start + 20_000, 5)
    for number, events in ((2, third), (0, first), (1, second)):
        assert post(client, site, session_id, number, gz(events)).status_code == 201
    listed = client.simulate_get(f"/api/v1/sessions/{session_id}/recording", headers=site.read_headers())
    assert listed.status_code == 200
    segments = listed.json["segments"]
    assert [s["segment"] for s in segments] == [0, 1, 2]
    assert [s["events"] for s in segments] == [4, 3, 5]
    assert [s["full_snapshot"] for s in segments] == [True, False, True]
    assert segments[0]["bytes"] == stored_rows(db_url, session_id)[0]["gzip_bytes"]   # as stored (0030: zstd)
    assert datetime.fromisoformat(segments[1]["started_at"]) == datetime.fromtimestamp((start + 10_000) / 1000, UTC)
    assert set(segments[0]) == {"segment", "started_at", "ended_at", "events", "full_snapshot", "bytes"}

    path = f"/api/v1/sessions/{session_id}/recording/1"
    zipped = client.simulate_get(path, headers={**site.read_headers(), "Accept-Encoding": "gzip, deflate"})
    assert zipped.status_code == 200
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.headers["content-type"].startswith("application/json")
    assert "immutable" in zipped.headers["cache-control"] and "private" in zipped.headers["cache-control"]
    assert json.loads(gzip.decompress(zipped.content)) == second
    plain = client.simulate_get(path, headers={**site.read_headers(), "Accept-Encoding": "gzip;q=0, identity"})
    assert "content-encoding" not in plain.headers and plain.json == second
    assert client.simulate_get(f"/api/v1/sessions/{session_id}/recording/7",
                               headers=site.read_headers()).status_code == 404
    assert client.simulate_get(f"/api/v1/sessions/{uuid.uuid4()}/recording",
                               headers=site.read_headers()).status_code == 404


def test_the_listing_is_paged_and_narrowed_to_a_playable_window(client, site, session_id):
    start = now_ms(-120)
    # Segments every 10 s; full snapshots in 0, 3 and 6.
    for number in range(8):
        events = rrweb_events(start + number * 10_000, 3, full_snapshot=number % 3 == 0)
        assert post(client, site, session_id, number, gz(events)).status_code == 201
    url = f"/api/v1/sessions/{session_id}/recording"

    def listing(**params):
        resp = client.simulate_get(url, params=params, headers=site.read_headers())
        assert resp.status_code == 200, resp.json
        return [s["segment"] for s in resp.json["segments"]], resp.json["next_after"]

    assert listing() == (list(range(8)), None)
    # Pages of 3, followed to the end by next_after.
    seen, after = [], -1
    while after is not None:
        page, after = listing(limit=3, after=after)
        assert len(page) <= 3
        seen += page
    assert seen == list(range(8))
    iso = lambda ms: datetime.fromtimestamp(ms / 1000, UTC).isoformat()  # noqa: E731
    # A window from 52 s (segment 5) to 65 s: it starts at segment 3's full snapshot.
    assert listing(**{"from": iso(start + 52_000), "to": iso(start + 65_000)}) == ([3, 4, 5, 6], None)
    # From a full snapshot's own start, only from there.
    assert listing(**{"from": iso(start + 60_000)}) == ([6, 7], None)
    assert listing(**{"to": iso(start + 15_000)}) == ([0, 1], None)
    # Before the first segment: from the start.
    assert listing(**{"from": iso(start - 99_000), "limit": 2}) == ([0, 1], 1)
    for bad in ({"limit": 0}, {"limit": 1001}, {"after": -2}, {"from": "yesterday"}, {"to": "10000-01-01"}):
        assert client.simulate_get(url, params=bad, headers=site.read_headers()).status_code == 400, bad


def test_segments_of_two_accounts_stay_apart(client, make_site, db_url):
    a, b = make_site(), make_site()
    sessions = {}
    for who in (a, b):
        resp = client.simulate_post("/api/v1/sessions", json={}, headers=who.write_headers())
        sessions[who.account_id] = resp.json["session_id"]
        for number in range(2):
            marker = [{"type": 5, "data": {"tag": who.account_id}, "timestamp": now_ms()}]
            assert post(client, who, sessions[who.account_id], number, gz(marker)).status_code == 201
    for who, other in ((a, b), (b, a)):
        mine = client.simulate_get(f"/api/v1/sessions/{sessions[who.account_id]}/recording/1",
                                   headers=who.read_headers())
        assert mine.json[0]["data"]["tag"] == who.account_id
        theirs = client.simulate_get(f"/api/v1/sessions/{sessions[other.account_id]}/recording/1",
                                     headers=who.read_headers())
        assert theirs.status_code == 404
        # Writing into the other account's session with one's own token is refused too.
        assert post(client, who, sessions[other.account_id], 5, gz([{"type": 5, "timestamp": now_ms()}])).status_code == 404
    with connect(db_url) as conn:
        rows = conn.execute("SELECT account_id, count(*) AS n FROM recording_segments WHERE session_id = ANY(%s) "
                            "GROUP BY 1", (list(sessions.values()),)).fetchall()
    assert {str(r["account_id"]): r["n"] for r in rows} == {a.account_id: 2, b.account_id: 2}


def test_cors_preflight_and_refusals_are_readable(client, site, session_id):
    ok = client.simulate_options(PATH, headers={"Origin": site.origin, "Access-Control-Request-Method": "POST",
                                                "Access-Control-Request-Headers": "content-type"})
    assert ok.status_code == 204 and ok.headers["access-control-allow-origin"] == site.origin
    evil = client.simulate_options(PATH, headers={"Origin": "https://evil.example",
                                                  "Access-Control-Request-Method": "POST"})
    assert evil.status_code == 403
    gone = post(client, site, str(uuid.uuid4()), 0, gz(rrweb_events(now_ms())))
    assert gone.status_code == 404 and gone.headers["access-control-allow-origin"] == site.origin


def test_segments_are_kept_with_their_session_and_dropped_by_retention(client, site, db_url, settings, pool):
    """Retention drops a recording with its session's start (lifecycle/retention.py)."""
    from hindsight.lifecycle import retention

    old_start = datetime.now(UTC) - timedelta(days=40)
    created = client.simulate_post("/api/v1/sessions", json={"started_at": old_start.isoformat()},
                                   headers=site.write_headers())
    old = created.json["session_id"]
    fresh = client.simulate_post("/api/v1/sessions", json={}, headers=site.write_headers()).json["session_id"]
    old_ms = int(old_start.timestamp() * 1000)
    assert post(client, site, old, 0, gz(rrweb_events(old_ms))).status_code == 201
    assert post(client, site, fresh, 0, gz(rrweb_events(now_ms()))).status_code == 201
    with connect(db_url) as conn:
        result = retention.run(conn, datetime.now(UTC), events_retention_days=30, rollup_retention_days=730,
                               schema_edition="apache")
        conn.commit()
    assert result["recording_segments_deleted"] + result["recording_chunks_dropped"] >= 1
    assert stored_rows(db_url, old) == []
    assert len(stored_rows(db_url, fresh)) == 1


def test_the_dashboard_twins_need_a_login_of_the_sessions_account(client, make_site, db_url):
    from dashboard_support import Analyst, logged_in

    a, b = make_site(), make_site()
    sid = client.simulate_post("/api/v1/sessions", json={}, headers=a.write_headers()).json["session_id"]
    events = rrweb_events(now_ms(), 4)
    assert post(client, a, sid, 0, gz(events)).status_code == 201
    listing, segment = f"/dashboard/sessions/{sid}/recording", f"/dashboard/sessions/{sid}/recording/0"
    for path in (listing, segment):                       # logged out: 401 JSON, not a login page
        anonymous = Analyst(client).get(path)
        assert anonymous.status_code == 401 and anonymous.json["error"] == "Unauthorized", path
    stranger = logged_in(client, db_url, b.account_id)
    for path in (listing, segment):
        assert stranger.get(path).status_code == 404, path
    owner = logged_in(client, db_url, a.account_id)
    listed = owner.get(listing)
    assert listed.status_code == 200 and listed.headers["cache-control"] == "no-store"
    [item] = listed.json["segments"]
    assert item["segment"] == 0 and item["events"] == 4 and item["url"] == segment
    served = client.simulate_get(segment, cookies=owner.cookies, headers={"Accept-Encoding": "gzip"})
    assert served.headers["content-encoding"] == "gzip" and "immutable" in served.headers["cache-control"]
    assert json.loads(gzip.decompress(served.content)) == events
    assert served.headers["content-security-policy"].startswith("default-src 'self'")


def test_the_player_host_page_has_its_own_policy(client):
    from hindsight.dashboard.recording import PLAYER_BUILDS

    page = client.simulate_get("/dashboard/player")           # no login: it holds no data
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert csp == PLAYER_BUILDS.current().csp
    assert "x-frame-options" not in page.headers              # the replay page frames it (frame-ancestors 'self')
    assert "<iframe" in page.text and "<script" not in page.text.split("<iframe")[0]
    for directive in ("connect-src 'none'", "frame-ancestors 'self'", "form-action 'none'", "default-src 'none'"):
        assert directive in csp
    # Scripts by hash only (tests/test_replay_dom_browser.py checks which).
    [scripts] = [d.strip() for d in csp.split(";") if d.strip().startswith("script-src")]
    assert [s.startswith("'sha256-") for s in scripts.split()[1:]] == [True, True]
