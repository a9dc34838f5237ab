"""Recording blobs (sql/migrations/0028, hindsight.recording_blobs): the large string
literals of DOM recording segments (inlined stylesheets, mostly) are stored once per
account; every read gives back the JSON the browser sent, byte for byte; a blob goes when no
segment references it any more (erasure, retention, account deletion); and one upload takes
fewer round trips than before.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from lifecycle_support import add_session, connect, fresh_database, new_account

from hindsight import erasure, recording_blobs, recording_codec
from hindsight.db import create_pool
from hindsight.ingestion import recordings as recording_ingestion
from hindsight.ingestion import segments
from hindsight.ingestion.authorize import Sender, authorize
from hindsight.lifecycle import JobRunner, lifecycle_jobs
from hindsight.queries import recordings
from hindsight.services import Services
from hindsight.settings import Settings

PATH = "/api/v1/track/recording"


def css(name: str, rules: int = 60) -> str:
    """A stylesheet of about 50 bytes a rule, distinct per name."""
    return "".join(f".{name}-{i} {{ color: #{i * 2731 % 0xFFFFFF:06x}; margin: {i}px 2px; }}\n"
                   for i in range(rules))


def page_events(start_ms: int, link_css: str, style_css: str, text: str = "Hello") -> list[dict]:
    """What rrweb records on a page load: meta, a full snapshot with a <link>'s `_cssText`
    and a <style>'s text node, a mutation adding another <style>, mouse moves."""
    node = {"type": 0, "id": 1, "childNodes": [{
        "type": 2, "tagName": "html", "id": 2, "attributes": {}, "childNodes": [
            {"type": 2, "tagName": "link", "id": 3, "childNodes": [],
             "attributes": {"rel": "stylesheet", "href": "/site.css", "_cssText": link_css}},
            {"type": 2, "tagName": "style", "id": 4, "attributes": {},
             "childNodes": [{"type": 3, "id": 5, "textContent": style_css, "isStyle": True}]},
            {"type": 3, "id": 6, "textContent": text}]}]}
    return [
        {"type": 4, "data": {"href": "https://x.example/", "width": 1280, "height": 800}, "timestamp": start_ms},
        {"type": 2, "data": {"node": node, "initialOffset": {"left": 0, "top": 0}}, "timestamp": start_ms + 1},
        {"type": 3, "data": {"source": 0, "texts": [], "attributes": [], "removes": [], "adds": [
            {"parentId": 2, "nextId": None, "node": {"type": 2, "tagName": "style", "id": 7, "attributes": {},
                                                     "childNodes": []}},
            {"parentId": 7, "nextId": None, "node": {"type": 3, "id": 8, "textContent": style_css,
                                                     "isStyle": True}}]}, "timestamp": start_ms + 50},
        {"type": 3, "data": {"source": 1, "positions": [{"x": 3, "y": 4, "id": 6, "timeOffset": 0}]},
         "timestamp": start_ms + 100},
    ]


def as_sent(events) -> bytes:
    """JSON.stringify's bytes: no spaces, UTF-8 as is."""
    return json.dumps(events, ensure_ascii=False, separators=(",", ":")).encode()


def now_ms(offset: float = 0.0) -> int:
    return int((datetime.now(UTC).timestamp() + offset) * 1000)


def post(client, site, session_id, segment, body: bytes, encoding: str = "gzip"):
    return client.simulate_post(PATH, params={"session_id": session_id, "segment": segment, "encoding": encoding},
                                body=body, headers={"Content-Type": "text/plain;charset=UTF-8",
                                                    **site.write_headers()})


def new_session(client, site) -> str:
    resp = client.simulate_post("/api/v1/sessions", json={"page_url": f"{site.origin}/"},
                                headers=site.write_headers())
    assert resp.status_code == 201, resp.json
    return resp.json["session_id"]


def blob_rows(db_url, account_id) -> dict[bytes, dict]:
    with connect(db_url) as conn:
        return {bytes(r["sha256"]): r for r in conn.execute(
            "SELECT sha256, gzip_bytes, json_bytes FROM recording_blobs WHERE account_id = %s", (account_id,))}


