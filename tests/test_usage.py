"""Usage and limits: periods, the `hindsight accounts set-limit / enable` commands, and
flushes racing with ingestion on one account."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

from stacks_rig import counted, flag, make_rig

from hindsight.db import connect
from hindsight.queries.tokens import live_or_new_token
from hindsight.queries.usage import log_usage, period_start
from hindsight.stacks import ledger

HINDSIGHT = str(Path(sys.executable).with_name("hindsight"))


def run(db_url: str, *args: str) -> subprocess.CompletedProcess:
    env = dict(os.environ, HINDSIGHT_DATABASE_URL=db_url)
    return subprocess.run([HINDSIGHT, *args], env=env, capture_output=True, text=True, timeout=60)


def test_the_period_is_the_calendar_month_in_utc():
    assert period_start(datetime(2031, 2, 1, 0, 30, tzinfo=UTC)) == date(2031, 2, 1)
    assert period_start(datetime(2031, 1, 31, 23, 59, 59, tzinfo=UTC)) == date(2031, 1, 1)
    east = timezone(timedelta(hours=2))
    assert period_start(datetime(2031, 2, 1, 1, 0, tzinfo=east)) == date(2031, 1, 1)  # 23:00 UTC


def _switched_off_account(db_url: str, limit: int) -> tuple[str, str]:
    created = run(db_url, "accounts", "create", "--name", "Limited", "--domain",
                  f"limited-{uuid.uuid4().hex[:6]}.example", "--monthly-event-limit", str(limit))
    assert created.returncode == 0, created.stderr
    account = json.loads(created.stdout)
    account_id, host = uuid.UUID(account["account_id"]), account["domain"]
    now = datetime.now(UTC)
    with connect(db_url) as conn, conn.transaction():
        live_or_new_token(conn, account_id, host, now, timedelta(hours=1))
        check = log_usage(conn, account_id=account_id, host=host, amount=limit + 5, counter_id=None, now=now)
    assert check.exceeded and len(check.revoked_tokens) == 1
    return account["account_id"], host


def test_cli_enable_and_set_limit(db_url):
    account_id, host = _switched_off_account(db_url, 10)
    assert flag(db_url, account_id, host) == {"enabled": False, "disabled_reason": "usage_limit"}

    enabled = run(db_url, "accounts", "enable", "--account", account_id)
    assert enabled.returncode == 0, enabled.stderr
    out = json.loads(enabled.stdout)
    assert out["enabled_hosts"] == [host] and out["used_this_month"] == 15 and out["at_limit"] is True
    assert "at its monthly limit" in enabled.stderr
    assert flag(db_url, account_id, host) == {"enabled": True, "disabled_reason": None}

    account_id, host = _switched_off_account(db_url, 10)
    same = run(db_url, "accounts", "set-limit", "--account", account_id, "--monthly-event-limit", "12")
    assert same.returncode == 0 and json.loads(same.stdout)["enabled_hosts"] == []  # 15 >= 12: still off
    assert flag(db_url, account_id, host)["enabled"] is False
    raised = run(db_url, "accounts", "set-limit", "--account", account_id, "--monthly-event-limit", "100")
    assert raised.returncode == 0, raised.stderr
    assert json.loads(raised.stdout) == {"account_id": account_id, "monthly_event_limit": 100,
                                         "used_this_month": 15, "enabled_hosts": [host]}
    assert flag(db_url, account_id, host)["enabled"] is True
    unlimited = run(db_url, "accounts", "set-limit", "--account", account_id, "--monthly-event-limit", "none")
    assert json.loads(unlimited.stdout)["monthly_event_limit"] is None

    missing = run(db_url, "accounts", "set-limit", "--account", str(uuid.uuid4()), "--monthly-event-limit", "5")
    assert missing.returncode == 2 and "no account" in missing.stderr
    negative = run(db_url, "accounts", "set-limit", "--account", account_id, "--monthly-event-limit", "-1")
    assert negative.returncode == 2 and "negative" in negative.stderr
    assert run(db_url, "accounts", "enable", "--account", str(uuid.uuid4())).returncode == 2


def test_flushes_racing_with_ingestion_count_every_event_once(settings, pool, db_url):
    rig = make_rig(settings, pool, db_url, stacks_event_threshold=10**6)
    site = rig.site()
    key = (uuid.UUID(site.account_id), site.domain)
    sessions = [rig.session(site) for _ in range(4)]
    stop = threading.Event()
    errors: list[BaseException] = []

    def ingest(session_id: str, offset: int) -> None:
        try:
            for b in range(15):
                seqs = list(range(offset + b * 6, offset + b * 6 + 6))
                rig.events(site, session_id, ["click", "mouse_move", "page_view"] * 2, seqs=seqs)
        except BaseException as ex:  # noqa: BLE001 - reported by the main thread
            errors.append(ex)

    def flusher() -> None:
        try:
            while not stop.is_set():
                with pool.connection() as conn:
                    ledger.flush(conn, key[0], key[1], rig.clock.now)
        except BaseException as ex:  # noqa: BLE001
            errors.append(ex)

    writers = [threading.Thread(target=ingest, args=(s, 0)) for s in sessions]
    flushers = [threading.Thread(target=flusher) for _ in range(2)]
    for t in writers + flushers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in flushers:
        t.join()
    assert not errors, errors
    with pool.connection() as conn:
        ledger.flush(conn, key[0], key[1], rig.clock.now)
        steps = conn.execute(
            "SELECT j.session_id, array_agg(s.step ORDER BY s.step) AS steps, count(*) AS n "
            "FROM journeys j JOIN journey_steps s USING (journey_id) WHERE j.account_id = %s "
            "GROUP BY j.session_id", (site.account_id,)).fetchall()
    done = counted(db_url, site.account_id)
    assert done["pending"] == 0
    assert done["usage_total"] == done["period_total"] == done["stored"] == 4 + 4 * 15 * 6
    assert sum(c["total_events"] for c in done["counters"]) == done["stored"]
    # Each journey: the start, then 60 clicks and page views, numbered 1..61 without a gap.
    assert len(steps) == 4
    for row in steps:
        assert row["steps"] == list(range(1, 62))
