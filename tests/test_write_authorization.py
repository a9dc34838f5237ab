"""Who may write is decided once (hindsight.queries.writers.WRITER): every case through both
ways a batch is stored, and through every write endpoint.

- The first batch of new events takes the fast path: one statement that authorizes and
  stores (INSERT_NEW_BATCH_AUTHORIZED).
- A re-sent batch (some events stored before) takes the step-by-step path: the same
  checks read back, then INSERT ... ON CONFLICT DO NOTHING.

A spy on the step-by-step path checks that each batch really went the way it should.
"""

from __future__ import annotations

import base64
import io
import json
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from PIL import Image

from conftest import now_iso
from hindsight.db import connect
from hindsight.ingestion import batches


@pytest.fixture
def paths(monkeypatch):
    """Records which path stored (or refused) each batch: 'step' when the step-by-step
    path ran, 'fast' when the fast path alone answered."""
    taken: list[str] = []
    original = batches._store_step_by_step

    def step_by_step(*args, **kwargs):
        taken.append("step")
        return original(*args, **kwargs)

    monkeypatch.setattr(batches, "_store_step_by_step", step_by_step)
    return taken


# A re-sent event is the same (seq, timestamp): one instant for the whole module.
BASE = datetime.now(UTC)


def _events(*seqs: int, page_url: str | None = None) -> list[dict]:
    return [{"seq": s, "timestamp": (BASE + timedelta(milliseconds=s)).isoformat(), "event_type": "click",
             **({"page_url": page_url} if page_url else {})} for s in seqs]


def _sql(db_url: str, statement: str, *params) -> None:
    with connect(db_url) as conn:
        conn.execute(statement, params)
        conn.commit()


def _stored(db_url: str, session_id: str) -> list[dict]:
    with connect(db_url) as conn:
        return conn.execute("SELECT seq, page_url FROM events WHERE session_id = %s ORDER BY seq",
                            (session_id,)).fetchall()


def _session(client, site) -> str:
    resp = client.simulate_post("/api/v1/sessions", json={}, headers=site.write_headers())
    assert resp.status_code == 201, resp.json
    return resp.json["session_id"]


def test_both_paths_are_built_from_one_list_of_checks():
    from hindsight.queries import events, writers

    assert writers.AUTHORIZED_WRITER in events.INSERT_NEW_BATCH_AUTHORIZED
    for column, condition in writers.CHECKS:
        assert condition in writers.AUTHORIZED_WRITER                # the fast path's WHERE
        assert f"{condition} AS {column}" in writers.WRITER          # the step-by-step path's row


# Each case: how the world changes after a first batch was stored, the headers and session
# of the next two batches, and the answer both must get.
def _unknown_token(db_url, site, sid, other):
    return {"Authorization": f"Bearer {uuid.uuid4()}", "Origin": site.origin}, sid


def _revoked(db_url, site, sid, other):
    _sql(db_url, "UPDATE statistics_tokens SET revoked_at = now() WHERE token = %s", site.token)
    return site.write_headers(), sid


def _expired(db_url, site, sid, other):
    _sql(db_url, "UPDATE statistics_tokens SET expires_at = now() - interval '1 second' WHERE token = %s",
         site.token)
    return site.write_headers(), sid


def _account_disabled(db_url, site, sid, other):
    _sql(db_url, "UPDATE accounts SET active = false WHERE account_id = %s", site.account_id)
    return site.write_headers(), sid


def _switched_off(db_url, site, sid, other):
    _sql(db_url, "UPDATE statistics_flags SET enabled = false WHERE account_id = %s", site.account_id)
    return site.write_headers(), sid


def _switched_off_and_revoked(db_url, site, sid, other):
    # As the usage limit does: 403 (stop), not 401 (fetch a new token).
    _sql(db_url, "UPDATE statistics_flags SET enabled = false WHERE account_id = %s", site.account_id)
    _sql(db_url, "UPDATE statistics_tokens SET revoked_at = now() WHERE token = %s", site.token)
    return site.write_headers(), sid


def _other_origin(db_url, site, sid, other):
    return {"Authorization": f"Bearer {site.token}", "Origin": f"https://bad{site.domain}"}, sid


def _unreadable_origin(db_url, site, sid, other):
    return {"Authorization": f"Bearer {site.token}", "Origin": "null"}, sid


def _unknown_session(db_url, site, sid, other):
    return site.write_headers(), str(uuid.uuid4())


def _other_accounts_session(db_url, site, sid, other):
    return site.write_headers(), other


REFUSALS = [
    (_unknown_token, 401, "Unknown statistics token"),
    (_revoked, 401, "revoked"),
    (_expired, 401, "expired"),
    (_account_disabled, 403, "account is disabled"),
    (_switched_off, 403, "Statistics are disabled"),
    (_switched_off_and_revoked, 403, "Statistics are disabled"),
    (_other_origin, 403, "not for this origin"),
    (_unreadable_origin, 403, "not for this origin"),
    (_unknown_session, 404, "No such session"),
    (_other_accounts_session, 404, "No such session"),
]