def literal_hash(value: str) -> bytes:
    return hashlib.sha256(json.dumps(value, ensure_ascii=False).encode()).digest()


def tree_hash(events: list[dict]) -> bytes:
    """The hash of the full snapshot's node tree, as sent (a blob when it is 1 to 16 KiB)."""
    [snapshot] = [e for e in events if e["type"] == 2]
    return hashlib.sha256(as_sent(snapshot["data"]["node"])).digest()


def cut_hashes(events: list[dict]) -> set[bytes]:
    """What ingestion cuts out of these events (hindsight.recording_blobs.extract)."""
    cut = recording_blobs.extract(as_sent(events), snapshots={i for i, e in enumerate(events) if e["type"] == 2})
    return set() if cut is None else set(cut.hashes)


# --------------------------------------------------------------------------- the codec


TRICKY = [
    "x" * 1500,
    'quotes " and \\ backslashes \\" and "\\\\" ' * 60,
    "é ü 😀 \u2028 \u0000 \t\n tabs, unicode, NUL " * 40,
    '{"type": 2, "looks": "like an event"} ' * 40,
]


@pytest.mark.parametrize("ascii_only", [False, True])
def test_extract_then_splice_gives_back_the_exact_bytes(ascii_only):
    events = [{"type": 5, "timestamp": 1, "data": {"tag": "t", "payload": {"a": value, value[:30]: [value, 1]}}}
              for value in TRICKY]
    events += [{"type": 3, "timestamp": 2, "data": {"short": "s" * 1000, "again": TRICKY[1]}}]
    text = json.dumps(events, ensure_ascii=ascii_only, separators=(",", ":")).encode()
    cut = recording_blobs.extract(text)
    assert cut is not None
    # Each distinct literal of >= 1 KiB once; the 1000 + 2-byte one stays; repeats are listed again.
    assert len(cut.literals) == len(TRICKY)
    assert len(cut.hashes) == 2 * len(TRICKY) + 1 and len(cut.offsets) == len(cut.hashes)
    assert b"s" * 1000 in cut.rest and b"x" * 31 not in cut.rest   # the 30-byte key stays
    assert list(cut.offsets) == sorted(cut.offsets)
    found = cut.literals
    assert all(len(found[b.sha256]) == b.json_bytes >= recording_blobs.MIN_BYTES
               for b in cut.blobs(recording_codec.VOCABULARY))
    assert recording_blobs.splice(cut.rest, list(cut.offsets), list(cut.hashes), found, len(text)) == text


def test_a_segment_without_large_strings_is_left_as_it_is():
    text = as_sent([{"type": 3, "timestamp": 1, "data": {"v": "y" * 1021}}])   # a 1023-byte literal
    assert recording_blobs.extract(text) is None
    assert recording_blobs.extract(b"[]") is None


def test_a_full_snapshot_is_cut_into_its_largest_subtrees_of_at_most_16_kib():
    sections = [{"type": 2, "tagName": "section", "id": 10 + i, "attributes": {"class": f"s{i}"},
                 "childNodes": [{"type": 3, "id": 100 + i, "textContent": f"lorem ipsum {i} " * 90}]}
                for i in range(20)]                                     # ~1.3 KiB each, ~27 KiB together
    big = css("big", 400)                                               # a stylesheet over 16 KiB
    tree = {"type": 0, "id": 1, "childNodes": [
        {"type": 2, "tagName": "link", "id": 2, "attributes": {"_cssText": big}, "childNodes": []},
        {"type": 2, "tagName": "body", "id": 3, "attributes": {}, "childNodes": sections}]}
    events = [{"type": 4, "timestamp": 1, "data": {"href": "h"}},
              {"type": 2, "timestamp": 2, "data": {"node": tree, "initialOffset": {"left": 0, "top": 0}}},
              {"type": 3, "timestamp": 3, "data": {"source": 0, "adds": [{"parentId": 3, "node": sections[0]}]}}]
    text = as_sent(events)
    cut = recording_blobs.extract(text, snapshots={1})
    assert cut is not None
    found = cut.literals
    # The stylesheet (its <link> is larger than 16 KiB) and each section; the mutation's
    # copy of a section is no snapshot: only its large literal, the text, is cut there.
    assert [found[h] for h in cut.hashes] == [as_sent(big)] + [as_sent(x) for x in sections] + [
        as_sent(sections[0]["childNodes"][0]["textContent"])]
    assert recording_blobs.splice(cut.rest, list(cut.offsets), list(cut.hashes), found, len(text)) == text
    # Without the snapshot's index, only literals are cut.
    plain = recording_blobs.extract(text)
    assert plain is not None and len(plain.hashes) == 1 + len(sections) + 1 and len(plain.rest) > len(cut.rest)


