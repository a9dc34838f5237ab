"""Usage against limits: log a flush's usage, enforce the monthly limit, switch hosts back on.

The period is the calendar month in UTC. `usage_periods` keeps the running total per
account, service and period; its row lock orders concurrent flushes of one account.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time

from ..db import Conn, one

SERVICE_STATISTICS = "statistics"


def period_start(now: datetime) -> date:
    """The first day of `now`'s calendar month, in UTC."""
    return now.astimezone(UTC).date().replace(day=1)


def period_start_at(now: datetime) -> datetime:
    """The instant `now`'s period began: midnight UTC of `period_start`."""
    return datetime.combine(period_start(now), time.min, UTC)


@dataclass(frozen=True)
class UsageCheck:
    used: int               # the account's usage in the period, this flush included
    limit: int | None       # None: unlimited
    exceeded: bool
    revoked_tokens: tuple[uuid.UUID, ...] = ()


LOG_USAGE = """
WITH logged AS (
    INSERT INTO usage_log (account_id, service, amount, period_start, host, counter_id, logged_at)
    VALUES (%(account_id)s, %(service)s, %(amount)s, %(period)s, %(host)s, %(counter_id)s, %(now)s)
)
INSERT INTO usage_periods AS u (account_id, service, period_start, amount, updated_at)
VALUES (%(account_id)s, %(service)s, %(period)s, %(amount)s, %(now)s)
ON CONFLICT (account_id, service, period_start)
DO UPDATE SET amount = u.amount + excluded.amount, updated_at = excluded.updated_at
RETURNING amount, (SELECT monthly_event_limit FROM accounts WHERE account_id = %(account_id)s) AS "limit"
"""

# Reaching the limit switches every host of the account off: the limit is the account's.
SWITCH_OFF = """
WITH flags AS (
    UPDATE statistics_flags
    SET enabled = false, disabled_reason = 'usage_limit', disabled_period = %(period)s, updated_at = %(now)s
    WHERE account_id = %(account_id)s AND enabled
)
-- revoked_at on the database's clock: every process's monitor looks revocations up by it.
UPDATE statistics_tokens SET revoked_at = now()
WHERE account_id = %(account_id)s AND revoked_at IS NULL
RETURNING token
"""


def log_usage(conn: Conn, *, account_id: uuid.UUID, host: str, amount: int,
              counter_id: int | None, now: datetime) -> UsageCheck:
    """Log `amount` for the account's current period and enforce its limit.

    At or over the limit, every statistics flag of the account is switched off (reason
    'usage_limit') and its live tokens are revoked. Runs in the caller's transaction.
    """
    period = period_start(now)
    row = one(conn.execute(LOG_USAGE, {
        "account_id": account_id, "service": SERVICE_STATISTICS, "amount": amount,
        "period": period, "host": host, "counter_id": counter_id, "now": now,
    }))
    used, limit = row["amount"], row["limit"]
    if limit is None or used < limit:
        return UsageCheck(used, limit, False)
    revoked = conn.execute(SWITCH_OFF, {"account_id": account_id, "period": period,
                                        "now": now}).fetchall()
    return UsageCheck(used, limit, True, tuple(r["token"] for r in revoked))


def usage_in_period(conn: Conn, account_id: uuid.UUID, now: datetime) -> int:
    row = conn.execute(
        "SELECT amount FROM usage_periods WHERE account_id = %s AND service = %s AND period_start = %s",
        (account_id, SERVICE_STATISTICS, period_start(now)),
    ).fetchone()
    return row["amount"] if row else 0


# Hosts switched off by the limit come back on in a new period or under a raised limit.
SWITCH_BACK_ON = """
UPDATE statistics_flags f
SET enabled = true, disabled_reason = NULL, disabled_period = NULL, updated_at = %(now)s
FROM accounts a
WHERE a.account_id = f.account_id AND NOT f.enabled AND f.disabled_reason = 'usage_limit'
  AND (%(account_id)s::uuid IS NULL OR f.account_id = %(account_id)s)
  AND (f.disabled_period < %(period)s
       OR a.monthly_event_limit IS NULL
       OR a.monthly_event_limit > coalesce(
              (SELECT u.amount FROM usage_periods u
               WHERE u.account_id = f.account_id AND u.service = %(service)s
                 AND u.period_start = %(period)s), 0))
RETURNING f.account_id, f.host
"""


