"""Every setting Hindsight reads, declared once with its default and its help.

`Settings.from_env()` is the only place the environment is read. README.md has a
table generated from `SETTINGS`; a test checks that each one is documented there.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class Setting:
    env: str
    field: str
    default: Any
    parse: Callable[[str], Any]
    help: str


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {value!r}")


SETTINGS: tuple[Setting, ...] = (
    Setting("HINDSIGHT_DATABASE_URL", "database_url", "", str,
            "PostgreSQL URL (libpq syntax). Empty: `make run` uses its embedded cluster under var/."),
    Setting("HINDSIGHT_BIND", "bind", "127.0.0.1:8000", str,
            "Address and port `hindsight serve` listens on."),
    Setting("HINDSIGHT_WORKERS", "workers", 2, int,
            "Number of gunicorn worker processes."),
    Setting("HINDSIGHT_THREADS", "threads", 4, int,
            "Threads per gunicorn worker (gthread): requests one worker serves at once."),
    Setting("HINDSIGHT_PUBLIC_URL", "public_url", "", str,
            "URL visitors' browsers use to reach the API (printed by `make run`); empty: http://BIND."),
    Setting("HINDSIGHT_POOL_MIN", "pool_min", 1, int,
            "Minimum database connections per worker."),
    Setting("HINDSIGHT_POOL_MAX", "pool_max", 8, int,
            "Maximum database connections per worker."),
    Setting("HINDSIGHT_POOL_TIMEOUT", "pool_timeout", 5.0, float,
            "Seconds a request waits for a database connection before answering 503."),
    Setting("HINDSIGHT_STATEMENT_TIMEOUT_MS", "statement_timeout_ms", 15000, int,
            "Time limit for any single SQL statement issued by the API, in milliseconds."),
    Setting("HINDSIGHT_MAX_BODY_BYTES", "max_body_bytes", 1_048_576, int,
            "Largest accepted request body for JSON endpoints (413 above)."),
    Setting("HINDSIGHT_MAX_SCREENSHOT_BYTES", "max_screenshot_bytes", 10 * 1024 * 1024, int,
            "Largest decoded screenshot image (the request body may be 4/3 of this plus JSON)."),
    Setting("HINDSIGHT_RATE_LIMIT_PER_MINUTE", "rate_limit_per_minute", 100, int,
            "Requests per client IP per minute on the site and write endpoints, counted once for all "
            "workers of a host; 0 disables."),
    Setting("HINDSIGHT_TRUST_FORWARDED_FOR", "trust_forwarded_for", False, _bool,
            "Take the client IP from X-Forwarded-For (only behind a trusted reverse proxy)."),
    Setting("HINDSIGHT_WIDGET_JWT_TTL_SECONDS", "widget_jwt_ttl_seconds", 7 * 24 * 3600, int,
            "Lifetime of a widget JWT."),
    Setting("HINDSIGHT_STATISTICS_TOKEN_TTL_SECONDS", "statistics_token_ttl_seconds", 24 * 3600, int,
            "Lifetime of a statistics token; a new one is issued once half of it has passed."),
    Setting("HINDSIGHT_IP_HASH_KEY", "ip_hash_key", "", str,
            "Key for hashing client IPs (HMAC-SHA256). Empty: a random key kept in the database."),
    Setting("HINDSIGHT_DATA_DIR", "data_dir", "var", str,
            "Where `make run` keeps its embedded PostgreSQL cluster and logs."),
    Setting("HINDSIGHT_EMBEDDED_PORT", "embedded_port", 54329, int,
            "Port of the embedded PostgreSQL cluster (listens on 127.0.0.1 only)."),
    Setting("HINDSIGHT_DEMO_PORT", "demo_port", 8001, int,
            "Port of the demo site `make run` serves with tracker.js installed (http://localhost:PORT/); 0: none."),
    Setting("HINDSIGHT_LOG_LEVEL", "log_level", "info", str,
            "Log level: debug, info, warning, error."),
    Setting("HINDSIGHT_EVENTS_RETENTION_DAYS", "events_retention_days", 30, int,
            "Days raw events, sessions and screenshots are kept (at least 7); accounts.events_retention_days overrides it per account."),
    Setting("HINDSIGHT_ROLLUP_RETENTION_DAYS", "rollup_retention_days", 730, int,
            "Days the dashboard's roll-ups (hourly, daily) are kept."),
    Setting("HINDSIGHT_LIFECYCLE_JOBS", "lifecycle_jobs", True, _bool,
            "Run the lifecycle jobs (roll-up refresh, retention) from this process; one process runs each at a time anyway."),
    Setting("HINDSIGHT_ROLLUP_REFRESH_SECONDS", "rollup_refresh_seconds", 300.0, float,
            "How often the scheduler refreshes its roll-ups (all of them on the apache edition, sessions_daily on timescale)."),
    Setting("HINDSIGHT_RETENTION_INTERVAL_SECONDS", "retention_interval_seconds", 3600.0, float,
            "How often the retention job runs (raw events, sessions, screenshots, unreferenced images, old roll-ups)."),
    Setting("HINDSIGHT_STACKS_MONITOR_INTERVAL_SECONDS", "stacks_monitor_interval_seconds", 60.0, float,
            "How often the statistics-stack monitor runs (flushes idle stacks, drops revoked ones)."),
    Setting("HINDSIGHT_STACKS_EVENT_THRESHOLD", "stacks_event_threshold", 50, int,
            "A statistics stack is flushed once it holds this many events (within a quarter second)."),
    Setting("HINDSIGHT_STACKS_IDLE_SECONDS", "stacks_idle_seconds", 1800.0, float,
            "A statistics stack with no new event for this long is flushed by the next monitor run."),
    Setting("HINDSIGHT_STACKS_MEMORY_LIMIT_MB", "stacks_memory_limit_mb", 64.0, float,
            "Memory for the statistics stacks of one worker; above it the largest are flushed early."),
    Setting("HINDSIGHT_INTERNAL_API_KEY", "internal_api_key", "", str,
            "Bearer key of the internal token API (/api/token). Empty: that API answers 403."),
    Setting("HINDSIGHT_DASHBOARD_SESSION_HOURS", "dashboard_session_hours", 12.0, float,
            "How long a dashboard login lasts, in hours (then the analyst logs in again)."),
    Setting("HINDSIGHT_LOGIN_FAILURES_PER_EMAIL", "login_failures_per_email", 5, int,
            "Failed dashboard logins allowed per e-mail address in 15 minutes (then 429)."),
    Setting("HINDSIGHT_LOGIN_FAILURES_PER_IP", "login_failures_per_ip", 20, int,
            "Failed dashboard logins allowed per client address in 15 minutes (then 429)."),
)


@dataclasses.dataclass(frozen=True)
class Settings:
    database_url: str = ""
    bind: str = "127.0.0.1:8000"
    workers: int = 2
    threads: int = 4
    public_url: str = ""
    pool_min: int = 1
    pool_max: int = 8
    pool_timeout: float = 5.0
    statement_timeout_ms: int = 15000
    max_body_bytes: int = 1_048_576
    max_screenshot_bytes: int = 10 * 1024 * 1024
    rate_limit_per_minute: int = 100
    trust_forwarded_for: bool = False
    widget_jwt_ttl_seconds: int = 7 * 24 * 3600
    statistics_token_ttl_seconds: int = 24 * 3600
    ip_hash_key: str = ""
    data_dir: str = "var"
    embedded_port: int = 54329
    demo_port: int = 8001
    log_level: str = "info"
    events_retention_days: int = 30
    rollup_retention_days: int = 730
    lifecycle_jobs: bool = True
    rollup_refresh_seconds: float = 300.0
    retention_interval_seconds: float = 3600.0
    stacks_monitor_interval_seconds: float = 60.0
    stacks_event_threshold: int = 50
    stacks_idle_seconds: float = 1800.0
    stacks_memory_limit_mb: float = 64.0
    internal_api_key: str = ""
    dashboard_session_hours: float = 12.0
    login_failures_per_email: int = 5
    login_failures_per_ip: int = 20

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from the environment; `overrides` win over it."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            raw = environ.get(setting.env)
            if raw is None:
                continue
            try:
                values[setting.field] = setting.parse(raw)
            except ValueError as ex:
                raise SystemExit(f"{setting.env}: {ex}") from ex
        values.update(overrides)
        return cls(**values)

    @property
    def max_screenshot_body_bytes(self) -> int:
        # base64 inflates by 4/3; leave room for the JSON around the data URL.
        return self.max_screenshot_bytes * 4 // 3 + 64 * 1024

    @property
    def api_url(self) -> str:
        return self.public_url or f"http://{self.bind}"

    def with_(self, **changes: Any) -> Settings:
        return dataclasses.replace(self, **changes)
