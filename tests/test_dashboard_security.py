"""Dashboard security: who can see what, CSRF, escaping, cookies, login rate limits, users."""

from __future__ import annotations

import io
import sys
import uuid
from datetime import UTC, datetime, timedelta

import falcon.testing
import pytest
from dashboard_support import PASSWORD, Analyst, logged_in, make_user, record_session

from conftest import new_account, token_flow
from hindsight import cli
from hindsight.app import create_app
from hindsight.db import connect
from hindsight.logins import passwords

XSS = "<script>alert('xss')</script>"


class _Site:
    def __init__(self, client, db_url):
        account = new_account(db_url)
        self.account_id, self.domain = account["account_id"], account["domain"]
        self.origin = f"https://{account['domain']}"
        self._token = token_flow(client, account, self.origin)

    def write_headers(self):
        return {"Authorization": f"Bearer {self._token}", "Origin": self.origin}


@pytest.fixture(scope="module")
def tc(app):
    return falcon.testing.TestClient(app)


@pytest.fixture(scope="module")
def victim(tc, db_url):
    """Account A, with a session whose URL and texts carry markup, and a screenshot."""
    import base64

    from PIL import Image

    site = _Site(tc, db_url)
    start = datetime.now(UTC) - timedelta(minutes=30)
    evil_url = f"{site.origin}/{XSS}?q=\"><img src=x onerror=alert(1)>"
    session_id = record_session(tc, site, [
        {"event_type": "page_view", "at": 0, "page_url": evil_url},
        {"event_type": "click", "at": 1, "viewport_x": 10, "viewport_y": 10, "page_url": evil_url,
         "target_selector": f"button{XSS}", "event_data": {"text": XSS}},
        {"event_type": "error", "at": 2, "page_url": evil_url, "event_data": {"message": XSS}},
    ], start=start, page_url=evil_url, user_id=XSS, referrer=f"https://ref.example/{XSS}",
        browser=XSS)
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (1, 2, 3)).save(buf, "PNG")
    shot = tc.simulate_post("/api/v1/track/screenshot", headers=site.write_headers(), json={
        "session_id": session_id, "page_url": evil_url, "timestamp": (start + timedelta(seconds=1)).isoformat(),
        "image_data": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode(),
        "width": 32, "height": 32})
    assert shot.status_code == 201, shot.json
    return {"site": site, "session_id": session_id, "screenshot_id": shot.json["screenshot_id"],
            "path": f"/{XSS}"}


def pages(v) -> list[tuple[str, dict]]:
    """Every dashboard page and JSON twin, for account A's data."""
    sid, shot = v["session_id"], v["screenshot_id"]
    return [
        ("/dashboard/sessions", {}), ("/dashboard/sessions", {"format": "json"}),
        (f"/dashboard/sessions/{sid}", {}), (f"/dashboard/sessions/{sid}", {"format": "json"}),
        (f"/dashboard/sessions/{sid}/events", {}), (f"/dashboard/screenshots/{shot}", {}),
        ("/dashboard/overview", {}), ("/dashboard/overview", {"format": "json"}),
        ("/dashboard/live", {}), ("/dashboard/live", {"format": "json"}),
        ("/dashboard/heatmaps", {"page": "/"}), ("/dashboard/heatmaps", {"page": "/", "format": "json"}),
        ("/dashboard/heatmaps/image.png", {"page": "/"}),
        ("/dashboard/account", {}), ("/dashboard/account", {"format": "json"}),
    ]


def test_logged_out_visitors_get_nothing(tc, victim):
    anonymous = Analyst(tc)
    for path, params in pages(victim):
        result = anonymous.get(path, **params)
        if params.get("format") == "json" or path.endswith(("/events", ".png")) or "/screenshots/" in path:
            assert result.status_code == 401, (path, params, result.status_code)
            assert result.json["error"] == "Unauthorized"
        else:
            assert result.status_code == 303, (path, params, result.status_code)
            assert result.headers["location"].startswith("/dashboard/login?next=")
        assert victim["session_id"].encode() not in result.content
    for path in ("/dashboard/logout", "/dashboard/account/keys", "/dashboard/switch-account"):
        assert anonymous.post(path, {"csrf_token": "x"}).status_code == 303


