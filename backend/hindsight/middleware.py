"""Request guards that run before any resource: body size and type, rate limits, CORS."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import falcon

from .errors import ApiError
from .hosts import candidate_domains, hostname_of
from .ratelimit import HostCounter

JSON_TYPES = ("application/json", "text/plain")  # text/plain: sendBeacon without a preflight
# A DOM recording segment (gzip or JSON bytes): a sendBeacon Blob's type, or the JSON types.
RECORDING_PATH = "/api/v1/track/recording"
RECORDING_TYPES = ("application/octet-stream", *JSON_TYPES)


class RequestLimits:
    """413 before reading an oversized body; 411 for chunked bodies; 415 for non-JSON
    (a recording segment is bytes: octet-stream, or the JSON types, on its path only)."""

    def __init__(self, max_body: int, max_screenshot_body: int, max_recording_body: int | None = None) -> None:
        self._max_body = max_body
        self._max_screenshot_body = max_screenshot_body
        self._max_recording_body = max_body if max_recording_body is None else max_recording_body

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if req.method not in ("POST", "PUT", "PATCH"):
            return
        recording = req.path == RECORDING_PATH
        limit = (self._max_recording_body if recording else
                 self._max_screenshot_body if req.path.endswith("/screenshot") else self._max_body)
        length = req.content_length
        if length is None:
            if req.get_header("Transfer-Encoding"):
                # A chunked body's size is unknown until it has been read.
                raise ApiError(falcon.HTTP_411, "Length Required",
                               "Send the request body with a Content-Length header.")
            length = 0  # no length and no chunking: HTTP/1.1 says the body is empty
        if length > limit:
            raise ApiError(falcon.HTTP_413, "Payload Too Large",
                           f"The request body is {length} bytes; the limit here is {limit}.")
        media_type = (req.content_type or "").split(";")[0].strip().lower()
        if recording:
            if length and media_type not in RECORDING_TYPES:
                raise ApiError(falcon.HTTP_415, "Unsupported Media Type",
                               "Send the segment with Content-Type: application/octet-stream.")
            return
        # The dashboard's pages post HTML forms (urlencoded); everything else takes JSON.
        if length and media_type not in JSON_TYPES and not req.path.startswith("/dashboard/"):
            raise ApiError(falcon.HTTP_415, "Unsupported Media Type",
                           "Send JSON with Content-Type: application/json.")


class RateLimiter:
    """Fixed one-minute windows of requests per client IP, for site and write endpoints.

    Under gunicorn the counts are the host's (`counter`, shared by its workers: see
    hindsight.ratelimit); without one (a single process) they live in this process.
    """

    def __init__(self, per_minute: int, client_ip: Callable[[falcon.Request], str],
                 clock: Callable[[], float] = time.monotonic, counter: HostCounter | None = None) -> None:
        self._limit = per_minute
        self._client_ip = client_ip
        self._clock = clock
        self._counter = counter
        self._lock = threading.Lock()
        self._window = -1
        self._counts: dict[str, int] = {}

    @staticmethod
    def applies_to(req: falcon.Request) -> bool:
        if req.method == "OPTIONS" or req.path == "/api/token" or req.path.startswith("/api/token/"):
            return False  # preflights, and the internal token API (it has its own key)
        return req.path.startswith("/site/") or (
            req.method == "POST" and req.path.startswith("/api/")
        )

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        if self._limit <= 0 or not self.applies_to(req):
            return
        now = self._clock()
        window = int(now // 60)
        ip = self._client_ip(req)
        if self._counter is not None:
            count = self._counter.hit(ip, window + 1)   # (+1: window 0 marks a free slot)
        else:
            with self._lock:
                if window != self._window:
                    self._window, self._counts = window, {}
                count = self._counts.get(ip, 0) + 1
                self._counts[ip] = count
        if count is not None and count > self._limit:
            retry_after = max(1, int(60 - now % 60))
            raise ApiError(falcon.HTTP_429, "Too Many Requests",
                           f"More than {self._limit} requests a minute from this address.",
                           headers={"Retry-After": str(retry_after)})


class Cors:
    """CORS for the browser-facing endpoints.

    Preflights are answered for origins whose host is registered by some account.
    Actual responses carry Access-Control-Allow-Origin only when the resource has
    verified the origin against the account it serves (`req.context.cors_origin`).
    """

    ALLOW_HEADERS = "Authorization, Content-Type"
    MAX_AGE = "600"

    def __init__(self, is_registered_host: Callable[[str], bool]) -> None:
        self._is_registered_host = is_registered_host

    BROWSER_PATHS = ("/api/v1/sessions", "/api/v1/track", "/api/v1/track/screenshot",
                     "/api/v1/track/screenshot/wanted", RECORDING_PATH)
    BROWSER_PREFIXES = ("/site/", "/api/sessions/", "/api/pages/", "/api/events/", "/api/referrers/")

    @classmethod
    def browser_facing(cls, path: str) -> bool:
        return path in cls.BROWSER_PATHS or path.startswith(cls.BROWSER_PREFIXES)

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.cors_origin = None
        if req.method != "OPTIONS" or not req.get_header("Access-Control-Request-Method"):
            return
        origin = req.get_header("Origin")
        host = hostname_of(origin)
        if (not self.browser_facing(req.path) or origin is None or host is None
                or not self._is_registered_host(host)):
            raise ApiError(falcon.HTTP_403, "Forbidden",
                           "This origin is not a registered domain of any account.")
        resp.set_header("Access-Control-Allow-Origin", origin)
        resp.set_header("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
        resp.set_header("Access-Control-Allow-Headers", self.ALLOW_HEADERS)
        resp.set_header("Access-Control-Max-Age", self.MAX_AGE)
        resp.set_header("Vary", "Origin")
        resp.status = falcon.HTTP_204
        resp.complete = True

    def process_response(self, req, resp, resource, req_succeeded) -> None:
        if req.method == "OPTIONS":
            return
        origin = getattr(req.context, "cors_origin", None)
        if origin is None and not req_succeeded and self.browser_facing(req.path):
            # Let a registered site read why it was refused (401: renew the token, 403: stop,
            # 429/503: back off), or tracker.js could not tell those from a network error.
            origin = req.get_header("Origin")
            host = hostname_of(origin)
            try:
                if host is None or not self._is_registered_host(host):
                    origin = None
            except Exception:  # the database is down: the error is a 503 either way
                origin = None
        if origin:
            resp.set_header("Access-Control-Allow-Origin", origin)
            resp.set_header("Access-Control-Expose-Headers", "Retry-After")
            resp.set_header("Vary", "Origin")


class RegisteredHosts:
    """Answer "is this host covered by some account's domain?" with a short cache."""

    def __init__(self, pool, ttl_seconds: float = 30.0) -> None:
        self._pool = pool
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, bool]] = {}
        self._lock = threading.Lock()

    def __call__(self, host: str) -> bool:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(host)
        if hit and now - hit[0] < self._ttl:
            return hit[1]
        with self._pool.connection() as conn:
            found = conn.execute(
                "SELECT EXISTS (SELECT 1 FROM domains WHERE name = ANY(%s))",
                (candidate_domains(host),),
            ).fetchone()
        value = bool(next(iter(found.values())))
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[host] = (now, value)
        return value
