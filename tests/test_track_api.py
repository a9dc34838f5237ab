"""POST /api/v1/track and POST /api/v1/track/screenshot."""

from __future__ import annotations

import base64
import io
import uuid

from PIL import Image

from conftest import now_iso
from hindsight.db import connect


def _events(n, start=0, **fields):
    return [{"seq": start + i, "timestamp": now_iso(i / 100), "event_type": "click",
             "viewport_x": i, "viewport_y": i + 1, **fields} for i in range(n)]


def test_batch_is_stored_with_every_field_and_the_writer(client, site, session_id, db_url):
    event = {"seq": 7, "timestamp": "2026-01-02T03:04:05.678+02:00", "event_type": "input",
             "page_url": f"{site.origin}/form", "target_element": "<input id=email>",
             "target_selector": "form > input#email", "target_tag": "input", "target_id": "email",
             "target_class": "field wide", "viewport_x": 1, "viewport_y": 2, "screen_x": 3, "screen_y": 4,
             "scroll_x": 5, "scroll_y": 6, "input_value": "********", "input_masked": True,
             "key_pressed": "Enter", "mouse_button": 0, "click_count": 2, "event_data": {"a": [1, 2]}}
    with connect(db_url) as conn:  # allow an old timestamp: move the session back
        conn.execute("UPDATE sessions SET started_at = '2026-01-01', last_activity_at = '2026-01-01' "
                     "WHERE session_id = %s", (session_id,))
        conn.commit()
    resp = client.simulate_post("/api/v1/track", json={"session_id": session_id, "events": [event]},
                                headers=site.write_headers())
    assert resp.status_code == 201 and resp.json == {"count": 1, "received": 1}
    with connect(db_url) as conn:
        row = conn.execute("SELECT *, \"timestamp\" AT TIME ZONE 'UTC' AS utc FROM events "
                           "WHERE session_id = %s", (session_id,)).fetchone()
        session = conn.execute("SELECT last_activity_at AT TIME ZONE 'UTC' AS last FROM sessions "
                               "WHERE session_id = %s", (session_id,)).fetchone()
    assert str(row["account_id"]) == site.account_id and row["host"] == site.domain
    assert str(row["utc"]) == "2026-01-02 01:04:05.678000"
    for key, value in event.items():
        if key != "timestamp":
            assert row[key] == value, key
    assert str(session["last"]) == "2026-01-02 01:04:05.678000"


def test_resent_and_overlapping_batches_are_stored_once(client, site, session_id, db_url):
    first = _events(50)
    assert client.simulate_post("/api/v1/track", json={"session_id": session_id, "events": first},
                                headers=site.write_headers()).json["count"] == 50
    overlap = first[25:] + _events(25, start=50)
    resp = client.simulate_post("/api/v1/track", json={"session_id": session_id, "events": overlap},
                                headers=site.write_headers())
    assert resp.json == {"count": 25, "received": 50}
    with connect(db_url) as conn:
        rows = conn.execute("SELECT count(*) AS n, count(DISTINCT seq) AS d FROM events WHERE session_id = %s",
                            (session_id,)).fetchone()
        session = conn.execute("SELECT event_count, click_count FROM sessions WHERE session_id = %s",
                               (session_id,)).fetchone()
    assert rows == {"n": 75, "d": 75}
    assert session == {"event_count": 75, "click_count": 75}


def test_counters_follow_event_types(client, site, session_id, db_url):
    events = [{"seq": i, "timestamp": now_iso(i), "event_type": t}
              for i, t in enumerate(["page_view", "click", "click", "error", "scroll", "page_view"])]
    client.simulate_post("/api/v1/track", json={"session_id": session_id, "events": events},
                         headers=site.write_headers())
    got = client.simulate_get(f"/api/v1/sessions/{session_id}", headers=site.read_headers()).json
    assert (got["event_count"], got["page_view_count"], got["click_count"], got["error_count"]) == (6, 2, 2, 1)
    assert got["duration_seconds"] >= 4.9