def test_another_accounts_user_sees_none_of_it(tc, db_url, victim):
    other = _Site(tc, db_url)
    record_session(tc, other, [{"event_type": "page_view", "at": 0}])
    intruder = logged_in(tc, db_url, other.account_id)
    for path, params in pages(victim):
        result = intruder.get(path, **params)
        assert result.status_code in (200, 404), (path, params, result.status_code)
        assert victim["session_id"].encode() not in result.content, (path, params)
        assert victim["site"].domain.encode() not in result.content, (path, params)
    sid = victim["session_id"]
    assert intruder.get(f"/dashboard/sessions/{sid}").status_code == 404
    assert intruder.get(f"/dashboard/sessions/{sid}", format="json").status_code == 404
    assert intruder.get(f"/dashboard/sessions/{sid}/events").status_code == 404
    assert intruder.get(f"/dashboard/screenshots/{victim['screenshot_id']}").status_code == 404
    listed = intruder.get("/dashboard/sessions", format="json").json
    assert listed["total"] == 1 and listed["data"][0]["session_id"] != sid
    heat = intruder.get("/dashboard/heatmaps", page=victim["path"], format="json").json
    assert heat["heatmap"]["clicks"] == 0 and heat["heatmap"]["screenshot"] is None
    # A non-admin cannot switch to the victim's account, even with a valid CSRF token.
    refused = intruder.post("/dashboard/switch-account", {"csrf_token": intruder.csrf(),
                                                          "account_id": victim["site"].account_id})
    assert refused.status_code == 403
    assert intruder.get("/dashboard/sessions", format="json").json["total"] == 1


def test_an_admin_can_switch_accounts(tc, db_url, victim):
    home = _Site(tc, db_url)
    admin = logged_in(tc, db_url, home.account_id, admin=True)
    assert admin.get("/dashboard/sessions", format="json").json["total"] == 0
    assert victim["site"].account_id in admin.get("/dashboard/account").text   # in the switcher
    switched = admin.post("/dashboard/switch-account", {"csrf_token": admin.csrf(),
                                                        "account_id": victim["site"].account_id,
                                                        "next": "/dashboard/sessions"})
    assert switched.status_code == 303
    listed = admin.get("/dashboard/sessions", format="json").json
    assert [r["session_id"] for r in listed["data"]] == [victim["session_id"]]
    assert admin.post("/dashboard/switch-account", {"csrf_token": admin.csrf(),
                                                    "account_id": str(uuid.uuid4())}).status_code == 403


def test_markup_from_the_recording_is_shown_as_text(tc, db_url, victim):
    analyst = logged_in(tc, db_url, victim["site"].account_id)
    for path, params in (("/dashboard/sessions", {}), (f"/dashboard/sessions/{victim['session_id']}", {}),
                         ("/dashboard/heatmaps", {"page": victim["path"]}), ("/dashboard/overview", {}),
                         ("/dashboard/live", {})):
        html = analyst.get(path, **params).text
        assert "<script>alert" not in html, path
        assert "onerror=alert(1)>" not in html.replace("onerror=alert(1)&gt;", ""), path
    listing = analyst.get("/dashboard/sessions").text
    assert "&lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt;" in listing      # shown, as text
    replay = analyst.get(f"/dashboard/sessions/{victim['session_id']}").text
    assert "&lt;script&gt;" in replay and "https://ref.example/&lt;script&gt;" in replay
    # Page text from the JSON twin is data; the player sets it with textContent (see the browser test).
    data = analyst.get(f"/dashboard/sessions/{victim['session_id']}", format="json")
    assert data.headers["content-type"].startswith("application/json")
    assert data.json["markers"][2]["detail"] == XSS


