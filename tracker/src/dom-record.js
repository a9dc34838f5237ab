// The lazy DOM-recording chunk: rrweb's recorder (npm @rrweb/record), masked by the rules
// of mask.js, its events cut into segments and gzipped with the browser's own
// CompressionStream, then handed to tracker.js's transport (bounded outbox, retries).
//
// A segment is cut at ~256 KiB of JSON, 10 s after its first event, before every full
// snapshot (each page load, every 5 minutes, a new session: every segment that begins
// with one is a seek point), and when the page is hidden or goes away.
//
// A full snapshot's JSON is not made in the task that took the snapshot: the event waits in
// its segment as an object, and its JSON is made (node by node) and gzipped when the segment is
// cut, in slices of SLICE ms of main thread with the event loop let through between them. On a
// page of 15,000 elements that keeps ~90 ms of ours (JSON.stringify, and the Blob that fed the
// CompressionStream) out of rrweb's own snapshot task, which rrweb cannot slice
// (docs/DECISIONS.md "The large page's full snapshot").
//
// What is cut as the page goes away (and what is still being compressed then) cannot wait
// for CompressionStream, which is asynchronous: it is gzipped at once on the main thread by
// fflate (npm, pinned) instead, so the beacon and the outbox (whose copy the next page load
// sends again) carry gzip, not plain JSON. Plain JSON only if that fails.

import { record } from '@rrweb/record';
import { gzipSync } from 'fflate';
import withoutBlockedFrames from './blocked-frames.js';
import { reportEarlyNetwork } from './early-network.js';
import { allowParent } from './frame-target.js';
import { configureMasking, recordingPrivacy } from './mask.js';
import { D, load, save, SS, W } from './util.js';

const MAX_JSON = 256 * 1024;
const MAX_AGE = 10000;
const CHECKOUT_EVERY = 5 * 60 * 1000;
const FULL_SNAPSHOT = 2;
const META = 4; // rrweb emits it right before each full snapshot
const SLICE = 8; // ms of main thread, then the event loop goes on (a new task)
const CHUNK = 64 * 1024; // characters of JSON handed to the CompressionStream at a time
const SMALL = 200; // nodes: a subtree up to this size is one piece of JSON
const PER_ELEMENT = 100; // about the JSON of a full snapshot per element (cutting segments by size)

/** `fn` wrapped so that nothing it throws reaches the page. */
const guard =
  (fn) =>
  (...args) => {
    try {
      return fn(...args);
    } catch {
      return 0;
    }
  };

/** Bytes as base64 (the outbox lives in localStorage). */
function base64(bytes) {
  let binary = '';
  for (let i = 0; i < bytes.length; i += 32768) binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 32768));
  return btoa(binary);
}

const pause = () => new Promise((resolve) => setTimeout(resolve));

/** A serialized node's JSON in pieces: a subtree of up to SMALL nodes at once
 * (JSON.stringify), a larger one as its own fields, then its children one by one. rrweb
 * numbers a snapshot's nodes in document order, so the ids tell a subtree's size (the next
 * sibling's id minus its own; `size` is an estimate only: ids that do not fit make one
 * larger piece, never a wrong one). */
function* nodePieces(node, size) {
  const kids = node.childNodes;
  if (!(size > SMALL) || !kids || !kids.length) return yield JSON.stringify(node);
  const own = JSON.stringify(Object.assign({}, node, { childNodes: undefined }));
  yield own.slice(0, -1) + (own.length > 2 ? ',' : '') + '"childNodes":[';
  for (let i = 0; i < kids.length; i++) {
    if (i) yield ',';
    yield* nodePieces(kids[i], (i + 1 < kids.length ? kids[i + 1].id : node.id + size) - kids[i].id);
  }
  yield ']}';
}

/** An event's JSON in pieces: a full snapshot's node tree by nodePieces, else at once.
 * The same JSON as JSON.stringify(event), fields in another order. */
function* eventPieces(event) {
  if (typeof event == 'string') return yield event;
  const data = Object.assign({}, event.data, { node: undefined });
  const head = JSON.stringify(Object.assign({}, event, { data: undefined }));
  const rest = JSON.stringify(data);
  yield head.slice(0, -1) + ',"data":' + rest.slice(0, -1) + (rest.length > 2 ? ',' : '') + '"node":';
  yield* nodePieces(event.data.node, Infinity);
  yield '}}';
}

/** A segment's JSON, at once (the page is going away, or no CompressionStream). */
const jsonOf = (seg) => '[' + seg.parts.map((e) => (typeof e == 'string' ? e : JSON.stringify(e))).join(',') + ']';

