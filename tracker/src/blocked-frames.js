// A blocked iframe's document is never recorded (docs/DECISIONS.md "Blocked iframes'
// documents"). rrweb replaces a blocked <iframe> by an empty box of its size, yet once a
// same-origin frame loads it serializes the frame's document all the same (a mutation with
// isAttachIframe whose one add is that document) and then observes it: its text, the
// values of its opted-in fields, its later changes. Here, between rrweb's emit and the
// segment writer, that attach event is dropped when rrweb itself blocked the frame (its
// serialized node is rrweb's placeholder, with rr_width) or the frame sits in a document
// dropped before (a frame in a blocked frame), and the document is remembered; every later
// event about a node of a remembered document is dropped too (a mutation keeps its other
// parts). Nodes are known by rrweb's mirror (id -> node), documents by a WeakSet (a frame
// gone takes its document with it). A cross-origin frame's document (data-record-iframes:
// its own tracker.js sends rrweb's events up) is not in the mirror: its nodes are known by
// their ids, those of the dropped attach and of every add dropped under them.
// Until a blocked frame's document is seen, an event costs one comparison.
//
// Also html2canvas's copy of the page (a hidden iframe the screenshot chunk blocks): up to
// ~100 KB of JSON per segment before.

import { record } from '@rrweb/record';

const INCREMENTAL = 3;
// rrweb's IncrementalSource: what names its nodes where.
const MUTATION = 0;
const POSITIONS = [1, 6, 12]; // mouse and touch moves, drags: data.positions[].id
const SELECTION = 14; // data.ranges[].start / .end
const ADOPTED = 15; // data.id: the document (or shadow host); data.styleIds: its sheets

/** `emit` (rrweb's emit option) without the documents of blocked frames. */
export default function withoutBlockedFrames(emit) {
  const mirror = record.mirror;
  const docs = new WeakSet(); // the documents never recorded
  const styles = new Set(); // ids of the style sheets such documents adopted
  const ids = new Set(); // ids of dropped nodes the mirror does not hold (a cross-origin frame's)
  const drop = (node) => {
    ids.add(node.id);
    for (const child of node.childNodes || []) drop(child);
  };
  let seen = 0; // a document was dropped: events are looked at

  /** Is node `id` in a dropped document (or one of the dropped ids)? */
  const inside = (id) => {
    const node = id == null ? null : mirror.getNode(id);
    return node ? docs.has(node.ownerDocument || node) : ids.has(id);
  };
  const keep = (list, key) => (list || []).filter((x) => !inside(x[key]));

  /** The event as it may be recorded, or null. */
  function filter(event) {
    const d = event.data;
    if (d.source == MUTATION && d.isAttachIframe) {
      const add = d.adds[0];
      const frame = mirror.getNode(add.parentId);
      const meta = frame && mirror.getMeta(frame);
      const blocked = !!meta && !!meta.attributes && meta.attributes.rr_width != null;
      if (!frame || !(blocked || inside(add.parentId))) return event;
      const doc = mirror.getNode(add.node.id) || frame.contentDocument;
      if (doc) docs.add(doc);
      else drop(add.node);
      seen = 1;
      return null;
    }
    if (!seen) return event;
    if (d.source == MUTATION) {
      if (ids.size) for (const add of d.adds || []) if (inside(add.parentId)) drop(add.node);
      const parts = { adds: keep(d.adds, 'parentId'), removes: keep(d.removes, 'parentId'), texts: keep(d.texts, 'id'), attributes: keep(d.attributes, 'id') };
      Object.assign(d, parts);
      return parts.adds.length + parts.removes.length + parts.texts.length + parts.attributes.length ? event : null;
    }
    if (POSITIONS.includes(d.source)) {
      d.positions = keep(d.positions, 'id');
      return d.positions.length ? event : null;
    }
    if (d.source == SELECTION) {
      d.ranges = (d.ranges || []).filter((r) => !inside(r.start) && !inside(r.end));
      return d.ranges.length ? event : null;
    }
    if (inside(d.id)) {
      if (d.source == ADOPTED) for (const s of d.styleIds || []) styles.add(s);
      return null;
    }
    return styles.has(d.styleId) ? null : event; // a rule of a dropped document's adopted sheet
  }

  return (event, checkout) => {
    let kept = event;
    if (event.type == INCREMENTAL) {
      try {
        kept = filter(event);
      } catch {
        kept = null; // in doubt, the private side
      }
    }
    if (kept) emit(kept, checkout);
  };
}
