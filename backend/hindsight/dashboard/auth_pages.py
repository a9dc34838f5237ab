"""Log in, log out, and (admins) switch the account the dashboard looks at."""

from __future__ import annotations

import uuid
from datetime import timedelta

import falcon

from ..errors import forbidden
from ..services import Services
from . import store, web

RETRY_AFTER_SECONDS = int(store.FAILURE_WINDOW.total_seconds())


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

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = web.form(req)
        email = data.get("email", "")[:254]
        password = data.get("password", "")
        target = web.safe_next(data.get("next"))
        web.check_csrf(web.cookie(req, web.LOGIN_CSRF_COOKIE), data.get("csrf_token"))
        now = self._s.clock()
        ip_hash = self._s.ip_hash(self._s.client_ip(req))
        settings = self._s.settings
        with self._s.pool.connection() as conn, conn.transaction():
            # One login attempt per e-mail at a time, so the count below cannot be raced.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('dashboard-login:' || %s))",
                         (store.normalize_email(email),))
            by_email, by_ip = store.recent_failures(conn, email, ip_hash, now)
            limited = (by_email >= settings.login_failures_per_email
                       or by_ip >= settings.login_failures_per_ip)
            user = None if limited else store.authenticate(conn, email, password)
            if user is None and not limited:
                store.record_failure(conn, email, ip_hash, now)
            if user is not None:
                store.clear_email_failures(conn, email)
                token = store.start_session(conn, user, now,
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

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = web.form(req)
        with self._s.pool.connection() as conn:
            user = web.current_user(req, conn, self._s)
            web.check_csrf(user.csrf_token, data.get("csrf_token"))
            store.end_session(conn, user.token_hash)
        web.clear_cookie(req, resp, self._s, web.SESSION_COOKIE)
        raise falcon.HTTPSeeOther(f"{web.PREFIX}/login")


class SwitchAccount:
    """POST account_id (admins only): the dashboard now shows that account."""

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        data = web.form(req)
        with self._s.pool.connection() as conn:
            user = web.current_user(req, conn, self._s)
            web.check_csrf(user.csrf_token, data.get("csrf_token"))
            if not user.is_admin:
                raise forbidden("Only an admin can switch accounts.")
            try:
                account_id = uuid.UUID(data.get("account_id", ""))
            except ValueError as ex:
                raise forbidden("No such account.") from ex
            if not store.switch_account(conn, user, account_id):
                raise forbidden("No such account.")
        raise falcon.HTTPSeeOther(web.safe_next(data.get("next")))


class Home:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        raise falcon.HTTPSeeOther(f"{web.PREFIX}/sessions")
