// Delivery: the token flow, batches of events, uploads (DOM-recording segments and
// screenshots), one request in flight, back-off, a bounded outbox in localStorage that
// outlives the page, and beacons when the page goes away.

import { LS, health, load, now, safe, save, W } from './util.js';

const MAX_BATCH = 50; // events per request
const BEACON_LIMIT = 63 * 1024; // keepalive/sendBeacon bodies must stay under 64 KB in all
const MAX_BUFFERED = 1000; // events kept in the outbox; the oldest batches go first
const MAX_UPLOADS = 20; // segments and screenshots kept (a segment is at most ~256 KiB of JSON); the oldest go first
const ADOPT_AFTER = 120000; // another tab's outbox untouched for 2 min is ours to deliver
const BLOCK_FOR = 600000; // after a 403, stay quiet for 10 min (also across page loads)
const SESSIONS = '/api/v1/sessions';
const TRACK = '/api/v1/track';

/**
 * `hooks`: {endpoint_, account_, active_(), sessionId_(), sessionBody_(sid), overflow_()}.
 * (Names ending in _ are internal: the minifier shortens them.)
 * The outbox is one localStorage key per tab: {t: heartbeat, o: [[session_id, events]...],
 * s: {session_id: creation body, or 0 once created}, d: events dropped, r: uploads}.
 * An upload is [session_id, path, body, gzipped]: a DOM-recording segment (body: base64 of
 * its gzip bytes, or its JSON) or a screenshot (body: its JSON). Uploads normally leave
 * within seconds; they pile up (bounded) only while the API is away.
 */
