"""The paths view: after a page, where visitors went next; before it, where they came from
(the journeys the statistics stacks write; hindsight.queries.paths).

    GET /dashboard/paths[?range=7d][&page=/pricing]   (or ?format=json)
"""

from __future__ import annotations

import falcon

from .. import timerange
from ..errors import bad_request
from ..queries import paths, traffic
from ..services import Services
from . import web

DEFAULT_RANGE = "7d"


class PathsPage:
    def __init__(self, services: Services) -> None:
        self._s = services

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        chosen = timerange.dashboard_range(dict(req.params), self._s.clock(), default_preset=DEFAULT_RANGE)
        page = req.get_param("page") or None
        if page is not None and (not page.startswith("/") or len(page) > 2048 or "\x00" in page):
            raise bad_request("page must be a path beginning with '/'.", {"page": ["A path."]})
        with self._s.pool.connection() as conn:
            user = web.current_user(req, conn, self._s)
            hours = traffic.hour_range(chosen.start, chosen.end)
            view = {"range": chosen.preset, "from": hours.start, "to": hours.end, "page": page,
                    "top_pages": paths.top_pages(conn, user.account_id, hours.start, hours.end, 20),
                    "next": None, "previous": None}
            if page is not None:
                view.update(paths.moves(conn, user.account_id, page, hours.start, hours.end, 15))
        web.respond(req, resp, "paths.html", view, user, nav="paths", ranges=list(timerange.PRESETS),
                    edges=(paths.EXIT, paths.ENTRY))
