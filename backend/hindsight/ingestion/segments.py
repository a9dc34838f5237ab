"""Step 1 of a DOM recording segment's write: decode and check it (a JSON array of rrweb
events), with limits (hindsight.ingestion.recordings runs it).

Bounded at every step: the compressed body is capped by the request limits (middleware),
the gzip stream is inflated in pieces and abandoned as soon as it passes
`MAX_JSON_BYTES` (a decompression bomb costs at most that much memory and CPU), the JSON
must be an array of at most `MAX_EVENTS` objects, each with an integer `type` and an
integer `timestamp` (milliseconds since the epoch) inside the write window that every
write endpoint applies (hindsight.ingestion.window).

Then its large string literals (stylesheets, mostly) and the subtrees of its full
snapshots' node trees are cut out to be stored once per account (hindsight.recording_blobs);
what is left is compressed with zstd and the account's dictionary (hindsight.recording_codec).
"""

from __future__ import annotations

import json
import zlib
from datetime import UTC, datetime
from typing import Any

from .. import recording_blobs, recording_codec
from ..errors import bad_request, payload_too_large
from ..queries.recordings import Segment
from .window import IN_THE_FUTURE, MAX_FUTURE, MAX_PAST, TOO_OLD

MAX_JSON_BYTES = 16 * 1024 * 1024   # a segment's JSON, decompressed
MAX_EVENTS = 20_000
# Arrays and objects (brackets counted before parsing, those inside strings too): 16 MiB of
# `[],` inflated from 16 KiB of gzip to 5.6 million lists, 415 MiB and 4 s to parse. A page
# of 100,000 DOM nodes is about 300,000 (a node, its attributes, its children).
MAX_CONTAINERS = 1_000_000
INFLATE_STEP = 256 * 1024           # inflate this much at a time
MAX_NAMED_ERRORS = 20               # a broken segment names its first problems, not all 20,000
FULL_SNAPSHOT, INCREMENTAL = 2, 3   # rrweb's event types


def inflate(body: bytes, limit: int = MAX_JSON_BYTES) -> bytes:
    """One gzip member, decompressed; 413 as soon as it passes `limit`, 400 if it is not gzip."""
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)  # gzip framing only
    parts: list[bytes] = []
    size = 0
    pending = body
    try:
        while not inflater.eof:
            piece = inflater.decompress(pending, min(INFLATE_STEP, limit + 1 - size))
            size += len(piece)
            if size > limit:
                raise payload_too_large(f"The segment inflates to more than {limit} bytes.")
            parts.append(piece)
            progressed = piece or len(inflater.unconsumed_tail) != len(pending)
            pending = inflater.unconsumed_tail
            if not progressed:
                break  # all input read, stream not finished: truncated
    except zlib.error as ex:
        raise bad_request(f"The body is not valid gzip ({ex}).", {"body": ["Not gzip."]}) from ex
    if not inflater.eof:
        raise bad_request("The gzip stream is truncated.", {"body": ["Truncated gzip."]})
    if inflater.unused_data:
        raise bad_request("The body has bytes after the gzip stream.", {"body": ["Data after the gzip stream."]})
    return b"".join(parts)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_events(text: bytes) -> list:
    # UTF-8 only: json.loads would also take UTF-16/32, whose bytes hold `"` and brackets
    # inside characters, and recording_blobs' byte scanner relies on them being structure.
    if json.detect_encoding(text) not in ("utf-8", "utf-8-sig"):
        raise bad_request("The segment must be UTF-8 JSON.", {"body": ["Not UTF-8."]})
    if text.count(b"[") + text.count(b"{") > MAX_CONTAINERS:
        raise payload_too_large(f"The segment has more than {MAX_CONTAINERS} arrays and objects.")
    try:
        events = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError as ex:
        raise bad_request("The segment is nested too deeply.", {"body": ["Nested too deeply."]}) from ex
    except (ValueError, UnicodeDecodeError) as ex:
        raise bad_request(f"The segment is not valid JSON: {ex}.", {"body": ["Not JSON."]}) from ex
    if not isinstance(events, list) or not events:
        raise bad_request("The segment must be a non-empty JSON array of rrweb events.",
                          {"body": ["Must be a non-empty JSON array."]})
    if len(events) > MAX_EVENTS:
        raise payload_too_large(f"The segment has {len(events)} events; at most {MAX_EVENTS} are accepted.")
    return events


