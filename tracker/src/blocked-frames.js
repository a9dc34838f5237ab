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
// gone takes its document with it).
//
// Cross-origin frames (data-record-iframes="on": the frame's own tracker.js posts rrweb's events
// up, rrweb renumbers their ids) are judged the other way round, failing closed: their nodes are
// not in the mirror, so an id the mirror does not hold is recorded only once it was *admitted*:
// a node of a frame document whose attach was kept, or added under such a node since. Anything
// else (a blocked frame's document, events a frame sent before its document reached this
// recorder, a document attached under an iframe that rrweb blocked inside the frame, such as
// the frame's own screenshot copy) is dropped. And rrweb sends a frame's document only when
// the frame's recorder starts: a frame that started before this recorder listened (or before
// this page's next full snapshot, which replaces everything) would be events about nodes never
// recorded. So after each full snapshot here, the page's frames are asked for theirs (ASK),
// and a frame's recorder answers its parent's ask with a full snapshot (only a parent it
// posts to: data-record-parents, frame-target.js).
// Until a blocked frame's document is seen, an event costs one comparison (option off).
//
// Also html2canvas's copy of the page (a hidden iframe the screenshot chunk blocks): up to
// ~100 KB of JSON per segment before.

import { record } from '@rrweb/record';
import { allowedParent } from './frame-target.js';
import { D, W } from './util.js';

const FULL_SNAPSHOT = 2;
const INCREMENTAL = 3;
const ASK = 'hindsight:full-snapshot'; // a parent's recorder asks its frames for their documents
// rrweb's IncrementalSource: what names its nodes where.
const MUTATION = 0;
const POSITIONS = [1, 6, 12]; // mouse and touch moves, drags: data.positions[].id
const SELECTION = 14; // data.ranges[].start / .end
const ADOPTED = 15; // data.id: the document (or shadow host); data.styleIds: its sheets

/** `emit` (rrweb's emit option) without the documents of blocked frames; `frames`: rrweb
 * records cross-origin frames (recordCrossOriginIframes). */
export default function withoutBlockedFrames(emit, frames) {
  const mirror = record.mirror;
  const docs = new WeakSet(); // the documents never recorded
  const styles = new Set(); // ids of the style sheets such documents adopted
  const admitted = new Set(); // ids of cross-origin frames' nodes that are recorded
  const boxes = new Set(); // ...of those, iframes that rrweb blocked in their frame
  const admit = (node) => {
    admitted.add(node.id);
    if (node.tagName == 'iframe' && (node.attributes || {}).rr_width != null) boxes.add(node.id);
    for (const child of node.childNodes || []) admit(child);
  };
  let seen = frames ? 1 : 0; // events are looked at: a document was dropped, or frames post theirs

  if (frames)
    W.addEventListener('message', (e) => {
      // Only the parent this frame posts to (frame-target.js): its window, and its origin.
      if (e.data == ASK && e.source == W.parent && W.parent != W && e.origin == allowedParent()) {
        try {
          record.takeFullSnapshot(true); // posted up to the parent by rrweb
        } catch {
          // not recording (yet): its start posts the document
        }
      }
    });

  /** Is node `id` in a dropped document, or a node of another origin that was not admitted? */
  const inside = (id) => {
    const node = id == null ? null : mirror.getNode(id);
    return node ? docs.has(node.ownerDocument || node) : id != null && frames && !admitted.has(id);
  };
  const keep = (list, key) => (list || []).filter((x) => !inside(x[key]));

  /** The event as it may be recorded, or null. */
  function filter(event) {
    const d = event.data;
    if (d.source == MUTATION && d.isAttachIframe) {
      const add = d.adds[0];
      const frame = mirror.getNode(add.parentId);
      const meta = frame && mirror.getMeta(frame);
      // The iframe: rrweb's own placeholder when rrweb blocked it (rr_width: the same
      // blockSelector, no second copy of the rule), here or inside a frame of another origin.
      const blocked = frame ? !!meta && !!meta.attributes && meta.attributes.rr_width != null : boxes.has(add.parentId);
      if (!blocked && !inside(add.parentId) && (frame || admitted.has(add.parentId))) {
        if (!mirror.getNode(add.node.id)) admit(add.node); // a cross-origin frame's document
        return event;
      }
      const doc = mirror.getNode(add.node.id) || (frame && frame.contentDocument);
      if (doc) docs.add(doc); // (another origin's nodes are simply never admitted)
      seen = 1;
      return null;
    }
    if (!seen) return event;
    if (d.source == MUTATION) {
      // Nodes added under admitted ones are admitted (in any order of the adds).
      for (let more = frames; more; ) {
        more = 0;
        for (const add of d.adds || [])
          if (admitted.has(add.parentId) && !admitted.has(add.node.id) && !mirror.getNode(add.node.id)) {
            admit(add.node);
            more = 1;
          }
      }
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
    if (frames && event.type == FULL_SNAPSHOT)
      for (const f of D.querySelectorAll('iframe')) {
        try {
          f.contentWindow.postMessage(ASK, '*'); // nothing but the question: any origin may hear it
        } catch {
          // gone meanwhile
        }
      }
  };
}
