"""What every dashboard page shares: templates, the logged-in user, cookies, CSRF, JSON twins.

A page resource builds one dict (its view) and `respond` renders it with the page's
template, or as JSON when the request asks for `?format=json` — the page and its JSON
twin cannot drift.
"""

from __future__ import annotations

import datetime as dt
import hmac
import json
import secrets
import urllib.parse
import uuid
from pathlib import Path
from typing import Any

import falcon
import jinja2

from ..db import Conn
from ..errors import ApiError, forbidden, unauthorized
from ..services import Services
from . import store
from .store import DashboardUser

ROOT = Path(__file__).resolve().parents[3] / "dashboard"
TEMPLATES = ROOT / "templates"
STATIC = ROOT / "static"
PREFIX = "/dashboard"
SESSION_COOKIE = "hs_session"
LOGIN_CSRF_COOKIE = "hs_login_csrf"

# Pages may load only our own scripts, styles and images; nothing may frame them.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def _when(value: dt.datetime | None) -> str:
    if value is None:
        return "–"
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


def _number(value: int | float | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.1f}"
    return f"{int(value):,}"


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,  # every template, whatever its extension
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(duration=_duration, when=_when, number=_number)
    env.globals.update(prefix=PREFIX)
    return env


ENV = _environment()


def _json_default(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default, separators=(",", ":"))


def wants_json(req: falcon.Request) -> bool:
    return req.get_param("format") == "json"


def secure_headers(resp: falcon.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        resp.set_header(name, value)
    resp.cache_control = ["no-store"]


def render(resp: falcon.Response, template: str, **context: Any) -> None:
    secure_headers(resp)
    resp.content_type = falcon.MEDIA_HTML
    resp.text = ENV.get_template(template).render(**context)


def respond(req: falcon.Request, resp: falcon.Response, template: str, view: dict[str, Any],
            user: DashboardUser, **page: Any) -> None:
    """Render `view` with `template`, or send it as JSON for `?format=json`."""
    if wants_json(req):
        secure_headers(resp)
        resp.content_type = falcon.MEDIA_JSON
        resp.text = dumps(view)
        return
    render(resp, template, user=user, view=view, request_path=req.path,
           query=dict(req.params), **page)


def query_string(params: dict[str, Any], **changes: Any) -> str:
    """`params` with `changes` applied (None removes a key), as '?a=1&b=2' ('' when empty)."""
    merged = {**params, **changes}
    pairs = [(k, v) for k, v in merged.items() if v not in (None, "")]
    return "?" + urllib.parse.urlencode(pairs) if pairs else ""


ENV.globals.update(query_string=query_string)


def is_https(req: falcon.Request, services: Services) -> bool:
    if req.scheme == "https" or services.settings.public_url.startswith("https://"):
        return True
    return services.settings.trust_forwarded_for and req.forwarded_scheme == "https"


def set_cookie(req: falcon.Request, resp: falcon.Response, services: Services, name: str,
               value: str, max_age: int | None) -> None:
    """HttpOnly, SameSite=Lax, scoped to the dashboard; Secure when served over HTTPS."""
    resp.set_cookie(name, value, max_age=max_age, path=PREFIX, http_only=True, same_site="Lax",
                    secure=is_https(req, services))


def clear_cookie(req: falcon.Request, resp: falcon.Response, services: Services, name: str) -> None:
    set_cookie(req, resp, services, name, "", max_age=0)


def cookie(req: falcon.Request, name: str) -> str | None:
    values = req.get_cookie_values(name)
    return values[0] if values else None


def login_url(req: falcon.Request) -> str:
    target = req.relative_uri if req.method == "GET" else f"{PREFIX}/sessions"
    return f"{PREFIX}/login?" + urllib.parse.urlencode({"next": target})


def safe_next(target: str | None) -> str:
    """Only a path inside the dashboard: never an open redirect to another site."""
    if (target and target.startswith(PREFIX + "/") and not target.startswith("//")
            and "\\" not in target and "://" not in target):
        return target
    return f"{PREFIX}/sessions"


def current_user(req: falcon.Request, conn: Conn, services: Services,
                 json_twin: bool | None = None) -> DashboardUser:
    """The logged-in user, or: a redirect to the login page (pages), 401 (JSON twins)."""
    token = cookie(req, SESSION_COOKIE)
    user = store.session_user(conn, token, services.clock()) if token else None
    if user is not None:
        return user
    if json_twin if json_twin is not None else wants_json(req):
        raise unauthorized("Log in to the dashboard first.")
    raise falcon.HTTPSeeOther(login_url(req))


def form(req: falcon.Request) -> dict[str, str]:
    """The urlencoded form of a POST (empty when there is none)."""
    media_type = (req.content_type or "").split(";")[0].strip().lower()
    if media_type != falcon.MEDIA_URLENCODED:
        return {}
    raw = req.bounded_stream.read().decode("utf-8", errors="replace")
    return {k: v[0] for k, v in urllib.parse.parse_qs(raw, keep_blank_values=True).items()}


def check_csrf(expected: str | None, sent: str | None) -> None:
    """Refuse a form whose CSRF token is missing or not this session's."""
    if not expected or not sent or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise forbidden("The form's CSRF token is missing or invalid; reload the page and try again.")


def new_login_csrf() -> str:
    return secrets.token_urlsafe(32)


def too_many(description: str, retry_after: int) -> ApiError:
    return ApiError(falcon.HTTP_429, "Too Many Requests", description,
                    headers={"Retry-After": str(retry_after)})
