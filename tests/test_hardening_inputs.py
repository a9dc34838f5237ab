"""Hostile inputs of issue 9: unbounded ranges (finding 2), ancient timestamps (3), the
500s (4), wrap-around filters (5) and login lockouts (7). Each answer is a 4xx naming
the field, never a 500 or a write."""

from __future__ import annotations

import base64
import io
import logging
import urllib.parse
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from dashboard_support import PASSWORD, Analyst, logged_in, make_user

from conftest import now_iso
from hindsight import cli
from hindsight.db import connect
from hindsight.logins import limits as login_limits
from hindsight.signing import AUDIENCE, ISSUER, KeyRing


def _assert_400(resp, field: str | None = None) -> None:
    assert resp.status_code == 400, (resp.status_code, resp.text[:500])
    body = resp.json
    assert set(body) == {"error", "description", "fields"}
    if field is not None:
        assert field in body["fields"], body


# --------------------------------------------------------------------------- finding 2

@pytest.mark.parametrize("path,params", [
    ("series", {"from": "0873-09-11T18:56:27Z", "interval": "hour"}),   # 1.01 GB in 49 s before
    ("series", {"from": "1900-01-01T00:00:00Z"}),                        # 111 MB before
    ("series", {"from": "2000-01-01T00:00:00Z"}),                        # to = now: > 800 days
    ("series", {"to": "2100-01-01T00:00:00Z", "from": "2095-01-01T00:00:00Z"}),
    ("pages", {"from": "1900-01-01T00:00:00Z"}),
    ("event-types", {"from": "1900-01-01T00:00:00Z"}),
    ("referrers", {"from": "1900-01-01T00:00:00Z"}),
])
def test_stats_span_limits_apply_to_the_effective_range(client, site, path, params):
    resp = client.simulate_get(f"/api/v1/stats/{path}", params=params, headers=site.read_headers())
    _assert_400(resp, "from")


def test_hourly_series_limit_applies_with_the_default_end(client, site):
    since = (datetime.now(UTC) - timedelta(days=100)).isoformat()
    resp = client.simulate_get("/api/v1/stats/series", params={"from": since, "interval": "hour"},
                               headers=site.read_headers())
    _assert_400(resp, "from")
    daily = client.simulate_get("/api/v1/stats/series", params={"from": since, "interval": "day"},
                                headers=site.read_headers())
    assert daily.status_code == 200 and len(daily.json["data"]) in (100, 101, 102)


def test_dashboard_heatmap_span_limit_applies_with_the_default_end(client, site, db_url):
    analyst = logged_in(client, db_url, site.account_id)
    page = analyst.get("/dashboard/heatmaps", page="/", format="json", **{"from": "1900-01-01T00:00:00Z"})
    _assert_400(page, "from")


def test_one_list_of_ranges_for_the_dashboard():
    from hindsight import timerange
    from hindsight.dashboard import heatmaps, overview, sessions

    for module in (heatmaps, overview, sessions):
        assert not hasattr(module, "RANGES"), module.__name__
    assert {"24h", "7d", "30d", "90d"} <= set(timerange.PRESETS)


# --------------------------------------------------------------------------- finding 4: calendar ends

@pytest.mark.parametrize("path,params", [
    ("series", {"to": "0001-01-01T00:00:00Z"}),
    ("pages", {"to": "0001-01-01T00:00:00Z"}),
    ("event-types", {"to": "0001-01-01T00:00:00Z"}),
    ("devices", {"to": "0001-01-01T00:00:00Z"}),
    ("series", {"to": "9999-12-31T23:59:59Z", "interval": "hour"}),
    ("series", {"to": "9999-12-31T23:59:59Z"}),
    ("series", {"from": "9999-12-31T23:00:00-05:00", "to": "9999-12-31T23:59:59-14:00"}),
    ("series", {"from": "0001-01-01T00:00:00+14:00", "to": "0001-01-01T10:00:00Z"}),
])
def test_stats_dates_at_the_ends_of_the_calendar_are_400s(client, site, path, params):
    resp = client.simulate_get(f"/api/v1/stats/{path}", params=params, headers=site.read_headers())
    _assert_400(resp)
    assert set(resp.json["fields"]) & {"from", "to"}