@pytest.mark.parametrize("change,status,why", REFUSALS, ids=[c[0].__name__.strip("_") for c in REFUSALS])
def test_every_refusal_is_the_same_on_both_paths(client, make_site, db_url, paths, change, status, why):
    site, other_site = make_site(), make_site()
    sid, other = _session(client, site), _session(client, other_site)
    first = client.simulate_post("/api/v1/track", json={"session_id": sid, "events": _events(0, 1)},
                                 headers=site.write_headers())
    assert first.status_code == 201 and first.json["count"] == 2 and paths == []  # fast path
    headers, target = change(db_url, site, sid, other)

    new = client.simulate_post("/api/v1/track", json={"session_id": target, "events": _events(5, 6)},
                               headers=headers)
    resent = client.simulate_post("/api/v1/track", json={"session_id": target, "events": _events(1, 2)},
                                  headers=headers)
    for resp in (new, resent):
        assert resp.status_code == status, resp.json
        assert why in resp.json["description"]
    # The fast path stored neither; the step-by-step path explained both.
    assert paths == ["step", "step"]
    assert [r["seq"] for r in _stored(db_url, sid)] == [0, 1]
    assert _stored(db_url, other) == []


ACCEPTED = [
    ("registered domain", lambda site: {"Origin": site.origin}),
    ("subdomain", lambda site: {"Origin": f"https://shop.{site.domain}"}),
    ("no Origin (a server)", lambda site: {}),
    ("unreadable Origin, Referer covered", lambda site: {"Origin": "null", "Referer": f"{site.origin}/page"}),
    ("token in the body (sendBeacon)", None),
]


