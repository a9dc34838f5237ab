"""Custom events: POST /api/v1/events (seed 002's shape, each event on its own, idempotent)
and the reads — names, a property's values, a rate between two events, a series — equal to
what was sent; one account's data only."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from conftest import now_iso


def post(client, site, events, key=None):
    return client.simulate_post("/api/v1/events", json={"events": events},
                                headers={"Authorization": f"Bearer {key or site.api_key}"})


def get(client, site, path, **params):
    return client.simulate_get(path, params=params, headers=site.read_headers())


def seed_event(site, kind, session, visitor, mapping, offset=0.0, **extra):
    return {"event_type": kind, "occurred_at": now_iso(-60 + offset), "session_id": session,
            "visitor_id": visitor, "page_url": f"{site.origin}/post/1",
            "properties": {"mapping_id": mapping, "post_id": 1}, **extra}


@pytest.fixture
def ctr_site(client, make_site):
    """Seed 002's widgets: impressions and clicks of two mappings by three visitors."""
    site = make_site()
    events = []
    for v in range(3):
        for i in range(4):  # each visitor: 4 impressions of mapping 456, 2 of 789
            events.append(seed_event(site, "widget_impression", f"s_{v}", f"v_{v}", 456, v + i / 10))
        events += [seed_event(site, "widget_impression", f"s_{v}", f"v_{v}", 789, v + 0.5 + i / 10)
                   for i in range(2)]
    events.append(seed_event(site, "widget_click", "s_0", "v_0", 456, 1.0))
    events.append(seed_event(site, "widget_click", "s_1", "v_1", 456, 2.0))
    events.append(seed_event(site, "widget_click", "s_1", "v_1", 789, 2.5))
    resp = post(client, site, events)
    assert resp.status_code == 200, resp.json
    assert resp.json == {"accepted": len(events), "rejected": 0, "errors": {}}
    return site, events


def test_each_event_is_validated_on_its_own(client, site):
    good = seed_event(site, "signup", "s_a", "v_a", 1)
    events = [good,
              {**good, "occurred_at": "2001-01-01T00:00:00Z"},          # outside the window
              {**good, "event_type": "Not Snake"},                       # bad name
              {**good, "session_id": "s_new", "page_url": "https://elsewhere.example/"},  # foreign host
              {**good, "surprise": 1},                                    # unknown field
              {**good, "properties": {"plan": "pro"}, "occurred_at": now_iso(-30)}]
    resp = post(client, site, events)
    assert resp.status_code == 200, resp.json
    assert resp.json["accepted"] == 2 and resp.json["rejected"] == 4
    assert set(resp.json["errors"]) == {"1", "2", "3", "4"}
    assert "occurred_at" in resp.json["errors"]["1"]
    assert "event_type" in resp.json["errors"]["2"]
    assert "page_url" in resp.json["errors"]["3"]
    assert "surprise" in resp.json["errors"]["4"]
    names = get(client, site, "/api/v1/stats/custom-events").json["data"]
    assert names == [{"name": "signup", "events": 2, "sessions": 1, "visitors": 1}]


def test_resending_stores_nothing_new(client, site, conn):
    events = [seed_event(site, "widget_click", "s_r", "v_r", 5),
              seed_event(site, "widget_click", "s_r", "v_r", 5, 1, event_id="01HQ-one")]
    assert post(client, site, events).json["accepted"] == 2
    again = post(client, site, events)
    assert again.json == {"accepted": 2, "rejected": 0, "errors": {}}
    # The same event_id is the same event even if its properties changed.
    changed = [{**events[1], "properties": {"mapping_id": 6}}]
    assert post(client, site, changed).json["accepted"] == 1
    count = conn.execute("SELECT count(*) FROM events WHERE account_id = %s AND event_type = 'custom'",
                         (site.account_id,)).fetchone()[0]
    assert count == 2
    session = conn.execute("SELECT event_count, metadata->>'source', visitor_id FROM sessions "
                           "WHERE account_id = %s", (site.account_id,)).fetchall()
    assert len(session) == 1 and session[0][0] == 2 and session[0][1] == "api"
    assert session[0][2] is not None  # a keyed hash of the sender's visitor id, not the id


