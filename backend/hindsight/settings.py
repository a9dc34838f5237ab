"""Every setting Hindsight reads, declared once: a field of `Settings` with its default,
its environment variable and its help.

`Settings.from_env()` is the only place the environment is read. README.md's settings
table is generated from these declarations (`make docs` rewrites it; tests/test_settings.py
fails when it is stale).
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


def setting(default: Any, env: str, help: str) -> Any:
    """A settings field: its default, the environment variable that sets it, and its help
    (Markdown, as it appears in README's table)."""
    return dataclasses.field(default=default, metadata={"env": env, "help": help})


@dataclasses.dataclass(frozen=True)
class Settings:
    database_url: str = setting('', "HINDSIGHT_DATABASE_URL",
            'PostgreSQL URL (libpq syntax). Empty: `make run` uses its embedded cluster under var/.')
    read_database_url: str = setting('', "HINDSIGHT_READ_DATABASE_URL",
            'PostgreSQL URL of a streaming replica for the reads that tolerate lag (dashboard pages, '
            "analysts' API reads, `/api/v1/stats/*`; the list: [docs/SCALING.md](docs/SCALING.md)); "
            'while it is unreachable they go to the primary. Empty: everything on the primary.')
    direct_database_url: str = setting('', "HINDSIGHT_DIRECT_DATABASE_URL",
            'PostgreSQL URL of the primary without a transaction pooler, for the lifecycle jobs '
            '(their advisory locks last a session). Empty: `HINDSIGHT_DATABASE_URL`.')
    database_pooler: str = setting('', "HINDSIGHT_DATABASE_POOLER",
            '`pgbouncer`: the database URLs lead to PgBouncer in transaction pooling mode (no '
            'prepared statements, no `SET`: give the role its `statement_timeout`, '
            '[docs/SCALING.md](docs/SCALING.md)). Empty: direct connections.')
    bind: str = setting('127.0.0.1:8000', "HINDSIGHT_BIND",
            'Address and port `hindsight serve` listens on.')
    workers: int = setting(2, "HINDSIGHT_WORKERS",
            'Number of gunicorn worker processes.')
    worker_connections: int = setting(1000, "HINDSIGHT_WORKER_CONNECTIONS",
            'Connections one worker holds at once, idle keep-alive ones included (gevent: a greenlet '
            'each, not a thread); keep the open-files limit (`ulimit -n`) above workers × this.')
    head_timeout_seconds: float = setting(10.0, "HINDSIGHT_HEAD_TIMEOUT_SECONDS",
            "Time a client has to send a request's line and headers, from their first byte; then "
            "`408` and the connection is closed. An idle connection is closed after 5 s (gunicorn's "
            'keep-alive).')
    body_timeout_seconds: float = setting(10.0, "HINDSIGHT_BODY_TIMEOUT_SECONDS",
            "Time a client has to send a request body, from the server's first read of it, plus one "
            'second per `HINDSIGHT_BODY_MIN_RATE` bytes received; then `408` and the connection is '
            'closed.')
    body_min_rate: int = setting(32768, "HINDSIGHT_BODY_MIN_RATE",
            'Bytes per second of a request body that earn it one more second (the largest screenshot '
            'body, 14 MB, may take 10 + 429 s).')
    public_url: str = setting('', "HINDSIGHT_PUBLIC_URL",
            "URL visitors' browsers use to reach the API (printed by `make run`); empty: `http://` + "
            'bind.')
    pool_min: int = setting(1, "HINDSIGHT_POOL_MIN",
            'Minimum database connections per worker.')
    pool_max: int = setting(8, "HINDSIGHT_POOL_MAX",
            'Maximum database connections per worker.')
    pool_timeout: float = setting(5.0, "HINDSIGHT_POOL_TIMEOUT",
            'Seconds a request waits for a database connection before answering 503.')
    pool_check: bool = setting(True, "HINDSIGHT_POOL_CHECK",
            'Check a pooled connection (an empty query) before lending it, so a database restart '
            'costs no `503` once the database is back ([docs/BENCHMARKS.md](docs/BENCHMARKS.md), '
            '"Pool check").')
    statement_timeout_ms: int = setting(15000, "HINDSIGHT_STATEMENT_TIMEOUT_MS",
            'Time limit for any single SQL statement issued by the API, in milliseconds.')
    max_body_bytes: int = setting(1_048_576, "HINDSIGHT_MAX_BODY_BYTES",
            'Largest accepted request body for JSON endpoints (413 above, checked before reading).')
    max_screenshot_bytes: int = setting(10 * 1024 * 1024, "HINDSIGHT_MAX_SCREENSHOT_BYTES",
            'Largest decoded screenshot image (the request body may be 4/3 of this plus JSON).')
    screenshot_freshness_hours: float = setting(24.0, "HINDSIGHT_SCREENSHOT_FRESHNESS_HOURS",
            'With DOM recording on, a visitor\'s browser takes a screenshot of a page (heatmap '
            'background) only when the account has none of that page and device class newer than '
            'this; 0: every session takes its own.')
    max_recording_body_bytes: int = setting(2 * 1024 * 1024, "HINDSIGHT_MAX_RECORDING_BODY_BYTES",
            'Largest accepted DOM recording segment as sent (gzip); decompressed, at most 16 MiB (413 '
            'above).')
    rate_limit_per_minute: int = setting(100, "HINDSIGHT_RATE_LIMIT_PER_MINUTE",
            'Requests per client IP per minute on the site and write endpoints, counted once for all '
            'workers of a host; 0 disables.')
    trust_forwarded_for: bool = setting(False, "HINDSIGHT_TRUST_FORWARDED_FOR",
            'Take the client IP from X-Forwarded-For (only behind a trusted reverse proxy).')
    widget_jwt_ttl_seconds: int = setting(7 * 24 * 3600, "HINDSIGHT_WIDGET_JWT_TTL_SECONDS",
            'Lifetime of a widget JWT (7 days).')
    statistics_token_ttl_seconds: int = setting(86400, "HINDSIGHT_STATISTICS_TOKEN_TTL_SECONDS",
            'Lifetime of a statistics token; a new one is issued once half of it has passed.')
    ip_hash_key: str = setting('', "HINDSIGHT_IP_HASH_KEY",
            'Key for hashing client IPs (HMAC-SHA256). Empty: a random key kept in the database.')
    data_dir: str = setting('var', "HINDSIGHT_DATA_DIR",
            'Where `make run` keeps its embedded PostgreSQL cluster and the demo account.')
    embedded_port: int = setting(54329, "HINDSIGHT_EMBEDDED_PORT",
            'Port of the embedded PostgreSQL cluster (listens on 127.0.0.1 only).')
    demo_port: int = setting(8001, "HINDSIGHT_DEMO_PORT",
            'Port of the demo site `make run` serves with tracker.js installed '
            '(http://localhost:PORT/); `0`: none.')
    log_level: str = setting('info', "HINDSIGHT_LOG_LEVEL",
            'Log level: debug, info, warning, error.')
    log_format: str = setting('text', "HINDSIGHT_LOG_FORMAT",
            'Log lines as `text` or `json` (one JSON object a line, the per-request line included: '
            '[docs/operations.md](docs/operations.md)).')
    metrics_key: str = setting('', "HINDSIGHT_METRICS_KEY",
            'Bearer key of `GET /metrics` (Prometheus text format). Empty: `/metrics` answers `404`.')
    pipeline_traces: bool = setting(True, "HINDSIGHT_PIPELINE_TRACES",
            "Record each event batch's stages for the pipeline view (`/dashboard/pipeline`; kept 6 "
            'hours).')
    events_retention_days: int = setting(30, "HINDSIGHT_EVENTS_RETENTION_DAYS",
            'Days raw events, sessions and screenshots are kept (at least 7); '
            '`accounts.events_retention_days` overrides it per account '
            '([docs/operations.md](docs/operations.md)).')
    rollup_retention_days: int = setting(730, "HINDSIGHT_ROLLUP_RETENTION_DAYS",
            "Days the dashboard's roll-ups (hourly and daily) are kept.")
    lifecycle_jobs: bool = setting(True, "HINDSIGHT_LIFECYCLE_JOBS",
            'Run the lifecycle jobs (roll-up refresh, retention) from this process; an advisory lock '
            'keeps each to one process at a time anyway.')
    rollup_refresh_seconds: float = setting(300.0, "HINDSIGHT_ROLLUP_REFRESH_SECONDS",
            'How often the scheduler refreshes its roll-ups (all of them on the apache edition, '
            '`sessions_daily` on the timescale edition).')
    retention_interval_seconds: float = setting(3600.0, "HINDSIGHT_RETENTION_INTERVAL_SECONDS",
            'How often the retention job runs (raw events, sessions, screenshots, unreferenced '
            'images, old roll-ups).')
    stacks_monitor_interval_seconds: float = setting(60.0, "HINDSIGHT_STACKS_MONITOR_INTERVAL_SECONDS",
            'How often the statistics-stack monitor runs (flushes idle stacks, drops revoked ones, '
            're-enables hosts under their limit).')
    stacks_event_threshold: int = setting(50, "HINDSIGHT_STACKS_EVENT_THRESHOLD",
            'A statistics stack is flushed once it holds this many events (within a quarter second, '
            'not waiting for the monitor).')
    stacks_idle_seconds: float = setting(1800.0, "HINDSIGHT_STACKS_IDLE_SECONDS",
            'A statistics stack with no new event for this long is flushed by the next monitor run.')
    stacks_memory_limit_mb: float = setting(64.0, "HINDSIGHT_STACKS_MEMORY_LIMIT_MB",
            'Memory for the statistics stacks of one worker; when reached, the largest stacks are '
            'flushed early (nothing is dropped).')
    internal_api_key: str = setting('', "HINDSIGHT_INTERNAL_API_KEY",
            'Bearer key of the internal token API (`POST/PUT/DELETE /api/token`). Empty: that API '
            'answers `403`.')
    dashboard_session_hours: float = setting(12.0, "HINDSIGHT_DASHBOARD_SESSION_HOURS",
            'How long a dashboard login lasts, in hours (then the analyst logs in again).')
    login_failures_per_email: int = setting(5, "HINDSIGHT_LOGIN_FAILURES_PER_EMAIL",
            'Failed dashboard logins allowed per e-mail address from one client address in 15 minutes '
            '(then `429` for that address; 100 from all addresses together lock the e-mail out '
            'everywhere; `hindsight users unlock EMAIL` lifts it).')
    login_failures_per_ip: int = setting(20, "HINDSIGHT_LOGIN_FAILURES_PER_IP",
            'Failed dashboard logins allowed per client address in 15 minutes (then `429`).')
    live_poll_seconds: float = setting(0.25, "HINDSIGHT_LIVE_POLL_SECONDS",
            "How often each worker's live stream loop reads the newest events while someone watches "
            '(`/dashboard/live`; [docs/DECISIONS.md](docs/DECISIONS.md), "Live view").')
    live_max_viewers: int = setting(200, "HINDSIGHT_LIVE_MAX_VIEWERS",
            'Live streams (Server-Sent Events) one worker serves at once; more answer `503`.')
    live_heartbeat_seconds: float = setting(15.0, "HINDSIGHT_LIVE_HEARTBEAT_SECONDS",
            'A live stream with nothing to send writes a comment line this often (keeps proxies '
            'from closing it).')
    live_queue_messages: int = setting(64, "HINDSIGHT_LIVE_QUEUE_MESSAGES",
            'Messages waiting for one live viewer at most; a viewer that falls further behind is '
            'dropped (its browser reconnects and resumes).')
    live_max_events_per_message: int = setting(25, "HINDSIGHT_LIVE_MAX_EVENTS_PER_MESSAGE",
            "Events of one account a live stream's poll reads and sends at most (the newest; the rest "
            'are counted, as `skipped`).')
    live_commit_wait_seconds: float = setting(3.0, "HINDSIGHT_LIVE_COMMIT_WAIT_SECONDS",
            "The live stream waits for the API's open transactions started less than this long ago "
            'to commit before reading past their start; a batch whose transaction takes longer may '
            'be missed by the stream (it is stored all the same).')
    live_resume_seconds: float = setting(300.0, "HINDSIGHT_LIVE_RESUME_SECONDS",
            'A live stream reconnecting with a `Last-Event-ID` this old or less gets what it missed; '
            'an older one is told to reload.')
    live_stream_max_seconds: float = setting(600.0, "HINDSIGHT_LIVE_STREAM_MAX_SECONDS",
            'A live stream ends after this long (the browser reconnects at once, and its login or '
            'API key is checked again).')
    write_timeout_seconds: float = setting(30.0, "HINDSIGHT_WRITE_TIMEOUT_SECONDS",
            'Time a client has to take a chunk of a response (plus one second per '
            '`HINDSIGHT_BODY_MIN_RATE` bytes); then the connection is closed. Bounds a live stream '
            'whose client stopped reading.')

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from the environment; `overrides` win over it."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for declared in SETTINGS:
            raw = environ.get(declared.env)
            if raw is None:
                continue
            try:
                values[declared.field] = declared.parse(raw)
            except ValueError as ex:
                raise SystemExit(f"{declared.env}: {ex}") from ex
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


_PARSERS: dict[type, Callable[[str], Any]] = {bool: _bool, int: int, float: float, str: str}

SETTINGS: tuple[Setting, ...] = tuple(
    Setting(f.metadata["env"], f.name, f.default, _PARSERS[type(f.default)], f.metadata["help"])
    for f in dataclasses.fields(Settings)
)


def _default_text(value: Any) -> str:
    if value == "":
        return "(empty)"
    if isinstance(value, bool):
        return "`true`" if value else "`false`"
    return f"`{value}`"


def readme_table() -> str:
    """README's settings table, generated from the declarations above."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    rows += [f"| `{s.env}` | {_default_text(s.default)} | {s.help} |" for s in SETTINGS]
    return "\n".join(rows) + "\n"


TABLE_START = "<!-- settings table: generated by `make docs` from backend/hindsight/settings.py -->\n"
TABLE_END = "<!-- end of settings table -->\n"


def rewrite_readme(text: str) -> str:
    """`text` (README.md) with the table between the markers replaced by `readme_table()`."""
    start = text.index(TABLE_START) + len(TABLE_START)
    end = text.index(TABLE_END, start)
    return text[:start] + readme_table() + text[end:]


if __name__ == "__main__":  # make docs: python -m hindsight.settings README.md
    import sys

    path = sys.argv[1]
    with open(path, encoding="utf-8") as f:
        old = f.read()
    new = rewrite_readme(old)
    if new != old:
        with open(path, "w", encoding="utf-8") as f:
            f.write(new)
        print(f"{path}: settings table rewritten")
