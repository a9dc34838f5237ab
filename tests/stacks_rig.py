"""Helpers for the statistics-stack tests: an app with its own stacks, scheduler (not
started: tests run its tasks with `run_now`) and a clock the test moves."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import falcon.testing

from conftest import new_account, token_flow
from hindsight.app import create_app
from hindsight.db import connect
from hindsight.scheduler import Scheduler
from hindsight.stacks import StatisticsStacks, create_stacks

INTERNAL_KEY = "internal-test-key"


class FakeClock:
    def __init__(self, start: datetime | None = None) -> None:
        self.now = start or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class RigSite:
    account_id: str
    domain: str
    widget_id: str
    token: str
    origin: str
    seq: int = 0
    sessions: list[str] = field(default_factory=list)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Origin": self.origin}


@dataclass
class Rig:
    client: falcon.testing.TestClient
    clock: FakeClock
    scheduler: Scheduler
    stacks: StatisticsStacks
    db_url: str

    def monitor(self) -> dict:
        return self.scheduler.run_now("stacks.monitor")

    def flush_due(self) -> dict:
        return self.scheduler.run_now("stacks.flush_due")

    def site(self, limit: int | None = None) -> RigSite:
        account = new_account(self.db_url, limit=limit)
        origin = f"https://{account['domain']}"
        token = token_flow(self.client, account, origin)
        return RigSite(account["account_id"], account["domain"], account["widget_id"], token, origin)

    def session(self, site: RigSite, expect: int = 201) -> str:
        resp = self.client.simulate_post("/api/v1/sessions", json={"page_url": f"{site.origin}/"},
                                         headers=site.headers())
        assert resp.status_code == expect, resp.json
        if expect == 201:
            site.sessions.append(resp.json["session_id"])
            return resp.json["session_id"]
        return ""

    def events(self, site: RigSite, session_id: str, kinds: list[str], expect: int = 201,
               seqs: list[int] | None = None):
        """Send one batch of events of the given types, one millisecond apart."""
        if seqs is None:
            seqs = list(range(site.seq, site.seq + len(kinds)))
            site.seq += len(kinds)
        base = self.clock.now - timedelta(seconds=1)
        events = [{"seq": seq, "timestamp": (base + timedelta(milliseconds=seq)).isoformat(),
                   "event_type": kind, "page_url": f"{site.origin}/p{seq}"}
                  for seq, kind in zip(seqs, kinds, strict=True)]
        resp = self.client.simulate_post("/api/v1/track", json={"session_id": session_id, "events": events},
                                         headers=site.headers())
        assert resp.status_code == expect, resp.json
        return resp


def make_rig(settings, pool, db_url: str, **overrides) -> Rig:
    clock = FakeClock()
    s = settings.with_(**{"internal_api_key": INTERNAL_KEY, **overrides})
    stacks = create_stacks(s, pool, clock)
    scheduler = Scheduler()
    app = create_app(s, pool, scheduler=scheduler, clock=clock, stacks=stacks)
    return Rig(falcon.testing.TestClient(app), clock, scheduler, stacks, db_url)


def counted(db_url: str, account_id: str) -> dict:
    """What the flushes wrote for an account: counters, usage, journey steps, the ledger."""
    with connect(db_url) as conn:
        counters = conn.execute(
            "SELECT host, session_events, page_events, click_events, other_events, total_events "
            "FROM statistics_counters WHERE account_id = %s ORDER BY counter_id", (account_id,)).fetchall()
        usage = conn.execute(
            "SELECT service, amount, period_start, host, counter_id FROM usage_log "
            "WHERE account_id = %s ORDER BY usage_id", (account_id,)).fetchall()
        period = conn.execute(
            "SELECT coalesce(sum(amount), 0)::bigint AS amount FROM usage_periods "
            "WHERE account_id = %s", (account_id,)).fetchone()["amount"]
        pending = conn.execute(
            "SELECT count(*) AS n FROM stack_pending WHERE account_id = %s", (account_id,)).fetchone()["n"]
        events = conn.execute(
            "SELECT count(*) AS n FROM events WHERE account_id = %s", (account_id,)).fetchone()["n"]
        sessions = conn.execute(
            "SELECT count(*) AS n FROM sessions WHERE account_id = %s", (account_id,)).fetchone()["n"]
    return {"counters": counters, "usage": usage, "usage_total": sum(u["amount"] for u in usage),
            "period_total": period, "pending": pending, "stored": events + sessions}


def steps(db_url: str, session_id: str) -> list[tuple]:
    with connect(db_url) as conn:
        return [tuple(r.values()) for r in conn.execute(
            "SELECT s.step, s.step_type, s.seq, s.page_url FROM journey_steps s "
            "JOIN journeys j USING (journey_id) WHERE j.session_id = %s ORDER BY s.step",
            (session_id,))]


def flag(db_url: str, account_id: str, host: str) -> dict:
    with connect(db_url) as conn:
        return conn.execute(
            "SELECT enabled, disabled_reason FROM statistics_flags WHERE account_id = %s AND host = %s",
            (account_id, host)).fetchone()


def token_row(db_url: str, token: str) -> dict:
    with connect(db_url) as conn:
        return conn.execute("SELECT revoked_at FROM statistics_tokens WHERE token = %s",
                            (uuid.UUID(token),)).fetchone()
