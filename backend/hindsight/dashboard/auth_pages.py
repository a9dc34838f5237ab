"""Log in, log out, and (admins) switch the account the dashboard looks at."""

from __future__ import annotations

import uuid
from datetime import timedelta

import falcon

from ..errors import forbidden
from ..logins import limits as login_limits
from ..logins import users
from ..resources.http import client_ip
from ..services import Services
from . import web

RETRY_AFTER_SECONDS = int(login_limits.FAILURE_WINDOW.total_seconds())


class Login:
    """GET shows the form; POST checks the password and starts a server-side session.

    Before login there is no session to hold a CSRF token, so the form carries one that
    must equal an HttpOnly cookie set with it (double submit): another site can make a
    browser post the form, but cannot read or set that cookie.
    """

    def __init__(self, services: Services) -> None:
        self._s = services

    def _form(self, req, resp, *, error: str | None = None, email: str = "",
              status: str = falcon.HTTP_200) -> None:
        csrf = web.new_login_csrf()
        web.set_cookie(req, resp, self._s, web.LOGIN_CSRF_COOKIE, csrf, max_age=3600)
        resp.status = status
        web.render(resp, "login.html", csrf_token=csrf, error=error, email=email,
                   next=web.safe_next(req.get_param("next")), user=None)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        self._form(req, resp)

    @falcon.before(web.login_form)
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = req.context.form
        email = data.get("email", "")[:254]
        password = data.get("password", "")
        target = web.safe_next(data.get("next"))
        now = self._s.clock()
        ip_hash = self._s.ip_hash(client_ip(req, self._s.settings))
        settings = self._s.settings
        limits = login_limits.Limits(settings.login_failures_per_email, settings.login_failures_per_ip)
        with self._s.pool.connection() as conn, conn.transaction():
            # One login attempt per e-mail at a time, so the count below cannot be raced.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('dashboard-login:' || %s))",
                         (users.normalize_email(email),))
            recent = login_limits.recent_failures(conn, email, ip_hash, now)
            limited = recent.lockout(limits) is not None
            user = None if limited else users.authenticate(conn, email, password)
            if user is None and not limited:
                login_limits.record_failure(conn, email, ip_hash, now)
                login_limits.log_new_lockout(recent, limits, email, ip_hash, now)
            if user is not None:
                # The user's own typos from here are forgotten; guesses from elsewhere still count.
                login_limits.clear_failures(conn, email, ip_hash, from_address=True)
                token = users.start_session(conn, user, now,
                                            timedelta(hours=settings.dashboard_session_hours))
        if limited:
            resp.set_header("Retry-After", str(RETRY_AFTER_SECONDS))
            self._form(req, resp, email=email, status=falcon.HTTP_429,
                       error="Too many failed logins; wait a quarter of an hour and try again.")
            return
        if user is None:
            self._form(req, resp, email=email, status=falcon.HTTP_401,
                       error="Wrong e-mail address or password.")
            return
        web.set_cookie(req, resp, self._s, web.SESSION_COOKIE, token,
                       max_age=int(settings.dashboard_session_hours * 3600))
        web.clear_cookie(req, resp, self._s, web.LOGIN_CSRF_COOKIE)
        raise falcon.HTTPSeeOther(target)


class Logout:
    """POST (with the session's CSRF token): end the server-side session."""

    def __init__(self, services: Services) -> None:
        self._s = services

    @falcon.before(web.logged_in_form)
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        with self._s.pool.connection() as conn:
            users.end_session(conn, req.context.user.token_hash)
        web.clear_cookie(req, resp, self._s, web.SESSION_COOKIE)
        raise falcon.HTTPSeeOther(f"{web.PREFIX}/login")


class SwitchAccount:
    """POST account_id (admins only): the dashboard now shows that account."""

    def __init__(self, services: Services) -> None:
        self._s = services

    @falcon.before(web.logged_in_form)
    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        user, data = req.context.user, req.context.form
        if not user.is_admin:
            raise forbidden("Only an admin can switch accounts.")
        try:
            account_id = uuid.UUID(data.get("account_id", ""))
        except ValueError as ex:
            raise forbidden("No such account.") from ex
        with self._s.pool.connection() as conn:
            if not users.switch_account(conn, user, account_id):
                raise forbidden("No such account.")
        raise falcon.HTTPSeeOther(web.safe_next(data.get("next")))


class Home:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise falcon.HTTPSeeOther(f"{web.PREFIX}/sessions")