def test_a_reference_that_does_not_resolve_is_refused():
    text = as_sent(page_events(1, css("a"), css("b")))
    cut = recording_blobs.extract(text)
    assert cut is not None
    vocabulary = recording_codec.VOCABULARY
    blobs = {b.sha256: b for b in cut.blobs(vocabulary)}
    row = {"data": recording_blobs.compress(cut.rest, vocabulary), "json_bytes": len(text),
           "blobs": list(cut.hashes), "blob_offsets": list(cut.offsets), "dictionary": vocabulary.sha256,
           "blob_data": [blobs[h].data for h in cut.hashes],
           "blob_dictionaries": [blobs[h].dictionary for h in cut.hashes]}
    known = {vocabulary.sha256: vocabulary}
    assert recording_blobs.resolve(row, vocabulary, known).json() == text
    # Blobs stored before 0035 (gzip, no dictionary) read as before.
    old = {**row, "blob_data": [gzip.compress(cut.literals[h]) for h in cut.hashes],
           "blob_dictionaries": [None] * len(cut.hashes)}
    assert recording_blobs.resolve(old, vocabulary, known).json() == text
    missing = {**row, "blob_data": [None] + row["blob_data"][1:]}
    altered = {**row, "blob_data": [gzip.compress(b'"forged"')] + row["blob_data"][1:]}
    backwards = {**row, "blob_offsets": list(reversed(row["blob_offsets"]))}
    wrong_size = {**row, "json_bytes": len(text) + 1}
    for bad in (missing, altered, backwards, wrong_size):
        with pytest.raises(recording_blobs.CorruptSegment):
            recording_blobs.resolve(bad, vocabulary, known)
    # A blob's dictionary unknown to the reader, or another one: refused, never other bytes.
    other = recording_codec.Dictionary.of(b"another dictionary " * 100)
    for bad_known in ({}, {vocabulary.sha256: other}):
        with pytest.raises(recording_blobs.CorruptSegment):
            recording_blobs.resolve(row, vocabulary, bad_known)


# --------------------------------------------------------------------------- through the API


