"""GET /api/v1/track/screenshot/wanted (a browser takes a screenshot only when the account
lacks a fresh one of that page and device class) and sessions.ended_at (the close_sessions
lifecycle job)."""

from __future__ import annotations

import base64
import io
import uuid
from datetime import UTC, datetime, timedelta

from PIL import Image

from conftest import now_iso
from hindsight.db import connect
from hindsight.lifecycle import session_end

WANTED = "/api/v1/track/screenshot/wanted"


def _session(client, site, width: int) -> str:
    resp = client.simulate_post("/api/v1/sessions", headers=site.write_headers(), json={
        "page_url": f"{site.origin}/", "viewport_width": width, "viewport_height": 700})
    assert resp.status_code == 201, resp.json
    return resp.json["session_id"]


def _shoot(client, site, sid: str, page_url: str, color=(10, 120, 200)) -> None:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buf, format="JPEG")
    resp = client.simulate_post("/api/v1/track/screenshot", headers=site.write_headers(), json={
        "session_id": sid, "page_url": page_url, "timestamp": now_iso(), "width": 64, "height": 48,
        "image_data": "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode()})
    assert resp.status_code == 201, resp.json


def _wanted(client, site, sid: str, page_url: str, origin: str | None = None) -> bool:
    resp = client.simulate_get(WANTED, params={"session_id": sid, "page_url": page_url},
                               headers={"Origin": origin or site.origin})
    assert resp.status_code == 200, resp.json
    assert resp.headers["cache-control"] == "no-store"
    return resp.json["wanted"]


def test_a_fresh_screenshot_of_the_page_and_device_class_is_not_taken_again(client, site, make_site):
    desktop, other_desktop, phone = (_session(client, site, w) for w in (1280, 1440, 390))
    home, pricing = f"{site.origin}/?utm=x", f"{site.origin}/pricing#/yearly"
    assert _wanted(client, site, desktop, home)                 # nothing stored yet
    _shoot(client, site, desktop, home)
    _shoot(client, site, desktop, pricing)
    # Another desktop session: the home page (whatever its query) and the route are fresh.
    assert not _wanted(client, site, other_desktop, f"{site.origin}/")
    assert not _wanted(client, site, other_desktop, pricing)
    # Another route of the same path, another path, another device class: wanted.
    assert _wanted(client, site, other_desktop, f"{site.origin}/pricing#/monthly")
    assert _wanted(client, site, other_desktop, f"{site.origin}/about")
    assert _wanted(client, site, phone, f"{site.origin}/")
    # The answer only comes for the session's own site, and never for a stranger's session.
    assert _wanted(client, site, other_desktop, f"{site.origin}/", origin="https://evil.example")
    assert _wanted(client, site, str(uuid.uuid4()), f"{site.origin}/")
    unknown = client.simulate_get(WANTED, params={"session_id": str(uuid.uuid4()), "page_url": "/"},
                                  headers={"Origin": site.origin})
    assert unknown.json == {"wanted": True, "known": False}
    # Any page may read the answer (an unreadable one would be an error in the site's console).
    assert unknown.headers["access-control-allow-origin"] == site.origin
    stranger = make_site()
    assert _wanted(client, stranger, other_desktop, f"{site.origin}/")
    # Only this account's pictures count.
    stranger_session = _session(client, stranger, 1280)
    assert _wanted(client, stranger, stranger_session, f"{stranger.origin}/")


def test_freshness_ends_and_zero_always_wants(client, site, db_url, app):
    first, second = _session(client, site, 1280), _session(client, site, 1280)
    _shoot(client, site, first, f"{site.origin}/")
    assert not _wanted(client, site, second, f"{site.origin}/")
    with connect(db_url) as conn:  # the picture ages past the freshness period (24 h by default)
        conn.execute("UPDATE screenshots SET \"timestamp\" = now() - interval '25 hours' "
                     "WHERE session_id = %s", (first,))
        conn.commit()
    assert _wanted(client, site, second, f"{site.origin}/")


def test_bad_queries_are_400(client, site):
    for params in ({}, {"session_id": "nope", "page_url": "/"}, {"session_id": str(uuid.uuid4())},
                   {"session_id": str(uuid.uuid4()), "page_url": "x" * 5000}):
        resp = client.simulate_get(WANTED, params=params, headers={"Origin": site.origin})
        assert resp.status_code == 400, params


def test_quiet_sessions_end_at_their_last_activity(client, site, db_url):
    quiet, active = _session(client, site, 1280), _session(client, site, 1280)
    now = datetime.now(UTC)
    with connect(db_url) as conn:
        conn.execute("UPDATE sessions SET started_at = %s, last_activity_at = %s WHERE session_id = %s",
                     (now - timedelta(hours=2), now - timedelta(minutes=31), quiet))
        conn.commit()
        result = session_end.end_quiet_sessions(conn, now)
        conn.commit()
        rows = {str(r["session_id"]): r for r in conn.execute(
            "SELECT session_id, ended_at, last_activity_at FROM sessions WHERE session_id = ANY(%s)",
            ([quiet, active],))}
        assert result["ended"] >= 1
        assert rows[quiet]["ended_at"] == rows[quiet]["last_activity_at"]
        assert rows[active]["ended_at"] is None
        # A late retry moved the quiet one's activity (still over 30 minutes ago): the end follows.
        conn.execute("UPDATE sessions SET last_activity_at = %s WHERE session_id = %s",
                     (now - timedelta(minutes=30, seconds=20), quiet))
        conn.commit()
        assert session_end.end_quiet_sessions(conn, now)["moved"] >= 1
        conn.commit()
        row = conn.execute("SELECT ended_at, last_activity_at FROM sessions WHERE session_id = %s",
                           (quiet,)).fetchone()
        assert row["ended_at"] == row["last_activity_at"]