def test_token_may_come_in_a_text_plain_body_for_sendbeacon(client, site, session_id, db_url):
    import json

    body = json.dumps({"session_id": session_id, "token": site.token, "events": _events(3)})
    resp = client.simulate_post("/api/v1/track", body=body,
                                headers={"Content-Type": "text/plain;charset=UTF-8", "Origin": site.origin})
    assert resp.status_code == 201 and resp.json["count"] == 3
    assert resp.headers["access-control-allow-origin"] == site.origin


def test_unknown_session_is_404_and_writes_nothing(client, site, db_url):
    sid = str(uuid.uuid4())
    resp = client.simulate_post("/api/v1/track", json={"session_id": sid, "events": _events(2)},
                                headers=site.write_headers())
    assert resp.status_code == 404
    with connect(db_url) as conn:
        assert conn.execute("SELECT count(*) AS n FROM events WHERE session_id = %s", (sid,)).fetchone()["n"] == 0


def test_invalid_event_names_the_field_and_writes_nothing(client, site, session_id, db_url):
    events = _events(3)
    events[1]["viewport_x"] = "left"
    events[2]["event_type"] = "Bad Type!"
    del events[0]["timestamp"]
    resp = client.simulate_post("/api/v1/track", json={"session_id": session_id, "events": events},
                                headers=site.write_headers())
    assert resp.status_code == 400
    fields = resp.json["fields"]["events"]
    assert "timestamp" in fields["0"] and "viewport_x" in fields["1"] and "event_type" in fields["2"]
    with connect(db_url) as conn:
        n = conn.execute("SELECT count(*) AS n FROM events WHERE session_id = %s", (session_id,)).fetchone()["n"]
    assert n == 0


def test_batch_bounds(client, site, session_id):
    h = site.write_headers()
    too_many = client.simulate_post("/api/v1/track", json={"session_id": session_id, "events": _events(101)},
                                    headers=h)
    assert too_many.status_code == 400 and "events" in too_many.json["fields"]
    empty = client.simulate_post("/api/v1/track", json={"session_id": session_id, "events": []}, headers=h)
    assert empty.status_code == 400
    dup = _events(2)
    dup[1]["seq"] = 0
    assert client.simulate_post("/api/v1/track", json={"session_id": session_id, "events": dup},
                                headers=h).status_code == 400
    unknown = client.simulate_post("/api/v1/track", json={"session_id": session_id, "events": _events(1),
                                                          "extra": 1}, headers=h)
    assert unknown.status_code == 400 and "extra" in unknown.json["fields"]
    future = _events(1)
    future[0]["timestamp"] = now_iso(7200)
    assert client.simulate_post("/api/v1/track", json={"session_id": session_id, "events": future},
                                headers=h).status_code == 400
    long_url = _events(1, page_url="https://x/" + "a" * 3000)
    resp = client.simulate_post("/api/v1/track", json={"session_id": session_id, "events": long_url}, headers=h)
    assert resp.status_code == 400 and "page_url" in resp.json["fields"]["events"]["0"]


def _image(fmt="JPEG", size=(64, 48), color=(200, 30, 30)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format=fmt)
    return buf.getvalue()


def _data_url(raw: bytes, mime="jpeg") -> str:
    return f"data:image/{mime};base64," + base64.b64encode(raw).decode()


def _shot(client, site, sid, raw, mime="jpeg", width=64, height=48, ts=None):
    return client.simulate_post("/api/v1/track/screenshot", headers=site.write_headers(), json={
        "session_id": sid, "page_url": f"{site.origin}/", "timestamp": ts or now_iso(),
        "image_data": _data_url(raw, mime), "width": width, "height": height})


