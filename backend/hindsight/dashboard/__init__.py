"""The analysts' dashboard: server-rendered pages under /dashboard/ (issue 6).

Templates live in dashboard/templates (Jinja2, autoescaped), scripts and styles in
dashboard/static. Every page with a list or a chart answers `?format=json` with the same
view. Logged-in users are dashboard users (`hindsight users create`), with server-side
sessions (hindsight.logins); each sees its own account, an admin can switch. Its routes
are listed in hindsight/app.py with every other route; its SQL is in hindsight.queries.
"""

from __future__ import annotations

import falcon

from .. import errors
from . import web

P = web.PREFIX


def _html_page(req: falcon.Request) -> bool:
    """Errors on these requests are shown as a page; on the rest (twins, images) as JSON."""
    if not req.path.startswith(P) or web.wants_json(req):
        return False
    return (not req.path.endswith(("/events", ".png")) and "/screenshots/" not in req.path
            and "/recording" not in req.path)


def serialize_error(req: falcon.Request, resp: falcon.Response, ex: falcon.HTTPError) -> None:
    """The app's error serializer: the API's JSON error, or an error page for dashboard pages."""
    if not _html_page(req):
        errors.serialize_error(req, resp, ex)
        return
    web.render(resp, "error.html", user=None, status=ex.status, title=ex.title,
               description=ex.description or ex.title)