def test_stylesheets_are_stored_once_per_account_and_read_back_exactly_as_sent(client, make_site, db_url):
    site, other = make_site(), make_site()
    shared, page_a, page_b = css("shared"), css("a"), css("b", 200)
    sent: dict[tuple[str, int], bytes] = {}
    expected: set[bytes] = set()
    sessions = [new_session(client, site), new_session(client, site)]
    for i, sid in enumerate(sessions):
        for number, (style, encoding) in enumerate(((page_a, "gzip"), (page_b, "json"))):
            events = page_events(now_ms(i + number), shared, style, text=f"page {number} é")
            expected |= cut_hashes(events)
            text = as_sent(events)
            body = gzip.compress(text) if encoding == "gzip" else text
            resp = post(client, site, sid, number, body, encoding)
            assert resp.status_code == 201, resp.json
            sent[(sid, number)] = text
    other_sid = new_session(client, other)
    other_events = page_events(now_ms(), shared, page_a, text="page 0 é")
    assert post(client, other, other_sid, 0, gzip.compress(as_sent(other_events))).status_code == 201

    # Once in the account: each page's node tree (the same page in both sessions) and the
    # stylesheet its mutation adds; again in the other account.
    blobs = blob_rows(db_url, site.account_id)
    assert set(blobs) == expected and len(expected) == 4
    assert {tree_hash(page_events(0, shared, page_a, text="page 0 é")), literal_hash(page_b)} <= expected
    assert set(blob_rows(db_url, other.account_id)) == cut_hashes(other_events) < expected
    with connect(db_url) as conn:
        rows = conn.execute("SELECT session_id::text AS s, segment, gzip_bytes, json_bytes, "
                            "cardinality(blobs) AS refs FROM recording_segments WHERE session_id = ANY(%s::uuid[])",
                            (sessions,)).fetchall()
    for row in rows:
        text = sent[(row["s"], row["segment"])]
        assert row["refs"] == 2 and row["json_bytes"] == len(text)
        assert row["gzip_bytes"] < 400 < len(gzip.compress(text))   # the segment keeps the rest only

    # Read back: byte for byte, gzip or not, through the API and the dashboard's reader.
    for (sid, number), text in sent.items():
        url = f"/api/v1/sessions/{sid}/recording/{number}"
        zipped = client.simulate_get(url, headers={**site.read_headers(), "Accept-Encoding": "gzip"})
        assert zipped.status_code == 200 and zipped.headers["content-encoding"] == "gzip"
        assert "immutable" in zipped.headers["cache-control"]
        assert gzip.decompress(zipped.content) == text
        plain = client.simulate_get(url, headers={**site.read_headers(), "Accept-Encoding": "identity"})
        assert plain.content == text and "content-encoding" not in plain.headers
        assert json.loads(plain.content) == json.loads(text)
    # Another account's analyst reads nothing of it.
    assert client.simulate_get(f"/api/v1/sessions/{sessions[0]}/recording/0",
                               headers=other.read_headers()).status_code == 404

    # A re-send is answered from what is stored; nothing is added.
    again = post(client, site, sessions[0], 0, gzip.compress(sent[(sessions[0], 0)]))
    assert again.status_code == 200 and again.json == {"segment": 0, "events": 4}
    assert blob_rows(db_url, site.account_id).keys() == blobs.keys()


# --------------------------------------------------------------------------- round trips


def test_an_upload_takes_four_round_trips_where_it_took_ten(settings, make_site, client, tmp_path):
    """Counted on the wire (libpq's trace of the frontend's messages: each simple Query and
    each extended-protocol Sync is one round trip), pool checks included: 10 -> 4 (8 -> 2
    statements, BEGIN/COMMIT included, without the checks)."""
    from psycopg.pq import Trace

    site = make_site()
    sid = uuid.UUID(new_session(client, site))
    pool = create_pool(Settings(database_url=settings.database_url, pool_min=1, pool_max=1))
    services = Services(settings=settings, pool=pool, keys=None, ip_hash=None, scheduler=None,  # type: ignore[arg-type]
                        stacks=None, read_pool=pool)  # type: ignore[arg-type]
    sender = Sender(uuid.UUID(site.token), origin_host=site.domain)
    trace = tmp_path / "trace"

    def round_trips(action) -> tuple[int, int]:
        """(round trips, of which pool checks: an empty query as a connection leaves the pool)."""
        conn = pool.getconn()   # the pool's one connection
        out = trace.open("w")
        conn.pgconn.trace(out.fileno())
        conn.pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS)
        pool.putconn(conn)
        try:
            action()
        finally:
            conn.pgconn.untrace()
            out.close()
        sent = [line for line in trace.read_text().splitlines() if line.startswith("F")]
        trips = [line for line in sent if "\tQuery\t" in line or line.endswith("\tSync")]
        return len(trips), sum(1 for line in trips if line.endswith('Query\t ""'))

    def body(start):
        return gzip.compress(as_sent(page_events(start, css("rt"), css("rt2"))))

    def before(number: int) -> None:
        """The upload as it was: authorize, re-send check (2 statements), a transaction
        around the store."""
        now = datetime.now(UTC)
        with pool.connection() as conn:
            writer = authorize(conn, sender, now, sid)
            assert recordings.stored_count(conn, writer.account_id, sid, number) is None
        seg = segments.decode(body(now_ms()), "gzip", number, now)
        with pool.connection() as conn, conn.transaction():
            assert recordings.store(conn, writer.account_id, writer.host, sid, seg) == (True, 4)

    def now_(number: int) -> None:
        stored = recording_ingestion.store(services, sender, sid, number, body(now_ms()), "gzip",
                                           datetime.now(UTC))
        assert stored.created

    def resend() -> None:
        stored = recording_ingestion.store(services, sender, sid, 3, body(now_ms()), "gzip", datetime.now(UTC))
        assert not stored.created

    try:
        before(0)   # each statement prepared once on the connection (a first use costs a Parse)
        now_(1)
        counts = (round_trips(lambda: before(2)), round_trips(lambda: now_(3)), round_trips(resend))
    finally:
        pool.close()
    # Before: check, BEGIN, writer, session, segment, COMMIT; check, BEGIN, store, COMMIT.
    # Now: check, writer + re-send check; check, store (autocommit). A re-send: check, one.
    assert counts == ((10, 2), (4, 2), (2, 1))


