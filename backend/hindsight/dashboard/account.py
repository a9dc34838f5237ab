"""The account page: usage against the limit, statistics per host, stack health, API keys.

    GET  /dashboard/account                        (or ?format=json)
    POST /dashboard/account/keys                   create an analyst API key (shown once)
    POST /dashboard/account/keys/{key_id}/revoke   revoke one
"""

from __future__ import annotations

import logging

import falcon

from ..errors import not_found
from ..queries import usage
from ..queries.tenancy import create_api_key
from ..services import Services
from . import queries, store, web

log = logging.getLogger("hindsight.dashboard")


def _stack_health(services: Services) -> dict | None:
    """The statistics stacks' health (this worker's stacks; issue 5), in brief."""
    try:
        doc = services.stacks.health({"reachable": True})
    except Exception:  # the stacks are another component: their failure must not hide this page
        log.exception("stack health unavailable")
        return None
    server = doc.get("statistics_server", {})
    flushes = doc.get("flush_statistics", {})
    return {
        "status": doc.get("status"),
        "active_stacks": server.get("active_stacks"),
        "events_in_memory": server.get("total_events_in_memory"),
        "memory_utilization_percent": server.get("memory_utilization_percent"),
        "successful_flushes_last_hour": flushes.get("successful_flushes_last_hour"),
        "failed_flushes_last_hour": flushes.get("failed_flushes_last_hour"),
    }


def account_view(conn, services: Services, user: store.DashboardUser) -> dict:
    now = services.clock()
    account = queries.account(conn, user.account_id)
    used = usage.usage_in_period(conn, user.account_id, now)
    limit = account["monthly_event_limit"]
    return {
        "account": account,
        "usage": {
            "period_start": usage.period_start(now),
            "used": used,
            "limit": limit,
            "percent": None if not limit else round(100 * used / limit, 1),
            "pending": queries.pending_usage(conn, user.account_id),
        },
        "hosts": queries.hosts(conn, user.account_id, now),
        "stack_health": _stack_health(services),
        "api_keys": queries.api_keys(conn, user.account_id),
    }


class AccountPage:
    def __init__(self, services: Services) -> None:
        self._s = services

    def _show(self, req, resp, conn, user, new_key: str | None = None) -> None:
        view = account_view(conn, self._s, user)
        accounts = store.all_accounts(conn) if user.is_admin else []
        web.respond(req, resp, "account.html", view, user, nav="account", new_key=new_key,
                    accounts=accounts)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        with self._s.pool.connection() as conn:
            user = web.current_user(req, conn, self._s)
            self._show(req, resp, conn, user)

    def on_post_keys(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Create a key and show it once (only its hash is kept)."""
        data = web.form(req)
        with self._s.pool.connection() as conn:
            user = web.current_user(req, conn, self._s)
            web.check_csrf(user.csrf_token, data.get("csrf_token"))
            key = create_api_key(conn, user.account_id)
            resp.status = falcon.HTTP_201
            self._show(req, resp, conn, user, new_key=key)

    def on_post_revoke(self, req: falcon.Request, resp: falcon.Response, key_id: int) -> None:
        data = web.form(req)
        with self._s.pool.connection() as conn:
            user = web.current_user(req, conn, self._s)
            web.check_csrf(user.csrf_token, data.get("csrf_token"))
            if not queries.revoke_api_key(conn, user.account_id, key_id):
                raise not_found("No such live API key in this account.")
        raise falcon.HTTPSeeOther(f"{web.PREFIX}/account")
