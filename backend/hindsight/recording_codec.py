"""How a DOM recording segment's bytes are stored (sql/migrations/0030): zstd, with a
dictionary of the account's own recorded text.

A segment is small (2-5 KB once compressed) and compressed alone, so a compressor starts
cold for each one and never sees what the same site's earlier segments said: the same
rrweb keys, node ids, class names, mutation shapes. A zstd *raw-content dictionary*
gives it that context without chaining segments together (each still decodes on its own):
the dictionary is the last `MAX_DICTIONARY` bytes of the text of one earlier segment of
the account (what is left of it once recording_blobs cut out its blobs), taken by the
upload that first has `MIN_SOURCE` bytes of such text while the account has no
dictionary younger than `ROTATE`. Measured on the demo site's recordings (docs/DECISIONS.md,
"Recording storage: zstd with a per-account dictionary"): the segments' own bytes go from
0.49-0.58 of plain gzip (gzip level 6) to 0.25-0.35, at about gzip's CPU cost to compress
(level 9) and a quarter of it to decompress.

An account's first recording (sql/migrations/0035; docs/DECISIONS.md, "An account's first
recording"): the segment that makes the account's dictionary is itself compressed with it
(its text is stored once: in the dictionary, not again in the segment), and the dictionary
is made of the segment's whole text, its blobs included (the page's markup and stylesheets,
which the account's next pages share); blobs are zstd with the account's dictionary too.
Before an account has a dictionary, segments and blobs use `VOCABULARY`: rrweb's, HTML's
and CSS's vocabulary, shipped with Hindsight (hindsight.recording_vocabulary: no data of
any account), named by its SHA-256 like an account's dictionary but never stored.

Formats, told apart by their magic numbers (so rows stored before 0030 read as before):
- gzip (1f 8b): rows stored before 0030, and blobs stored before 0035;
- zstd (28 b5 2f fd): one frame with its content size and checksum, compressed with the
  dictionary the row names (`recording_segments.dictionary`, `recording_blobs.dictionary`:
  its SHA-256) or with none.

Every read is bounded and checked: the frame must declare its content size, no larger than
the row's `json_bytes`; gzip is inflated at most to that size; a dictionary's bytes must hash
to the key the row names; zstd checks the frame's checksum, so a wrong or altered dictionary
is refused (`CorruptSegment`), never turned into other events.
"""

from __future__ import annotations

import hashlib
import threading
import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import timedelta

import zstandard

from . import recording_vocabulary

# Measured (docs/DECISIONS.md): level 9 with the dictionary costs what gzip level 6 cost
# (0.43 ms for a 16 KB segment text); level 12 saves 1-2 % more at 2.7x the CPU, 19 at 50x.
LEVEL = 9
DICTIONARY_LEVEL = 19      # a dictionary is stored once: its own bytes, compressed hard
MIN_SOURCE = 8 * 1024      # a segment's text this long can be a dictionary
# Its last bytes are (blobs first, then the rest). 32 KiB before 0035, when a dictionary was
# the rest only (64 KiB measured no better for it); with the blobs a page's text is longer.
MAX_DICTIONARY = 64 * 1024
ROTATE = timedelta(days=1)  # a newer dictionary after this long (a site's pages change)
CACHED = 256               # dictionaries kept per process (up to 64 KiB each; the ones written
                           # with also hold zstd's compression tables, ~0.7 MB each)

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class CorruptSegment(RuntimeError):
    """A stored segment that does not read back: a blob or dictionary missing or altered,
    bytes that do not decode, or decode to another size than the row says."""