@pytest.mark.parametrize("path,params", [
    ("/dashboard/heatmaps", {"to": "0001-01-01T00:00:00Z", "page": "/"}),
    ("/dashboard/heatmaps", {"to": "0001-01-03T00:00:00Z", "page": "/", "range": "7d"}),
    ("/dashboard/heatmaps", {"to": "9999-12-31T23:59:59-14:00", "page": "/"}),
    ("/dashboard/heatmaps/image.png", {"to": "0001-01-01T00:00:00Z", "page": "/"}),
    ("/dashboard/heatmaps/image.png", {"from": "9999-12-31T23:00:00-05:00", "page": "/"}),
])
def test_dashboard_dates_at_the_ends_of_the_calendar_are_400s(client, site, db_url, path, params):
    analyst = logged_in(client, db_url, site.account_id)
    resp = analyst.get(path, **params)
    assert resp.status_code == 400, resp.text[:300]
    twin = analyst.get(path, format="json", **params)
    _assert_400(twin)


def test_sessions_list_dates_at_the_ends_of_the_calendar_are_answered(client, site, db_url):
    for params in ({"to": "0001-01-01T00:00:00Z"}, {"from": "9999-12-31T23:59:59-14:00"},
                   {"from": "0001-01-01T00:00:00+14:00"}):
        resp = client.simulate_get("/api/v1/sessions", params=params, headers=site.read_headers())
        assert resp.status_code in (200, 400), resp.text
    analyst = logged_in(client, db_url, site.account_id)
    page = analyst.get("/dashboard/sessions", format="json", **{"to": "9999-12-31T23:59:59-14:00"})
    assert page.status_code in (200, 400), page.text


# --------------------------------------------------------------------------- finding 4: offsets

def test_event_offsets_beyond_bigint_are_400s(client, site, session_id, db_url):
    huge = str(2 ** 63)
    api = client.simulate_get(f"/api/v1/sessions/{session_id}/events", params={"offset": huge},
                              headers=site.read_headers())
    _assert_400(api, "offset")
    analyst = logged_in(client, db_url, site.account_id)
    twin = analyst.get(f"/dashboard/sessions/{session_id}/events", offset=huge)
    assert twin.status_code == 400 and "offset" in twin.json["fields"], twin.text
    big_limit = analyst.get(f"/dashboard/sessions/{session_id}/events", limit=huge)
    assert big_limit.status_code == 400 and "limit" in big_limit.json["fields"]


# --------------------------------------------------------------------------- finding 4: login `next`

@pytest.mark.parametrize("target", [
    "/dashboard/overview\r\nSet-Cookie: evil=1",
    "/dashboard/sessions\n",
    "//evil.com",
    "/\\evil.com",
    "/dashboard/..//evil.com",
    "/dashboard/../\t/evil.com",
    "/dashboard/\\\\evil.com",
    "https://evil.com/dashboard/",
    "/dashboard/%0d%0aSet-Cookie:x=1",
])
def test_login_next_is_a_same_site_dashboard_path(client, site, db_url, target):
    email = make_user(db_url, site.account_id)
    analyst = Analyst(client, remote_addr=f"192.0.2.{uuid.uuid4().int % 200 + 1}")
    token = analyst.csrf("/dashboard/login")
    result = analyst.post("/dashboard/login", {"email": email, "password": PASSWORD, "csrf_token": token,
                                               "next": target})
    assert result.status_code == 303, result.text[:300]
    location = result.headers["location"]
    parts = urllib.parse.urlsplit(location)
    assert not parts.scheme and not parts.netloc and location.startswith("/dashboard/")
    assert location == "/dashboard/sessions" or location == target
    assert "\r" not in location and "\n" not in location and "\\" not in location
    # The login page's hidden field is as safe as the redirect.
    form = analyst.get("/dashboard/login", next=target)
    assert form.status_code == 200 and 'name="next" value="/dashboard/sessions"' in form.text


def test_login_next_keeps_a_dashboard_path_with_its_query(client, site, db_url):
    email = make_user(db_url, site.account_id)
    analyst = Analyst(client)
    token = analyst.csrf("/dashboard/login")
    result = analyst.post("/dashboard/login", {"email": email, "password": PASSWORD, "csrf_token": token,
                                               "next": "/dashboard/overview?range=24h"})
    assert result.headers["location"] == "/dashboard/overview?range=24h"


# --------------------------------------------------------------------------- finding 4: widget JWT claims

