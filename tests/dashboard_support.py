"""Helpers for the dashboard tests: dashboard users, a cookie-keeping client that logs in
through the real form, and sessions recorded through the real ingestion API."""

from __future__ import annotations

import re
import urllib.parse
import uuid
from datetime import UTC, datetime, timedelta

from hindsight.db import connect
from hindsight.logins.users import create_user

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def make_user(db_url: str, account_id: str, admin: bool = False, password: str = PASSWORD) -> str:
    email = f"analyst-{uuid.uuid4().hex[:10]}@example.org"
    with connect(db_url) as conn:
        create_user(conn, email, password, uuid.UUID(str(account_id)), admin)
    return email


class Analyst:
    """A browser's view of the dashboard over falcon's TestClient: cookies kept between requests."""

    def __init__(self, client, remote_addr: str = "127.0.0.1") -> None:
        self.client = client
        self.cookies: dict[str, str] = {}
        self.remote_addr = remote_addr

    def _keep(self, result) -> None:
        for name, cookie in result.cookies.items():
            if cookie.value == "" or (cookie.max_age is not None and cookie.max_age <= 0):
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = cookie.value

    def get(self, path: str, **params):
        query = urllib.parse.urlencode(params)
        result = self.client.simulate_get(path, query_string=query or None, cookies=self.cookies,
                                          remote_addr=self.remote_addr)
        self._keep(result)
        return result

    def post(self, path: str, form: dict[str, str]):
        result = self.client.simulate_post(
            path, body=urllib.parse.urlencode(form), cookies=self.cookies,
            headers={"Content-Type": "application/x-www-form-urlencoded"}, remote_addr=self.remote_addr)
        self._keep(result)
        return result

    def csrf(self, path: str = "/dashboard/sessions") -> str:
        page = self.get(path)
        found = CSRF.search(page.text)
        assert found, f"no CSRF token on {path}: {page.status} {page.text[:300]}"
        return found.group(1)

    def login(self, email: str, password: str = PASSWORD):
        token = self.csrf("/dashboard/login")
        return self.post("/dashboard/login", {"email": email, "password": password, "csrf_token": token,
                                              "next": "/dashboard/sessions"})


def logged_in(client, db_url: str, account_id: str, admin: bool = False) -> Analyst:
    analyst = Analyst(client)
    result = analyst.login(make_user(db_url, account_id, admin))
    assert result.status_code == 303, result.text
    return analyst


def iso(t: datetime) -> str:
    return t.astimezone(UTC).isoformat()


def record_session(client, site, events: list[dict], *, start: datetime | None = None,
                   page_url: str | None = None, **session_fields) -> str:
    """Create a session and send its events (each: type + offset seconds + fields) via the API."""
    start = start or datetime.now(UTC) - timedelta(minutes=10)
    body = {"page_url": page_url or f"{site.origin}/", "started_at": iso(start), **session_fields}
    resp = client.simulate_post("/api/v1/sessions", json=body, headers=site.write_headers())
    assert resp.status_code == 201, resp.json
    session_id = resp.json["session_id"]
    batch = []
    for seq, event in enumerate(events):
        event = dict(event)
        offset = event.pop("at", seq)
        batch.append({"seq": seq, "timestamp": iso(start + timedelta(seconds=offset)),
                      "page_url": event.pop("page_url", page_url or f"{site.origin}/"), **event})
    for i in range(0, len(batch), 100):
        resp = client.simulate_post("/api/v1/track", json={"session_id": session_id, "events": batch[i:i + 100]},
                                    headers=site.write_headers())
        assert resp.status_code in (200, 201), resp.json
    return session_id