/** gzip with the browser's CompressionStream: the JSON made and handed over in slices of
 * SLICE ms. '' when the segment left otherwise meanwhile (seg.done). */
async function gzip(seg) {
  const stream = new CompressionStream('gzip');
  const writer = stream.writable.getWriter();
  const bytes = new Response(stream.readable).arrayBuffer();
  const encoder = new TextEncoder();
  let t = performance.now();
  let text = '[';
  const hand = () => {
    writer.write(encoder.encode(text)).catch(() => 0);
    text = '';
  };
  for (let i = 0; i < seg.parts.length; i++) {
    if (i) text += ',';
    for (const piece of eventPieces(seg.parts[i])) {
      text += piece;
      if (text.length >= CHUNK) hand();
      if (performance.now() - t > SLICE) {
        await pause();
        if (seg.done) return ''; // sent at once meanwhile (the page went away)
        t = performance.now();
      }
    }
  }
  text += ']';
  hand();
  writer.close().catch(() => 0);
  return new Uint8Array(await bytes);
}

/** gzip now, on the main thread (fflate): for a page that is going away. */
const gzipNow = (json) => gzipSync(new TextEncoder().encode(json), { level: 6 });

/**
 * cfg: tracker.js's options plus sessionId(), active() and flag(name, default).
 * deliver([session_id, path, body, gzipped], now) queues a segment for delivery (now: send it
 * at once, not as the page goes away; path:
 * /api/v1/track/recording?session_id=...&segment=N&encoding=gzip|json; body: base64 of the
 * gzip bytes, or the JSON).
 */