def test_screenshots_are_verified_deduplicated_and_served(client, site, session_id, db_url):
    raw = _image()
    first = _shot(client, site, session_id, raw, ts=now_iso(1))
    second = _shot(client, site, session_id, raw, ts=now_iso(2))
    assert first.status_code == 201 and second.status_code == 201
    assert first.json["screenshot_id"] != second.json["screenshot_id"]
    with connect(db_url) as conn:
        images = conn.execute("SELECT count(*) AS n FROM screenshot_images WHERE content_hash = "
                              "(SELECT content_hash FROM screenshots WHERE screenshot_id = %s)",
                              (first.json["screenshot_id"],)).fetchone()["n"]
    assert images == 1
    listing = client.simulate_get(f"/api/v1/sessions/{session_id}/screenshots", headers=site.read_headers()).json
    assert listing["total"] == 2 and listing["data"][0]["image_format"] == "jpeg"
    got = client.simulate_get(listing["data"][0]["url"], headers=site.read_headers())
    assert got.status_code == 200 and got.headers["content-type"] == "image/jpeg"
    assert got.content == raw
    assert "immutable" in got.headers["cache-control"] and got.headers["etag"]
    cached = client.simulate_get(listing["data"][0]["url"],
                                 headers={**site.read_headers(), "If-None-Match": got.headers["etag"]})
    assert cached.status_code == 304


def test_resent_screenshot_is_the_same_row(client, site, session_id):
    raw, ts = _image(color=(1, 2, 3)), now_iso()
    a = _shot(client, site, session_id, raw, ts=ts)
    b = _shot(client, site, session_id, raw, ts=ts)
    assert (a.status_code, b.status_code) == (201, 200)
    assert a.json == b.json


def test_png_and_webp_are_accepted(client, site, session_id):
    assert _shot(client, site, session_id, _image("PNG"), "png").status_code == 201
    assert _shot(client, site, session_id, _image("WEBP"), "webp").status_code == 201


def test_bad_screenshots_are_refused_with_the_field(client, site, session_id):
    raw = _image()
    wrong_size = _shot(client, site, session_id, raw, width=100)
    assert wrong_size.status_code == 400 and "width" in wrong_size.json["fields"]
    not_image = _shot(client, site, session_id, b"hello world, not a picture")
    assert not_image.status_code == 400 and "image_data" in not_image.json["fields"]
    lying_type = _shot(client, site, session_id, _image("PNG"), "jpeg")
    assert lying_type.status_code == 400 and "image_data" in lying_type.json["fields"]
    truncated = _shot(client, site, session_id, _image(size=(640, 480))[:600], width=640, height=480)
    assert truncated.status_code == 400
    gif = client.simulate_post("/api/v1/track/screenshot", headers=site.write_headers(), json={
        "session_id": session_id, "timestamp": now_iso(), "image_data": "data:image/gif;base64,R0lGOD",
        "width": 1, "height": 1})
    assert gif.status_code == 400 and "image_data" in gif.json["fields"]


def test_decompression_bomb_is_refused(client, site, session_id):
    # 10000 x 10000 = 100 MP of one colour compresses to a tiny PNG.
    buf = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(buf, format="PNG")
    resp = _shot(client, site, session_id, buf.getvalue(), "png", width=10_000, height=10_000)
    assert resp.status_code == 400
    assert "pixels" in resp.json["description"]


def test_screenshot_of_another_account_is_not_served(client, make_site):
    a, b = make_site(), make_site()
    sid = client.simulate_post("/api/v1/sessions", json={}, headers=a.write_headers()).json["session_id"]
    shot = _shot(client, a, sid, _image(color=(9, 9, 9))).json["screenshot_id"]
    assert client.simulate_get(f"/api/v1/screenshots/{shot}", headers=a.read_headers()).status_code == 200
    assert client.simulate_get(f"/api/v1/screenshots/{shot}", headers=b.read_headers()).status_code == 404
    assert client.simulate_get(f"/api/v1/screenshots/{shot}").status_code == 401
