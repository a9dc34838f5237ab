"""Schemathesis against a live `hindsight serve`: the OpenAPI document tells the truth.

Every operation of /api/v1/openapi.json is fuzzed (schemathesis' coverage and fuzzing
phases: valid and invalid inputs) with real credentials -- an analyst API key, a statistics
token, a widget JWT, the internal API key -- and, often enough to get past the 404s, the ids
of a real session (with events and a screenshot), its seed session and its account. The run
fails on any 5xx, any status code or body the document does not declare, and any request
slower than MAX_RESPONSE_SECONDS.

The run is bounded (examples per operation and seconds); a bigger one by hand:

    HINDSIGHT_FUZZ_MAX_EXAMPLES=400 HINDSIGHT_FUZZ_MAX_SECONDS=1200 \\
        .venv/bin/pytest tests/test_openapi_fuzz.py -q -s

This file is also the run's schemathesis hooks module (HOOKS_ENV names the fixtures file):
the hooks put the real ids into generated requests and log every response.
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import uuid
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

HOOKS_ENV = "HINDSIGHT_FUZZ_FIXTURES"      # set in the schemathesis process only
MAX_EXAMPLES = int(os.environ.get("HINDSIGHT_FUZZ_MAX_EXAMPLES", "20"))
MAX_SECONDS = int(os.environ.get("HINDSIGHT_FUZZ_MAX_SECONDS", "120"))
MAX_RESPONSE_SECONDS = 5.0
INTERNAL_API_KEY = "fuzz-internal-" + uuid.uuid4().hex
ST = Path(sys.executable).parent / "st"  # the schemathesis CLI next to this interpreter


# ----------------------------------------------------------------------------- hooks
# Loaded by schemathesis (`hooks` in its configuration) in its own process.

def _tolerate_cpython_ast_bug() -> None:
    """Hypothesis describes a strategy's lambdas by parsing their source with `ast`; on
    CPython 3.11 that parse can raise `SystemError: AST constructor recursion depth mismatch`
    (CPython gh-106905) deep in a run, which schemathesis reports as its own "Runtime Error"
    and which says nothing about the server. Describe such a lambda as unknown instead, as
    hypothesis does when it cannot find a lambda's source."""
    from hypothesis.internal import lambda_sources

    describe = lambda_sources._lambda_description

    def tolerant(f, *args, **kwargs):
        try:
            return describe(f, *args, **kwargs)
        except SystemError:
            return "lambda: <unknown>"

    lambda_sources._lambda_description = tolerant


def _register_hooks(fixtures_path: str) -> None:
    import threading

    import schemathesis

    _tolerate_cpython_ast_bug()

    fixtures = json.loads(Path(fixtures_path).read_text())
    real_ids = {
        "session_id": fixtures["session_id"], "screenshot_id": fixtures["screenshot_id"],
        "account_id": fixtures["account_id"], "widget_id": fixtures["widget_id"],
        "token": fixtures["spare_token"], "segment": 0,
    }
    log_lock = threading.Lock()
    log = open(fixtures["log_path"], "a", buffering=1)  # noqa: SIM115 (open for the whole run)

    def with_real_ids(values: Any) -> Any:
        """The generated path or query parameters with the real ids and a recent range."""
        if not isinstance(values, dict):
            return values
        now = datetime.now(UTC)
        out = {**values, **{k: v for k, v in real_ids.items() if k in values}}
        if "from" in out:
            out["from"] = (now - timedelta(days=7)).isoformat()
        if "to" in out:
            out["to"] = (now + timedelta(hours=1)).isoformat()
        return out

    def with_real_session(body: Any) -> Any:
        """The generated body with the real session ids and a timestamp of now."""
        if not isinstance(body, dict):
            return body
        now = datetime.now(UTC).isoformat()
        out = dict(body)
        if "session_id" in out:
            out["session_id"] = fixtures["session_id"]
        for key in ("timestamp", "started_at"):
            if key in out:
                out[key] = now
        if isinstance(out.get("events"), list):
            out["events"] = [{**e, "timestamp": now} if isinstance(e, dict) else e for e in out["events"]]
        if isinstance(out.get("event"), dict):
            out["event"] = {**out["event"], "cklig-track-user-session": fixtures["seed_session"],
                            "cklig-track-account": fixtures["account_id"]}
        return out

    @schemathesis.hook
    def before_call(context, case, kwargs):
        # Half of the valid requests get the real ids (which of them: by the case's id, so a
        # run is repeatable); invalid ones are left as generated, since the server must refuse them.
        negative = case.meta is not None and case.meta.generation.mode.is_negative
        if not negative and zlib.crc32(case.id.encode()) % 2 == 0:
            if case.path_parameters:
                case.path_parameters = with_real_ids(case.path_parameters)
            if case.query:
                case.query = with_real_ids(case.query)
            if isinstance(case.body, dict):
                case.body = with_real_session(case.body)
        # Schemathesis reuses values from answers: the statistics token the fuzzer writes with
        # (from /site/widget/.../account_statistics) must not be revoked or shortened by the
        # internal API's DELETE or PUT /api/token/{token}; those get the spare token instead.
        if (case.operation.path == "/api/token/{token}"
                and str((case.path_parameters or {}).get("token")) == fixtures["token"]):
            case.path_parameters = {**case.path_parameters, "token": fixtures["spare_token"]}

    @schemathesis.hook
    def after_call(context, case, response):
        entry = {"method": case.operation.method.upper(), "path": case.operation.path,
                 "status": response.status_code, "elapsed": response.elapsed}
        if response.status_code == 400:  # which fields were refused: to see what the fuzzer misses
            with contextlib.suppress(ValueError, AttributeError):
                entry["fields"] = json.dumps(json.loads(response.content).get("fields", {}))[:400]
        line = json.dumps(entry)
        with log_lock:
            log.write(line + "\n")


