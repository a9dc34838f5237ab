// tracker.js: <script src="https://HOST/tracker.js" data-account="ACCOUNT_ID" async></script>
// Records what a visitor does, masks what is private in the browser, and delivers every
// batch to the Hindsight API. Nothing here may throw into the host page.

import { readConfig } from './config.js';
import { configureMasking } from './mask.js';
import { recordNetwork } from './network.js';
import { record } from './recorder.js';
import { createScreenshots } from './screenshot.js';
import { createTransport } from './transport.js';
import { clip, D, health, LS, load, loadChunk, now, safe, save, SS, uuid, W } from './util.js';

const IDLE = 30 * 60 * 1000; // a session ends after 30 minutes without activity
const RESERVE = 100; // sequence numbers reserved per write to sessionStorage

function main() {
  const queued = W.hindsight;
  if (queued && queued.version) return; // loaded twice: the first copy records
  const cfg = readConfig(D.currentScript || D.querySelector('script[data-account]'));
  const acc = 'hs:' + cfg.account;
  const consentKey = acc + ':consent';
  const stateKey = acc + ':s'; // sessionStorage: {i: session id, q: next seq, l: last activity, p: sampled, u: user id}
  let active = 0;
  let tr = 0;
  let shots = 0;
  let recording = () => 0; // flush(sync) of the DOM recording, once its chunk runs
  let sid = '';
  let seq = 0;
  let reserved = 0;
  let last = 0;
  let userId = null;
  let url = '';
  let body = 0; // the current session's creation request
  let gone = 0; // pagehide fired: the page is being unloaded

  const persist = (exact) => {
    if (exact) reserved = seq;
    save(SS, stateKey, { i: sid, q: reserved, l: last, p: 1, u: userId });
  };

  function sessionBody(t) {
    body = {
      session_id: sid,
      started_at: new Date(t).toISOString(),
      page_url: url,
      referrer: clip(D.referrer, 2048) || null,
      screen_width: screen.width,
      screen_height: screen.height,
      viewport_width: innerWidth,
      viewport_height: innerHeight,
      language: clip(navigator.language, 35),
      // Temporal where the browser has it: a page's first Intl.DateTimeFormat loads ICU's
      // locale data, 35-180 ms in one call (docs/DECISIONS.md "Screenshots without long tasks").
      timezone: W.Temporal ? Temporal.Now.timeZoneId() : Intl.DateTimeFormat().resolvedOptions().timeZone,
      user_id: userId,
      // data-visitor="persistent": the browser's own random visitor id, kept in localStorage
      // (none when localStorage refuses it). The server stores only a keyed hash of it with
      // the account, never the id itself. (`t` is free again once started_at has it.)
      visitor: (cfg.get('visitor') && (load(LS, acc + ':v') || (save(LS, acc + ':v', (t = uuid())) && t))) || null,
    };
    tr.session_(sid, body);
  }

  function newSession(t) {
    sid = uuid();
    seq = reserved = 0;
    last = t;
    sessionBody(t);
  }

  function sessionStart() {
    emit('session_start', { event_data: body }); // user agent, screen, viewport, language, timezone, referrer
    pageView('load', body.referrer);
  }

  function emit(type, ev) {
    if (!active) return;
    const t = now();
    if (t - last > IDLE) {
      newSession(t);
      sessionStart();
    }
    last = t;
    ev.seq = seq++;
    ev.timestamp = new Date(t).toISOString();
    ev.event_type = type;
    ev.page_url = ev.page_url || url;
    if (seq > reserved) {
      // Reserve a block of sequence numbers, so a reload (or a crash) never reuses one.
      reserved = seq + RESERVE;
      persist();
    }
    tr.add_(ev, sid);
  }

  function pageView(nav, from) {
    url = clip(location.href, 2048);
    emit('page_view', { event_data: { nav, title: clip(D.title, 300), from: clip(from, 2048) || null } });
    if (shots) shots.schedule_();
  }

  function start() {
    if (tr) return;
    url = clip(location.href, 2048);
    const t = now();
    const state = load(SS, stateKey);
    let tab = load(SS, acc + ':tab');
    if (!tab) save(SS, acc + ':tab', (tab = [uuid()]));
    tr = createTransport(
      {
        endpoint_: cfg.endpoint_,
        account_: cfg.account,
        active_: () => active,
        sessionId_: () => sid,
        sessionBody_: (s) => s == sid && body,
        overflow_() {
          emit('buffer_overflow', { event_data: { dropped: health.dropped } });
          health.dropped = 0;
        },
      },
      tab[0],
    );
    active = 1;
    const resumed = state && t - state.l < IDLE;
    if (resumed) {
      // The same tab within 30 minutes: the session and its sequence go on.
      sid = state.i;
      seq = reserved = state.q;
      userId = state.u;
      last = t;
      active = state.p; // not sampled: stays unrecorded for the whole session
      sessionBody(t); // used only if the server does not know the session yet
    } else {
      newSession(t);
      active = Math.random() < cfg.sampleRate_;
    }
    if (!active) return save(SS, stateKey, { i: sid, q: 0, l: t, p: 0 });
    configureMasking(cfg);
    cfg.sessionId = () => sid;
    cfg.active = () => active;
    if (cfg.screenshots_) shots = createScreenshots(cfg, tr.upload_);
    // The lazy chunks report the requests made before this line (early-network.js).
    cfg.network = recordNetwork(emit, cfg.endpoint_ + '/');
    const hide = () => {
      persist(1);
      recording(gone);
      // Hidden after pagehide (Chrome closing a tab): only a beacon still leaves.
      gone ? tr.leave_() : tr.flush_();
    };
    record(emit, {
      maskAll_: cfg.maskAll,
      pending_: () => tr.pending_(),
      navigate_(nav, force) {
        const from = url;
        const to = clip(location.href, 2048);
        if (force) gone = 0; // back from the back/forward cache
        // Only the fragment changed (a popstate fires for those too): a hash navigation.
        if (force || to != from) pageView(to.split('#')[0] == from.split('#')[0] ? 'hash' : nav, from);
      },
      hidden_: hide,
      leave_() {
        gone = 1;
        hide();
      },
    });
    resumed ? pageView('load', D.referrer) : sessionStart();
    persist();
    setInterval(
      safe(() => {
        persist();
        tr.tick_();
      }),
      cfg.flushMs_,
    );
    addEventListener('online', safe(() => tr.wake_()));
    // The first delivery and the recording chunk's request in a task of their own: this one
    // already ran tracker.js (on a busy page load, the two together were a long task).
    setTimeout(
      safe(() => {
        tr.tick_();
        // DOM recording: rrweb's recorder is a lazy chunk (dom-record.js) that cuts segments
        // and hands them to the transport's outbox.
        if (cfg.record) {
          loadChunk(cfg.base, RECORD_CHUNK, '__hindsightRecord').then( // eslint-disable-line no-undef
            safe((run) => run && (recording = run(cfg, tr.upload_).flush)),
          );
        }
      }),
    );
  }

  const api = (W.hindsight = {
    version: VERSION, // eslint-disable-line no-undef
    /** Record a custom event with JSON-serializable properties (at most 8 KB). */
    track: safe((name, props) => {
      let json = JSON.stringify(props == null ? null : props);
      if (json.length > 8192) json = '{"truncated":true}';
      emit('custom', { event_data: { name: clip(name, 200), props: JSON.parse(json) } });
    }),
    /** Attach your user id (never an email) to this session. */
    identify: safe((id) => {
      userId = clip(id, 255);
      if (body) body.user_id = userId;
      if (active) persist();
      emit('identify', { event_data: { user_id: userId } });
    }),
    /** Stop recording on this site in this browser, and drop what was not sent yet. */
    optOut: safe(() => {
      save(LS, consentKey, 'out');
      active = 0;
      if (tr) tr.clear_();
    }),
    /** Record again: an explicit consent, which also overrides Do-Not-Track. */
    optIn: safe(() => {
      save(LS, consentKey, 'in');
      if (tr) active = 1;
      else if (cfg.account) start();
    }),
    /** Send everything recorded so far (the DOM recording's segment too); resolves when the
     * outbox is empty or delivery paused. */
    flush: () => Promise.resolve(recording()).then(() => tr && tr.flush_()),
    /** The next seq, internal errors caught and events dropped by the bounded buffer. */
    health: () => Object.assign({ seq }, health),
  });

  const consent = load(LS, consentKey);
  const dnt = navigator.doNotTrack == 1 || navigator.globalPrivacyControl;
  if (cfg.account && consent != 'out' && (consent == 'in' || !(cfg.respectDnt_ && dnt))) start();
  // Calls made before the script loaded: window.hindsight = [['identify', 'u1'], ...]
  if (Array.isArray(queued)) for (const [name, ...args] of queued) safe(api[name])(...args);
}

safe(main)();
