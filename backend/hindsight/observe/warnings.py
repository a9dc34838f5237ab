"""Ingestion warnings per account: refused writes, added up in memory, upserted every few
seconds (migration 0022, `ingestion_warnings`).

The HTTP layer (hindsight.request_ids) hands every refused write to `WarningBuffer.record`
with what it knows: the status, a short reason (`classify`), the statistics token the
request carried (the account is looked up from it at flush time, even when the token has
expired or was revoked: only to learn whose warning it is, never to authorize anything)
and a sample (the field names, never the body). Accepted writes cost nothing here.

A flood of bad requests is bounded twice: in memory, at most `max_groups` groups per
process between flushes (further groups are only counted in `dropped`); in the database,
one upsert statement per flush whatever the number of requests.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ..db import Pool
from ..queries import observe as queries

# What refused writes are called: (status, words of the description) -> reason, first match.
_REASONS: dict[int, tuple[tuple[str, str], ...]] = {
    400: (("not valid JSON", "invalid_json"), ("empty", "empty_body"), ("nested", "invalid_json")),
    401: (("expired", "token_expired"), ("revoked", "token_revoked"), ("Unknown", "token_unknown"),
          ("not a valid token", "token_invalid"), ("must be 'Bearer", "token_invalid"),
          ("required", "token_missing")),
    403: (("disabled for this host", "host_disabled"), ("account is disabled", "account_disabled"),
          ("not for this origin", "origin_mismatch"), ("registered domain", "origin_unregistered"),
          ("not the account", "account_mismatch")),
    404: (("session", "session_unknown"),),
}
_BY_STATUS = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 408: "timeout", 409: "conflict", 411: "length_required",
              413: "too_large", 415: "media_type", 422: "unprocessable", 429: "rate_limited",
              503: "unavailable"}


def classify(status: int, description: str, fields: dict[str, Any] | None = None) -> str:
    """A short, bounded reason for a refused request (a metrics label and a warning's key)."""
    if status == 400 and fields:
        return "invalid_fields"
    for words, reason in _REASONS.get(status, ()):
        if words in description:
            return reason
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return "server_error" if status >= 500 else f"http_{status}"


def field_names(fields: dict[str, Any], limit: int = 20) -> list[str]:
    """The invalid fields' names as dotted paths, list indexes as `*`
    (`{"events": {"3": {"timestamp": [...]}}}` -> `["events.*.timestamp"]`); never a value."""
    names: set[str] = set()

    def walk(node: Any, prefix: str, depth: int) -> None:
        if not isinstance(node, dict) or not node or depth > 4:
            names.add(prefix)
            return
        for key, value in node.items():
            part = "*" if str(key).isdigit() else str(key)[:60]
            walk(value, f"{prefix}.{part}" if prefix else part, depth + 1)

    walk(fields, "", 0)
    return sorted(n for n in names if n)[:limit]


def rejection_rows(groups: dict[tuple, _Group]) -> list[dict[str, Any]]:
    """A flush's refusals per account, in the 10-second bucket of its latest one (a flush
    covers 2 s, so a count lands at most one bucket late)."""
    step = queries.REJECTION_BUCKET_SECONDS
    counts: dict[tuple, int] = {}
    for (account, _status, _reason), g in groups.items():
        bucket = datetime.fromtimestamp(g.last_seen.timestamp() // step * step, tz=g.last_seen.tzinfo)
        counts[(account, bucket)] = counts.get((account, bucket), 0) + g.count
    return [{"account_id": str(a), "bucket": b.isoformat(), "rejected": n} for (a, b), n in counts.items()]


@dataclass
class _Group:
    count: int
    first_seen: datetime
    last_seen: datetime
    sample: dict[str, Any]


@dataclass
class WarningBuffer:
    clock: Callable[[], datetime]
    max_groups: int = 2000
    dropped: int = 0
    _groups: dict[tuple, _Group] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, *, status: int, reason: str, token: uuid.UUID | None,
               account_id: uuid.UUID | None, sample: dict[str, Any]) -> None:
        if token is None and account_id is None:
            return  # nobody's warning: the metrics count it
        key = (account_id, token if account_id is None else None, status, reason)
        now = self.clock()
        with self._lock:
            group = self._groups.get(key)
            if group is not None:
                group.count += 1
                group.last_seen = now
                group.sample = sample
            elif len(self._groups) < self.max_groups:
                self._groups[key] = _Group(1, now, now, sample)
            else:
                self.dropped += 1

    def drain(self) -> dict[tuple, _Group]:
        with self._lock:
            groups, self._groups = self._groups, {}
        return groups

    def flush(self, pool: Pool) -> int:
        """Upsert what was recorded since the last flush; return the groups written."""
        groups = self.drain()
        if not groups:
            return 0
        try:
            with pool.connection() as conn, conn.transaction():
                tokens = {k[1] for k in groups if k[1] is not None}
                owners = queries.token_accounts(conn, list(tokens)) if tokens else {}
                merged: dict[tuple, _Group] = {}
                for (account, token, status, reason), g in groups.items():
                    account = account or owners.get(token)
                    if account is None:
                        continue  # an unknown token: nobody's to warn
                    m = merged.get((account, status, reason))
                    if m is None:
                        merged[(account, status, reason)] = _Group(g.count, g.first_seen, g.last_seen, g.sample)
                    else:
                        m.count += g.count
                        m.first_seen = min(m.first_seen, g.first_seen)
                        if g.last_seen >= m.last_seen:
                            m.last_seen, m.sample = g.last_seen, g.sample
                rows = [{"account_id": str(a), "status": s, "reason": r, "count": g.count,
                         "first_seen": g.first_seen.isoformat(), "last_seen": g.last_seen.isoformat(),
                         "sample": g.sample} for (a, s, r), g in merged.items()]
                if rows:
                    queries.upsert_warnings(conn, rows)
                    queries.add_rejections(conn, rejection_rows(merged))
        except Exception:
            with self._lock:  # the database is down: keep them for the next flush, within bounds
                for key, g in groups.items():
                    if key not in self._groups and len(self._groups) < self.max_groups:
                        self._groups[key] = g
            raise
        return len(rows)


def account_warnings(pool: Pool, account_id: uuid.UUID, since: datetime, limit: int = 100) -> list[dict[str, Any]]:
    """An account's warning groups seen since `since`, the latest first."""
    with pool.connection() as conn:
        rows = queries.list_warnings(conn, account_id, since, limit)
    return [{"status": int(r["status"]), "reason": r["reason"], "count": int(r["count"]),
             "first_seen": r["first_seen"], "last_seen": r["last_seen"], "sample": r["sample"]}
            for r in rows]