# --------------------------------------------------------------------------- reclaim


def store_segment(conn, account_id, host, sid, number, events, now) -> None:
    seg = segments.decode(as_sent(events), "json", number, now)
    assert recordings.store(conn, account_id, host, sid, seg) == (True, len(events))


def blobs_of(conn, account_id) -> set[bytes]:
    return {bytes(r["sha256"]) for r in conn.execute(
        "SELECT sha256 FROM recording_blobs WHERE account_id = %s", (account_id,))}


def test_erasure_deletes_the_blobs_only_the_person_used(db_url):
    with connect(db_url) as conn:
        now = datetime.now(UTC)
        account, host = new_account(conn)
        p = add_session(conn, account, host, now - timedelta(hours=2))
        q = add_session(conn, account, host, now - timedelta(hours=1))
        conn.execute("UPDATE sessions SET user_id = 'person-p' WHERE session_id = %s", (p,))
        shared, p_only, q_only = css("shared-e"), css("p-only"), css("q-only")
        p0, p1 = page_events(now_ms(-7000), p_only, shared), page_events(now_ms(-6000), p_only, p_only)
        q0 = page_events(now_ms(-3000), q_only, shared)
        store_segment(conn, account, host, p, 0, p0, now)
        store_segment(conn, account, host, p, 1, p1, now)
        store_segment(conn, account, host, q, 0, q0, now)
        # P's two trees and the stylesheet its mutation adds; Q's tree; the mutation's
        # stylesheet both add.
        assert blobs_of(conn, account) == cut_hashes(p0) | cut_hashes(p1) | cut_hashes(q0)
        assert cut_hashes(p0) & cut_hashes(q0) == {literal_hash(shared)}
        assert len(blobs_of(conn, account)) == 5

        exported = erasure.export(conn, account, "user_id", "person-p", now)
        assert [s["events"] for s in exported["recording_segments"]] == [p0, p1]

        result = erasure.erase(conn, account, "user_id", "person-p", "test")
        assert result["rows"]["recording_segments"] == 2 and result["rows"]["recording_blobs"] == 3
        assert blobs_of(conn, account) == cut_hashes(q0)
        body = recordings.segment_data(conn, account, q, 0)
        assert body is not None and b"q-only-59" in body.json()

        erasure.erase(conn, account, "session_id", str(q), "test")
        assert blobs_of(conn, account) == set()


