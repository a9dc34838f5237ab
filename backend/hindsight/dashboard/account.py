"""The account page: usage against the limit (and what was counted per host), the hosts'
statistics, stack health, recent journeys, dashboard users, API keys.

    GET  /dashboard/account                         (or ?format=json)
    POST /dashboard/account/keys                    create an analyst API key (shown once)
    POST /dashboard/account/keys/{key_id}/revoke    revoke one
    POST /dashboard/account/users/{user_id}/unlock  (admins) lift a user's login lockouts
"""

from __future__ import annotations

import logging

import falcon

from ..errors import forbidden, not_found
from ..logins import limits as login_limits
from ..logins import users
from ..observe.service import WARNINGS_KEPT
from ..queries import journeys, tenancy, usage
from ..queries import observe as observe_queries
from ..services import Services
from . import web

log = logging.getLogger("hindsight.dashboard")


def _stack_health(services: Services) -> dict | None:
    """The statistics stacks' health (this worker's stacks; issue 5), in brief."""
    try:
        h = services.stacks.health(database_reachable=True)
    except Exception:  # the stacks are another component: their failure must not hide this page
        log.exception("stack health unavailable")
        return None
    return {
        "status": h.status,
        "active_stacks": h.active_stacks,
        "events_in_memory": h.events_in_memory,
        "memory_utilization_percent": h.memory_utilization_percent,
        "successful_flushes_last_hour": h.last_hour.successful_flushes,
        "failed_flushes_last_hour": h.last_hour.failed_flushes,
    }


def account_view(conn, services: Services, user: users.DashboardUser) -> dict:
    now = services.clock()
    account = tenancy.account(conn, user.account_id)
    used = usage.usage_in_period(conn, user.account_id, now)
    limit = account["monthly_event_limit"]
    period = usage.period_start(now)
    return {
        "account": account,
        "usage": {
            "period_start": period,
            "used": used,
            "limit": limit,
            "percent": None if not limit else round(100 * used / limit, 1),
            "pending": usage.pending_usage(conn, user.account_id),
            # What the stack flushes counted this period, per host (statistics_counters).
            "by_host": usage.counted_by_host(conn, user.account_id, usage.period_start_at(now)),
        },
        "hosts": tenancy.hosts(conn, user.account_id, now),
        "stack_health": _stack_health(services),
        # The newest journeys the flushes wrote (journeys, journey_steps).
        "journeys": journeys.recent(conn, user.account_id),
        "api_keys": tenancy.api_keys(conn, user.account_id),
        # The account's dashboard users with their failed logins and lockouts (logins.limits).
        "users": login_limits.lockouts(conn, users.account_users(conn, user.account_id),
                                       _limits(services), now),
        "failure_window_minutes": int(login_limits.FAILURE_WINDOW.total_seconds() // 60),
        # Refused writes of the last 7 days, grouped (hindsight.observe.warnings).
        "ingestion_warnings": observe_queries.list_warnings(conn, user.account_id, now - WARNINGS_KEPT, 20),
    }


def _limits(services: Services) -> login_limits.Limits:
    s = services.settings
    return login_limits.Limits(s.login_failures_per_email, s.login_failures_per_ip)


class AccountPage:
    def __init__(self, services: Services) -> None:
        self._s = services

    def _show(self, req, resp, conn, user, new_key: str | None = None) -> None:
        view = account_view(conn, self._s, user)
        accounts = users.all_accounts(conn) if user.is_admin else []
        web.respond(req, resp, "account.html", view, user, nav="account", new_key=new_key,
                    accounts=accounts)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        with self._s.pool.connection() as conn:
            user = web.current_user(req, conn, self._s)
            self._show(req, resp, conn, user)

    @falcon.before(web.logged_in_form)
    def on_post_keys(self, req: falcon.Request, resp: falcon.Response) -> None:
        """Create a key and show it once (only its hash is kept)."""
        user = req.context.user
        with self._s.pool.connection() as conn:
            key = tenancy.create_api_key(conn, user.account_id)
            resp.status = falcon.HTTP_201
            self._show(req, resp, conn, user, new_key=key)

    @falcon.before(web.logged_in_form)
    def on_post_revoke(self, req: falcon.Request, resp: falcon.Response, key_id: int) -> None:
        with self._s.pool.connection() as conn:
            if not tenancy.revoke_api_key(conn, req.context.user.account_id, key_id):
                raise not_found("No such live API key in this account.")
        raise falcon.HTTPSeeOther(f"{web.PREFIX}/account")

    @falcon.before(web.logged_in_form)
    def on_post_unlock(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> None:
        """Admins: forget a user's failed logins (every address), which lifts its lockouts."""
        user = req.context.user
        if not user.is_admin:
            raise forbidden("Only an admin can lift a login lockout.")
        with self._s.pool.connection() as conn:
            with conn.transaction():
                email = login_limits.unlock_user(conn, user.account_id, user_id)
        if email is None:
            raise not_found("No such dashboard user in this account.")
        log.warning("dashboard login lockouts of %s lifted by admin %s", email, user.email)
        raise falcon.HTTPSeeOther(f"{web.PREFIX}/account")
