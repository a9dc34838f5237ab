"""Large repeated parts of DOM recordings, stored once per account (sql/migrations/0028).

`extract` cuts spans out of a segment's JSON text: every string literal of at least
`MIN_BYTES` (the stylesheets rrweb inlines), and in a full snapshot's node tree the largest
subtrees (JSON objects) of `MIN_BYTES` to `MAX_TREE_BYTES` (a page load's snapshot repeats
the page's markup, ids included: rrweb numbers nodes from 1 on each page load). It returns
what is left (`rest`), where each span goes back (byte offsets into the rest) and which it
is (the SHA-256 of its bytes). `splice` puts them back. The spans are bytes of the text as
sent, never re-serialized, so the result is byte for byte the JSON the browser sent, and no
value inside the events is a reference: nothing a recorded page contains can be mistaken
for one (docs/DECISIONS.md, "Recording blobs").

A blob is stored as a zstd frame compressed with the dictionary its upload's segment used
(the account's, or rrweb's vocabulary before the account has one; `Blob.dictionary`,
sql/migrations/0035); blobs stored before 0035 are gzip and read as before.

Why spans found by a scanner rather than values of the parsed events: the segment is
parsed once already (to check it), and finding a value's bytes again after parsing would
mean re-serializing, which would not give back the browser's bytes. The scanner relies on
the text being valid JSON (segments.parse_events checked it): outside a string, JSON has
no `"`, so every `"` met outside a literal starts the next one, and brackets outside
literals are the structure. Whatever it picks, `splice` restores exactly the bytes
`extract` cut: a wrong pick could only cost space, never change a read.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from . import recording_codec
from .recording_codec import CorruptSegment, Dictionary

# Measured on the demo site's recording (bench/recording.py, docs/DECISIONS.md, "Recording
# blobs"): below 1 KiB a blob's own gzip stream and its reference (36 bytes) cost about what
# a repeat saves.
MIN_BYTES = 1024
# The parts of a full snapshot's node tree stored apart: the largest subtrees of at most
# MAX_TREE_BYTES (a page that changes in one place keeps the rest of its blobs).
MAX_TREE_BYTES = 16 * 1024
FULL_SNAPSHOT = 2   # rrweb's event type

# A JSON string literal: quote, then runs of plain bytes and escapes, then quote. UTF-8
# never uses the bytes of `"` or `\` inside a multi-byte character.
_LITERAL = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
# The tokens of the structure: a literal (group 1: it is a key), or a bracket.
_TOKEN = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"([ \t\r\n]*:)?|[\[\]{}]', re.DOTALL)
# A snapshot's node tree is walked token by token in Python (a few microseconds each): a
# segment of 16 MiB of `[],` (16 KiB of gzip) is 5.6 million of them. Past this many, only
# the literals are cut out (which costs space, never a read).
MAX_TREE_TOKENS = 400_000


@functools.cache
def _long_literal(min_bytes: int) -> re.Pattern[bytes]:
    """Matched where a literal may start, skips in C the structure and the literals shorter
    than `min_bytes` up to the next literal that may not be (group 1; the caller checks its
    length): a literal of u characters or escapes has at most 2u + 2 bytes. Possessive, so a
    failed match costs one pass (no backtracking)."""
    units = (min_bytes - 3) // 2   # the plain case first: 4x faster on rrweb's keys
    short = rb'|"[^"\\]{0,%d}+"|"(?>[^"\\]|\\.){0,%d}+"' % (units, units) if min_bytes >= 3 else b""
    return re.compile(rb'(?:[^"]++' + short + rb')*+("(?>[^"\\]++|\\.)*+")', re.DOTALL)


@dataclass(frozen=True)
class Blob:
    sha256: bytes
    data: bytes                  # the cut bytes as stored: zstd with `dictionary` (gzip before 0035)
    json_bytes: int              # their size
    dictionary: bytes | None = None   # the SHA-256 of the dictionary `data` was compressed with


@dataclass(frozen=True)
class Extracted:
    rest: bytes                   # the JSON text without the cut spans
    offsets: tuple[int, ...]      # where each span goes back into `rest`, ascending
    hashes: tuple[bytes, ...]     # the SHA-256 of each (a repeat is listed again)
    literals: dict[bytes, bytes]  # each distinct span once: its SHA-256 -> its bytes

    def blobs(self, dictionary: Dictionary) -> tuple[Blob, ...]:
        """The distinct spans as stored: each a zstd frame with `dictionary`."""
        return tuple(Blob(digest, recording_codec.pack(literal, dictionary), len(literal), dictionary.sha256)
                     for digest, literal in self.literals.items())


def compress(rest: bytes, dictionary: Dictionary | None = None) -> bytes:
    """A segment's rest as stored (its `data`): zstd, with the account's dictionary when
    it has one (hindsight.recording_codec, sql/migrations/0030)."""
    return recording_codec.pack(rest, dictionary)


def _literal_spans(text: bytes, min_bytes: int) -> list[tuple[int, int]]:
    """The string literals of at least `min_bytes`."""
    # A literal that long holds a run of min_bytes - 2 bytes without a quote (unless it
    # escapes quotes, then it is merely not cut out): most segments are ruled out in C.
    if re.search(b'[^"]{%d}' % max(min_bytes - 2, 1), text) is None:
        return []
    # Not _LITERAL.finditer: a Python step per literal was 10 s for 5.6 million `""`.
    spans = []
    skip, pos = _long_literal(min_bytes), 0
    while (m := skip.match(text, pos)) is not None:
        start, pos = m.span(1)
        if pos - start >= min_bytes:
            spans.append((start, pos))
    return spans


def _tree_spans(text: bytes, snapshots: set[int], min_bytes: int, max_bytes: int) -> list[tuple[int, int]]:
    """The spans to cut out of a segment with full snapshots (`snapshots`: their indexes in
    the array): in each snapshot's node tree (`data.node`), the largest objects of
    `min_bytes` to `max_bytes`; elsewhere, and inside larger objects, the literals of at
    least `min_bytes`. Bottom-up: each container hands its parent what it selected, or
    itself when it is a tree object of the right size (which covers all it holds)."""
    # Frame: [start, is_object, in_tree, selected spans]
    stack: list[list] = []
    key: bytes | None = None
    event = -1
    last = max(snapshots)
    top: list[tuple[int, int]] = []
    for count, m in enumerate(_TOKEN.finditer(text)):
        if count == MAX_TREE_TOKENS:
            return _literal_spans(text, min_bytes)
        token = m.group()
        first = token[:1]
        if first == b'"':
            if m.group(1) is not None:
                key = token[:m.start(1) - m.start()]
                continue
            key = None
            if m.end() - m.start() >= min_bytes and stack:
                stack[-1][3].append(m.span())
            continue
        if first in (b"{", b"["):
            depth = len(stack)
            if depth == 1:
                event += 1
                if event > last:   # past the last snapshot: only literals from here on
                    rest = _literal_spans(text[m.start():], min_bytes)
                    return stack[0][3] + [(a + m.start(), b + m.start()) for a, b in rest]
            in_tree = bool(stack) and stack[-1][2]
            if (not in_tree and first == b"{" and depth == 3 and key == b'"node"' and event in snapshots
                    and stack[1][1] and stack[2][1]):
                in_tree = True   # [ event { data { node {
            stack.append([m.start(), first == b"{", in_tree, []])
            key = None
            continue
        start, is_object, in_tree, selected = stack.pop()
        key = None
        size = m.end() - start
        if in_tree and is_object and min_bytes <= size <= max_bytes:
            selected = [(start, m.end())]
        if stack:
            stack[-1][3].extend(selected)
        else:
            top.extend(selected)
    return top


def extract(text: bytes, min_bytes: int = MIN_BYTES, snapshots: set[int] | frozenset[int] = frozenset(),
            max_tree_bytes: int = MAX_TREE_BYTES) -> Extracted | None:
    """The literals of at least `min_bytes` cut out of `text`, and with `snapshots` (the
    indexes of the segment's full snapshot events) the subtrees of their node trees as
    `_tree_spans` picks them (None: nothing to cut)."""
    if len(text) < min_bytes:
        return None
    if snapshots:
        spans = _tree_spans(text, set(snapshots), min_bytes, max_tree_bytes)
    else:
        spans = _literal_spans(text, min_bytes)
    if not spans:
        return None
    pieces: list[bytes] = []
    offsets: list[int] = []
    hashes: list[bytes] = []
    literals: dict[bytes, bytes] = {}
    done = kept = 0
    for start, end in spans:
        literal = text[start:end]
        digest = hashlib.sha256(literal).digest()
        literals.setdefault(digest, literal)
        pieces.append(text[done:start])
        kept += start - done
        offsets.append(kept)
        hashes.append(digest)
        done = end
    pieces.append(text[done:])
    return Extracted(b"".join(pieces), tuple(offsets), tuple(hashes), literals)


def splice(rest: bytes, offsets: list[int], hashes: list[bytes], literals: dict[bytes, bytes],
           json_bytes: int) -> bytes:
    """The segment's JSON: `rest` with each span back at its offset. Raises
    CorruptSegment unless every reference resolves and the result has `json_bytes`."""
    if len(offsets) != len(hashes):
        raise CorruptSegment("blobs and blob_offsets differ in length")
    pieces: list[bytes] = []
    done = 0
    for offset, digest in zip(offsets, hashes, strict=True):
        if offset < done or offset > len(rest):
            raise CorruptSegment(f"blob offset {offset} out of order or past the end")
        literal = literals.get(bytes(digest))
        if literal is None:
            raise CorruptSegment(f"blob {bytes(digest).hex()} is missing")
        pieces.append(rest[done:offset])
        pieces.append(literal)
        done = offset
    pieces.append(rest[done:])
    text = b"".join(pieces)
    if len(text) != json_bytes:
        raise CorruptSegment(f"the spliced segment has {len(text)} bytes, not {json_bytes}")
    return text


def literals(hashes: list[bytes], data: list[bytes], limit: int = 1 << 30,
             names: list[bytes | None] | None = None,
             dictionaries: Mapping[bytes, Dictionary] | None = None) -> dict[bytes, bytes]:
    """SHA-256 -> bytes, from the stored blobs (gzip, or zstd with the dictionary `names`
    gives for each, found in `dictionaries`; each decoded to at most `limit` bytes: the
    segment's size); a blob whose bytes do not hash to its key is left out (so `splice`
    refuses the segment). A dictionary not in `dictionaries` is CorruptSegment."""
    found: dict[bytes, bytes] = {}
    for i, (digest, blob) in enumerate(zip(hashes, data, strict=False)):
        if blob is None:
            continue
        name = names[i] if names is not None and i < len(names) else None
        dictionary = None
        if name is not None:
            dictionary = (dictionaries or {}).get(bytes(name))
            if dictionary is None:
                raise CorruptSegment(f"the dictionary of blob {bytes(digest).hex()} is missing")
        literal = recording_codec.unpack(bytes(blob), dictionary, limit)
        if hashlib.sha256(literal).digest() == bytes(digest):
            found[bytes(digest)] = literal
    return found


@dataclass(frozen=True)
class Body:
    """A segment's JSON as read: `data` is gzip when `gzip` (stored as sent), else plain."""

    data: bytes
    gzip: bool

    def json(self) -> bytes:
        return gzip.decompress(self.data) if self.gzip else self.data


def resolve(row: dict, dictionary: Dictionary | None = None,
            dictionaries: Mapping[bytes, Dictionary] | None = None) -> Body:
    """A stored segment's JSON from its row: `data`, `json_bytes`, `blobs`, `blob_offsets`,
    `blob_data` (the blobs' stored bytes in the order of `blobs`; None where one is
    missing), `blob_dictionaries` (the SHA-256 of each one's dictionary, None: gzip) and
    `dictionary` (the SHA-256 of the dictionary its zstd names, or None), with that
    dictionary (`dictionary`) and the blobs' (`dictionaries`, by SHA-256), loaded by the
    caller: queries.recordings."""
    data = bytes(row["data"])
    named = row.get("dictionary")
    if (None if named is None else bytes(named)) != (None if dictionary is None else dictionary.sha256):
        raise CorruptSegment("the segment's dictionary is missing or another one")
    size = row["json_bytes"]
    if row["blobs"] is None:
        if data[:2] == recording_codec.GZIP_MAGIC:
            return Body(data, gzip=True)   # the browser's gzip, stored before 0030
        text = recording_codec.unpack(data, dictionary, size)
        if len(text) != size:
            raise CorruptSegment(f"the segment has {len(text)} bytes, not {size}")
        return Body(text, gzip=False)
    hashes = [bytes(h) for h in row["blobs"]]
    found = literals(hashes, list(row["blob_data"] or []), size, row.get("blob_dictionaries"), dictionaries)
    return Body(splice(recording_codec.unpack(data, dictionary, size), list(row["blob_offsets"]), hashes,
                       found, size), gzip=False)