if os.environ.get(HOOKS_ENV):
    _register_hooks(os.environ[HOOKS_ENV])


# ----------------------------------------------------------------------------- the test

def _png(width: int, height: int) -> str:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (width, height), (200, 30, 30)).save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode()


def _real_data(port: int, db_url: str) -> dict[str, Any]:
    """Walk the site flow over HTTP and record a session: the credentials and ids to fuzz with."""
    from conftest import new_account
    from harness import http_call, site_writer
    from hindsight.db import connect
    from hindsight.queries.tenancy import add_domain

    account = new_account(db_url)
    writer = site_writer(port, account)
    origin, write = writer["origin"], writer["write"]
    now = datetime.now(UTC)
    status, _, session = http_call(port, "POST", "/api/v1/sessions", headers=write,
                                   body={"page_url": f"{origin}/", "user_agent": "Mozilla/5.0 fuzz"})
    assert status == 201, session
    events = [{"seq": i, "timestamp": (now + timedelta(milliseconds=i)).isoformat(),
               "event_type": kind, "page_url": f"{origin}/", "viewport_x": 10 * i, "viewport_y": 5}
              for i, kind in enumerate(("page_view", "click", "scroll", "error"))]
    status, _, tracked = http_call(port, "POST", "/api/v1/track", headers=write,
                                   body={"session_id": session["session_id"], "events": events})
    assert status == 201 and tracked["count"] == 4, tracked
    status, _, shot = http_call(port, "POST", "/api/v1/track/screenshot", headers=write, body={
        "session_id": session["session_id"], "timestamp": now.isoformat(), "page_url": f"{origin}/",
        "image_data": _png(32, 24), "width": 32, "height": 24})
    assert status == 201, shot
    segment = json.dumps([{"type": 2, "data": {"node": {"type": 0, "childNodes": []}},
                           "timestamp": int(now.timestamp() * 1000)}]).encode()
    status, _, recorded = http_call(
        port, "POST", f"/api/v1/track/recording?session_id={session['session_id']}&segment=0&encoding=json",
        body=segment, headers={**write, "Content-Type": "application/octet-stream"})
    assert status == 201, recorded
    seed_session = "fuzz-seed-" + uuid.uuid4().hex
    status, _, seeded = http_call(port, "POST", "/api/sessions/add", headers=write, body={
        "event": {"cklig-track-user-session": seed_session}, "timestamp": now.isoformat()})
    assert status == 201, seeded
    # The internal API's PUT and DELETE extend and revoke a token of a second domain, not the
    # one the fuzzer writes with.
    spare_domain = "spare-" + account["domain"]
    with connect(db_url) as conn:
        add_domain(conn, account["account_id"], spare_domain)
    internal = {"Authorization": f"Bearer {INTERNAL_API_KEY}"}
    status, _, spare = http_call(port, "POST", "/api/token", headers=internal,
                                 body={"account_id": account["account_id"], "host": spare_domain})
    assert status == 201 and spare["token"] != writer["token"], spare
    return {
        "origin": origin, "account_id": account["account_id"], "widget_id": account["widget_id"],
        "api_key": account["api_key"], "widget_jwt": writer["jwt"], "token": writer["token"],
        "spare_token": spare["token"], "session_id": session["session_id"],
        "screenshot_id": shot["screenshot_id"], "seed_session": seed_session,
        "internal_key": INTERNAL_API_KEY,
    }