@pytest.mark.parametrize("claim,value", [
    ("domain", 123), ("domain", ["x.example"]), ("domain", None), ("widget_id", 7),
    ("account_id", {"id": 1}), ("domain", "x" * 300),
])
def test_widget_jwt_claims_of_the_wrong_type_are_401s(client, site, pool, claim, value):
    now = datetime.now(UTC)
    claims = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + timedelta(hours=1),
              "widget_id": site.widget_id, "account_id": site.account_id, "domain": site.domain}
    claims[claim] = value
    token = KeyRing(pool).sign(claims)   # validly signed with the instance's key
    resp = client.simulate_get(f"/site/widget/{site.widget_id}/account_statistics",
                               headers={"Authorization": f"Bearer {token}", "Origin": site.origin})
    assert resp.status_code == 401, resp.text
    assert claim in resp.json["description"]


# --------------------------------------------------------------------------- finding 5

@pytest.mark.parametrize("params,field", [
    ({"min_duration": "10000000000000"}, "min_duration"),
    ({"min_duration": "1e300"}, "min_duration"),
    ({"min_events": str(2 ** 63)}, "min_events"),
])
def test_number_filters_are_bounded(client, site, session_id, params, field):
    resp = client.simulate_get("/api/v1/sessions", params=params, headers=site.read_headers())
    _assert_400(resp, field)


def test_a_large_min_duration_matches_nothing_rather_than_everything(client, site, session_id):
    resp = client.simulate_get("/api/v1/sessions", params={"min_duration": str(300 * 24 * 3600)},
                               headers=site.read_headers())
    assert resp.status_code == 200 and resp.json["total"] == 0


def test_dashboard_number_filters_are_bounded(client, site, session_id, db_url):
    analyst = logged_in(client, db_url, site.account_id)
    page = analyst.get("/dashboard/sessions", format="json", min_duration="10000000000000")
    assert page.status_code == 400 and "min_duration" in page.json["errors"]


# --------------------------------------------------------------------------- finding 3: the write window

ANCIENT = "1900-01-01T00:00:00Z"


def _png() -> str:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _seed_event(kind: str, session: str, ts: str) -> dict:
    event = {"cklig-track-user-session": session}
    if kind == "pages":
        event["cklig-track-event-type"] = "PageLoad"
    elif kind == "events":
        event["cklig-track-event-type"] = "Click"
    elif kind == "referrers":
        event["cklig-track-referrer"] = "https://ref.example/"
    return {"timestamp": ts, "event": event}


def _write(client, site, session_id: str, endpoint: str, ts: str):
    """One write to `endpoint` carrying the timestamp `ts`; returns (response, field)."""
    headers = site.write_headers()
    if endpoint == "track":
        return client.simulate_post("/api/v1/track", headers=headers, json={
            "session_id": session_id, "events": [{"seq": 0, "timestamp": ts, "event_type": "click"}]}), "events"
    if endpoint == "screenshot":
        return client.simulate_post("/api/v1/track/screenshot", headers=headers, json={
            "session_id": session_id, "timestamp": ts, "image_data": _png(), "width": 8, "height": 8}), "timestamp"
    if endpoint == "sessions":
        return client.simulate_post("/api/v1/sessions", headers=headers, json={
            "started_at": ts, "page_url": f"{site.origin}/"}), "started_at"
    if endpoint == "seed-sessions":
        return client.simulate_post("/api/sessions/add", headers=headers, json={
            "type": "sessions-added", "timestamp": ts,
            "event": {"cklig-track-user-session": f"s-{uuid.uuid4().hex}"}}), "timestamp"
    kind = endpoint.removeprefix("seed-")
    return client.simulate_post(f"/api/{kind}/add", headers=headers,
                                json=_seed_event(kind, session_id, ts)), "timestamp"


WRITE_ENDPOINTS = ("track", "screenshot", "sessions", "seed-sessions", "seed-pages", "seed-events",
                   "seed-referrers")


