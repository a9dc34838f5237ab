"""GET /metrics: the Prometheus text format (hindsight.metrics), behind a bearer key.

HINDSIGHT_METRICS_KEY unset: 404, as if there were no such endpoint (docs/DECISIONS.md,
"Metrics behind a bearer key"). Set: `Authorization: Bearer <key>` or 401.
"""

from __future__ import annotations

import hmac

import falcon

from .. import metrics
from ..errors import not_found, unauthorized
from ..queries import observe
from ..services import Services


class Metrics:
    def __init__(self, services: Services) -> None:
        self._s = services
        pool = services.pool

        def read():
            with pool.connection(timeout=2.0) as conn:
                return observe.scrape_values(conn)

        def read_size() -> int:
            with pool.connection(timeout=2.0) as conn:
                return observe.database_size(conn)

        self._collector = metrics.DatabaseCollector(read, read_size=read_size)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        key = self._s.settings.metrics_key
        if not key:
            raise not_found()
        header = req.get_header("Authorization") or ""
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(), key.encode()):
            raise unauthorized("GET /metrics needs Authorization: Bearer <HINDSIGHT_METRICS_KEY>.")
        metrics.sample_pool(self._s.pool.get_stats())  # this worker's pool, fresh
        resp.cache_control = ["no-store"]
        resp.content_type = metrics.CONTENT_TYPE
        resp.data = metrics.exposition(self._collector)
