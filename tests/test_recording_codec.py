"""Recording segments stored as zstd with a per-account dictionary (sql/migrations/0030,
hindsight.recording_codec): every read gives back the browser's JSON byte for byte (new
zstd rows, rows stored as gzip before 0030); a dictionary is made at write time from the
account's own text and never used for another account; a missing or altered dictionary,
or bytes that decode past their row's size, are refused; erasure and retention delete a
dictionary only when no segment needs it (erasure first re-compresses the other sessions'
segments that used a dictionary made of an erased session).
"""

from __future__ import annotations

import dataclasses
import gzip
import json
import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import zstandard
from lifecycle_support import add_session, connect, fresh_database, new_account
from test_recording_blobs import as_sent, css, new_session, now_ms, page_events, post

from hindsight import erasure, recording_blobs, recording_codec
from hindsight.ingestion import segments
from hindsight.lifecycle import retention
from hindsight.queries import recordings
from hindsight.recording_codec import CorruptSegment, Dictionary

PLAIN = "text/plain"


def moves(start_ms: int, n: int, seed: int) -> list[dict]:
    """rrweb mouse moves, scrolls and inputs: incremental events with no large literal
    (nothing for recording_blobs to cut; about 110 bytes an event)."""
    rng = random.Random(seed)
    events: list[dict] = [{"type": 4, "data": {"href": "https://x.example/", "width": 1280, "height": 800},
                           "timestamp": start_ms}]
    for i in range(n):
        kind = rng.random()
        if kind < 0.7:
            data = {"source": 1, "positions": [{"x": rng.randrange(1280), "y": rng.randrange(800),
                                                "id": rng.randrange(1, 90), "timeOffset": -rng.randrange(500)}]}
        elif kind < 0.9:
            data = {"source": 3, "id": rng.randrange(1, 90), "x": 0, "y": rng.randrange(4000)}
        else:
            data = {"source": 5, "text": "*" * rng.randrange(1, 20), "isChecked": False, "id": rng.randrange(1, 90)}
        events.append({"type": 3, "data": data, "timestamp": start_ms + 1 + i})
    return events


def newest_dictionary(conn, account_id) -> tuple[Dictionary | None, bool]:
    """The account's newest dictionary and whether an upload would make a newer one (what
    the upload's first statement reads: queries.recordings.WRITER_AND_STORED)."""
    row = conn.execute("SELECT sha256, created_at FROM recording_dictionaries WHERE account_id = %s "
                       "ORDER BY created_at DESC LIMIT 1", (account_id,)).fetchone()
    if row is None:
        return None, True
    found = recordings.dictionary(conn, account_id, bytes(row["sha256"]))
    return found, row["created_at"] < datetime.now(UTC) - recording_codec.ROTATE


def upload(conn, account_id, host, sid, number, events) -> bytes:
    """Store a segment as POST /api/v1/track/recording does after authorizing it (with the
    account's dictionary, making one when due); return its JSON as sent."""
    text = as_sent(events)
    dictionary, stale = newest_dictionary(conn, account_id)
    seg = segments.decode(text, "json", number, datetime.now(UTC), dictionary, make_dictionary=stale)
    assert recordings.store(conn, account_id, host, sid, seg) == (True, len(events))
    return text


def dictionaries(conn, account_id) -> dict[bytes, dict]:
    return {bytes(r["sha256"]): r for r in conn.execute(
        "SELECT sha256, source_session_id, created_at FROM recording_dictionaries WHERE account_id = %s",
        (account_id,)).fetchall()}


def segment_rows(conn, sid) -> list[dict]:
    return conn.execute("SELECT segment, data, gzip_bytes, json_bytes, dictionary FROM recording_segments "
                        "WHERE session_id = %s ORDER BY segment", (sid,)).fetchall()


def blob_dictionaries(conn, account_id) -> list[bytes | None]:
    return [r["dictionary"] and bytes(r["dictionary"]) for r in conn.execute(
        "SELECT dictionary FROM recording_blobs WHERE account_id = %s ORDER BY sha256", (account_id,))]


def read(conn, account_id, sid, number) -> bytes:
    body = recordings.segment_data(conn, account_id, sid, number)
    assert body is not None
    return body.json()


# --------------------------------------------------------------------------- the codec


