"""What every dashboard page shares: templates, the logged-in user, cookies, CSRF (a
`falcon.before` hook on every form's POST), JSON twins.

A page resource builds one dict (its view) and `respond` renders it with the page's
template, or as JSON when the request asks for `?format=json` — the page and its JSON
twin cannot drift.
"""

from __future__ import annotations

import datetime as dt
import hmac
import re
import secrets
import urllib.parse
from pathlib import Path
from typing import Any

import falcon
import jinja2

from ..db import Conn
from ..errors import ApiError, bad_request, forbidden, unauthorized
from ..json_encoding import dumps
from ..logins import users
from ..logins.users import DashboardUser
from ..services import Services

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


def when(value: dt.datetime | None) -> str:
    """A time as the dashboard shows it (UTC), the `when` filter of the templates."""
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
    env.filters.update(duration=_duration, when=when, number=_number)
    env.globals.update(prefix=PREFIX)
    return env


ENV = _environment()


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


# A `next` worth keeping: a path under /dashboard/ (with a query), in printable ASCII
# (no CR/LF: it becomes a Location header; no tab or backslash, which browsers drop or
# read as "/"), without "." or ".." segments or percent-escapes that could reshape it.
_SAFE_NEXT = re.compile(r"/dashboard/[A-Za-z0-9_\-~/]*(\?[A-Za-z0-9_\-.~!$&'()*+,;=:@/?%]*)?\Z")


def safe_next(target: str | None) -> str:
    """Only a path inside the dashboard: never an open redirect, never a broken header."""
    if (isinstance(target, str) and len(target) <= 2048 and _SAFE_NEXT.match(target)
            and "//" not in target.partition("?")[0]):
        return target
    return f"{PREFIX}/sessions"


def current_user(req: falcon.Request, conn: Conn, services: Services,
                 json_twin: bool | None = None) -> DashboardUser:
    """The logged-in user, or: a redirect to the login page (pages), 401 (JSON twins)."""
    token = cookie(req, SESSION_COOKIE)
    user = users.session_user(conn, token, services.clock()) if token else None
    if user is not None:
        return user
    if json_twin if json_twin is not None else wants_json(req):
        raise unauthorized("Log in to the dashboard first.")
    raise falcon.HTTPSeeOther(login_url(req))


def form(req: falcon.Request) -> dict[str, str]:
    """The urlencoded form of a POST, parsed by Falcon's URLEncodedFormHandler (empty when
    there is none; a field sent twice keeps its first value, as a browser sends one)."""
    media_type = (req.content_type or "").split(";")[0].strip().lower()
    if media_type != falcon.MEDIA_URLENCODED:
        return {}
    try:
        fields = req.get_media()
    except falcon.MediaMalformedError as ex:  # raw non-ASCII: browsers percent-encode
        raise bad_request("The form is not valid URL-encoded text.") from ex
    return {name: value[0] if isinstance(value, list) else value for name, value in fields.items()}


def check_csrf(expected: str | None, sent: str | None) -> None:
    """Refuse a form whose CSRF token is missing or not this session's."""
    if not expected or not sent or not hmac.compare_digest(expected.encode(), sent.encode()):
        raise forbidden("The form's CSRF token is missing or invalid; reload the page and try again.")


def logged_in_form(req: falcon.Request, resp: falcon.Response, resource: Any, params: dict) -> None:
    """`@falcon.before` hook of every form a logged-in user posts: the user (or the login
    page) and the form, whose `csrf_token` must be the session's (403 otherwise). The
    responder finds them in `req.context.user` and `req.context.form`."""
    data = form(req)
    services: Services = resource._s
    with services.pool.connection() as conn:
        user = current_user(req, conn, services)
    check_csrf(user.csrf_token, data.get("csrf_token"))
    req.context.user = user
    req.context.form = data


def login_form(req: falcon.Request, resp: falcon.Response, resource: Any, params: dict) -> None:
    """`@falcon.before` hook of the login form: no session yet, so its `csrf_token` must
    equal the HttpOnly cookie set with the form (double submit). The form is in
    `req.context.form`."""
    data = form(req)
    check_csrf(cookie(req, LOGIN_CSRF_COOKIE), data.get("csrf_token"))
    req.context.form = data


def new_login_csrf() -> str:
    return secrets.token_urlsafe(32)


def too_many(description: str, retry_after: int) -> ApiError:
    return ApiError(falcon.HTTP_429, "Too Many Requests", description,
                    headers={"Retry-After": str(retry_after)})
