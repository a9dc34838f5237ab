"""Request ids and the per-request log line, on a real `hindsight serve` whose log is
JSON (HINDSIGHT_LOG_FORMAT=json): a sane X-Request-Id is echoed, anything else replaced,
error answers carry one too (gunicorn's own refusals included), and each request leaves
one JSON line with its id, method, route template, status, duration and account."""

from __future__ import annotations

import json
import logging
import socket

import pytest
from test_metrics import batch, new_session, site_over_http

from harness import ServeProcess, http_call, wait_for
from hindsight.request_ids import sane_request_id


@pytest.fixture(scope="module")
def server(db_url):
    serve = ServeProcess(db_url, workers=1, env={"HINDSIGHT_LOG_FORMAT": "json",
                                                "HINDSIGHT_LOG_LEVEL": "info"}).start()
    yield serve
    serve.stop()


def rid_of(headers: dict) -> str:
    return {k.lower(): v for k, v in headers.items()}["x-request-id"]


def request_lines(server) -> list[dict]:
    lines = []
    for line in server.log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            record = json.loads(line)  # every JSON line parses
            if record.get("logger") == "hindsight.requests":
                lines.append(record)
    return lines


def line_of(server, rid: str) -> dict:
    return wait_for(lambda: next((r for r in request_lines(server) if r["request_id"] == rid), None),
                    what=f"the log line of {rid}")


def test_sane_ids_only():
    assert sane_request_id("abc-123_x.y:z") == "abc-123_x.y:z"
    assert sane_request_id("x" * 128) == "x" * 128
    for bad in (None, "", "x" * 129, "with space", "caf\u00e9", "tab\there", "new\nline"):
        assert sane_request_id(bad) is None, bad


def test_request_id_echoed_and_logged_as_json(server, db_url):
    port = server.port
    site = site_over_http(port, db_url)
    sid = new_session(port, site)
    status, headers, _ = http_call(port, "POST", "/api/v1/track", batch(sid, 0, 3),
                                   headers={**site["write"], "X-Request-Id": "client-chosen-1"})
    assert status == 201
    assert rid_of(headers) == "client-chosen-1"
    line = line_of(server, "client-chosen-1")
    assert line["method"] == "POST" and line["route"] == "/api/v1/track" and line["status"] == 201
    assert line["account_id"] == site["account_id"]
    assert 0 < line["duration_ms"] < 60_000
    assert line["level"] == "info" and line["pid"] > 0

    # A read with an API key: the route is the template, not the path; the account is known.
    status, headers, _ = http_call(port, "GET", f"/api/v1/sessions/{sid}",
                                   headers={"Authorization": f"Bearer {site['api_key']}",
                                            "X-Request-Id": "read-1"})
    assert status == 200
    line = line_of(server, "read-1")
    assert line["route"] == "/api/v1/sessions/{session_id:uuid}" and line["account_id"] == site["account_id"]


def test_insane_ids_are_replaced_and_errors_carry_one(server):
    port = server.port
    status, headers, body = http_call(port, "GET", "/no/such/path", headers={"X-Request-Id": "x" * 200})
    assert status == 404 and body["error"]
    rid = rid_of(headers)
    assert rid != "x" * 200 and sane_request_id(rid) == rid
    line = line_of(server, rid)
    assert line["status"] == 404 and line["route"] == "(unmatched)" and line["account_id"] is None
    # Refused by a middleware before any resource (415), the id still comes back.
    status, headers, _ = http_call(port, "POST", "/api/v1/track", b"x", headers={
        "Content-Type": "text/html", "X-Request-Id": "refused-1"})
    assert status == 415 and rid_of(headers) == "refused-1"
    assert line_of(server, "refused-1")["status"] == 415
    # Two requests, two ids.
    a = rid_of(http_call(port, "GET", "/health")[1])
    b = rid_of(http_call(port, "GET", "/health")[1])
    assert a != b


def test_gunicorn_refusals_carry_an_id(server):
    # A request line gunicorn cannot parse never reaches the app: hindsight.worker answers.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as s:
        s.sendall(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
    head = answer.split(b"\r\n\r\n")[0].decode("latin-1")
    assert head.startswith("HTTP/1.1 4"), head
    rid = [h.split(":", 1)[1].strip() for h in head.split("\r\n") if h.lower().startswith("x-request-id:")]
    assert rid and sane_request_id(rid[0]) == rid[0], head


def test_text_lines_in_process(client, caplog):
    with caplog.at_level(logging.INFO, logger="hindsight.requests"):
        resp = client.simulate_get("/health", headers={"X-Request-Id": "text-line-1"})
    assert resp.headers["X-Request-Id"] == "text-line-1"  # (falcon.testing: case-insensitive)
    lines = [r.getMessage() for r in caplog.records if r.name == "hindsight.requests"]
    assert any(m.startswith("text-line-1 GET /health 200 ") and m.endswith("account=-") for m in lines), lines
