"""The dashboard's pages and JSON twins over the real app and database: the sessions list
and its filters, the replay data, heatmaps, the overview and the account page."""

from __future__ import annotations

import io
import urllib.parse
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from dashboard_support import logged_in, record_session
from PIL import Image

from hindsight.dashboard import heatmap


def _shot(client, site, session_id, when: datetime, page_url: str, size=(640, 1200), color=(240, 240, 240)):
    import base64

    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "PNG")
    data = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    resp = client.simulate_post("/api/v1/track/screenshot", headers=site.write_headers(), json={
        "session_id": session_id, "page_url": page_url, "timestamp": when.isoformat(),
        "image_data": data, "width": size[0], "height": size[1]})
    assert resp.status_code in (200, 201), resp.json
    return resp.json["screenshot_id"]


@pytest.fixture(scope="module")
def world(app, db_url):
    """One account with a few varied sessions, recorded through the API."""
    import falcon.testing

    from conftest import new_account, token_flow

    client = falcon.testing.TestClient(app)
    account = new_account(db_url)
    origin = f"https://{account['domain']}"
    token = token_flow(client, account, origin)

    class S:
        pass

    site = S()
    site.origin, site.domain, site.account_id = origin, account["domain"], account["account_id"]
    site.write_headers = lambda: {"Authorization": f"Bearer {token}", "Origin": origin}
    start = datetime.now(UTC) - timedelta(hours=2)
    home, pricing = f"{origin}/", f"{origin}/pricing?plan=pro"
    plain = record_session(client, site, [
        {"event_type": "page_view", "at": 0},
        {"event_type": "click", "at": 2, "viewport_x": 100, "viewport_y": 50, "scroll_y": 0},
    ], start=start, user_agent="Mozilla/5.0 (X11; Linux x86_64) Chrome/124.0", user_id="alice",
        viewport_width=640, viewport_height=400)
    angry = record_session(client, site, [
        {"event_type": "page_view", "at": 0, "page_url": pricing},
        {"event_type": "mouse_move", "at": 1, "viewport_x": 300, "viewport_y": 200, "page_url": pricing},
        {"event_type": "click", "at": 2, "viewport_x": 320, "viewport_y": 240, "scroll_y": 100,
         "page_url": pricing},
        {"event_type": "click", "at": 2.2, "viewport_x": 320, "viewport_y": 240, "scroll_y": 100,
         "page_url": pricing},
        {"event_type": "click", "at": 2.4, "viewport_x": 320, "viewport_y": 240, "scroll_y": 100,
         "page_url": pricing, "event_data": {"rage": 3, "text": "Buy"}},
        {"event_type": "scroll", "at": 3, "scroll_y": 600, "page_url": pricing},
        {"event_type": "network", "at": 4, "page_url": pricing,
         "event_data": {"kind": "fetch", "method": "GET", "url": f"{origin}/api/slow", "status": 503,
                        "duration_ms": 1500}},
        {"event_type": "error", "at": 5, "page_url": pricing, "event_data": {"message": "boom"}},
        {"event_type": "page_view", "at": 40, "page_url": home},
    ], start=start + timedelta(minutes=5), page_url=pricing,
        user_agent="Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
                   "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1",
        user_id="bob", viewport_width=640, viewport_height=400)
    shot = _shot(client, site, angry, start + timedelta(minutes=5, seconds=1), pricing)
    return {"client": client, "site": site, "plain": plain, "angry": angry, "shot": shot,
            "account_id": account["account_id"], "start": start}


@pytest.fixture(scope="module")
def analyst(app, db_url, world):
    return logged_in(world["client"], db_url, world["account_id"])


def get_url(analyst, url: str):
    path, _, query = url.partition("?")
    return analyst.get(path, **dict(urllib.parse.parse_qsl(query)))


def ids(page) -> list[str]:
    return [row["session_id"] for row in page.json["data"]]


def test_sessions_page_lists_the_columns_an_analyst_scans(analyst, world):
    page = analyst.get("/dashboard/sessions")
    assert page.status_code == 200
    assert "text/html" in page.headers["content-type"]
    text = page.text
    assert "<h1>Sessions</h1>" in text
    assert f"/dashboard/sessions/{world['angry']}" in text and f"/dashboard/sessions/{world['plain']}" in text
    assert "1 error" in text and "1 rage" in text          # badges
    assert "mobile · Mobile Safari · iOS" in text
    assert "/pricing?plan=pro" in text                    # entry page
    assert page.headers["content-security-policy"].startswith("default-src 'self'")