def test_forms_without_a_valid_csrf_token_are_refused(tc, db_url, victim):
    analyst = logged_in(tc, db_url, victim["site"].account_id)
    keys_before = len(analyst.get("/dashboard/account", format="json").json["api_keys"])
    other = logged_in(tc, db_url, victim["site"].account_id)
    foreign_token = other.csrf()
    for token in (None, "", "forged", foreign_token):
        form = {} if token is None else {"csrf_token": token}
        assert analyst.post("/dashboard/account/keys", form).status_code == 403
        assert analyst.post("/dashboard/logout", form).status_code == 403
        assert analyst.post("/dashboard/switch-account",
                            {**form, "account_id": victim["site"].account_id}).status_code == 403
    assert len(analyst.get("/dashboard/account", format="json").json["api_keys"]) == keys_before
    assert analyst.get("/dashboard/sessions").status_code == 200   # still logged in
    # The login form: its token must match the cookie set with it.
    email = make_user(db_url, victim["site"].account_id)
    fresh = Analyst(tc)
    token = fresh.csrf("/dashboard/login")
    fresh.cookies.clear()
    assert fresh.post("/dashboard/login", {"email": email, "password": PASSWORD,
                                           "csrf_token": token}).status_code == 403
    fresh.csrf("/dashboard/login")
    assert fresh.post("/dashboard/login", {"email": email, "password": PASSWORD,
                                           "csrf_token": "forged"}).status_code == 403
    assert "hs_session" not in fresh.cookies


def test_forms_are_read_by_falcons_urlencoded_handler(tc, db_url, victim):
    """web.form parses through req.get_media(): a field sent twice keeps its first value,
    and a body a browser would never send (raw non-ASCII) is a 400 that says so."""
    analyst = logged_in(tc, db_url, victim["site"].account_id)
    token = analyst.csrf()

    def post_raw(body: bytes):
        return tc.simulate_post("/dashboard/logout", body=body, cookies=analyst.cookies,
                                headers={"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"})

    raw = post_raw("csrf_token=é".encode())
    assert raw.status_code == 400, raw.text[:300]
    assert "The form is not valid URL-encoded text." in raw.text
    assert post_raw(f"csrf_token=forged&csrf_token={token}".encode()).status_code == 403
    assert analyst.get("/dashboard/sessions").status_code == 200   # still logged in
    out = post_raw(f"csrf_token={token}&csrf_token=forged&unused=".encode())
    assert out.status_code == 303
    assert analyst.get("/dashboard/sessions").status_code == 303   # logged out: to the login page


def test_session_cookie_flags_and_logout(tc, db_url, victim, settings, pool):
    email = make_user(db_url, victim["site"].account_id)
    analyst = Analyst(tc)
    result = analyst.login(email)
    assert result.status_code == 303 and result.headers["location"] == "/dashboard/sessions"
    cookie = result.cookies["hs_session"]
    assert cookie.http_only and cookie.same_site.lower() == "lax" and cookie.path == "/dashboard"
    assert not cookie.secure                              # plain HTTP here
    with connect(db_url) as conn:
        stored = conn.execute("SELECT token_hash FROM dashboard_sessions").fetchall()
    assert all(bytes(r["token_hash"]) != cookie.value.encode() for r in stored)  # only a hash is kept
    token = analyst.cookies["hs_session"]
    out = analyst.post("/dashboard/logout", {"csrf_token": analyst.csrf()})
    assert out.status_code == 303 and "hs_session" not in analyst.cookies
    replayed = Analyst(tc)
    replayed.cookies["hs_session"] = token                # the old cookie is dead server-side
    assert replayed.get("/dashboard/sessions").status_code == 303
    # Over HTTPS the cookies are Secure.
    https = falcon.testing.TestClient(create_app(settings.with_(public_url="https://hindsight.example"), pool))
    secure = Analyst(https).login(email)
    assert secure.status_code == 303 and secure.cookies["hs_session"].secure


