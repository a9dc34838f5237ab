"""One answer per read (issue 10): where the API and the dashboard each had their own copy,
they now share one, and the rules the copies disagreed on are the same everywhere.

- a screenshot's bytes: one reader and one HTTP behaviour (cache lifetime, ETag, 304);
- JSON: one encoder (the dashboard's lacked Decimal);
- rage clicks: one rule (SQL's), which the replay's player receives as a flag;
- journeys and statistics counters have a reader: the account page.
"""

from __future__ import annotations

import base64
import decimal
import io
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from dashboard_support import logged_in, record_session
from PIL import Image
from stacks_rig import make_rig

from hindsight import json_encoding
from hindsight.dashboard import web

REPO = Path(__file__).resolve().parent.parent


def _shot(client, site, session_id: str) -> int:
    buf = io.BytesIO()
    Image.new("RGB", (8, 6), (1, 2, 3)).save(buf, "PNG")
    resp = client.simulate_post("/api/v1/track/screenshot", headers=site.write_headers(), json={
        "session_id": session_id, "page_url": f"{site.origin}/", "timestamp": datetime.now(UTC).isoformat(),
        "image_data": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode(),
        "width": 8, "height": 6})
    assert resp.status_code == 201, resp.json
    return resp.json["screenshot_id"]


def test_both_screenshot_endpoints_answer_alike(client, site, session_id, db_url):
    shot = _shot(client, site, session_id)
    analyst = logged_in(client, db_url, site.account_id)
    api = client.simulate_get(f"/api/v1/screenshots/{shot}", headers=site.read_headers())
    page = analyst.get(f"/dashboard/screenshots/{shot}")
    for resp in (api, page):
        assert resp.status_code == 200 and resp.headers["content-type"] == "image/png"
        # One lifetime: a year, private (one account's), immutable (an id never changes content).
        assert resp.headers["cache-control"] == "private, max-age=31536000, immutable"
        assert resp.headers["x-content-type-options"] == "nosniff"
    assert api.content == page.content and api.headers["etag"] == page.headers["etag"]
    cached_api = client.simulate_get(f"/api/v1/screenshots/{shot}",
                                     headers={**site.read_headers(), "If-None-Match": api.headers["etag"]})
    cached_page = client.simulate_get(f"/dashboard/screenshots/{shot}", cookies=analyst.cookies,
                                      headers={"If-None-Match": page.headers["etag"]})
    assert (cached_api.status_code, cached_page.status_code) == (304, 304)
    missing_api = client.simulate_get("/api/v1/screenshots/999999999", headers=site.read_headers())
    missing_page = analyst.get("/dashboard/screenshots/999999999")
    assert (missing_api.status_code, missing_page.status_code) == (404, 404)
    assert missing_api.json["description"] == missing_page.json["description"]


def test_one_json_encoder_for_the_api_and_the_dashboard(app):
    value = {"n": decimal.Decimal("12.5"), "at": datetime(2026, 1, 2, tzinfo=UTC),
             "id": uuid.UUID(int=1), "raw": b"\x01\xff"}
    expected = ('{"n":12.5,"at":"2026-01-02T00:00:00+00:00",'
                '"id":"00000000-0000-0000-0000-000000000001","raw":"01ff"}')
    assert json_encoding.dumps(value) == expected
    assert web.dumps(value) == expected     # the dashboard's twins (it had no Decimal)
    import falcon
    handler = app.resp_options.media_handlers[falcon.MEDIA_JSON]
    assert handler.serialize(value, falcon.MEDIA_JSON) == expected.encode()


@pytest.fixture
def rage_world(client, site, db_url):
    """A session with one real rage click and clicks whose `rage` is falsy, each way."""
    start = datetime.now(UTC) - timedelta(minutes=30)
    sid = record_session(client, site, [
        {"event_type": "page_view", "at": 0},
        {"event_type": "click", "at": 1, "viewport_x": 10, "viewport_y": 10, "event_data": {"rage": 3}},
        {"event_type": "click", "at": 2, "viewport_x": 10, "viewport_y": 10, "event_data": {"rage": 0}},
        {"event_type": "click", "at": 3, "viewport_x": 10, "viewport_y": 10, "event_data": {"rage": "0"}},
        {"event_type": "click", "at": 4, "viewport_x": 10, "viewport_y": 10, "event_data": {"rage": False}},
        {"event_type": "click", "at": 5, "viewport_x": 10, "viewport_y": 10},
        {"event_type": "scroll", "at": 6, "scroll_y": 10, "event_data": {"rage": 9}},  # not a click
    ], start=start)
    return sid, logged_in(client, db_url, site.account_id)