def test_auth_and_body_errors(client, site, make_site):
    assert post(client, site, [], key="hsk_nope").status_code == 401
    assert post(client, site, []).status_code == 400   # 1 to 100 events
    assert post(client, site, [{}] * 101).status_code == 400
    other = make_site()
    # A session of another account is refused, not written into.
    sid = str(uuid.uuid4())
    assert post(client, other, [seed_event(other, "a", sid, "v", 1)]).json["accepted"] == 1
    resp = post(client, site, [seed_event(site, "a", sid, "v", 1)])
    assert resp.json["rejected"] == 1 and "session_id" in resp.json["errors"]["0"]


def test_ctr_per_mapping_id(client, ctr_site):
    site, _ = ctr_site
    resp = get(client, site, "/api/v1/stats/custom-events/rate", numerator="widget_click",
               denominator="widget_impression", property="mapping_id")
    assert resp.status_code == 200, resp.json
    rows = {r["value"]: r for r in resp.json["data"]}
    assert rows["456"]["denominator"] == 12 and rows["456"]["numerator"] == 2
    assert rows["456"]["rate"] == pytest.approx(2 / 12)
    assert rows["456"]["denominator_visitors"] == 3 and rows["456"]["numerator_visitors"] == 2
    assert rows["789"]["denominator"] == 6 and rows["789"]["numerator"] == 1


def test_names_properties_and_series(client, ctr_site, make_site):
    site, _ = ctr_site
    names = {r["name"]: r for r in get(client, site, "/api/v1/stats/custom-events").json["data"]}
    assert names["widget_impression"] == {"name": "widget_impression", "events": 18, "sessions": 3,
                                          "visitors": 3}
    assert names["widget_click"]["events"] == 3 and names["widget_click"]["visitors"] == 2
    values = get(client, site, "/api/v1/stats/custom-events/properties", name="widget_impression",
                 property="mapping_id", limit=1).json
    assert values["total"] == 18
    assert values["data"] == [{"value": "456", "events": 12, "visitors": 3}]
    series = get(client, site, "/api/v1/stats/custom-events/series", name="widget_impression",
                 interval="hour", property="mapping_id", value="789",
                 **{"from": (datetime.now(UTC) - timedelta(hours=3)).isoformat()}).json
    assert sum(p["events"] for p in series["data"]) == 6
    assert len(series["data"]) >= 3 and all("visitors" in p for p in series["data"])
    # Another account sees none of it.
    other = make_site()
    assert get(client, other, "/api/v1/stats/custom-events").json["data"] == []


def test_tracker_custom_events_are_read_too(client, site, session_id):
    batch = {"session_id": session_id, "events": [
        {"seq": 1, "timestamp": now_iso(-5), "event_type": "custom", "page_url": f"{site.origin}/",
         "event_data": {"name": "newsletter", "props": {"list": "weekly"}}}]}
    assert client.simulate_post("/api/v1/track", json=batch, headers=site.write_headers()).status_code == 201
    values = get(client, site, "/api/v1/stats/custom-events/properties", name="newsletter",
                 property="list").json
    assert values["data"][0]["value"] == "weekly" and values["data"][0]["events"] == 1


def test_events_page_and_its_json_twin(client, db_url, ctr_site):
    from dashboard_support import logged_in

    site, _ = ctr_site
    analyst = logged_in(client, db_url, site.account_id)
    params = {"name": "widget_impression", "property": "mapping_id", "numerator": "widget_click",
              "denominator": "widget_impression", "rate_property": "mapping_id"}
    twin = analyst.get("/dashboard/events", format="json", **params)
    assert twin.status_code == 200, twin.text
    assert {n["name"] for n in twin.json["names"]} == {"widget_impression", "widget_click"}
    assert twin.json["values"]["data"][0] == {"value": "456", "events": 12, "visitors": 3}
    assert sum(p["events"] for p in twin.json["series"]) == 18
    assert {r["value"]: r["numerator"] for r in twin.json["rate"]} == {"456": 2, "789": 1}
    page = analyst.get("/dashboard/events", **params)
    assert page.status_code == 200
    assert 'id="rates"' in page.text and "16.67 %" in page.text and 'href="/dashboard/events"' in page.text