def _config(port: int, data: dict[str, Any], report_dir: Path) -> str:
    """schemathesis.toml for the run: the checks, the budget and the credentials."""
    return f"""
base-url = "http://127.0.0.1:{port}"
workers = 2
max-time = {MAX_SECONDS}
hooks = "test_openapi_fuzz"
seed = {int(os.environ.get("HINDSIGHT_FUZZ_SEED", "20261"))}
headers = {{ Origin = "{data['origin']}" }}
request-timeout = {MAX_RESPONSE_SECONDS * 2}
suppress-health-check = ["all"]

[reports]
directory = "{report_dir}"
junit.enabled = true

[generation]
max-examples = {MAX_EXAMPLES}
mode = "all"

[phases]
examples.enabled = true
coverage.enabled = true
fuzzing.enabled = true
stateful.enabled = false

[checks]
enabled = false
not_a_server_error.enabled = true
status_code_conformance.enabled = true
content_type_conformance.enabled = true
response_schema_conformance.enabled = true
# An input the document calls invalid must be refused (e.g. `scroll_y: 1.9`, `input_masked: "yes"`).
negative_data_rejection = {{ enabled = true, expected-statuses = [400, 401, 403, 404, 405, 409, 413, 414, 415, 429, 431] }}
max_response_time = {MAX_RESPONSE_SECONDS}

[auth.openapi.analystKey]
bearer = "{data['api_key']}"

[auth.openapi.statisticsToken]
bearer = "{data['token']}"

[auth.openapi.widgetJwt]
bearer = "{data['widget_jwt']}"

[auth.openapi.internalKey]
bearer = "{data['internal_key']}"
"""


@dataclass
class FuzzRun:
    returncode: int
    output: str                    # the schemathesis CLI's report
    responses: list[dict[str, Any]]  # one per request: method, path, status, elapsed

    def findings(self, limit: int = 15_000) -> str:
        """The report's errors and failures (each with a curl line to reproduce it)."""
        begin = min((i for i in (self.output.find("= ERRORS ="), self.output.find("= FAILURES =")) if i >= 0),
                    default=0)
        return self.output[begin:begin + limit]


def run_schemathesis(port: int, data: dict[str, Any], work: Path) -> FuzzRun:
    """The schemathesis CLI against the server on `port`, with this file as its hooks."""
    log_path = work / "responses.ndjson"
    fixtures = work / "fixtures.json"
    fixtures.write_text(json.dumps({**data, "log_path": str(log_path)}))
    config = work / "schemathesis.toml"
    config.write_text(_config(port, data, work / "report"))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")]),
               NO_COLOR="1", COLUMNS="160", **{HOOKS_ENV: str(fixtures)})
    run = subprocess.run([str(ST), "--config-file", str(config), "run", f"http://127.0.0.1:{port}/api/v1/openapi.json"],
                         env=env, cwd=work, capture_output=True, text=True, timeout=MAX_SECONDS + 300)
    output = run.stdout + run.stderr
    (work / "schemathesis.out").write_text(output)
    lines = log_path.read_text().splitlines() if log_path.exists() else []
    return FuzzRun(run.returncode, output, [json.loads(line) for line in lines])