def test_rage_clicks_follow_one_rule_everywhere(client, site, rage_world):
    sid, analyst = rage_world
    session = client.simulate_get(f"/api/v1/sessions/{sid}", headers=site.read_headers()).json
    assert session["rage_click_count"] == 1                         # the counters (INSERT_BATCH)
    replay = analyst.get(f"/dashboard/sessions/{sid}", format="json").json
    assert [m["seq"] for m in replay["markers"] if m["rage"]] == [1]            # the timeline
    assert [e["seq"] for e in replay["events"] if e.get("rage")] == [1]         # the player's flag
    more = analyst.get(f"/dashboard/sessions/{sid}/events", offset="0", limit="10").json
    assert [e["seq"] for e in more["data"] if e.get("rage")] == [1]
    heat = analyst.get("/dashboard/heatmaps", page="/", format="json").json   # the heatmap's rings
    assert heat["heatmap"]["clicks"] == 5 and heat["heatmap"]["rage_clicks"] == 1
    # The API's own events answer is unchanged: no flag added there.
    api_events = client.simulate_get(f"/api/v1/sessions/{sid}/events", headers=site.read_headers()).json
    assert all("rage" not in e for e in api_events["data"])


def test_the_player_has_no_rage_rule_of_its_own():
    script = (REPO / "dashboard" / "static" / "replay.js").read_text()
    assert "e.rage === true" in script
    assert "event_data.rage" not in script and "!== 'false'" not in script


def test_the_sessions_filter_offers_the_schemas_device_types(client, site, db_url):
    from hindsight.schemas import DEVICE_TYPES

    page = logged_in(client, db_url, site.account_id).get("/dashboard/sessions")
    assert page.status_code == 200
    for device in DEVICE_TYPES:
        assert f'value="{device}"' in page.text


def test_the_account_page_reads_journeys_and_counters(settings, pool, db_url):
    rig = make_rig(settings, pool, db_url, stacks_event_threshold=1000)
    site = rig.site()
    sid = rig.session(site)
    rig.events(site, sid, ["page_view", "click", "page_view", "scroll"])
    other = rig.session(site)
    rig.events(site, other, ["page_view"])
    rig.stacks.flush_now((uuid.UUID(site.account_id), site.domain), "threshold")
    analyst = logged_in(rig.client, db_url, site.account_id)
    twin = analyst.get("/dashboard/account", format="json").json
    assert twin["usage"]["by_host"] == [{
        "host": site.domain, "flushes": 1, "sessions": 2, "pages": 3, "clicks": 1, "other": 1,
        "total": 7, "last_flush_at": twin["usage"]["by_host"][0]["last_flush_at"]}]
    journeys = {j["session_id"]: j for j in twin["journeys"]}
    assert set(journeys) == {sid, other}
    assert journeys[sid]["step_count"] == 4          # the start, two page views, the click
    assert journeys[sid]["pages"] == ["/p0", "/p2"]
    page = analyst.get("/dashboard/account")
    assert "Recent journeys" in page.text and "/p0 → /p2" in page.text
    assert f"/dashboard/sessions/{sid}" in page.text


def test_the_dba_script_reads_counters_usage_and_journeys(settings, pool, db_url):
    import re
    import shutil
    import subprocess

    rig = make_rig(settings, pool, db_url, stacks_event_threshold=1000)
    site = rig.site()
    sid = rig.session(site)
    rig.events(site, sid, ["page_view", "click"])
    rig.stacks.flush_now((uuid.UUID(site.account_id), site.domain), "threshold")
    script = REPO / "sql" / "maintenance" / "09_usage_and_journeys.sql"
    out = subprocess.run([shutil.which("psql") or "/usr/bin/psql", "-X", "-v", "ON_ERROR_STOP=1",
                          "-f", str(script), db_url], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    # This account: 3 counted (a session start, a page view, a click), equal to its usage.
    assert re.search(rf"{site.account_id}\s*\|\s*1\s*\|\s*3\s*\|\s*3\s*\|\s*t\b", out.stdout), out.stdout
    # One journey of three steps (the start, the page view, the click).
    assert re.search(rf"{site.account_id}\s*\|\s*{re.escape(site.domain)}\s*\|\s*1\s*\|\s*3\.0", out.stdout)


def test_every_dashboard_form_checks_csrf_in_a_hook(client, site, db_url):
    import importlib
    import inspect
    import pkgutil

    import hindsight.dashboard as package

    posts = []
    for info in pkgutil.iter_modules(package.__path__):
        module = importlib.import_module(f"hindsight.dashboard.{info.name}")
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__:
                continue
            for name, method in inspect.getmembers(cls, inspect.isfunction):
                if name.startswith("on_post"):
                    posts.append(f"{cls.__name__}.{name}")
                    # falcon.before wraps the responder (functools.wraps: __wrapped__).
                    assert hasattr(method, "__wrapped__"), f"{cls.__name__}.{name} has no CSRF hook"
    # login, logout, switch account, create/revoke key, unlock, save/delete a funnel
    assert len(posts) == 8, posts
    analyst = logged_in(client, db_url, site.account_id, admin=True)
    for path in ("/dashboard/account/keys", "/dashboard/account/keys/1/revoke",
                 "/dashboard/account/users/1/unlock", "/dashboard/switch-account", "/dashboard/logout",
                 "/dashboard/funnels", "/dashboard/funnels/1/delete"):
        for form in ({}, {"csrf_token": "forged"}):
            resp = analyst.post(path, form)
            assert resp.status_code == 403 and "CSRF" in resp.text, (path, form)
    assert analyst.get("/dashboard/sessions").status_code == 200   # still logged in
