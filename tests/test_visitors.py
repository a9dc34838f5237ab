"""Visitor ids (hindsight.visitors): cookieless by default (a daily salt, the site, the client
address and the user agent), persistent or per user on request; the salts are created once a
day whatever the number of processes, and deleted two days later."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.rows import dict_row

from hindsight import visitors
from hindsight.lifecycle import JobRunner, lifecycle_jobs
from hindsight.services import IpHasher


def create_session(client, site, ip="203.0.113.7", ua="Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0",
                   **body):
    headers = {**site.write_headers(), "User-Agent": ua}
    resp = client.simulate_post("/api/v1/sessions", json={"page_url": f"{site.origin}/", **body},
                                headers=headers, remote_addr=ip)
    assert resp.status_code == 201, resp.json
    return resp.json["session_id"]


def visitor_of(conn, session_id) -> uuid.UUID | None:
    return conn.execute("SELECT visitor_id FROM sessions WHERE session_id = %s", (session_id,)).fetchone()[0]


def test_the_same_browser_is_one_visitor_per_site_and_day(client, make_site, conn):
    site, other = make_site(), make_site()
    first = create_session(client, site)
    again = create_session(client, site)
    other_ip = create_session(client, site, ip="203.0.113.8")
    other_ua = create_session(client, site, ua="Mozilla/5.0 (iPhone) Safari/604.1")
    other_site = create_session(client, other)
    ids = [visitor_of(conn, s) for s in (first, again, other_ip, other_ua, other_site)]
    assert all(isinstance(v, uuid.UUID) for v in ids)
    assert ids[0] == ids[1]
    assert len({ids[0], ids[2], ids[3], ids[4]}) == 4
    # It is the HMAC of today's salt (UTC), so it cannot be recomputed once the salt is gone.
    today = datetime.now(UTC).date()
    salt = conn.execute("SELECT salt FROM visitor_salts WHERE day = %s", (today,)).fetchone()[0]
    assert ids[0] == visitors.daily_id(bytes(salt), site.domain, "203.0.113.7",
                                       "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0")
    assert ids[0] != visitors.daily_id(b"another salt of sixteen+ bytes", site.domain, "203.0.113.7",
                                       "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0")
    # The address itself is nowhere in the row.
    row = conn.execute("SELECT row_to_json(s)::text FROM sessions s WHERE session_id = %s", (first,)).fetchone()[0]
    assert "203.0.113.7" not in row


def test_a_persistent_id_is_hashed_with_the_account(client, make_site, conn):
    site, other = make_site(), make_site()
    browser_id = "b7c1e0a2-5d7e-4a8e-9d55-0c4b1f0e1a11"
    a1 = create_session(client, site, visitor=browser_id)
    a2 = create_session(client, site, visitor=browser_id, ip="198.51.100.1", ua="Other/1.0")
    b1 = create_session(client, other, visitor=browser_id)
    va1, va2, vb1 = (visitor_of(conn, s) for s in (a1, a2, b1))
    assert va1 == va2          # another address and user agent: still the same visitor
    assert va1 != vb1          # another account: unrelated ids
    assert str(va1) != browser_id and str(vb1) != browser_id
    # Without the browser's id the same client is the daily visitor, not the persistent one.
    assert visitor_of(conn, create_session(client, site)) != va1


def test_an_identified_user_is_one_visitor_on_every_device(client, make_site, conn):
    site, other = make_site(), make_site()
    u1 = create_session(client, site, user_id="user-42")
    u2 = create_session(client, site, user_id="user-42", ip="198.51.100.9", ua="Phone/2.0",
                        visitor="some-browser-id")
    u3 = create_session(client, other, user_id="user-42")
    assert visitor_of(conn, u1) == visitor_of(conn, u2) != visitor_of(conn, u3)


def test_concurrent_processes_agree_on_one_salt_per_day(db_url):
    day = datetime(2031, 5, 17, tzinfo=UTC).date()
    results: list[bytes] = []
    barrier = threading.Barrier(6)

    def worker() -> None:
        with psycopg.connect(db_url, autocommit=True, row_factory=dict_row) as c:
            barrier.wait()
            results.append(visitors.Salts().for_day(c, day))  # each its own cache: a process

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(results) == 6 and len(set(results)) == 1 and len(results[0]) == visitors.SALT_BYTES
    with psycopg.connect(db_url) as c:
        stored = c.execute("SELECT salt FROM visitor_salts WHERE day = %s", (day,)).fetchone()[0]
        c.execute("DELETE FROM visitor_salts WHERE day = %s", (day,))
    assert bytes(stored) == results[0]


def test_the_salts_job_deletes_salts_two_days_old(db_url, settings):
    now = datetime.now(UTC)
    today = now.date()
    days = [today - timedelta(days=n) for n in range(4)]
    with psycopg.connect(db_url, autocommit=True) as c:
        for day in days:
            c.execute("INSERT INTO visitor_salts (day, salt) VALUES (%s, %s) ON CONFLICT (day) DO NOTHING",
                      (day, bytes(range(32))))
    runner = JobRunner(db_url, lifecycle_jobs(settings), clock=lambda: now)
    assert "visitor_salts" in {j.name for j in runner.jobs}
    result = runner.run("visitor_salts", force=True)
    assert result["ran"] and result["result"]["deleted"] >= 2
    with psycopg.connect(db_url) as c:
        left = {r[0] for r in c.execute("SELECT day FROM visitor_salts")}
    assert days[0] in left and days[1] in left          # today's and yesterday's stay
    assert days[2] not in left and days[3] not in left  # two days old: gone


def test_keyed_ids_depend_on_the_instance_key():
    account = uuid.uuid4()
    one = visitors.keyed_id(IpHasher(b"k1" * 16), account, "persistent", "x")
    assert one == visitors.keyed_id(IpHasher(b"k1" * 16), account, "persistent", "x")
    assert one != visitors.keyed_id(IpHasher(b"k2" * 16), account, "persistent", "x")
    assert one != visitors.keyed_id(IpHasher(b"k1" * 16), account, "user", "x")
