"""The site flow of seed 000: widgets with signed JWTs, and statistics tokens."""

from __future__ import annotations

import uuid
from datetime import timedelta

import falcon
import jwt

from ..errors import forbidden, unauthorized
from ..hosts import covers
from ..ingestion import tokens
from ..queries import tenancy
from ..services import Services
from ..signing import widget_claims
from .http import bearer, requesting_host


class Widgets:
    """GET /site/account/{account_id}/widgets: the active widgets, each with a JWT."""

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, account_id: uuid.UUID) -> None:
        host = requesting_host(req)
        if host is None:
            raise forbidden("The request has no Origin or Referer header to verify the site.")
        with self._s.pool.connection() as conn:
            domain = tokens.registered_domain(conn, account_id, host)
            widgets = tenancy.active_widgets(conn, account_id, domain)
        now = self._s.clock()
        ttl = timedelta(seconds=self._s.settings.widget_jwt_ttl_seconds)
        req.context.cors_origin = req.get_header("Origin")
        resp.media = {
            "account_id": str(account_id),
            "domain": domain,
            "widgets": [
                {
                    "widget_id": str(w["widget_id"]),
                    "type": w["widget_type"],
                    "token": self._s.keys.sign(
                        widget_claims(str(w["widget_id"]), str(account_id), domain, now, ttl)
                    ),
                    "expires_at": (now + ttl).isoformat(),
                }
                for w in widgets
            ],
        }


class AccountStatistics:
    """GET /site/widget/{widget_id}/account_statistics: trade a widget JWT for a statistics token."""

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response, widget_id: uuid.UUID) -> None:
        raw = bearer(req)
        if raw is None:
            raise unauthorized("A widget token is required (Authorization: Bearer <widget JWT>).")
        try:
            claims = self._s.keys.verify(raw)
        except jwt.ExpiredSignatureError as ex:
            raise unauthorized("The widget token has expired; load the widgets again.") from ex
        except jwt.PyJWTError as ex:
            raise unauthorized(f"The widget token is not valid: {ex}.") from ex
        if claims["widget_id"] != str(widget_id):
            raise forbidden("The widget token was issued for another widget.")
        domain = claims["domain"]
        host = requesting_host(req)
        if host is None or not covers(domain, host):
            raise forbidden("The widget token was issued for another site.")
        now = self._s.clock()
        ttl = timedelta(seconds=self._s.settings.statistics_token_ttl_seconds)
        with self._s.pool.connection() as conn, conn.transaction():
            found = tenancy.widget(conn, widget_id)
            if found is None or str(found["account_id"]) != claims["account_id"]:
                raise forbidden("The widget does not belong to this account.")
            if not found["active"] or not found["account_active"]:
                raise forbidden("This widget or its account is disabled.")
            token = tokens.issue(conn, found["account_id"], domain, now, ttl)
        req.context.cors_origin = req.get_header("Origin")
        resp.media = {"token": str(token["token"]), "expires_at": token["expires_at"].isoformat(),
                      "host": domain}


class Jwks:
    """GET /.well-known/jwks.json: the public keys that verify widget JWTs."""

    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.media = self._s.keys.jwks()
        resp.cache_control = ["public", "max-age=300"]
