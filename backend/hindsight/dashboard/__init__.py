"""The analysts' dashboard: server-rendered pages under /dashboard/ (issue 6).

Templates live in dashboard/templates (Jinja2, autoescaped), scripts and styles in
dashboard/static. Every page with a list or a chart answers `?format=json` with the same
view. Logged-in users are dashboard users (`hindsight users create`), with server-side
sessions (store.py); each sees its own account, an admin can switch.
"""

from __future__ import annotations

import falcon

from .. import errors
from ..services import Services
from . import web
from .account import AccountPage
from .auth_pages import Home, Login, Logout, SwitchAccount
from .heatmaps import HeatmapImage, HeatmapsPage
from .overview import OverviewPage
from .sessions import ReplayEvents, ReplayPage, ScreenshotImage, SessionsPage

P = web.PREFIX


def _html_page(req: falcon.Request) -> bool:
    """Errors on these requests are shown as a page; on the rest (twins, images) as JSON."""
    if not req.path.startswith(P) or web.wants_json(req):
        return False
    return not req.path.endswith(("/events", ".png")) and "/screenshots/" not in req.path


def _serialize_error(req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError) -> None:
    if not _html_page(req):
        errors.serialize_error(req, resp, ex)
        return
    web.render(resp, "error.html", user=None, status=ex.status, title=ex.title,
               description=ex.description or ex.title)


def register(app: falcon.App, services: Services) -> None:
    """Add the dashboard's routes (call after errors.install: it wraps the error serializer)."""
    app.add_route(P, Home())
    app.add_route(f"{P}/login", Login(services))
    app.add_route(f"{P}/logout", Logout(services))
    app.add_route(f"{P}/switch-account", SwitchAccount(services))
    app.add_route(f"{P}/sessions", SessionsPage(services))
    app.add_route(f"{P}/sessions/{{session_id:uuid}}", ReplayPage(services))
    app.add_route(f"{P}/sessions/{{session_id:uuid}}/events", ReplayEvents(services))
    app.add_route(f"{P}/screenshots/{{screenshot_id:int(min=1)}}", ScreenshotImage(services))
    app.add_route(f"{P}/heatmaps", HeatmapsPage(services))
    app.add_route(f"{P}/heatmaps/image.png", HeatmapImage(services))
    app.add_route(f"{P}/overview", OverviewPage(services))
    account = AccountPage(services)
    app.add_route(f"{P}/account", account)
    app.add_route(f"{P}/account/keys", account, suffix="keys")
    app.add_route(f"{P}/account/keys/{{key_id:int(min=1)}}/revoke", account, suffix="revoke")
    app.add_static_route(f"{P}/static", str(web.STATIC))
    app.set_error_serializer(_serialize_error)