@pytest.mark.parametrize("endpoint", WRITE_ENDPOINTS)
@pytest.mark.parametrize("when", ["ancient", "year-and-a-day", "future", "year-0001"])
def test_every_write_refuses_timestamps_outside_the_window(client, site, session_id, db_url, endpoint, when):
    ts = {"ancient": ANCIENT, "year-and-a-day": now_iso(-367 * 86400), "future": now_iso(7200),
          "year-0001": "0001-01-01T00:00:00Z"}[when]
    with connect(db_url) as conn:
        before = conn.execute("SELECT (SELECT count(*) FROM sessions WHERE account_id = %(a)s) AS sessions, "
                              "(SELECT count(*) FROM events WHERE account_id = %(a)s) AS events, "
                              "(SELECT count(*) FROM screenshots WHERE account_id = %(a)s) AS shots",
                              {"a": site.account_id}).fetchone()
    resp, field = _write(client, site, session_id, endpoint, ts)
    _assert_400(resp, field)
    message = str(resp.json["fields"][field])
    assert ("future" in message) == (when == "future"), message
    with connect(db_url) as conn:
        after = conn.execute("SELECT (SELECT count(*) FROM sessions WHERE account_id = %(a)s) AS sessions, "
                             "(SELECT count(*) FROM events WHERE account_id = %(a)s) AS events, "
                             "(SELECT count(*) FROM screenshots WHERE account_id = %(a)s) AS shots",
                             {"a": site.account_id}).fetchone()
    assert after == before


@pytest.mark.parametrize("endpoint", WRITE_ENDPOINTS)
def test_every_write_accepts_the_edges_of_the_window(client, site, session_id, endpoint):
    for ts in (now_iso(-365 * 86400), now_iso(3000)):
        resp, _ = _write(client, site, session_id, endpoint, ts)
        assert resp.status_code in (200, 201), (endpoint, ts, resp.json)


def test_a_session_start_in_the_window_is_stored_as_given(client, site):
    later = now_iso(1800)   # a client clock half an hour fast: kept, not moved to "now"
    resp = client.simulate_post("/api/v1/sessions", headers=site.write_headers(), json={"started_at": later})
    assert resp.status_code == 201
    assert datetime.fromisoformat(resp.json["started_at"]) == datetime.fromisoformat(later)
    seed = client.simulate_post("/api/sessions/add", headers=site.write_headers(), json={
        "type": "sessions-added", "timestamp": later, "event": {"cklig-track-user-session": "fast-clock"}})
    assert seed.status_code == 201
    assert datetime.fromisoformat(seed.json["started_at"]) == datetime.fromisoformat(later)


def test_the_window_is_one_function():
    from hindsight.ingestion import window
    from hindsight.resources import seed_events, sessions, track

    for module in (seed_events, sessions, track):
        assert not hasattr(module, "MAX_FUTURE") and not hasattr(module, "MAX_PAST"), module.__name__
    now = datetime(2026, 6, 1, tzinfo=UTC)
    window.check_window(now - timedelta(days=366), now)
    window.check_window(now + timedelta(hours=1), now, "started_at")
    with pytest.raises(Exception) as refused:
        window.check_window(now - timedelta(days=366, seconds=1), now, "started_at")
    assert refused.value.messages == {"started_at": ["More than a year old."]}


def _chunks(db_url: str) -> int:
    with connect(db_url) as conn:
        return conn.execute("SELECT count(*) AS n FROM timescaledb_information.chunks "
                            "WHERE hypertable_name = 'events'").fetchone()["n"]


def test_a_hundred_ancient_timestamps_create_no_chunk(client, site, db_url):
    started = client.simulate_post("/api/sessions/add", headers=site.write_headers(), json={
        "type": "sessions-added", "timestamp": now_iso(), "event": {"cklig-track-user-session": "old-clock"}})
    assert started.status_code == 201
    before = _chunks(db_url)
    kinds = ("pages", "events", "referrers")
    for i in range(100):
        ts = (datetime(1900, 1, 1, tzinfo=UTC) + timedelta(weeks=i)).isoformat()
        kind = kinds[i % 3]
        resp = client.simulate_post(f"/api/{kind}/add", headers=site.write_headers(),
                                    json=_seed_event(kind, "old-clock", ts))
        assert resp.status_code == 400, resp.json
    assert _chunks(db_url) == before


# --------------------------------------------------------------------------- finding 7: lockouts

def _address() -> str:
    n = uuid.uuid4().int
    return f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}"


def test_an_attacker_elsewhere_cannot_lock_the_real_user_out(client, site, db_url, settings, caplog):
    email = make_user(db_url, site.account_id)
    attacker = Analyst(client, remote_addr=_address())
    caplog.set_level(logging.WARNING, logger="hindsight.dashboard")
    for _ in range(settings.login_failures_per_email):
        assert attacker.login(email, "wrong password!").status_code == 401
    assert attacker.login(email, PASSWORD).status_code == 429      # this address is locked out
    lock_lines = [r.getMessage() for r in caplog.records if "locked out" in r.getMessage()]
    assert len(lock_lines) == 1 and email in lock_lines[0] and "users unlock" in lock_lines[0]
    assert Analyst(client, remote_addr=_address()).login(email).status_code == 303   # the real user is not