@pytest.mark.slow
def test_every_operation_matches_the_document_under_fuzzing(db_url, capsys):
    from harness import ServeProcess, http_call

    work = Path(tempfile.mkdtemp(prefix="hindsight-fuzz-"))
    # ServeProcess turns the rate limit off (HINDSIGHT_RATE_LIMIT_PER_MINUTE=0): the fuzzer is not throttled.
    # A live stream (/api/v1/live/stream) ends after a second here, so that its answer is whole.
    server = ServeProcess(db_url, workers=2, log_dir=work, env={"HINDSIGHT_INTERNAL_API_KEY": INTERNAL_API_KEY,
                                                                "HINDSIGHT_LIVE_STREAM_MAX_SECONDS": "1"})
    try:
        server.start()
        run = run_schemathesis(server.port, _real_data(server.port, db_url), work)
        server_errors = [r for r in run.responses if r["status"] >= 500]
        slow = [r for r in run.responses if r["elapsed"] > MAX_RESPONSE_SECONDS]
        operations = {(r["method"], r["path"]) for r in run.responses}
        doc = http_call(server.port, "GET", "/api/v1/openapi.json")[2]
        documented = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
        documented.discard(("GET", "/api/v1/openapi.json"))  # schemathesis reads it, and does not fuzz it
        with capsys.disabled():
            print(f"\nschemathesis: {len(run.responses)} requests over {len(operations)} operations, "
                  f"{len(server_errors)} answered 5xx, {len(slow)} slower than {MAX_RESPONSE_SECONDS} s")
        assert not server_errors, (server_errors[:10], run.findings())
        assert not slow, (slow[:10], run.findings())
        assert run.returncode == 0, run.findings()
        assert operations == documented, documented - operations
        assert len(run.responses) >= 20 * len(documented), len(run.responses)
        assert "unhandled error" not in server.log_tail(1_000_000), server.log_tail()  # (errors.py's 500)
    finally:
        server.stop()
        if os.environ.get("HINDSIGHT_FUZZ_KEEP"):
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


# ----------------------------------------------------------------------------- finding 6, in-process

def _event(**fields: Any) -> dict[str, Any]:
    return {"seq": 1, "timestamp": datetime.now(UTC).isoformat(), "event_type": "scroll", **fields}


@pytest.mark.parametrize("field,value", [
    ("scroll_y", 1.9), ("viewport_x", "12"), ("viewport_y", True), ("seq", 1.0), ("mouse_button", "0"),
    ("input_masked", "yes"), ("input_masked", 1), ("input_masked", "true"),
])
def test_event_integers_and_booleans_are_strict(client, site, session_id, db_url, field, value):
    from hindsight.db import connect

    batch = {"session_id": session_id, "events": [_event(seq=2), _event(**{field: value})]}
    resp = client.simulate_post("/api/v1/track", json=batch, headers=site.write_headers())
    assert resp.status_code == 400, resp.json
    assert list(resp.json["fields"]["events"]["1"]) == [field]
    with connect(db_url) as conn:
        stored = conn.execute("SELECT count(*) AS n FROM events WHERE session_id = %s", (session_id,)).fetchone()
    assert stored["n"] == 0


def test_event_integers_and_booleans_of_their_json_type_are_stored(client, site, session_id):
    batch = {"session_id": session_id, "events": [_event(scroll_y=-2, viewport_x=12, input_masked=False)]}
    resp = client.simulate_post("/api/v1/track", json=batch, headers=site.write_headers())
    assert resp.status_code == 201, resp.json
    stored = client.simulate_get(f"/api/v1/sessions/{session_id}/events", headers=site.read_headers()).json
    assert [(e["scroll_y"], e["viewport_x"], e["input_masked"]) for e in stored["data"]] == [(-2, 12, False)]


def test_the_fast_batch_loader_leaves_lenient_values_to_marshmallow():
    from marshmallow import ValidationError

    from hindsight.schemas import TrackBatchSchema

    schema, session = TrackBatchSchema(), str(uuid.uuid4())
    for field, value in (("scroll_y", 1.9), ("viewport_x", "12"), ("input_masked", "yes"), ("input_masked", 0)):
        with pytest.raises(ValidationError) as refused:
            schema.load({"session_id": session, "events": [_event(**{field: value})]})
        assert list(refused.value.messages["events"][0]) == [field]
    loaded = schema.load({"session_id": session, "events": [_event(scroll_y=3, input_masked=True)]})
    assert (loaded["events"][0]["scroll_y"], loaded["events"][0]["input_masked"]) == (3, True)