def test_deleting_an_account_deletes_its_blobs(db_url):
    with connect(db_url) as conn:
        now = datetime.now(UTC)
        account, host = new_account(conn)
        sid = add_session(conn, account, host, now - timedelta(minutes=5))
        store_segment(conn, account, host, sid, 0, page_events(now_ms(-1000), css("acct"), css("acct2")), now)
        assert len(blobs_of(conn, account)) == 2   # the tree, the mutation's stylesheet
        conn.execute("DELETE FROM accounts WHERE account_id = %s", (account,))
        assert blobs_of(conn, account) == set()


def test_retention_reclaims_the_blobs_no_segment_references(server_url):
    with fresh_database(server_url, "blobret") as url, connect(url) as conn:
        now = datetime.now(UTC)
        account, host = new_account(conn)   # the default retention: 30 days
        old = add_session(conn, account, host, now - timedelta(days=40))
        recent = add_session(conn, account, host, now - timedelta(days=2))
        shared = css("shared-r")
        old_events = page_events(now_ms(-40 * 86400), css("old-only"), shared)
        recent_events = page_events(now_ms(-2 * 86400), css("new"), shared)
        store_segment(conn, account, host, old, 0, old_events, now)
        store_segment(conn, account, host, recent, 0, recent_events, now)
        assert cut_hashes(old_events) - cut_hashes(recent_events) == {tree_hash(old_events)}
        # An unreferenced blob that an upload holds (its statement not committed yet) stays.
        held = literal_hash(css("held"))
        conn.execute("INSERT INTO recording_blobs (account_id, sha256, data, gzip_bytes, json_bytes, "
                     "first_session_at, last_session_at) VALUES (%s, %s, '', 0, 0, now(), now())", (account, held))
        writer = connect(url)
        writer.autocommit = False
        writer.execute("SELECT 1 FROM recording_blobs WHERE account_id = %s AND sha256 = %s FOR UPDATE",
                       (account, held))
        runner = JobRunner(url, lifecycle_jobs(Settings(database_url=url, events_retention_days=30)))
        try:
            result = runner.run("retention", force=True)["result"]
        finally:
            writer.rollback()
            writer.close()
        assert result["recording_segments_deleted"] + result["recording_chunks_dropped"] >= 1
        assert result["recording_blobs_deleted"] == 1     # the old page's tree
        assert blobs_of(conn, account) == cut_hashes(recent_events) | {held}
        body = recordings.segment_data(conn, account, recent, 0)
        assert body is not None and body.json() == as_sent(recent_events)
        assert runner.run("retention", force=True)["result"]["recording_blobs_deleted"] == 1   # held, now free
        assert runner.run("retention", force=True)["result"]["recording_blobs_deleted"] == 0


def test_a_reclaim_waits_for_an_upload_that_uses_the_blob(db_url):
    """The upload's statement locks the blob it references (ON CONFLICT DO UPDATE): a reclaim
    that started before the upload committed waits, then sees the new segment, and keeps it."""
    with connect(db_url) as conn:
        now = datetime.now(UTC)
        account, host = new_account(conn)
        first = add_session(conn, account, host, now - timedelta(minutes=9))
        second = add_session(conn, account, host, now - timedelta(minutes=8))
        style = css("race")
        used = cut_hashes(page_events(0, style, style))
        store_segment(conn, account, host, first, 0, page_events(now_ms(-500), style, style), now)
        conn.execute("DELETE FROM recording_segments WHERE session_id = %s", (first,))  # unreferenced now
        upload = connect(db_url)
        upload.autocommit = False
        seg = segments.decode(as_sent(page_events(now_ms(-400), style, style)), "json", 0, now)
        assert recordings.store(upload, account, host, second, seg) == (True, 4)   # not committed yet
        deleted: list[int] = []

        def reclaim() -> None:
            with connect(db_url) as other:
                other.autocommit = False
                with other.transaction():
                    deleted.append(recordings.delete_unused_blobs(other, account, list(used)))

        worker = threading.Thread(target=reclaim)
        worker.start()
        worker.join(1.0)
        assert worker.is_alive()          # waiting for the upload's lock
        upload.commit()
        upload.close()
        worker.join(30)
        assert deleted == [0]
        assert blobs_of(conn, account) == used and len(used) == 2