def switch_back_on(conn: Conn, now: datetime,
                   account_id: uuid.UUID | None = None) -> list[dict]:
    """Re-enable hosts switched off by the usage limit that are under it now; return them."""
    return conn.execute(SWITCH_BACK_ON, {"now": now, "period": period_start(now),
                                         "service": SERVICE_STATISTICS,
                                         "account_id": account_id}).fetchall()


def set_limit(conn: Conn, account_id: uuid.UUID, limit: int | None,
              now: datetime) -> dict:
    """Set the account's monthly event limit; hosts now under it are switched back on."""
    with conn.transaction():
        row = conn.execute(
            "UPDATE accounts SET monthly_event_limit = %s, updated_at = %s WHERE account_id = %s "
            "RETURNING account_id",
            (limit, now, account_id),
        ).fetchone()
        if row is None:
            raise LookupError(f"no account {account_id}")
        enabled = switch_back_on(conn, now, account_id)
        used = usage_in_period(conn, account_id, now)
    return {"account_id": str(account_id), "monthly_event_limit": limit, "used_this_month": used,
            "enabled_hosts": sorted(r["host"] for r in enabled)}


def enable(conn: Conn, account_id: uuid.UUID, host: str | None,
           now: datetime) -> dict:
    """Switch the account (and its statistics, for one host or all) back on, whatever the usage.

    An account still at its limit is switched off again by its next flush.
    """
    with conn.transaction():
        row = conn.execute(
            "UPDATE accounts SET active = true, updated_at = %s WHERE account_id = %s "
            "RETURNING monthly_event_limit",
            (now, account_id),
        ).fetchone()
        if row is None:
            raise LookupError(f"no account {account_id}")
        hosts = conn.execute(
            """
            UPDATE statistics_flags
            SET enabled = true, disabled_reason = NULL, disabled_period = NULL, updated_at = %s
            WHERE account_id = %s AND (%s::text IS NULL OR host = %s) AND NOT enabled
            RETURNING host
            """,
            (now, account_id, host, host),
        ).fetchall()
        used = usage_in_period(conn, account_id, now)
    limit = row["monthly_event_limit"]
    return {"account_id": str(account_id), "enabled_hosts": sorted(r["host"] for r in hosts),
            "monthly_event_limit": limit, "used_this_month": used,
            "at_limit": limit is not None and used >= limit}


def pending_usage(conn: Conn, account_id: uuid.UUID) -> dict:
    """Events stored but not yet counted by a stack flush (the ledger), for this account."""
    return one(conn.execute(
        "SELECT coalesce(sum(total), 0)::bigint AS events, count(*) AS batches, min(created_at) AS oldest "
        "FROM stack_pending WHERE account_id = %s", (account_id,)))


COUNTED_BY_HOST = """
SELECT host, count(*) AS flushes, sum(session_events)::bigint AS sessions,
       sum(page_events)::bigint AS pages, sum(click_events)::bigint AS clicks,
       sum(other_events)::bigint AS other, sum(total_events)::bigint AS total,
       max(created_at) AS last_flush_at
FROM statistics_counters
WHERE account_id = %(account_id)s AND created_at >= %(since)s
GROUP BY host
ORDER BY total DESC, host
"""


def counted_by_host(conn: Conn, account_id: uuid.UUID, since: datetime) -> list[dict]:
    """What the stack flushes counted since `since`, per host (statistics_counters: one row
    per flush): session starts, page views, clicks, other events and their total."""
    return conn.execute(COUNTED_BY_HOST, {"account_id": account_id, "since": since}).fetchall()
