"""Validation benchmark: what reading one POST /api/v1/track body costs, in process.

A realistic 50-event batch (bench/ingest.py's `make_events`: mostly mouse moves and
scrolls, some clicks, input and custom events; about 12 KB of JSON) is

- parsed by the app's JSON media handler (what `req.get_media()` runs), and by `json.loads`
  for comparison;
- validated by `TrackBatchSchema` (its events through `FastNestedList`, the fast path) and
  by the same schema with a plain `fields.List(fields.Nested(EventSchema))`: the cost the
  fast path saves;
- if msgspec is importable (it is not a dependency), decoded and validated by an
  equivalent msgspec Struct: the alternative issue 10 asked to weigh (without the checks
  it cannot express: storable text, bounded JSON objects, unique seqs).

No database, one process, a few seconds; each figure is the best of several repeats, the
candidates interleaved (the machine may be shared). Writes its section of
docs/BENCHMARKS.md (other sections are kept).

    .venv/bin/python bench/validation.py            # prints and writes the section
    .venv/bin/python bench/validation.py --quick    # prints only
"""

from __future__ import annotations

import argparse
import io
import json
import random
import sys
import timeit
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "BENCHMARKS.md"
sys.path.insert(0, str(ROOT / "backend"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from doc_sections import write_section  # noqa: E402 - bench/ is not a package
from ingest import make_events  # noqa: E402


def realistic_batch() -> bytes:
    events = make_events(random.Random(7), "https://shop.example", datetime(2026, 1, 1, tzinfo=UTC), 0, 50)
    return json.dumps({"session_id": str(uuid.uuid4()), "events": events}).encode()


try:  # not a dependency: the alternative issue 10 asked to weigh
    import msgspec
except ImportError:
    msgspec = None

if msgspec is not None:
    # EventSchema's bounds as msgspec Structs (module level: the annotations are strings).
    Coord = Annotated[int, msgspec.Meta(ge=-1_000_000, le=10_000_000)] | None
    Text50 = Annotated[str, msgspec.Meta(max_length=50)] | None
    Text255 = Annotated[str, msgspec.Meta(max_length=255)] | None
    Text1024 = Annotated[str, msgspec.Meta(max_length=1024)] | None
    Url = Annotated[str, msgspec.Meta(max_length=2048)] | None
    Seq = Annotated[int, msgspec.Meta(ge=0, le=2**62)]
    EventType = Annotated[str, msgspec.Meta(pattern=r"^[a-z][a-z0-9_]{0,49}$")]
    MouseButton = Annotated[int, msgspec.Meta(ge=0, le=4)] | None
    ClickCount = Annotated[int, msgspec.Meta(ge=0, le=100)] | None
    DataKey = Annotated[str, msgspec.Meta(max_length=100)]

    class MsgspecEvent(msgspec.Struct, forbid_unknown_fields=True):
        seq: Seq
        timestamp: datetime
        event_type: EventType
        page_url: Url = None
        target_element: Text1024 = None
        target_selector: Text1024 = None
        target_tag: Text50 = None
        target_id: Text255 = None
        target_class: Text1024 = None
        viewport_x: Coord = None
        viewport_y: Coord = None
        screen_x: Coord = None
        screen_y: Coord = None
        scroll_x: Coord = None
        scroll_y: Coord = None
        input_value: Text1024 = None
        input_masked: bool | None = None
        key_pressed: Text50 = None
        mouse_button: MouseButton = None
        click_count: ClickCount = None
        event_data: dict[DataKey, Any] | None = None

    Events = Annotated[list[MsgspecEvent], msgspec.Meta(min_length=1, max_length=100)]

    class MsgspecBatch(msgspec.Struct, forbid_unknown_fields=True):
        session_id: uuid.UUID
        events: Events
        token: uuid.UUID | None = None


def measure(rounds: int) -> dict[str, float]:
    """Best ms per batch of each candidate."""
    import falcon
    from marshmallow import fields, validate

    from hindsight.schemas import MAX_EVENTS_PER_BATCH, EventSchema, TrackBatchSchema

    class PlainTrackBatchSchema(TrackBatchSchema):
        events = fields.List(fields.Nested(EventSchema), required=True,
                             validate=validate.Length(min=1, max=MAX_EVENTS_PER_BATCH))

    raw = realistic_batch()
    handler = falcon.media.JSONHandler()
    body = handler.deserialize(io.BytesIO(raw), falcon.MEDIA_JSON, len(raw))
    fast, plain = TrackBatchSchema(), PlainTrackBatchSchema()
    assert fast.load(body) == plain.load(body)
    candidates: list[tuple[str, Callable[[], Any], int]] = [
        ("parse: the app's JSONHandler (req.get_media())",
         lambda: handler.deserialize(io.BytesIO(raw), falcon.MEDIA_JSON, len(raw)), 300),
        ("parse: json.loads", lambda: json.loads(raw), 300),
        ("validate: TrackBatchSchema (FastNestedList)", lambda: fast.load(body), 300),
        ("validate: plain List(Nested(EventSchema))", lambda: plain.load(body), 30),
    ]
    if msgspec is not None:
        decode = msgspec.json.Decoder(MsgspecBatch).decode
        candidates.append((f"msgspec {msgspec.__version__} Struct: parse and validate", lambda: decode(raw), 300))
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, run, number in candidates:
            seconds = min(timeit.repeat(run, number=number, repeat=5)) / number
            best[name] = min(best.get(name, float("inf")), seconds * 1000)
    return best


def section(best: dict[str, float], batch_bytes: int) -> str:
    rows = "\n".join(f"| {name} | {ms:.3f} |" for name, ms in best.items())
    return f"""## Validation: one 50-event batch, in process

`.venv/bin/python bench/validation.py`: a realistic batch of 50 events ({batch_bytes:,} bytes of
JSON), best ms per batch over interleaved repeats (no HTTP, no database). The fast path is
the one POST /api/v1/track runs; the plain marshmallow row is what it saves; the msgspec row
(when msgspec is installed; it is not a dependency) is the alternative weighed in
docs/DECISIONS.md, "One way in, one way out (issue 10)".

| step | ms per batch |
|---|---|
{rows}
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="one round, print only")
    args = parser.parse_args(argv)
    best = measure(1 if args.quick else 3)
    text = section(best, len(realistic_batch()))
    print(text)
    if not args.quick:
        write_section(DOC, "bench/validation.py", text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