@pytest.mark.parametrize("name,origin", ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_every_acceptance_is_the_same_on_both_paths(client, site, db_url, paths, name, origin):
    sid = _session(client, site)
    if origin is None:
        headers = {"Origin": site.origin, "Content-Type": "text/plain"}
        token = {"token": site.token}
    else:
        headers = {"Authorization": f"Bearer {site.token}", **origin(site)}
        token = {}
    new = client.simulate_post("/api/v1/track", json={"session_id": sid, "events": _events(0, 1), **token},
                               headers=headers)
    assert new.status_code == 201 and new.json["count"] == 2, new.json
    assert paths == []  # the fast path stored it
    resent = client.simulate_post("/api/v1/track", json={"session_id": sid, "events": _events(1, 2), **token},
                                  headers=headers)
    assert resent.status_code == 201 and resent.json == {"count": 1, "received": 2}
    assert paths == ["step"]
    assert [r["seq"] for r in _stored(db_url, sid)] == [0, 1, 2]
    if headers.get("Origin"):  # the page that sent it may read the answer
        assert resent.headers["access-control-allow-origin"] == headers["Origin"]


def test_query_strings_are_stripped_on_both_paths(client, site, db_url, paths):
    _sql(db_url, "UPDATE domains SET strip_query_strings = true WHERE name = %s", site.domain)
    sid = _session(client, site)
    url = f"{site.origin}/checkout?email=a@b.example&token=secret#step-2"
    first = client.simulate_post("/api/v1/track", json={"session_id": sid, "events": _events(0, page_url=url)},
                                 headers=site.write_headers())
    assert first.status_code == 201 and paths == []
    resent = client.simulate_post("/api/v1/track", headers=site.write_headers(),
                                  json={"session_id": sid, "events": _events(0, 1, page_url=url)})
    assert resent.json["count"] == 1 and paths == ["step"]
    assert _stored(db_url, sid) == [{"seq": 0, "page_url": f"{site.origin}/checkout"},
                                    {"seq": 1, "page_url": f"{site.origin}/checkout"}]


def test_query_strings_are_kept_when_the_domain_does_not_ask(client, site, db_url, paths):
    sid = _session(client, site)
    url = f"{site.origin}/search?q=shoes"
    client.simulate_post("/api/v1/track", json={"session_id": sid, "events": _events(0, page_url=url)},
                         headers=site.write_headers())
    client.simulate_post("/api/v1/track", json={"session_id": sid, "events": _events(0, 1, page_url=url)},
                         headers=site.write_headers())
    assert paths == ["step"]
    assert [r["page_url"] for r in _stored(db_url, sid)] == [url, url]


# --------------------------------------------------------------------------- every write endpoint

def _png() -> str:
    buf = io.BytesIO()
    Image.new("RGB", (4, 3), (10, 20, 30)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _seed_event(session: str, url: str) -> dict:
    return {"type": "pages-added", "timestamp": now_iso(), "event": {
        "cklig-track-user-session": session, "cklig-track-event-type": "PageLoad",
        "cklig-track-event-page-url": url}}


def _writes(site, sid: str, url: str) -> dict[str, tuple[str, dict]]:
    """One request per write endpoint, each naming `url` as its page."""
    return {
        "sessions": ("/api/v1/sessions", {"page_url": url}),
        "track": ("/api/v1/track", {"session_id": sid, "events": _events(9, page_url=url)}),
        "screenshot": ("/api/v1/track/screenshot", {"session_id": sid, "page_url": url, "timestamp": now_iso(),
                                                    "image_data": _png(), "width": 4, "height": 3}),
        "seed sessions": ("/api/sessions/add", {"type": "sessions-added", "timestamp": now_iso(), "event": {
            "cklig-track-user-session": f"seed-{uuid.uuid4()}", "cklig-track-event-page-url": url}}),
        "seed pages": ("/api/pages/add", _seed_event(sid, url)),
    }


ENDPOINTS = ["sessions", "track", "screenshot", "seed sessions", "seed pages"]


def _recording_segment(client, sid: str, headers: dict):
    """POST /api/v1/track/recording: one segment (rrweb events as plain JSON)."""
    millis = int(datetime.now(UTC).timestamp() * 1000)
    body = json.dumps([{"type": 4, "data": {}, "timestamp": millis},
                       {"type": 2, "data": {}, "timestamp": millis + 1}]).encode()
    return client.simulate_post("/api/v1/track/recording", body=body,
                                params={"session_id": sid, "segment": "0", "encoding": "json"},
                                headers={**headers, "Content-Type": "application/octet-stream"})


_CASES = [(_revoked, 401, "revoked"), (_switched_off_and_revoked, 403, "Statistics are disabled"),
          (_other_origin, 403, "not for this origin"), (_unknown_session, 404, "No such session")]
# Creating a session names no session to find: every other case applies to every endpoint.
_DECISIONS = [(endpoint, *case) for endpoint in ENDPOINTS + ["recording"] for case in _CASES
              if not (endpoint in ("sessions", "seed sessions") and case[1] == 404)]


@pytest.mark.parametrize("endpoint,change,status,why", _DECISIONS,
                         ids=[f"{d[0]}-{d[1].__name__.strip('_')}" for d in _DECISIONS])
def test_every_write_endpoint_makes_the_same_decision(client, site, db_url, endpoint, change, status, why):
    sid = _session(client, site)
    headers, target = change(db_url, site, sid, None)
    if endpoint == "recording":
        resp = _recording_segment(client, target, headers)
    else:
        path, body = _writes(site, target, f"{site.origin}/")[endpoint]
        resp = client.simulate_post(path, json=body, headers=headers)
    assert resp.status_code == status, resp.json
    assert why in resp.json["description"]


def test_a_recording_segment_is_accepted_like_every_write(client, site):
    sid = _session(client, site)
    first = _recording_segment(client, sid, site.write_headers())
    again = _recording_segment(client, sid, site.write_headers())
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json == again.json == {"segment": 0, "events": 2}
    assert again.headers["access-control-allow-origin"] == site.origin


def test_the_seed_account_claim_is_one_of_the_checks(client, make_site):
    site, other = make_site(), make_site()
    sid = _session(client, site)
    for path, body in (_writes(site, sid, f"{site.origin}/")[e] for e in ("seed sessions", "seed pages")):
        body["event"]["cklig-track-account"] = other.account_id
        refused = client.simulate_post(path, json=body, headers=site.write_headers())
        assert refused.status_code == 403 and "cklig-track-account" in refused.json["description"]
        body["event"]["cklig-track-account"] = site.account_id
        assert client.simulate_post(path, json=body, headers=site.write_headers()).status_code == 201


def test_every_write_endpoint_strips_query_strings_alike(client, site, db_url):
    _sql(db_url, "UPDATE domains SET strip_query_strings = true WHERE name = %s", site.domain)
    sid = _session(client, site)
    url = f"{site.origin}/cart?coupon=SECRET#top"
    for endpoint in ENDPOINTS:
        path, body = _writes(site, sid, url)[endpoint]
        resp = client.simulate_post(path, json=body, headers=site.write_headers())
        assert resp.status_code == 201, (endpoint, resp.json)
    with connect(db_url) as conn:
        urls = conn.execute(
            "SELECT page_url FROM sessions WHERE account_id = %(a)s AND page_url IS NOT NULL "
            "UNION ALL SELECT page_url FROM events WHERE account_id = %(a)s "
            "UNION ALL SELECT page_url FROM screenshots WHERE account_id = %(a)s",
            {"a": site.account_id}).fetchall()
    # Two sessions (API and seed), two events (track and the seed's page), one screenshot.
    assert [r["page_url"] for r in urls] == [f"{site.origin}/cart"] * 5
