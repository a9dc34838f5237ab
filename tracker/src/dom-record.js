// The lazy DOM-recording chunk: rrweb's recorder (npm @rrweb/record), masked by the rules
// of mask.js, its events cut into segments and gzipped with the browser's own
// CompressionStream, then handed to tracker.js's transport (bounded outbox, retries).
//
// A segment is cut at ~256 KiB of JSON, 10 s after its first event, before every full
// snapshot (each page load, every 5 minutes, a new session: every segment that begins
// with one is a seek point), and when the page is hidden or goes away.
//
// What is cut as the page goes away (and what is still being compressed then) cannot wait
// for CompressionStream, which is asynchronous: it is gzipped at once on the main thread by
// fflate (npm, pinned) instead, so the beacon and the outbox (whose copy the next page load
// sends again) carry gzip, not plain JSON. Plain JSON only if that fails.

import { record } from '@rrweb/record';
import { gzipSync } from 'fflate';
import { reportEarlyNetwork } from './early-network.js';
import { configureMasking, recordingPrivacy } from './mask.js';
import { load, save, SS } from './util.js';

const MAX_JSON = 256 * 1024;
const MAX_AGE = 10000;
const CHECKOUT_EVERY = 5 * 60 * 1000;
const FULL_SNAPSHOT = 2;
const META = 4; // rrweb emits it right before each full snapshot

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

/** gzip with the browser's CompressionStream (off the main thread), as base64. */
async function gzip(json) {
  const stream = new Blob([json]).stream().pipeThrough(new CompressionStream('gzip'));
  return base64(new Uint8Array(await new Response(stream).arrayBuffer()));
}

/** gzip now, on the main thread (fflate), as base64: for a page that is going away. */
const gzipNow = (json) => base64(gzipSync(new TextEncoder().encode(json), { level: 6 }));

/**
 * cfg: tracker.js's options plus sessionId(), active() and flag(name, default).
 * deliver([session_id, path, body, gzipped]) queues a segment for delivery (path:
 * /api/v1/track/recording?session_id=...&segment=N&encoding=gzip|json; body: base64 of the
 * gzip bytes, or the JSON).
 */
export default function start(cfg, deliver) {
  reportEarlyNetwork(cfg);
  configureMasking(cfg);
  const numbers = 'hs:' + cfg.account + ':g'; // sessionStorage: {i: session id, n: next segment number}
  let parts = []; // the current segment's events, as JSON
  let size = 0;
  let sid = '';
  let timer = 0;
  let needFull = 0; // a new session waits for its full snapshot
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

  function send(seg, encoding, body) {
    if (seg.done) return;
    seg.done = 1;
    compressing = compressing.filter((x) => x != seg);
    const path = '/api/v1/track/recording?session_id=' + seg.s + '&segment=' + seg.n + '&encoding=' + encoding;
    deliver([seg.s, path, body, encoding == 'gzip' ? 1 : 0]);
  }

  /** Send `seg` at once: gzipped here and now, else as JSON. */
  function sendNow(seg) {
    let b64 = '';
    try {
      b64 = gzipNow(seg.json);
    } catch {
      // out of memory, or no TextEncoder: the JSON itself
    }
    send(seg, b64 ? 'gzip' : 'json', b64 || seg.json);
  }

  const cut = guard((sync) => {
    clearTimeout(timer);
    timer = 0;
    if (!parts.length) return;
    const seg = { s: sid, n: number(sid), json: '[' + parts.join(',') + ']' };
    parts = [];
    size = 0;
    if (sync) return sendNow(seg);
    if (!self.CompressionStream) return send(seg, 'json', seg.json); // an old browser: no main-thread gzip while it lives
    compressing.push(seg);
    queue = queue
      .then(() => !seg.done && gzip(seg.json))
      .then(
        (b64) => b64 && send(seg, 'gzip', b64),
        () => send(seg, 'json', seg.json), // compression failed: the JSON itself
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
    if (event.type == FULL_SNAPSHOT) needFull = 0;
    if (event.type == META) cut(); // a full snapshot starts a segment: a seek point
    const json = JSON.stringify(event);
    parts.push(json);
    size += json.length;
    if (size >= MAX_JSON) cut();
    else if (!timer) timer = setTimeout(cut, MAX_AGE);
  });

  const on = (name) => cfg.flag('record-' + name, 'off');
  const canvas = on('canvas');
  record(
    Object.assign(
      {
        emit,
        checkoutEveryNms: CHECKOUT_EVERY,
        // Mouse positions every 100 ms, scroll every 150 ms; a field's value when it
        // changes (change event), not keystroke by keystroke.
        sampling: { mousemove: 100, scroll: 150, media: 800, input: 'last', canvas: 2 },
        recordCanvas: canvas,
        dataURLOptions: { type: 'image/webp', quality: 0.6 },
        recordCrossOriginIframes: on('iframes'),
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
  );

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
