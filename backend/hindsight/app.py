"""The WSGI application: `create_app` wires collaborators it is given; `get_app` builds
them from the environment and is what gunicorn serves."""

from __future__ import annotations

import atexit
import datetime as dt
import decimal
import functools
import json
import logging
import secrets
import uuid
from collections.abc import Callable

import falcon
import falcon.media

from . import dashboard, errors, ratelimit
from .db import Pool, create_pool
from .lifecycle import register as register_lifecycle
from .middleware import Cors, RateLimiter, RegisteredHosts, RequestLimits
from .openapi import OpenApi
from .queries.tenancy import instance_secret
from .ratelimit import HostCounter
from .resources.health import Health
from .resources.sessions import (
    ScreenshotImage,
    SessionEvents,
    SessionItem,
    SessionsCollection,
    SessionScreenshots,
)
from .resources.site import AccountStatistics, Jwks, Widgets
from .resources.stats import add_routes as add_stats_routes
from .resources.track import ScreenshotUpload, Track
from .resources.tracker import TrackerScript
from .scheduler import Scheduler
from .services import IpHasher, Services, utc_now
from .settings import Settings
from .signing import KeyRing, ensure_signing_key
from .stacks import StatisticsStacks, create_stacks
from .stacks import install as install_stacks


def _json_default(value):
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes | memoryview):
        return bytes(value).hex()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


_dumps = functools.partial(json.dumps, default=_json_default, separators=(",", ":"))


def create_app(settings: Settings, pool: Pool, *, keys: KeyRing | None = None,
               ip_hash: IpHasher | None = None, scheduler: Scheduler | None = None,
               clock: Callable[[], dt.datetime] = utc_now,
               stacks: StatisticsStacks | None = None,
               rate_counter: HostCounter | None = None) -> falcon.App:
    """Wire routes, middleware and error handlers around the given collaborators.

    Background jobs are registered on `scheduler`; the caller decides whether to start
    it (get_app does; tests drive jobs with `scheduler.run_now`).
    """
    if keys is None:
        keys = KeyRing(pool)
    if ip_hash is None:
        ip_hash = IpHasher(_ip_hash_key(settings, pool))
    if scheduler is None:
        scheduler = Scheduler()
    if stacks is None:
        stacks = create_stacks(settings, pool, clock)
    services = Services(settings=settings, pool=pool, keys=keys, ip_hash=ip_hash,
                        scheduler=scheduler, stacks=stacks, clock=clock)

    middleware: list[Cors | RateLimiter | RequestLimits] = [
        Cors(RegisteredHosts(pool)),
        RateLimiter(settings.rate_limit_per_minute, services.client_ip, counter=rate_counter),
        RequestLimits(settings.max_body_bytes, settings.max_screenshot_body_bytes),
    ]
    app = falcon.App(middleware=middleware, cors_enable=False)
    handler = falcon.media.JSONHandler(dumps=_dumps)
    app.req_options.media_handlers[falcon.MEDIA_JSON] = handler
    app.resp_options.media_handlers[falcon.MEDIA_JSON] = handler
    app.req_options.strip_url_path_trailing_slash = True
    errors.install(app)

    app.add_route("/health", Health(services))
    app.add_route("/api/v1/openapi.json", OpenApi())
    app.add_route("/.well-known/jwks.json", Jwks(services))
    app.add_route("/site/account/{account_id:uuid}/widgets", Widgets(services))
    app.add_route("/site/widget/{widget_id:uuid}/account_statistics", AccountStatistics(services))
    app.add_route("/api/v1/sessions", SessionsCollection(services))
    app.add_route("/api/v1/sessions/{session_id:uuid}", SessionItem(services))
    app.add_route("/api/v1/sessions/{session_id:uuid}/events", SessionEvents(services))
    app.add_route("/api/v1/sessions/{session_id:uuid}/screenshots", SessionScreenshots(services))
    app.add_route("/api/v1/screenshots/{screenshot_id:int(min=1)}", ScreenshotImage(services))
    app.add_route("/api/v1/track", Track(services))
    app.add_route("/api/v1/track/screenshot", ScreenshotUpload(services))
    add_stats_routes(app, services)  # /api/v1/stats/...: the dashboard's numbers, from the roll-ups
    register_lifecycle(scheduler, settings)  # roll-up refresh and retention jobs
    tracker_script = TrackerScript()
    app.add_route("/tracker.js", tracker_script)
    app.add_route("/tracker/{name}", tracker_script, suffix="chunk")
    install_stacks(app, services)  # statistics stacks: the seed's routes, scheduler tasks
    dashboard.register(app, services)  # /dashboard/...: the analysts' pages and their JSON twins
    return app


def _ip_hash_key(settings: Settings, pool: Pool) -> bytes:
    if settings.ip_hash_key:
        return settings.ip_hash_key.encode()
    with pool.connection() as conn:
        return instance_secret(conn, "ip_hash_key", secrets.token_bytes(32))


def prepare_database(pool: Pool) -> None:
    """Make sure what the API needs at start exists (the first JWT signing key)."""
    with pool.connection() as conn:
        ensure_signing_key(conn)


def get_app() -> falcon.App:
    """Build the app from the environment (gunicorn calls this in each worker)."""
    settings = Settings.from_env()
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s")
    if not settings.database_url:
        raise SystemExit("HINDSIGHT_DATABASE_URL is not set")
    pool = create_pool(settings)
    prepare_database(pool)
    scheduler = Scheduler()
    # The host's request counts, created by the gunicorn master before it forked us.
    app = create_app(settings, pool, scheduler=scheduler, rate_counter=ratelimit.host_counter)
    scheduler.start()
    atexit.register(scheduler.stop)
    return app
