"""The WSGI application: `create_app` wires collaborators it is given; `get_app` builds
them from the environment and is what gunicorn serves."""

from __future__ import annotations

import atexit
import datetime as dt
import secrets
from collections.abc import Callable

import falcon
import falcon.media

from . import dashboard, errors, metrics, ratelimit
from .dashboard import web as dashboard_web
from .dashboard.account import AccountPage
from .dashboard.auth_pages import Home, Login, Logout, SwitchAccount
from .dashboard.events import EventsPage
from .dashboard.funnels import FunnelPage, FunnelsPage
from .dashboard.heatmaps import HeatmapImage, HeatmapsPage
from .dashboard.live import LivePage, LiveStreamPage, SessionLive
from .dashboard.overview import OverviewPage
from .dashboard.paths import PathsPage
from .dashboard.pipeline import PipelinePage
from .dashboard.recording import PlayerPage, RecordingSegmentTwin, RecordingTwin
from .dashboard.sessions import ReplayEvents, ReplayPage, ReplayScreenshot, SessionsPage
from .dashboard.static import StaticFiles
from .db import Pool, create_pool
from .json_encoding import dumps
from .lifecycle import register as register_lifecycle
from .live import LiveHub
from .middleware import Cors, RateLimiter, RegisteredHosts, RequestLimits
from .observe import logs
from .observe.service import Observer
from .openapi import OpenApi
from .queries.tenancy import instance_secret
from .ratelimit import HostCounter
from .read_side import ReadSide, create_read_side
from .request_ids import RequestObserver
from .resources import erasure as person_data
from .resources import events as custom_events
from .resources import funnels, stats
from .resources.health import Health
from .resources.http import client_ip
from .resources.live import LiveStream
from .resources.metrics import Metrics
from .resources.pipeline import IngestionWarnings, Pipeline
from .resources.recording import RecordingSegment, RecordingUpload, SessionRecording
from .resources.screenshots import ScreenshotImage
from .resources.seed_events import SeedInteractions, SeedPages, SeedReferrers, SeedSessions
from .resources.seed_health import SeedHealth
from .resources.seed_tokens import TokenCollection, TokenItem
from .resources.sessions import SessionEvents, SessionItem, SessionsCollection, SessionScreenshots
from .resources.site import AccountStatistics, Jwks, Widgets
from .resources.track import ScreenshotUpload, ScreenshotWanted, Track
from .resources.tracker import TrackerScript
from .scheduler import Scheduler
from .services import IpHasher, Services, utc_now
from .settings import Settings
from .signing import KeyRing, ensure_signing_key
from .stacks import StatisticsStacks, create_stacks