export function createTransport(hooks, tab) {
  const fetch0 = W.fetch.bind(W); // taken before the network recorder wraps it
  const acc = 'hs:' + hooks.account_;
  const prefix = acc + ':o:';
  const key = prefix + tab;
  const tokenKey = acc + ':t';
  const blockKey = acc + ':b';
  const box = load(LS, key) || {};
  let out = box.o || [];
  let sess = box.s || {};
  let uploads = box.r || [];
  let pending = [];
  let busy = 0;
  let attempt = 0;
  let retryTimer = 0;
  let waiters = [];
  let auth = load(LS, tokenKey) || {};
  health.dropped = box.d || 0;

  // Closed tabs' undelivered batches: re-sent as they were; the server keeps each event once.
  for (let i = LS ? LS.length : 0; i--; ) {
    const k = LS.key(i);
    if (k == key || !k.startsWith(prefix)) continue;
    const other = load(LS, k) || {};
    if (now() - (other.t || 0) < ADOPT_AFTER) continue;
    out = (other.o || []).concat(out);
    sess = Object.assign({}, other.s, sess);
    health.dropped += other.d || 0;
    uploads = (other.r || []).concat(uploads);
    save(LS, k);
  }

  const count = (batches) => batches.reduce((n, b) => n + b[1].length, 0);
  const blocked = () => load(LS, blockKey) > now();

  function persist() {
    let n = count(out);
    while (n > MAX_BUFFERED && out.length > 1) {
      n -= out[0][1].length;
      health.dropped += out.shift()[1].length;
    }
    for (const sid in sess) if (sess[sid] == 0 && sid != hooks.sessionId_() && !out.concat(uploads).some((b) => b[0] == sid)) delete sess[sid];
    uploads.splice(0, uploads.length - MAX_UPLOADS); // in place: a request in flight holds the list
    // Over the storage quota: the uploads in memory only, then the newer half of the batches.
    for (let r = uploads; !save(LS, key, { t: now(), o: out, s: sess, d: health.dropped, r }) && out.length + r.length > 1; r = []) {
      if (!r.length) health.dropped += count(out.splice(0, out.length >> 1));
    }
  }

  /** An upload's body, binary: a segment's gzip bytes, or the JSON. text/plain (which the
   * API accepts besides application/octet-stream and application/json) keeps a segment's
   * upload and its beacon free of a CORS preflight (with the token in the query: `call`).
   * `up.y`: the same as a Blob, kept in memory by the recording chunk. */
  const bytes = (up) => up.y || new Blob([up[3] ? Uint8Array.from(atob(up[2]), (c) => c.charCodeAt(0)) : up[2]], { type: 'text/plain' });

  /** Move recorded events into batches of at most 50 events of one session. */
  function cut() {
    while (pending.length) {
      const sid = pending[0].__s;
      let i = 0;
      while (i < MAX_BATCH && pending[i]?.__s == sid) delete pending[i++].__s;
      out.push([sid, pending.splice(0, i)]);
    }
  }

  /** GET without a body, POST with one. */
  async function call(path, body, token) {
    const headers = {};
    // A segment's URL (it has a query) differs for each segment, so a preflight would never
    // be cached: its token goes in the query, as its beacon's does (a CORS simple request).
    if (token) path.includes('?') ? (path += '&token=' + token) : (headers.Authorization = 'Bearer ' + token);
    // An upload is a Blob (its type is the Content-Type); everything else JSON.
    if (body && !body.size) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(body);
    }
    const r = await fetch0(hooks.endpoint_ + path, {
      method: body ? 'POST' : 'GET',
      headers,
      body: body || undefined, // a GET must not have one
      credentials: 'omit',
      keepalive: (body && (body.size || body.length)) < BEACON_LIMIT,
    });
    return { status: r.status, data: !body && r.status == 200 && (await r.json()), wait: +r.headers.get('Retry-After') };
  }

  /** The site token flow: widgets -> widget JWT -> statistics token. */
  async function token() {
    const t = now();
    if (auth.token_ && t < auth.renew_) return { status: 200 };
    if (!auth.jwt_ || t > auth.exp_) {
      const r = await call('/site/account/' + encodeURIComponent(hooks.account_) + '/widgets');
      const w = r.data && r.data.widgets.filter((x) => x.type == 'tracker')[0];
      if (!w) return r.data ? { status: 403 } : r;
      auth = { widget_: w.widget_id, jwt_: w.token, exp_: Date.parse(w.expires_at) - 60000 };
    }
    const r = await call('/site/widget/' + auth.widget_ + '/account_statistics', 0, auth.jwt_);
    if (r.status == 401) auth.jwt_ = 0; // expired, or signed by a retired key: start over
    if (!r.data) return r;
    // Renew once half of the remaining lifetime has passed (the server rotates at half-life).
    auth.token_ = r.data.token;
    auth.renew_ = t + Math.max(5000, (Date.parse(r.data.expires_at) - t) / 2);
    save(LS, tokenKey, auth);
    return r;
  }

  /** The next request: [path, body, list it comes from, item], creating its session first.
   * Batches go first, then uploads. */
  function next() {
    const list = out[0] ? out : uploads;
    const item = list[0];
    if (!item) return null;
    const sid = item[0];
    if (sess[sid] != 0) {
      if (sess[sid]) return [SESSIONS, sess[sid], 0, sid];
      // Nobody can create this session any more: its data cannot be delivered.
      if (list == out) health.dropped += item[1].length;
      list.shift();
      return next();
    }
    return list == out ? [TRACK, { session_id: sid, events: item[1] }, out, item] : [item[1], bytes(item), list, item];
  }

  const settle = () => waiters.splice(0).forEach((f) => f());

  async function pump() {
    if (busy) return; // its completion pumps again
    const job = !retryTimer && hooks.active_() && !blocked() && next();
    if (!job) return settle();
    const [path, body, list, item] = job;
    busy = 1;
    let r;
    try {
      r = await token();
      if (r.status == 200) r = await call(path, body, auth.token_);
      else if (r.status > 401 && r.status < 500 && r.status != 408 && r.status != 429) r.status = 403;
    } catch {
      r = { status: 0 }; // a network error, or the API is down
    }
    busy = 0;
    const s = r.status;
    if (s == 401 && attempt++ < 3) auth.token_ = 0; // revoked or expired: run the token flow again
    else if (s == 401 || s == 403) {
      // Statistics are off for this site, or its limit is reached: stop sending; the
      // outbox (bounded) waits for a later page load.
      save(LS, blockKey, now() + BLOCK_FOR);
      save(LS, tokenKey);
      auth = {};
    } else if (s == 404 && list && hooks.sessionBody_(item[0])) {
      sess[item[0]] = hooks.sessionBody_(item[0]); // the server does not know the session: create it
    } else if (!s || s == 408 || s == 429 || s > 499) {
      // Exponential back-off with full jitter; never sooner than the server asked.
      const delay = Math.max(r.wait * 1000 || 0, Math.random() * Math.min(60000, 1000 * 2 ** attempt++));
      retryTimer = setTimeout(() => {
        retryTimer = 0;
        safe(pump)();
      }, delay);
    } else {
      // Delivered (2xx), or refused for good (any other 4xx: it would never succeed).
      if (s < 300) attempt = 0;
      else if (list == out) health.dropped += item[1].length;
      if (list) list.splice(list.indexOf(item), 1);
      else if (s < 300) sess[item] = 0;
      else delete sess[item];
      if (s < 300 && list == out && health.dropped) hooks.overflow_();
    }
    persist();
    pump();
  }

  const go = safe(pump);
  return {
    /** Queue one event recorded for session `sid`. */
    add_(event, sid) {
      event.__s = sid;
      if (pending.push(event) >= MAX_BATCH) {
        cut(); // a full batch goes now (localStorage is written by the next tick, not here)
        go();
      }
    },
    pending_: () => pending,
    session_(sid, body) {
      if (!(sid in sess)) sess[sid] = body;
    },
    /** A segment or a screenshot: [session_id, path, body, gzipped]; `now`: send it now (else
     * with the next delivery, or the page's beacon). */
    upload_(up, now) {
      uploads.push(up);
      persist();
      // Not while the page goes away: its beacon (leave_, next) carries it; a fetch started
      // here as well would be one more copy (the next page load still re-sends it).
      if (now) go();
    },
    /** Send what was recorded; resolves once the outbox is empty or delivery paused. */
    flush_() {
      cut();
      persist();
      return new Promise((resolve) => {
        waiters.push(resolve);
        go();
      });
    },
    tick_() {
      cut();
      persist(); // also refreshes the heartbeat other tabs look at
      go();
    },
    wake_() {
      clearTimeout(retryTimer);
      retryTimer = 0;
      go();
    },
    clear_() {
      pending = [];
      out = [];
      uploads = [];
      persist();
    },
    /** The page is going away: keep everything in localStorage, then beacon what fits. */
    leave_() {
      cut();
      persist();
      let budget = BEACON_LIMIT;
      const beacon = (path, data) => (budget -= data.size || data.length) > 0 && navigator.sendBeacon(hooks.endpoint_ + path, data);
      // text/plain needs no CORS preflight; the token travels in the body (or the query).
      const send = (path, body) => beacon(path, JSON.stringify(Object.assign({ token: auth.token_ }, body)));
      // Beaconed batches and segments stay in the outbox: the next page load sends them
      // again and the server stores each once (session_id + seq, session_id + segment),
      // so a lost beacon loses nothing. Screenshots (no query string) are skipped.
      if (auth.token_ && !blocked()) {
        for (const item of out.concat(uploads)) {
          const sid = item[0];
          if (item.b) continue; // beaconed already: pagehide, then the visibilitychange after it
          if (sess[sid] != 0 && !(sess[sid] && send(SESSIONS, sess[sid]))) break;
          const sent = item[2]
            ? !item[1].includes('?') || beacon(item[1] + '&token=' + auth.token_, bytes(item))
            : send(TRACK, { session_id: sid, events: item[1] });
          if (!sent) break;
          item.b = 1;
        }
      }
    },
  };
}