def test_pack_and_unpack_with_and_without_a_dictionary():
    source = as_sent(moves(1, 800, seed=1))
    dictionary = recording_codec.dictionary_from(source)
    assert dictionary is not None and dictionary.raw == source[-recording_codec.MAX_DICTIONARY:]
    assert len(dictionary.raw) == recording_codec.MAX_DICTIONARY
    assert recording_codec.dictionary_from(source[:recording_codec.MIN_SOURCE - 1]) is None
    # A segment's blobs count (first, then its rest): a short rest with a page's blobs makes one.
    short = source[:1000]
    made = recording_codec.dictionary_from(short, (b'"a"' * 2000, b'"b"' * 1000))
    assert made is not None and made.raw == b'"a"' * 2000 + b'"b"' * 1000 + short
    text = as_sent(moves(2, 300, seed=2))
    plain, with_dictionary = recording_codec.pack(text, None), recording_codec.pack(text, dictionary)
    assert plain[:4] == with_dictionary[:4] == recording_codec.ZSTD_MAGIC
    # The dictionary helps a segment it never saw (the same kinds of events), and gzip is worse.
    assert len(with_dictionary) < len(plain) < len(gzip.compress(text, 6))
    assert recording_codec.unpack(plain, None, len(text)) == text
    assert recording_codec.unpack(with_dictionary, dictionary, len(text)) == text
    other = recording_codec.dictionary_from(as_sent(moves(3, 400, seed=3)))
    for wrong in (None, other):   # another dictionary, or none: the frame's checksum refuses it
        with pytest.raises(CorruptSegment):
            recording_codec.unpack(with_dictionary, wrong, len(text))
    altered = bytearray(with_dictionary)
    altered[len(altered) // 2] ^= 0x40
    with pytest.raises(CorruptSegment):
        recording_codec.unpack(bytes(altered), dictionary, len(text))
    # A stored dictionary must hash to its key.
    stored = dictionary.stored()
    assert recording_codec.load_dictionary(dictionary.sha256, stored).raw == dictionary.raw
    with pytest.raises(CorruptSegment):
        recording_codec.load_dictionary(dictionary.sha256, recording_codec.pack(dictionary.raw[:-1] + b"x", None))


def test_reads_are_bounded_by_the_rows_size():
    """A zstd bomb cannot come from a client (the server compresses), but a read never
    inflates more than the row's size whatever the stored bytes say."""
    bomb = recording_codec.pack(b"\0" * (64 << 20), None)          # 64 MiB in a few KB
    assert len(bomb) < 10_000
    with pytest.raises(CorruptSegment, match="declares"):
        recording_codec.unpack(bomb, None, 1 << 20)
    streamed = zstandard.ZstdCompressor(write_content_size=False, write_checksum=True).compressobj()
    unsized = streamed.compress(b"[]" * 1000) + streamed.flush()
    with pytest.raises(CorruptSegment, match="declares"):
        recording_codec.unpack(unsized, None, 1 << 20)
    unchecked = zstandard.ZstdCompressor(write_checksum=False).compress(b"[1]")
    with pytest.raises(CorruptSegment, match="checksum"):
        recording_codec.unpack(unchecked, None, 100)
    gz_bomb = gzip.compress(b"\0" * (32 << 20))
    with pytest.raises(CorruptSegment):
        recording_codec.unpack(gz_bomb, None, 1 << 20)
    assert recording_codec.unpack(gzip.compress(b"[1]"), None, 3) == b"[1]"
    for junk in (b"", b"[1]", b"\x28\xb5\x2f\xfd" + b"\0" * 8):
        with pytest.raises(CorruptSegment):
            recording_codec.unpack(junk, None, 100)


# --------------------------------------------------------------------------- through the API


def test_segments_use_the_accounts_dictionary_and_read_back_exactly_as_sent(client, make_site, db_url):
    site, other = make_site(), make_site()
    first, second = new_session(client, site), new_session(client, site)
    sent: dict[tuple[str, int], bytes] = {}

    def send(s, sid, number, events, encoding="gzip"):
        text = as_sent(events)
        resp = post(client, s, sid, number, gzip.compress(text) if encoding == "gzip" else text, encoding)
        assert resp.status_code == 201, resp.json
        sent[(sid, number)] = text

    # Before the account has a dictionary: rrweb's vocabulary. Then its first long segment
    # makes its dictionary, and is compressed with it: its text is stored once, in it.
    send(site, first, 9, moves(now_ms(-70), 20, seed=9))
    send(site, first, 0, moves(now_ms(-60), 400, seed=10))
    send(site, first, 1, page_events(now_ms(-50), css("a"), css("b")) + moves(now_ms(-49), 50, seed=11), "json")
    send(site, second, 0, moves(now_ms(-40), 300, seed=12))
    send(site, second, 1, moves(now_ms(-30), 300, seed=13), "json")
    with connect(db_url) as conn:
        made = dictionaries(conn, uuid.UUID(site.account_id))
        assert len(made) == 1
        [(key, row)] = made.items()
        assert str(row["source_session_id"]) == first
        rows = {(str(sid), r["segment"]): r for sid in (first, second) for r in segment_rows(conn, sid)}
    vocabulary = recording_codec.VOCABULARY.sha256
    assert bytes(rows[(first, 9)]["dictionary"]) == vocabulary and vocabulary not in made
    assert rows[(first, 9)]["gzip_bytes"] < len(gzip.compress(sent[(first, 9)], 6))
    for number in (first, 0), (first, 1), (second, 0), (second, 1):
        assert bytes(rows[number]["dictionary"]) == key
    assert rows[(first, 0)]["gzip_bytes"] < 100 < len(gzip.compress(sent[(first, 0)], 6)) / 10
    for row in rows.values():
        assert bytes(row["data"])[:4] == recording_codec.ZSTD_MAGIC
        assert row["gzip_bytes"] == len(row["data"])
    # Smaller than the browser's gzip of the same events.
    for number in (second, 0), (second, 1):
        assert rows[number]["gzip_bytes"] < len(gzip.compress(sent[number], 6))

    # Read back through the API: byte for byte, gzip or not, and another account reads nothing.
    recording_codec.DICTIONARIES.clear()   # a fresh process: the dictionary comes from the table
    for (sid, number), text in sent.items():
        url = f"/api/v1/sessions/{sid}/recording/{number}"
        zipped = client.simulate_get(url, headers={**site.read_headers(), "Accept-Encoding": "gzip"})
        assert zipped.status_code == 200 and zipped.headers["content-encoding"] == "gzip"
        assert gzip.decompress(zipped.content) == text
        plain = client.simulate_get(url, headers={**site.read_headers(), "Accept-Encoding": "identity"})
        assert plain.status_code == 200 and plain.content == text
    assert client.simulate_get(f"/api/v1/sessions/{second}/recording/0",
                               headers=other.read_headers()).status_code == 404
    # A re-send stores nothing and makes no dictionary.
    again = post(client, site, second, 0, gzip.compress(sent[(second, 0)]))
    assert again.status_code == 200
    # The other account makes its own dictionary from its own text.
    other_sid = new_session(client, other)
    send(other, other_sid, 0, moves(now_ms(-20), 400, seed=14))
    with connect(db_url) as conn:
        assert len(dictionaries(conn, uuid.UUID(site.account_id))) == 1
        assert len(dictionaries(conn, uuid.UUID(other.account_id))) == 1


def test_segments_and_blobs_stored_before_0030_and_0035_still_read_back(client, make_site, db_url):
    """Rows as 0028 stored them (gzip segments, gzip blobs) and as 0030 did (zstd with a
    dictionary of 32 KiB of a rest, gzip blobs) read back byte for byte beside new ones."""
    site = make_site()
    sid = new_session(client, site)
    history = [moves(now_ms(-10), 50, seed=20), page_events(now_ms(-9), css("old-a"), css("old-b")),
               page_events(now_ms(-8), css("old-a"), css("old-c")) + moves(now_ms(-7), 30, seed=21)]
    with connect(db_url) as conn:
        account = uuid.UUID(site.account_id)
        old_dictionary = Dictionary.of(as_sent(moves(1, 400, seed=22))[-32 * 1024:])   # 0030's kind
        conn.execute("INSERT INTO recording_dictionaries (account_id, sha256, data, stored_bytes, dictionary_bytes, "
                     "source_session_id) VALUES (%s, %s, %s, 0, %s, %s)",
                     (account, old_dictionary.sha256, old_dictionary.stored(), len(old_dictionary.raw), sid))
        for number, events in enumerate(history):
            text = as_sent(events)
            seg = segments.decode(text, "json", number, datetime.now(UTC))
            cut = recording_blobs.extract(text, snapshots={1}) if seg.blob_hashes else None
            rest = text if cut is None else cut.rest
            # 0028: the browser's gzip, or the gzip of the rest; 0030: zstd with its dictionary.
            dictionary = old_dictionary if number == 2 else None
            data = recording_codec.pack(rest, dictionary) if dictionary else gzip.compress(rest)
            blobs = tuple(recording_blobs.Blob(h, gzip.compress(literal), len(literal))
                          for h, literal in (cut.literals.items() if cut else ()))
            seg = dataclasses.replace(seg, data=data, dictionary=dictionary, blobs=blobs)
            assert recordings.store(conn, account, site.domain, uuid.UUID(sid), seg) == (True, len(events))
        rows = segment_rows(conn, sid)
        assert [bytes(r["data"])[:2] for r in rows[:2]] == [recording_codec.GZIP_MAGIC] * 2
        assert bytes(rows[2]["dictionary"]) == old_dictionary.sha256
        formats = conn.execute("SELECT DISTINCT dictionary IS NULL AS old, substring(data FROM 1 FOR 2) AS magic "
                               "FROM recording_blobs WHERE account_id = %s", (account,)).fetchall()
        assert formats == [{"old": True, "magic": recording_codec.GZIP_MAGIC}]
    # A new segment beside them reuses an old gzip blob (the same page again) and adds its own.
    history.append(page_events(now_ms(-6), css("old-a"), css("old-b")) + moves(now_ms(-5), 300, seed=23))
    assert post(client, site, sid, 3, gzip.compress(as_sent(history[3]))).status_code == 201
    recording_codec.DICTIONARIES.clear()
    for number, events in enumerate(history):
        url = f"/api/v1/sessions/{sid}/recording/{number}"
        zipped = client.simulate_get(url, headers={**site.read_headers(), "Accept-Encoding": "gzip"})
        assert gzip.decompress(zipped.content) == as_sent(events)
        plain = client.simulate_get(url, headers={**site.read_headers(), "Accept-Encoding": "identity"})
        assert plain.content == as_sent(events) and json.loads(plain.content) == events


# --------------------------------------------------------------------------- isolation, refusal


def test_a_dictionary_is_never_used_across_accounts_and_a_missing_one_is_refused(db_url):
    with connect(db_url) as conn:
        a, host_a = new_account(conn)
        b, host_b = new_account(conn)
        now = datetime.now(UTC)
        sa, sb = add_session(conn, a, host_a, now - timedelta(minutes=5)), add_session(conn, b, host_b, now)
        upload(conn, a, host_a, sa, 0, moves(now_ms(-100), 400, seed=30))
        [a_key] = dictionaries(conn, a)
        a_dictionary = recordings.dictionary(conn, a, a_key)
        assert a_dictionary is not None and recordings.dictionary(conn, b, a_key) is None
        # An upload of B cannot name A's dictionary: nothing is stored.
        seg = segments.decode(as_sent(moves(now_ms(-90), 200, seed=31)), "json", 0, now, a_dictionary)
        with pytest.raises(recordings.DictionaryGone):
            recordings.store(conn, b, host_b, sb, seg)
        assert segment_rows(conn, sb) == []
        # A row of B forged to name it is refused on read (looked up in B: not there).
        text = upload(conn, b, host_b, sb, 0, moves(now_ms(-80), 100, seed=32))
        conn.execute("UPDATE recording_segments SET data = %s, dictionary = %s WHERE session_id = %s",
                     (recording_codec.pack(text, a_dictionary), a_key, sb))
        with pytest.raises(CorruptSegment, match="missing"):
            read(conn, b, sb, 0)
        # A's segment reads; then its dictionary altered, or gone, is refused (a fresh process).
        events = moves(now_ms(-70), 200, seed=33)
        text = upload(conn, a, host_a, sa, 1, events)
        assert read(conn, a, sa, 1) == text
        other = recording_codec.dictionary_from(as_sent(moves(1, 400, seed=34)))
        assert other is not None
        conn.execute("UPDATE recording_dictionaries SET data = %s WHERE account_id = %s", (other.stored(), a))
        recording_codec.DICTIONARIES.clear()
        with pytest.raises(CorruptSegment, match="altered"):
            read(conn, a, sa, 1)
        # Even with its key changed to match: the frame's checksum refuses the wrong dictionary.
        conn.execute("UPDATE recording_dictionaries SET sha256 = %s WHERE account_id = %s", (other.sha256, a))
        conn.execute("UPDATE recording_segments SET dictionary = %s WHERE session_id = %s AND segment = 1",
                     (other.sha256, sa))
        recording_codec.DICTIONARIES.clear()
        with pytest.raises(CorruptSegment, match="does not decode"):
            read(conn, a, sa, 1)
        conn.execute("DELETE FROM recording_dictionaries WHERE account_id = %s", (a,))
        recording_codec.DICTIONARIES.clear()
        with pytest.raises(CorruptSegment, match="missing"):
            read(conn, a, sa, 1)


def test_two_uploads_that_both_make_the_accounts_first_dictionary(db_url):
    """Two uploads read "no dictionary" and each makes one of its own text and names it: the
    first stores both; the second's insert is skipped (one was made within the day), so its
    segment, which names a dictionary that does not exist, is not stored (DictionaryGone)
    and the ingestion compresses it again with the account's vocabulary."""
    with connect(db_url) as conn:
        now = datetime.now(UTC)
        account, host = new_account(conn)
        s1, s2 = (add_session(conn, account, host, now - timedelta(minutes=m)) for m in (3, 2))
        first = segments.decode(as_sent(moves(now_ms(-100), 400, seed=95)), "json", 0, now, None, True)
        second_text = as_sent(moves(now_ms(-90), 400, seed=96))
        second = segments.decode(second_text, "json", 0, now, None, True)
        assert first.new_dictionary and second.new_dictionary and first.dictionary == first.new_dictionary
        assert recordings.store(conn, account, host, s1, first) == (True, 401)
        with pytest.raises(recordings.DictionaryGone):
            recordings.store(conn, account, host, s2, second)
        assert segment_rows(conn, s2) == [] and list(dictionaries(conn, account)) == [first.new_dictionary.sha256]
        again = segments.decode(second_text, "json", 0, now)   # what ingestion.recordings does then
        assert recordings.store(conn, account, host, s2, again) == (True, 401)
        assert bytes(segment_rows(conn, s2)[0]["dictionary"]) == recording_codec.VOCABULARY.sha256
        recording_codec.DICTIONARIES.clear()
        assert read(conn, account, s2, 0) == second_text


# --------------------------------------------------------------------------- lifecycle


def reclaim(conn) -> int:
    return retention.reclaim_recording_blobs(conn)["recording_dictionaries_deleted"]


def test_retention_keeps_a_dictionary_while_a_segment_uses_it_or_it_is_the_newest(db_url):
    with connect(db_url) as conn:
        now = datetime.now(UTC)
        account, host = new_account(conn)
        s1, s2, s3 = (add_session(conn, account, host, now - timedelta(minutes=m)) for m in (30, 20, 10))
        upload(conn, account, host, s1, 0, moves(now_ms(-300), 400, seed=40))   # makes D1, uses it
        [d1] = dictionaries(conn, account)
        upload(conn, account, host, s2, 0, moves(now_ms(-200), 100, seed=41))   # uses D1
        conn.execute("UPDATE recording_dictionaries SET created_at = now() - interval '2 days' "
                     "WHERE account_id = %s", (account,))
        upload(conn, account, host, s3, 0, moves(now_ms(-150), 400, seed=42))   # makes D2, uses it
        kept = upload(conn, account, host, s3, 1, moves(now_ms(-100), 100, seed=43))   # uses D2
        [d2] = set(dictionaries(conn, account)) - {d1}
        assert [r["dictionary"] and bytes(r["dictionary"]) for r in segment_rows(conn, s3)] == [d2, d2]
        assert reclaim(conn) == 0 and set(dictionaries(conn, account)) == {d1, d2}
        # The segments that used D1 go (as retention drops them): D1 goes, D2 (the newest) stays.
        conn.execute("DELETE FROM recording_segments WHERE session_id = ANY(%s)", ([s1, s2],))
        assert reclaim(conn) == 1 and set(dictionaries(conn, account)) == {d2}
        recording_codec.DICTIONARIES.clear()
        assert read(conn, account, s3, 1) == kept
        conn.execute("DELETE FROM recording_segments WHERE session_id = %s", (s3,))
        assert reclaim(conn) == 0 and set(dictionaries(conn, account)) == {d2}   # newest, source alive
        conn.execute("DELETE FROM sessions WHERE session_id = %s", (s3,))          # its source session goes
        assert reclaim(conn) == 1 and dictionaries(conn, account) == {}


def test_erasure_recompresses_other_sessions_and_deletes_the_persons_dictionary(db_url):
    with connect(db_url) as conn:
        now = datetime.now(UTC)
        account, host = new_account(conn)
        p = add_session(conn, account, host, now - timedelta(hours=2))
        q = add_session(conn, account, host, now - timedelta(hours=1))
        conn.execute("UPDATE sessions SET user_id = 'person-p' WHERE session_id = %s", (p,))
        p_sent = upload(conn, account, host, p, 0, moves(now_ms(-7000), 400, seed=50))   # the dictionary
        [made] = dictionaries(conn, account)
        q_events = [moves(now_ms(-6000 + n * 10), 150, seed=51 + n) for n in range(2)]
        q_events.append(page_events(now_ms(-5900), css("q-page"), css("q-style")))   # with two blobs
        q_sent = [upload(conn, account, host, q, n, events) for n, events in enumerate(q_events)]
        assert all(bytes(r["dictionary"]) == made for r in segment_rows(conn, q))
        assert blob_dictionaries(conn, account) == [made, made]
        exported = erasure.export(conn, account, "user_id", "person-p", now)
        assert [as_sent(s["events"]) for s in exported["recording_segments"]] == [p_sent]
        result = erasure.erase(conn, account, "user_id", "person-p", "test")
        assert result["rows"]["recording_dictionaries"] == 1
        # Q's three segments and its two blobs, compressed with the vocabulary instead.
        assert result["rows"]["recording_segments_recompressed"] == 5
        assert dictionaries(conn, account) == {}
        vocabulary = recording_codec.VOCABULARY.sha256
        assert [bytes(r["dictionary"]) for r in segment_rows(conn, q)] == [vocabulary] * 3
        assert blob_dictionaries(conn, account) == [vocabulary] * 2
        recording_codec.DICTIONARIES.clear()
        assert [read(conn, account, q, n) for n in range(3)] == q_sent
        # Q's next upload makes a dictionary of Q's own text.
        upload(conn, account, host, q, 3, moves(now_ms(-5000), 400, seed=60))
        assert [r["source_session_id"] for r in dictionaries(conn, account).values()] == [q]


def test_a_blob_keeps_its_dictionary_until_its_source_session_expires(db_url):
    """A page's blobs are compressed with the account's dictionary (0035) and shared by later
    sessions for as long as one references them: the dictionary stays while a blob uses it;
    once the session it was made of is gone, retention compresses those blobs with the
    vocabulary, then reclaims the dictionary; every segment still reads back."""
    with connect(db_url) as conn:
        now = datetime.now(UTC)
        account, host = new_account(conn)
        s1, s2 = (add_session(conn, account, host, now - timedelta(minutes=m)) for m in (30, 20))
        upload(conn, account, host, s1, 0, moves(now_ms(-300), 400, seed=90))   # makes D1
        [d1] = dictionaries(conn, account)
        page = page_events(now_ms(-200), css("kept-page"), css("kept-style"))
        sent = upload(conn, account, host, s2, 0, page)
        assert blob_dictionaries(conn, account) == [d1, d1]
        # S1's segment goes, and D1 is not the newest any more: the blobs still use D1.
        conn.execute("DELETE FROM recording_segments WHERE session_id = %s", (s1,))
        conn.execute("UPDATE recording_dictionaries SET created_at = now() - interval '2 days' "
                     "WHERE account_id = %s", (account,))
        conn.execute("DELETE FROM recording_segments WHERE session_id = %s", (s2,))   # only the blobs use D1 now
        conn.execute("INSERT INTO recording_segments (session_id, session_started_at, segment, account_id, host, "
                     "started_at, ended_at, event_count, full_snapshot, data, gzip_bytes, json_bytes, blobs, "
                     "blob_offsets, dictionary) SELECT %s, started_at, 0, %s, %s, now(), now(), 4, true, %s, 1, %s, "
                     "%s, %s, %s FROM sessions WHERE session_id = %s",
                     (s2, account, host, *_stored_like(page), s2))
        result = retention.reclaim_recording_blobs(conn)
        assert result["recording_dictionaries_deleted"] == 0 and result["recording_blobs_recompressed"] == 0
        assert set(dictionaries(conn, account)) == {d1}
        recording_codec.DICTIONARIES.clear()
        assert read(conn, account, s2, 0) == sent
        # D1's source session goes (retention): its blobs move to the vocabulary, D1 goes.
        conn.execute("DELETE FROM sessions WHERE session_id = %s", (s1,))
        result = retention.reclaim_recording_blobs(conn)
        assert result["recording_blobs_recompressed"] == 2 and result["recording_dictionaries_deleted"] == 1
        assert blob_dictionaries(conn, account) == [recording_codec.VOCABULARY.sha256] * 2
        assert dictionaries(conn, account) == {}
        recording_codec.DICTIONARIES.clear()
        assert read(conn, account, s2, 0) == sent


def _stored_like(events) -> tuple:
    """(data, json_bytes, blobs, blob_offsets, dictionary) of `events` stored with the
    vocabulary, its blobs left as they are in the table (the same page's)."""
    text = as_sent(events)
    cut = recording_blobs.extract(text, snapshots={1})
    assert cut is not None
    vocabulary = recording_codec.VOCABULARY
    return (recording_codec.pack(cut.rest, vocabulary), len(text), list(cut.hashes), list(cut.offsets),
            vocabulary.sha256)


def test_the_vocabulary_is_fixed_and_holds_no_recorded_data():
    """Rows name rrweb's vocabulary by its SHA-256: its bytes must never change. It is made
    of the lists in hindsight.recording_vocabulary only (no host, no demo-site text)."""
    from hindsight import recording_vocabulary

    raw = recording_vocabulary.build()
    assert recording_codec.VOCABULARY.raw == raw and len(raw) < recording_codec.MAX_DICTIONARY
    assert recording_codec.VOCABULARY.sha256 == recording_vocabulary.SHA256 == bytes.fromhex(
        "07b6958271d52411c4c0a2e4c396a21e8948723a2317f7a0aaa81cc0c93f011e")
    for word in (b"localhost", b"127.0.0.1", b"hindsight", b"demo", b"coupon", b"todo", b"checkout"):
        assert word not in raw.lower()
    # It helps a page's markup and stylesheet that it never saw, against zstd alone and gzip.
    blob = as_sent(page_events(1, css("vocab-a", 40), css("vocab-b", 40))[1]["data"]["node"])
    vocabulary = recording_codec.pack(blob, recording_codec.VOCABULARY)
    assert len(vocabulary) < len(recording_codec.pack(blob, None)) < len(gzip.compress(blob, 6))
    assert recording_codec.unpack(vocabulary, recording_codec.VOCABULARY, len(blob)) == blob


def test_deleting_an_account_deletes_its_dictionaries(db_url):
    with connect(db_url) as conn:
        account, host = new_account(conn)
        sid = add_session(conn, account, host, datetime.now(UTC) - timedelta(minutes=5))
        upload(conn, account, host, sid, 0, moves(now_ms(-1000), 400, seed=70))
        assert len(dictionaries(conn, account)) == 1
        conn.execute("DELETE FROM accounts WHERE account_id = %s", (account,))
        assert dictionaries(conn, account) == {}


def test_dictionaries_on_both_editions(server_url):
    """The migration on the hypertable of each edition: store with a dictionary, read, reclaim."""
    with fresh_database(server_url, "recdict") as url, connect(url) as conn:
        now = datetime.now(UTC)
        account, host = new_account(conn)
        s1 = add_session(conn, account, host, now - timedelta(days=2))
        s2 = add_session(conn, account, host, now - timedelta(hours=1))
        upload(conn, account, host, s1, 0, moves(now_ms(-2 * 86400), 400, seed=80))
        text = upload(conn, account, host, s2, 0, moves(now_ms(-3000), 200, seed=81))
        page = upload(conn, account, host, s2, 1, page_events(now_ms(-2000), css("ed-a"), css("ed-b")))
        [made] = dictionaries(conn, account)
        assert blob_dictionaries(conn, account) == [made, made]
        recording_codec.DICTIONARIES.clear()
        assert read(conn, account, s2, 0) == text and read(conn, account, s2, 1) == page
        assert bytes(segment_rows(conn, s2)[0]["dictionary"]) == made
        conn.execute("DELETE FROM recording_segments WHERE session_id = %s", (s2,))
        conn.execute("DELETE FROM sessions WHERE session_id = %s", (s1,))
        assert reclaim(conn) == 1