def create_app(settings: Settings, pool: Pool, *, keys: KeyRing | None = None,
               ip_hash: IpHasher | None = None, scheduler: Scheduler | None = None,
               clock: Callable[[], dt.datetime] = utc_now,
               stacks: StatisticsStacks | None = None,
               rate_counter: HostCounter | None = None,
               read_pool: ReadSide | None = None) -> falcon.App:
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
    if read_pool is None:  # reads that tolerate lag: HINDSIGHT_READ_DATABASE_URL's replica
        read_pool = create_read_side(settings, pool)
    services = Services(settings=settings, pool=pool, keys=keys, ip_hash=ip_hash,
                        scheduler=scheduler, stacks=stacks, read_pool=read_pool, clock=clock)
    # Ingestion warnings and pipeline traces (hindsight.observe), written by the scheduler.
    observer = Observer(clock, traces_enabled=settings.pipeline_traces)

    middleware: list[RequestObserver | Cors | RateLimiter | RequestLimits] = [
        RequestObserver(observer),  # first: every answer, refusals included, has the request id
        Cors(RegisteredHosts(pool)),
        RateLimiter(settings.rate_limit_per_minute, lambda req: client_ip(req, settings),
                    counter=rate_counter),
        RequestLimits(settings.max_body_bytes, settings.max_screenshot_body_bytes,
                      settings.max_recording_body_bytes),
    ]
    app = falcon.App(middleware=middleware, cors_enable=False)
    handler = falcon.media.JSONHandler(dumps=dumps)
    app.req_options.media_handlers[falcon.MEDIA_JSON] = handler
    app.req_options.media_handlers["text/plain"] = handler  # sendBeacon's JSON (no preflight)
    app.resp_options.media_handlers[falcon.MEDIA_JSON] = handler
    app.req_options.strip_url_path_trailing_slash = True
    errors.install(app)

    # Every route of the service, here and nowhere else.
    app.add_route("/health", Health(services))
    app.add_route("/metrics", Metrics(services))  # Prometheus, behind HINDSIGHT_METRICS_KEY
    app.add_route("/api/v1/ingestion/warnings", IngestionWarnings(services))  # refused writes
    app.add_route("/api/v1/pipeline", Pipeline(services))  # event batches' stages (request id)
    app.add_route("/api/v1/openapi.json", OpenApi())
    tracker_script = TrackerScript()
    app.add_route("/tracker.js", tracker_script)
    app.add_route("/tracker/{name}", tracker_script, suffix="chunk")
    # The site flow: widgets with signed JWTs, traded for statistics tokens.
    app.add_route("/.well-known/jwks.json", Jwks(services))
    app.add_route("/site/account/{account_id:uuid}/widgets", Widgets(services))
    app.add_route("/site/widget/{widget_id:uuid}/account_statistics", AccountStatistics(services))
    # Writes from sites (statistics token), through hindsight.ingestion.
    app.add_route("/api/v1/track", Track(services))
    app.add_route("/api/v1/track/screenshot", ScreenshotUpload(services))
    app.add_route("/api/v1/track/screenshot/wanted", ScreenshotWanted(services))  # take one or not
    app.add_route("/api/v1/track/recording", RecordingUpload(services))  # DOM recording segments
    # /api/v1/sessions: POST (site) creates one through hindsight.ingestion; the rest are
    # analysts' reads (API key).
    app.add_route("/api/v1/sessions", SessionsCollection(services))
    app.add_route("/api/v1/sessions/{session_id:uuid}", SessionItem(services))
    app.add_route("/api/v1/sessions/{session_id:uuid}/events", SessionEvents(services))
    app.add_route("/api/v1/sessions/{session_id:uuid}/screenshots", SessionScreenshots(services))
    app.add_route("/api/v1/sessions/{session_id:uuid}/recording", SessionRecording(services))
    app.add_route("/api/v1/sessions/{session_id:uuid}/recording/{segment:int(min=0,max=1000000)}",
                  RecordingSegment(services))
    app.add_route("/api/v1/screenshots/{screenshot_id:int(min=1)}", ScreenshotImage(services))
    live = LiveHub(pool, settings, clock)  # this process's live stream loop (hindsight.live)
    app.add_route("/api/v1/live/stream", LiveStream(services, live))  # Server-Sent Events
    for path, make in stats.ROUTES.items():  # /api/v1/stats/...: the roll-ups' numbers
        app.add_route(path, make(services))
    # Custom events: server-side writes (API key) and their numbers (hindsight.resources.events).
    app.add_route("/api/v1/events", custom_events.Ingest(services))
    # + saved funnels, and a person's data for admin keys (export, erase)
    for path, resource in (custom_events.ROUTES | funnels.ROUTES | person_data.ROUTES).items():
        app.add_route(path, resource(services))
    # The seed's API (hindsight.seed), kept for widget scripts built against it.
    app.add_route("/api/token", TokenCollection(services))
    app.add_route("/api/token/{token:uuid}", TokenItem(services))
    app.add_route("/api/sessions/add", SeedSessions(services))
    app.add_route("/api/pages/add", SeedPages(services))
    app.add_route("/api/events/add", SeedInteractions(services))
    app.add_route("/api/referrers/add", SeedReferrers(services))
    app.add_route("/api/health/stacks", SeedHealth(services))
    # The analysts' dashboard: pages and their JSON twins (hindsight.dashboard).
    p = dashboard_web.PREFIX
    app.add_route(p, Home())
    app.add_route(f"{p}/login", Login(services))
    app.add_route(f"{p}/logout", Logout(services))
    app.add_route(f"{p}/switch-account", SwitchAccount(services))
    app.add_route(f"{p}/sessions", SessionsPage(services))
    app.add_route(f"{p}/sessions/{{session_id:uuid}}", ReplayPage(services))
    app.add_route(f"{p}/sessions/{{session_id:uuid}}/events", ReplayEvents(services))
    app.add_route(f"{p}/sessions/{{session_id:uuid}}/recording", RecordingTwin(services))
    app.add_route(f"{p}/sessions/{{session_id:uuid}}/recording/{{segment:int(min=0,max=1000000)}}",
                  RecordingSegmentTwin(services))
    app.add_route(f"{p}/player", PlayerPage())  # the sandboxed DOM replay player
    app.add_route(f"{p}/screenshots/{{screenshot_id:int(min=1)}}", ReplayScreenshot(services))
    app.add_route(f"{p}/heatmaps", HeatmapsPage(services))
    app.add_route(f"{p}/heatmaps/image.png", HeatmapImage(services))
    app.add_route(f"{p}/overview", OverviewPage(services))
    app.add_route(f"{p}/live", LivePage(services))  # who is on the site now, events as they arrive
    app.add_route(f"{p}/live/stream", LiveStreamPage(services, live))
    app.add_route(f"{p}/sessions/{{session_id:uuid}}/live", SessionLive(services))  # replay's tail mode
    app.add_route(f"{p}/events", EventsPage(services))  # custom events: names, properties, rates
    app.add_route(f"{p}/paths", PathsPage(services))  # where visitors went after / came from
    app.add_route(f"{p}/funnels", FunnelsPage(services))  # build, save, read funnels
    funnel_page = FunnelPage(services)
    app.add_route(f"{p}/funnels/{{funnel_id:int(min=1)}}", funnel_page)
    app.add_route(f"{p}/funnels/{{funnel_id:int(min=1)}}/delete", funnel_page, suffix="delete")
    account = AccountPage(services)
    app.add_route(f"{p}/pipeline", PipelinePage(services))  # event batches' stages
    app.add_route(f"{p}/account", account)
    app.add_route(f"{p}/account/keys", account, suffix="keys")
    app.add_route(f"{p}/account/keys/{{key_id:int(min=1)}}/revoke", account, suffix="revoke")
    app.add_route(f"{p}/account/users/{{user_id:int(min=1)}}/unlock", account, suffix="unlock")
    # Static files, gzip when asked (hindsight.dashboard.static)
    app.add_route(f"{p}/static/{{name:path}}", StaticFiles(f"{p}/static", dashboard_web.STATIC))
    app.set_error_serializer(dashboard.serialize_error)  # dashboard pages' errors as pages

    # Background work on the scheduler.
    register_lifecycle(scheduler, settings)  # roll-up refresh and retention jobs
    stacks.install(scheduler)  # statistics stacks: monitor and due flushes
    read_pool.install(scheduler)  # the read replica's probe: lag, down, back up
    # This worker's pool on /metrics (psycopg_pool's get_stats(): size, idle, waiting).
    scheduler.every("metrics.pool", 5.0, lambda: metrics.sample_pool(pool.get_stats()), first_delay=0)
    observer.install(scheduler, pool)  # warnings and traces written every 2 s, pruned
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
    logs.configure(settings.log_level, settings.log_format)  # text, or JSON lines
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