def test_login_redirects_only_inside_the_dashboard(tc, db_url, victim):
    email = make_user(db_url, victim["site"].account_id)
    for target, expected in (("https://evil.example/", "/dashboard/sessions"),
                             ("//evil.example/x", "/dashboard/sessions"),
                             ("/dashboard/overview?range=24h", "/dashboard/overview?range=24h")):
        analyst = Analyst(tc)
        token = analyst.csrf("/dashboard/login")
        result = analyst.post("/dashboard/login", {"email": email, "password": PASSWORD, "csrf_token": token,
                                                   "next": target})
        assert result.headers["location"] == expected


def test_failed_logins_are_rate_limited_per_email_and_per_address(tc, db_url, victim, settings, pool):
    email = make_user(db_url, victim["site"].account_id)
    attacker = Analyst(tc, remote_addr="203.0.113.7")
    for _ in range(settings.login_failures_per_email):
        assert attacker.login(email, "wrong password!").status_code == 401
    limited = attacker.login(email, PASSWORD)                # even the right password now
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) > 0
    assert "Too many failed logins" in limited.text
    # Counted in the database: another process (a new app) refuses that address too...
    other_process = falcon.testing.TestClient(create_app(settings, pool))
    assert Analyst(other_process, remote_addr="203.0.113.7").login(email).status_code == 429
    # ...but not the real user at their own address (tests/test_hardening_inputs.py: lockouts).
    assert Analyst(other_process, remote_addr="198.51.100.1").login(email).status_code == 303
    # Per address: many e-mails from one address.
    sprayer = Analyst(tc, remote_addr="203.0.113.99")
    for i in range(settings.login_failures_per_ip):
        assert sprayer.login(f"nobody{i}@example.org", "guess").status_code == 401
    victim_email = make_user(db_url, victim["site"].account_id)
    assert sprayer.login(victim_email).status_code == 429
    assert Analyst(tc, remote_addr="192.0.2.1").login(victim_email).status_code == 303


def test_passwords_are_scrypt_hashes(db_url, victim):
    email = make_user(db_url, victim["site"].account_id)
    with connect(db_url) as conn:
        stored = conn.execute("SELECT password_hash FROM dashboard_users WHERE email = %s", (email,)).fetchone()
    assert stored["password_hash"].startswith("scrypt$15$8$1$") and PASSWORD not in stored["password_hash"]
    assert passwords.verify_password(PASSWORD, stored["password_hash"])
    assert not passwords.verify_password(PASSWORD + "x", stored["password_hash"])
    assert passwords.hash_password(PASSWORD) != stored["password_hash"]   # salted


def test_cli_creates_users(db_url, victim, monkeypatch, capsys, tc):
    monkeypatch.setenv("HINDSIGHT_DATABASE_URL", db_url)
    email = f"Cli-{uuid.uuid4().hex[:6]}@Example.org"
    monkeypatch.setattr(sys, "stdin", io.StringIO("a long enough password\n"))
    assert cli.main(["users", "create", "--email", email, "--account", victim["site"].account_id,
                     "--admin", "--password-stdin"]) == 0
    assert f'"email": "{email.lower()}"' in capsys.readouterr().out
    assert Analyst(tc).login(email.lower(), "a long enough password").status_code == 303
    monkeypatch.setattr(sys, "stdin", io.StringIO("a long enough password\n"))
    assert cli.main(["users", "create", "--email", email, "--account", victim["site"].account_id,
                     "--password-stdin"]) == 2
    assert "already exists" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert cli.main(["users", "create", "--email", "x@example.org", "--account",
                     victim["site"].account_id, "--password-stdin"]) == 2
    assert "at least" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", io.StringIO("a long enough password\n"))
    assert cli.main(["users", "create", "--email", "y@example.org", "--account", str(uuid.uuid4()),
                     "--password-stdin"]) == 2