def test_sessions_twin_filters_in_the_url(analyst, world):
    both = {world["plain"], world["angry"]}
    assert set(ids(analyst.get("/dashboard/sessions", format="json"))) == both
    assert ids(analyst.get("/dashboard/sessions", format="json", has_errors="true")) == [world["angry"]]
    assert ids(analyst.get("/dashboard/sessions", format="json", has_rage_clicks="true")) == [world["angry"]]
    assert ids(analyst.get("/dashboard/sessions", format="json", has_rage_clicks="false")) == [world["plain"]]
    assert ids(analyst.get("/dashboard/sessions", format="json", user_id="alice")) == [world["plain"]]
    assert ids(analyst.get("/dashboard/sessions", format="json", device_type="mobile")) == [world["angry"]]
    assert ids(analyst.get("/dashboard/sessions", format="json", os="iOS")) == [world["angry"]]
    assert ids(analyst.get("/dashboard/sessions", format="json", browser="Chrome")) == [world["plain"]]
    assert ids(analyst.get("/dashboard/sessions", format="json", page_url="/pricing")) == [world["angry"]]
    assert ids(analyst.get("/dashboard/sessions", format="json", min_duration="30")) == [world["angry"]]
    later = (world["start"] + timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
    assert ids(analyst.get("/dashboard/sessions", format="json", **{"from": later})) == [world["angry"]]
    assert set(ids(analyst.get("/dashboard/sessions", format="json", range="24h"))) == both
    assert ids(analyst.get("/dashboard/sessions", format="json", range="1h")) == []
    # Empty form fields (what a GET form sends) are no filter.
    assert set(ids(analyst.get("/dashboard/sessions", format="json", user_id="", os=""))) == both


def test_sessions_sort_and_pages(analyst, world):
    newest = ids(analyst.get("/dashboard/sessions", format="json"))
    assert newest == [world["angry"], world["plain"]]
    assert ids(analyst.get("/dashboard/sessions", format="json", sort="started_at")) == newest[::-1]
    assert ids(analyst.get("/dashboard/sessions", format="json", sort="-duration"))[0] == world["angry"]
    assert ids(analyst.get("/dashboard/sessions", format="json", sort="-page_view_count"))[0] == world["angry"]
    first = analyst.get("/dashboard/sessions", format="json", limit="1")
    assert first.json["total"] == 2 and ids(first) == [world["angry"]]
    second = analyst.get("/dashboard/sessions", format="json", limit="1", offset="1")
    assert ids(second) == [world["plain"]]
    html = analyst.get("/dashboard/sessions", limit="1").text
    assert "offset=1" in html and "Older" in html      # a link to the next page, filters kept
    # The sort links flip direction.
    assert "sort=started_at" in analyst.get("/dashboard/sessions").text


def test_invalid_filter_is_shown_not_a_crash(analyst):
    page = analyst.get("/dashboard/sessions", device_type="toaster", min_duration="-3")
    assert page.status_code == 400
    assert "not valid" in page.text and "device_type" in page.text
    twin = analyst.get("/dashboard/sessions", format="json", sort="nonsense")
    assert twin.status_code == 400 and "sort" in twin.json["errors"]


def test_replay_page_and_its_first_frame_data(analyst, world):
    page = analyst.get(f"/dashboard/sessions/{world['angry']}")
    assert page.status_code == 200
    assert "Mobile Safari" in page.text and "bob" in page.text
    assert "/dashboard/static/replay.js" in page.text
    data = analyst.get(f"/dashboard/sessions/{world['angry']}", format="json").json
    assert data["session"]["session_id"] == world["angry"]
    assert data["session"]["rage_click_count"] == 1 and data["session"]["error_count"] == 1
    assert [e["event_type"] for e in data["events"]][:3] == ["page_view", "mouse_move", "click"]
    assert data["events_total"] == 9 and data["events_next"] is None
    kinds = [(m["event_type"], m["rage"]) for m in data["markers"]]
    assert kinds == [("page_view", False), ("click", False), ("click", False), ("click", True),
                     ("network", False), ("error", False), ("page_view", False)]
    assert data["markers"][4]["detail"] == f"GET {world['site'].origin}/api/slow 503"
    assert [s["screenshot_id"] for s in data["screenshots"]] == [world["shot"]]
    image = analyst.get(data["screenshots"][0]["url"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(image.content)).size == (640, 1200)


def test_replay_events_are_paged(analyst, world):
    page = analyst.get(f"/dashboard/sessions/{world['angry']}/events", offset="2", limit="3")
    assert page.status_code == 200
    assert [e["seq"] for e in page.json["data"]] == [2, 3, 4]
    assert page.json["next"].endswith("offset=5&limit=3")
    last = analyst.get(f"/dashboard/sessions/{world['angry']}/events", offset="6", limit="3")
    assert [e["seq"] for e in last.json["data"]] == [6, 7, 8] and last.json["next"] is not None
    assert analyst.get(f"/dashboard/sessions/{world['angry']}/events", offset="9").json["next"] is None


def test_unknown_session_is_a_404_page(analyst):
    page = analyst.get(f"/dashboard/sessions/{uuid.uuid4()}")
    assert page.status_code == 404 and "text/html" in page.headers["content-type"]
    assert "No such session" in page.text
    assert analyst.get(f"/dashboard/sessions/{uuid.uuid4()}", format="json").status_code == 404


def test_heatmap_page_twin_and_image(analyst, world):
    page = analyst.get("/dashboard/heatmaps", page="/pricing", range="24h")
    assert page.status_code == 200 and "Scroll depth" in page.text
    twin = analyst.get("/dashboard/heatmaps", page="/pricing", range="24h", format="json").json
    h = twin["heatmap"]
    assert (h["clicks"], h["rage_clicks"], h["sessions"]) == (3, 1, 1)
    assert h["screenshot"]["screenshot_id"] == world["shot"]
    # The session saw 600 px of scroll + a 400 px window of a 1200 px page: 80%, not 90%.
    reach = {row["depth_percent"]: row["sessions_percent"] for row in h["scroll_depth"]}
    assert reach[80] == 100.0 and reach[90] == 0.0
    image = get_url(analyst, h["image_url"])
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert image.headers["x-heatmap-cache"] == "miss"
    picture = Image.open(io.BytesIO(image.content)).convert("RGB")
    assert picture.size == (640, 1200)
    # The clicks were at (320, 240 + 100 scroll): hot (red) there, the page elsewhere.
    r, g, b = picture.getpixel((320, 340))
    assert r > 200 and g < 120 and b < 120, (r, g, b)
    far = picture.getpixel((40, 1000))
    assert abs(far[0] - far[2]) < 20   # grey: no heat
    again = get_url(analyst, h["image_url"])
    assert again.headers["x-heatmap-cache"] == "hit" and again.content == image.content


def test_heatmap_position_and_reach_math():
    page = heatmap.Page(None, 512, 2000, 1024)           # a page rendered at half size
    assert heatmap.position(page, heatmap.Click(100, 300, 1024)) == (50, 150)
    assert heatmap.position(page, heatmap.Click(100, 300, 512)) == (100, 150)  # x relative to its window
    rows = heatmap.reach([4000, 2000, 1000], page.css_height)
    assert [r["sessions"] for r in rows] == [3, 3, 2, 2, 2, 1, 1, 1, 1, 1]  # 25%, 50%, 100% of 4000 px
    assert heatmap.reach_lines([4000, 2000, 1000, 500], 4000) == [(75, 1000), (50, 2000), (25, 4000)]
    # Lines at the very top and bottom of the picture are drawn too (labels kept inside it).
    png = heatmap.render(heatmap.blank_page([]), [heatmap.Click(10, 10, 1024)], [0, 0, 10_000])
    assert Image.open(io.BytesIO(png)).size == (1024, 768)


def test_overview_page_and_twin(analyst, world, app):
    page = analyst.get("/dashboard/overview", range="24h")
    assert page.status_code == 200
    for heading in ("Hot routes", "Pages with the most errors", "Slowest network endpoints", "Referrers",
                    "Devices", "Browsers", "Operating systems"):
        assert heading in page.text
    assert "<svg" in page.text
    twin = analyst.get("/dashboard/overview", range="24h", format="json").json
    assert twin["totals"]["page_views"] == 3 and twin["totals"]["errors"] == 1
    assert {p["path"] for p in twin["top_pages"]} == {"/", "/pricing"}
    assert twin["error_pages"][0]["path"] == "/pricing"
    slow = twin["slowest_endpoints"][0]
    assert slow["url"].endswith("/api/slow") and slow["failures"] == 1 and slow["p95_ms"] == 1500
    devices = {r["value"]: r["sessions"] for r in twin["breakdowns"]["device_type"]["data"]}
    assert devices == {"mobile": 1, "desktop": 1}
    # Visitors (alice and bob: two identified users), bounce, time on page and exits.
    assert twin["visitors"]["visitors"] == twin["totals"]["visitors"] == 2
    assert twin["visitors"]["bounce_rate"] == 0.5 and twin["visitors"]["pages_per_session"] == 1.5
    assert {r["value"]: r["visitors"] for r in twin["breakdowns"]["device_type"]["data"]} == devices
    routes = {p["path"]: p for p in twin["top_pages"]}
    # "/": alice's only page (2 s to her last click) and bob's last (no activity after it).
    assert (routes["/"]["visitors"], routes["/"]["avg_time_on_page_s"]) == (2, 1.0)
    assert (routes["/"]["bounce_rate"], routes["/"]["exit_rate"]) == (1.0, 1.0)
    # "/pricing": bob's entry, 40 s before his next page.
    assert (routes["/pricing"]["visitors"], routes["/pricing"]["avg_time_on_page_s"]) == (1, 40.0)
    assert (routes["/pricing"]["bounce_rate"], routes["/pricing"]["exit_rate"]) == (0.0, 0.0)
    assert 'id="kpi-visitors">2<' in page.text and "Time on page" in page.text and "50.0 %" in page.text


def test_account_page_shows_usage_hosts_health_and_keys(analyst, world):
    page = analyst.get("/dashboard/account")
    assert page.status_code == 200
    assert world["site"].domain in page.text and "Statistics stacks" in page.text
    twin = analyst.get("/dashboard/account", format="json").json
    assert twin["hosts"][0]["host"] == world["site"].domain and twin["hosts"][0]["live_tokens"] >= 1
    assert "token" not in {k for h in twin["hosts"] for k in h}   # token values are never shown
    assert twin["stack_health"]["status"] in ("healthy", "degraded", "unhealthy")
    before = len(twin["api_keys"])
    created = analyst.post("/dashboard/account/keys", {"csrf_token": analyst.csrf("/dashboard/account")})
    assert created.status_code == 201 and "hsk_" in created.text
    keys = analyst.get("/dashboard/account", format="json").json["api_keys"]
    assert len(keys) == before + 1
    revoked = analyst.post(f"/dashboard/account/keys/{keys[0]['key_id']}/revoke",
                           {"csrf_token": analyst.csrf("/dashboard/account")})
    assert revoked.status_code == 303
    keys = analyst.get("/dashboard/account", format="json").json["api_keys"]
    assert any(k["key_id"] == keys[-1]["key_id"] for k in keys) and sum(k["revoked_at"] is None for k in keys) == before


def test_the_list_counts_only_so_far_past_the_page(world, db_url):
    from hindsight.db import connect
    from hindsight.queries.sessions import list_sessions
    from hindsight.schemas import SessionListQuerySchema

    query = SessionListQuerySchema().load({"limit": "1"})
    with connect(db_url) as conn:
        capped = list_sessions(conn, uuid.UUID(world["account_id"]), query, count_beyond=0)
        counted = list_sessions(conn, uuid.UUID(world["account_id"]), query, count_beyond=5)
        exact = list_sessions(conn, uuid.UUID(world["account_id"]), query)
    assert (capped["total"], capped["total_exact"]) == (1, False)
    assert (counted["total"], counted["total_exact"]) == (2, True)
    assert exact["total"] == 2 and "total_exact" not in exact      # the API's answer is unchanged