def test_many_addresses_lock_an_email_everywhere_and_the_cli_lifts_it(client, site, db_url, monkeypatch, capsys):
    email = make_user(db_url, site.account_id)
    now = datetime.now(UTC)
    with connect(db_url) as conn:   # a distributed guess: a few failures from each of many addresses
        for i in range(login_limits.FAILURES_PER_EMAIL_FROM_ALL_ADDRESSES):
            login_limits.record_failure(conn, email, f"botnet-{i}".encode(), now)
    assert Analyst(client, remote_addr=_address()).login(email).status_code == 429
    monkeypatch.setenv("HINDSIGHT_DATABASE_URL", db_url)
    assert cli.main(["users", "unlock", email.upper()]) == 0
    out = capsys.readouterr().out
    assert email in out and f'"failures_cleared": {login_limits.FAILURES_PER_EMAIL_FROM_ALL_ADDRESSES}' in out
    assert Analyst(client, remote_addr=_address()).login(email).status_code == 303
    assert cli.main(["users", "unlock", "nobody-here@example.org"]) == 0
    assert '"failures_cleared": 0' in capsys.readouterr().out


def test_cli_unlock_lifts_a_per_address_lockout(client, site, db_url, settings, monkeypatch, capsys):
    email = make_user(db_url, site.account_id)
    attacker = Analyst(client, remote_addr=_address())
    for _ in range(settings.login_failures_per_email):
        attacker.login(email, "wrong password!")
    assert attacker.login(email).status_code == 429
    monkeypatch.setenv("HINDSIGHT_DATABASE_URL", db_url)
    assert cli.main(["users", "unlock", email]) == 0
    assert attacker.login(email).status_code == 303


def test_lockouts_are_shown_on_the_account_page(client, site, db_url, settings):
    locked = make_user(db_url, site.account_id)
    fine = make_user(db_url, site.account_id)
    attacker = Analyst(client, remote_addr=_address())
    for _ in range(settings.login_failures_per_email):
        attacker.login(locked, "wrong password!")
    admin = logged_in(client, db_url, site.account_id, admin=True)
    view = admin.get("/dashboard/account", format="json").json
    users = {u["email"]: u for u in view["users"]}
    assert users[locked]["failures"] == settings.login_failures_per_email
    assert users[locked]["locked_addresses"] == 1 and not users[locked]["locked_everywhere"]
    assert users[locked]["locked_until"] is not None
    assert users[fine]["failures"] == 0 and users[fine]["locked_until"] is None
    page = admin.get("/dashboard/account")
    assert "login lockouts" in page.text and locked in page.text and "users unlock" in page.text
    # An admin can lift it from the page, too (with the session's CSRF token).
    user_id = users[locked]["user_id"]
    lifted = admin.post(f"/dashboard/account/users/{user_id}/unlock", {"csrf_token": admin.csrf("/dashboard/account")})
    assert lifted.status_code == 303
    assert attacker.login(locked).status_code == 303
    # Not without the token, and not by a user who is not an admin.
    analyst = logged_in(client, db_url, site.account_id)
    refused = analyst.post(f"/dashboard/account/users/{user_id}/unlock",
                           {"csrf_token": analyst.csrf("/dashboard/account")})
    assert refused.status_code == 403
    assert admin.post(f"/dashboard/account/users/{user_id}/unlock", {"csrf_token": "nope"}).status_code == 403


def test_another_accounts_users_are_not_listed(client, site, make_site, db_url):
    other = make_site()
    stranger = make_user(db_url, other.account_id)
    admin = logged_in(client, db_url, site.account_id, admin=True)
    emails = {u["email"] for u in admin.get("/dashboard/account", format="json").json["users"]}
    assert stranger not in emails
    with connect(db_url) as conn:
        stranger_id = conn.execute("SELECT user_id FROM dashboard_users WHERE email = %s",
                                   (stranger,)).fetchone()["user_id"]
    # Unlocking works on the users of the account the admin is looking at.
    resp = admin.post(f"/dashboard/account/users/{stranger_id}/unlock",
                      {"csrf_token": admin.csrf("/dashboard/account")})
    assert resp.status_code == 404