export default function start(cfg, deliver) {
  reportEarlyNetwork(cfg);
  configureMasking(cfg);
  const numbers = 'hs:' + cfg.account + ':g'; // sessionStorage: {i: session id, n: next segment number}
  let parts = []; // the current segment's events: JSON, or a full snapshot's event (its JSON made later)
  let size = 0;
  let sid = '';
  let timer = 0;
  let needFull = 0; // a new session waits for its full snapshot
  let lastFull = 0; // when the last full snapshot was taken (ms since the epoch)
  let next = ['', 0]; // [session id, next segment number]
  let queue = Promise.resolve(); // compressions, one after the other: segments leave in order
  let compressing = [];

  /** Segment numbers: per session, from 0, kept across page loads of the session. */
  function number(s) {
    if (next[0] != s) {
      const kept = load(SS, numbers) || {};
      next = [s, kept.i == s ? kept.n : 0];
    }
    save(SS, numbers, { i: s, n: next[1] + 1 });
    return next[1]++;
  }

  /** data: the gzip bytes, or the JSON. */
  function send(seg, encoding, data) {
    if (seg.done) return;
    seg.done = 1;
    compressing = compressing.filter((x) => x != seg);
    const path = '/api/v1/track/recording?session_id=' + seg.s + '&segment=' + seg.n + '&encoding=' + encoding;
    const gz = encoding == 'gzip';
    const up = [seg.s, path, gz ? base64(data) : data, gz ? 1 : 0];
    // The body as a Blob, in memory only (the outbox's JSON holds the base64): tracker.js
    // sends it without decoding the base64 (100 ms for a large page's snapshot segment).
    up.y = new Blob([data], { type: 'text/plain' });
    deliver(up, !seg.now);
  }

  /** Send `seg` at once: gzipped here and now, else as JSON. */
  function sendNow(seg) {
    seg.now = 1; // the page is going away: its beacon carries it
    let gz = 0;
    try {
      gz = gzipNow(seg.json = jsonOf(seg));
    } catch {
      // out of memory, or no TextEncoder: the JSON itself
    }
    send(seg, gz ? 'gzip' : 'json', gz || seg.json || jsonOf(seg));
  }

  const cut = guard((sync) => {
    clearTimeout(timer);
    timer = 0;
    if (!parts.length) return;
    const seg = { s: sid, n: number(sid), parts };
    parts = [];
    size = 0;
    if (sync) return sendNow(seg);
    if (!self.CompressionStream) return send(seg, 'json', jsonOf(seg)); // an old browser: no main-thread gzip while it lives
    compressing.push(seg);
    queue = queue
      .then(() => !seg.done && gzip(seg))
      .then(
        (gz) => gz && send(seg, 'gzip', gz),
        () => send(seg, 'json', jsonOf(seg)), // compression failed: the JSON itself
      )
      .catch(() => 0); // the queue goes on whatever happened
  });

  const emit = guard((event) => {
    if (!cfg.active()) return; // opted out: nothing more is recorded
    const s = cfg.sessionId();
    if (s != sid) {
      // A new session (the visitor came back after 30 idle minutes): the old one's
      // segment is cut, the new one starts with a full snapshot.
      cut();
      if (sid && event.type != META) {
        needFull = 1;
        setTimeout(guard(() => record.takeFullSnapshot(true)));
      }
      sid = s;
    }
    if (needFull && event.type != META && event.type != FULL_SNAPSHOT) return;
    if (event.type == FULL_SNAPSHOT) (needFull = 0), (lastFull = event.timestamp);
    if (event.type == META) cut(); // a full snapshot starts a segment: a seek point
    // A full snapshot's JSON is made when its segment is cut (in slices); its size here is
    // an estimate from the page's element count.
    const json = event.type == FULL_SNAPSHOT ? event : JSON.stringify(event);
    parts.push(json);
    size += json.length || D.getElementsByTagName('*').length * PER_ELEMENT;
    if (size >= MAX_JSON) cut();
    else if (!timer) timer = setTimeout(cut, MAX_AGE);
  });

  const on = (name) => cfg.flag('record-' + name, 'off');
  const canvas = on('canvas');
  // data-record-iframes="on" in a frame whose parent is of another origin: rrweb posts this
  // page's recording up to the parent, and only to a parent origin listed in
  // data-record-parents (frame-target.js). Any other parent gets nothing: rrweb is not run
  // in its cross-origin mode, and the page is recorded as a page of its own, as with the
  // option off. A same-origin parent records the frame itself (rrweb's no-op here, as before).
  let iframes = on('iframes');
  if (iframes && W.parent != W) {
    try {
      iframes = !!W.parent.document;
    } catch {
      iframes = !!allowParent(cfg.get('record-parents', ''));
    }
  }
  // rrweb starts (its observers and the first full snapshot) in a task of its own: this one
  // already evaluated the chunk (together, 60-90 ms on the demo SPA: a long task), and when
  // the browser is next idle (at the latest 1 s from now), not in the middle of the page's own
  // loading work, which made a 10-20 ms start a 50-120 ms task (docs/DECISIONS.md "The SPA's
  // first seconds"). What the page changes meanwhile is in that first full snapshot.
  const idle = self.requestIdleCallback || setTimeout;
  // Every CHECKOUT_EVERY a new full snapshot (a seek point), taken when the browser is next
  // idle. Not rrweb's checkoutEveryNms: that one takes it inside whichever event first comes
  // after the interval, so on a large page a visitor's click waited for the whole snapshot
  // (hundreds of ms: docs/DECISIONS.md "The large page's full snapshot") before the page
  // could answer it. A hidden page's timers and idle callbacks wait; so does its snapshot.
  setInterval(
    guard(() => {
      if (started && lastFull && cfg.active() && Date.now() - lastFull >= CHECKOUT_EVERY)
        idle(guard(() => Date.now() - lastFull >= CHECKOUT_EVERY && record.takeFullSnapshot(true)), { timeout: CHECKOUT_EVERY / 10 });
    }),
    CHECKOUT_EVERY / 10,
  );
  idle(guard(() => (started = record(
    Object.assign(
      {
        emit: withoutBlockedFrames(emit, iframes), // a blocked iframe's document is never recorded
        // Mouse positions every 100 ms, scroll every 150 ms; a field's value when it
        // changes (change event), not keystroke by keystroke.
        sampling: { mousemove: 100, scroll: 150, media: 800, input: 'last', canvas: 2 },
        recordCanvas: canvas,
        dataURLOptions: { type: 'image/webp', quality: 0.6 },
        recordCrossOriginIframes: iframes,
        collectFonts: false,
        inlineImages: false,
        slimDOMOptions: true,
        errorHandler: () => true, // rrweb's own errors stay out of the page
      },
      // <video> and <audio> are empty boxes unless data-record-media="on". The screenshot
      // chunk's own copy of the page (html2canvas clones it into a hidden iframe) is never
      // recorded: it is not what the visitor saw, and every copy was a new document of new
      // node ids, which nothing stored before could repeat (18 % of a recording's bytes).
      recordingPrivacy((on('media') ? '' : ',video,audio') + ',iframe.html2canvas-container'),
    ),
  ) && 1)), { timeout: 1000 });

  return {
    /** Cut the current segment now; `sync` (the page is going away): gzipped at once
     * (fflate), together with any segment still being compressed. Resolves once it is
     * handed over. */
    flush: guard((sync) => {
      if (sync) compressing.forEach(sendNow);
      cut(sync);
      return queue;
    }),
  };
}

// rrweb's record() itself, for bench/tracker.py (record.takeFullSnapshot()).
export { record };
/** 1 once rrweb started (tests wait for it). */
export let started = 0;