def _millis(value: Any) -> int | None:
    """The value if it is an integer (not a bool, not a float: rrweb writes Date.now())."""
    return value if type(value) is int else None


def check_events(events: list, now: datetime) -> tuple[int, int, bool]:
    """(earliest, latest timestamp in ms, begins with a full snapshot); 400 naming each bad event."""
    earliest_ok = int((now - MAX_PAST).timestamp() * 1000)
    latest_ok = int((now + MAX_FUTURE).timestamp() * 1000)
    problems: dict[str, dict[str, list[str]]] = {}
    first = last = None
    full_snapshot: bool | None = None
    for index, event in enumerate(events):
        if len(problems) >= MAX_NAMED_ERRORS:
            break
        if not isinstance(event, dict):
            problems[str(index)] = {"_schema": ["Must be an object with type and timestamp."]}
            continue
        kind, stamp = _millis(event.get("type")), _millis(event.get("timestamp"))
        found: dict[str, list[str]] = {}
        if kind is None:
            found["type"] = ["Must be an integer."]
        if stamp is None:
            found["timestamp"] = ["Must be an integer (milliseconds since the epoch)."]
        elif stamp > latest_ok:
            found["timestamp"] = [IN_THE_FUTURE]
        elif stamp < earliest_ok:
            found["timestamp"] = [TOO_OLD]
        if found or stamp is None:
            problems[str(index)] = found
            continue
        first = stamp if first is None else min(first, stamp)
        last = stamp if last is None else max(last, stamp)
        if full_snapshot is None and kind in (FULL_SNAPSHOT, INCREMENTAL):
            full_snapshot = kind == FULL_SNAPSHOT
    if problems:
        names = ", ".join(sorted(problems, key=int))
        raise bad_request(f"Invalid events: {names}.", {"events": problems})
    assert first is not None and last is not None  # a non-empty list without problems
    return first, last, bool(full_snapshot)


def _when(millis: int) -> datetime:
    return datetime.fromtimestamp(millis / 1000, UTC)


def decode(body: bytes, encoding: str, segment: int, now: datetime,
           dictionary: recording_codec.Dictionary | None = None, make_dictionary: bool = False) -> Segment:
    """The segment to store: the rest of its text once large literals are cut out (see
    hindsight.recording_blobs), zstd-compressed with the account's `dictionary` (see
    hindsight.recording_codec; rrweb's vocabulary without one), its time range and event
    count; with `make_dictionary`, a new dictionary of its text (blobs, then the rest) when
    it is long enough, which the segment and its blobs then use. 400/413 with the reason
    otherwise."""
    if not body:
        raise bad_request("The request body is empty; send the segment's events.", {"body": ["Empty."]})
    if encoding == "gzip":
        text = inflate(body)
    else:
        if len(body) > MAX_JSON_BYTES:
            raise payload_too_large(f"The segment is more than {MAX_JSON_BYTES} bytes.")
        text = body
    events = parse_events(text)
    first, last, full_snapshot = check_events(events, now)
    cut = recording_blobs.extract(text, snapshots={i for i, event in enumerate(events)
                                                   if event.get("type") == FULL_SNAPSHOT})
    rest = text if cut is None else cut.rest
    new = (recording_codec.dictionary_from(rest, tuple(cut.literals.values()) if cut else ())
           if make_dictionary else None)
    # The segment that makes a dictionary is compressed with it (its text is stored once:
    # in the dictionary); before the account has one, with rrweb's vocabulary (0035).
    used = new or dictionary or recording_codec.VOCABULARY
    data = recording_blobs.compress(rest, used)
    if cut is None:
        return Segment(segment=segment, started_at=_when(first), ended_at=_when(last),
                       event_count=len(events), full_snapshot=full_snapshot, data=data,
                       json_bytes=len(text), dictionary=used, new_dictionary=new)
    return Segment(segment=segment, started_at=_when(first), ended_at=_when(last),
                   event_count=len(events), full_snapshot=full_snapshot,
                   data=data, json_bytes=len(text),
                   blob_offsets=cut.offsets, blob_hashes=cut.hashes, blobs=cut.blobs(used),
                   dictionary=used, new_dictionary=new)