def test_the_fast_loader_is_built_only_for_schemas_it_reproduces():
    """compile_loader reads a schema's hooks through marshmallow's public
    SchemaMeta.resolve_hooks: a hook (or unknown fields let through) means no fast path."""
    from marshmallow import EXCLUDE, post_load, pre_load, validates

    from hindsight.fast_loader import compile_loader
    from hindsight.schemas import EventSchema

    class WithPreLoad(EventSchema):
        @pre_load
        def _lower(self, data, **kwargs):
            return data

    class WithPostLoad(EventSchema):
        @post_load
        def _tag(self, data, **kwargs):
            return data

    class WithFieldValidator(EventSchema):
        @validates("seq")
        def _odd(self, value, **kwargs):
            pass

    class Lenient(EventSchema):
        class Meta:
            unknown = EXCLUDE

    load = compile_loader(EventSchema())
    assert load is not None
    event = _event(scroll_y=3)
    assert load(event) == EventSchema().load(event)
    for schema in (WithPreLoad, WithPostLoad, WithFieldValidator, Lenient):
        assert compile_loader(schema()) is None, schema.__name__


@pytest.mark.parametrize("path,body", [
    ("/api/v1/sessions", {"screen_width": 1280.5}),
    ("/api/v1/sessions", {"viewport_height": "800"}),
    ("/api/sessions/add", {"event": {"cklig-track-user-session": "s", "cklig-track-screen": {"width": "1920"}},
                           "timestamp": None}),
    ("/api/events/add", {"event": {"cklig-track-user-session": "s", "cklig-track-event-type": "Click",
                                   "cklig-track-event-target": {"position": {"clientX": 1.5}}},
                         "timestamp": None}),
])
def test_session_and_seed_integers_are_strict(client, site, path, body):
    if "timestamp" in body:
        body = {**body, "timestamp": datetime.now(UTC).isoformat()}
    resp = client.simulate_post(path, json=body, headers=site.write_headers())
    assert resp.status_code == 400, resp.json
    assert set(resp.json["fields"]) == ({"event"} if "event" in body else set(body) - {"timestamp"})


def test_the_document_describes_what_the_seed_endpoints_take(client):
    doc = client.simulate_get("/api/v1/openapi.json").json
    schemas = doc["components"]["schemas"]
    for kind in ("sessions", "pages", "events", "referrers"):
        body = doc["paths"][f"/api/{kind}/add"]["post"]["requestBody"]["content"]["application/json"]["schema"]
        envelope = schemas[body["$ref"].rsplit("/", 1)[1]]
        assert set(envelope["properties"]) == {"event", "timestamp", "type", "token"}
        assert sorted(envelope["required"]) == ["event", "timestamp"]
        event = schemas[envelope["properties"]["event"]["$ref"].rsplit("/", 1)[1]]
        assert "cklig-track-user-session" in event["required"]


def test_the_document_states_every_answer(client):
    doc = client.simulate_get("/api/v1/openapi.json").json
    paths = doc["paths"]
    # Re-sent creations answer 200, new ones 201.
    for path in ("/api/v1/sessions", "/api/sessions/add", "/api/pages/add", "/api/v1/track/screenshot"):
        assert {"200", "201"} <= set(paths[path]["post"]["responses"]), path
    assert "409" in paths["/api/token/{token}"]["put"]["responses"]
    # Every error answer is the one error shape; every JSON success names its body's shape.
    health = ("/health", "/api/health/stacks")
    for path, operations in paths.items():
        for operation in operations.values():
            for code, answer in operation["responses"].items():
                if "$ref" in answer:
                    answer = doc["components"]["responses"][answer["$ref"].rsplit("/", 1)[1]]
                if int(code) >= 400 and not (code == "503" and path in health):
                    assert answer["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
                elif code in ("200", "201") and "recording" not in path and "screenshots/{" not in path:
                    if path == "/api/v1/live/stream":  # Server-Sent Events, not JSON
                        assert set(answer["content"]) == {"text/event-stream"}
                        continue
                    assert "schema" in answer["content"]["application/json"], (path, code)
    assert set(schemas_required(doc, "Error")) == {"error", "description", "fields"}
    # Cross-field rules are in the words.
    series = paths["/api/v1/stats/series"]["get"]["description"]
    assert "`from` must be before `to`" in series and "800 days" in series and "93" in series
    assert "366 days before" in paths["/api/v1/track"]["post"]["description"]


def schemas_required(doc: dict[str, Any], name: str) -> list[str]:
    return doc["components"]["schemas"][name]["required"]