@dataclass(frozen=True)
class Dictionary:
    """A dictionary's bytes (`raw`) and their SHA-256, the key segments name it by."""

    sha256: bytes
    raw: bytes
    _zstd: list = field(default_factory=list, compare=False, repr=False)
    _plain: list = field(default_factory=list, compare=False, repr=False)

    @classmethod
    def of(cls, raw: bytes) -> Dictionary:
        return cls(hashlib.sha256(raw).digest(), raw)

    def zstd(self) -> zstandard.ZstdCompressionDict:
        """zstd's form of it, digested once for compressing at LEVEL (20 % of a segment's
        compression time when done per call)."""
        if not self._zstd:
            made = zstandard.ZstdCompressionDict(self.raw, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
            made.precompute_compress(level=LEVEL)
            self._zstd.append(made)
        return self._zstd[0]

    def zstd_for_reading(self) -> zstandard.ZstdCompressionDict:
        """zstd's form of it without the compression tables (about 0.7 MB at LEVEL, which
        only writing needs): what reads use, so a cache full of dictionaries that are only
        read (replays of many accounts) holds their bytes, not their tables."""
        if not self._plain:
            self._plain.append(zstandard.ZstdCompressionDict(self.raw, dict_type=zstandard.DICT_TYPE_RAWCONTENT))
        return self._plain[0]

    def stored(self) -> bytes:
        """What recording_dictionaries.data holds: the bytes, zstd-compressed (no dictionary)."""
        return pack(self.raw, None, level=DICTIONARY_LEVEL)


def dictionary_from(rest: bytes, literals: tuple[bytes, ...] = ()) -> Dictionary | None:
    """A dictionary made of a segment's text: the blobs cut out of it (`literals`, each
    once), then its rest, the last MAX_DICTIONARY bytes; None when shorter than MIN_SOURCE."""
    text = b"".join((*literals, rest))
    if len(text) < MIN_SOURCE:
        return None
    return Dictionary.of(text[-MAX_DICTIONARY:])


# rrweb's vocabulary (hindsight.recording_vocabulary), for what an account stores before it
# has a dictionary of its own. Its bytes never change: rows name it by this hash.
VOCABULARY = Dictionary.of(recording_vocabulary.build())
if VOCABULARY.sha256 != recording_vocabulary.SHA256:   # pragma: no cover - an edit of its lists
    raise RuntimeError("hindsight.recording_vocabulary's bytes changed: rows stored with it would not read")


def load_dictionary(sha256: bytes, stored: bytes) -> Dictionary:
    """A dictionary from its stored row; CorruptSegment unless its bytes hash to `sha256`."""
    raw = unpack(stored, None, MAX_DICTIONARY)
    if hashlib.sha256(raw).digest() != bytes(sha256):
        raise CorruptSegment(f"dictionary {bytes(sha256).hex()} is altered")
    return Dictionary(bytes(sha256), raw)


def pack(data: bytes, dictionary: Dictionary | None, level: int = LEVEL) -> bytes:
    """One zstd frame of `data` (content size and checksum in it), with the dictionary."""
    compressor = zstandard.ZstdCompressor(level=level, dict_data=dictionary.zstd() if dictionary else None,
                                          write_checksum=True, write_content_size=True,
                                          write_dict_id=False)
    return compressor.compress(data)


def gunzip(data: bytes, limit: int) -> bytes:
    """One gzip member inflated to at most `limit` bytes (CorruptSegment past it)."""
    inflater = zlib.decompressobj(31)
    try:
        out = inflater.decompress(data, limit + 1)
    except zlib.error as exc:
        raise CorruptSegment(f"stored gzip does not inflate: {exc}") from None
    if len(out) > limit or not inflater.eof:
        raise CorruptSegment(f"stored gzip is larger than {limit} bytes or truncated")
    return out


def unpack(data: bytes, dictionary: Dictionary | None, limit: int) -> bytes:
    """The bytes stored as `data` (gzip, or a zstd frame compressed with `dictionary`), at
    most `limit` of them; CorruptSegment when they do not decode exactly."""
    data = bytes(data)
    if data[:2] == GZIP_MAGIC:
        if dictionary is not None:
            raise CorruptSegment("a gzip segment names a dictionary")
        return gunzip(data, limit)
    if data[:4] != ZSTD_MAGIC:
        raise CorruptSegment("stored bytes are neither gzip nor zstd")
    try:
        params = zstandard.get_frame_parameters(data)
    except zstandard.ZstdError as exc:
        raise CorruptSegment(f"stored zstd frame: {exc}") from None
    size = params.content_size
    if size == zstandard.CONTENTSIZE_UNKNOWN or size == zstandard.CONTENTSIZE_ERROR or size > limit:
        raise CorruptSegment(f"stored zstd frame declares {size} bytes (at most {limit})")
    if not params.has_checksum:
        raise CorruptSegment("stored zstd frame has no checksum")
    decompressor = zstandard.ZstdDecompressor(dict_data=dictionary.zstd_for_reading() if dictionary else None)
    try:
        out = decompressor.decompress(data, max_output_size=limit)
    except zstandard.ZstdError as exc:   # checksum mismatch: another dictionary, altered bytes
        raise CorruptSegment(f"stored zstd frame does not decode: {exc}") from None
    if len(out) != size:
        raise CorruptSegment(f"stored zstd frame gave {len(out)} bytes, not {size}")
    return out


class DictionaryCache:
    """Dictionaries by (account, SHA-256), least recently used out first. A key names the
    bytes exactly (they were checked against it when loaded), so an entry never goes stale."""

    def __init__(self, size: int = CACHED) -> None:
        self._size = size
        self._entries: OrderedDict[tuple, Dictionary] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, account_id, sha256: bytes) -> Dictionary | None:
        key = (str(account_id), bytes(sha256))
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
            return found

    def put(self, account_id, dictionary: Dictionary) -> None:
        key = (str(account_id), dictionary.sha256)
        with self._lock:
            self._entries[key] = dictionary
            self._entries.move_to_end(key)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


DICTIONARIES = DictionaryCache()
