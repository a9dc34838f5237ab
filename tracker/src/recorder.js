// The DOM listeners: what a visitor does, turned into events (see tracker/README.md).
// Every listener is passive, registered once, and wrapped so it can never throw.

import { fieldValue, isField, isMasked, scrub, textOf } from './mask.js';
import { bare, clip, D, now, round, safe, W } from './util.js';

const OPTS = { capture: true, passive: true };
const MOVE_EVERY = 100; // ms between two recorded mouse positions
const SETTLE = 250; // ms: scroll is recorded at most this often, resize once it pauses
const RAGE_MS = 1000; // rage click: >= 3 clicks within 1 s ...
const RAGE_PX = 24; // ... less than this far apart

const esc = CSS.escape;

/** A CSS selector for `el`: up to five levels, stopping at the first id. */
export function selector(el) {
  const parts = [];
  for (let n = el, depth = 5; n && n.nodeType == 1 && depth--; n = n.parentElement) {
    let part = n.tagName.toLowerCase();
    if (n.id) part += '#' + esc(n.id);
    else if (part != 'html' && part != 'body') {
      const cls = (n.getAttribute('class') || '').trim();
      if (cls) part += '.' + cls.split(/\s+/).slice(0, 2).map(esc).join('.');
      const same = [].filter.call(n.parentElement ? n.parentElement.children : [], (c) => c.tagName == n.tagName);
      if (same.length > 1) part += ':nth-of-type(' + (same.indexOf(n) + 1) + ')';
      parts.unshift(part);
      continue;
    }
    parts.unshift(part);
    break;
  }
  return parts.join(' > ');
}

/** Where an event happened: tag, id, classes and a selector (never the element's content). */
export function describe(el) {
  return {
    target_tag: el.tagName.toLowerCase().slice(0, 50),
    target_id: clip(el.id, 255) || null,
    target_class: clip((el.getAttribute('class') || '').trim(), 1024) || null,
    target_selector: clip(selector(el), 1024),
  };
}

// The element where an event really happened (a text node's parent). Inside an open shadow
// root, e.target is retargeted to the host element, which would hide a field (and its
// masking) behind its component: the composed path's first node is the real one.
const origin = (e, t = e.composedPath()[0]) => (t && t.nodeType == 1 ? t : t && t.parentElement);

export function record(emit, ctx) {
  const on = (target, type, fn) => target.addEventListener(type, safe(fn), OPTS);

  // Clicks, with rage clicks marked. A click on a <label> makes the browser dispatch a copy
  // of it on the label's field, stamped with the user's click's timeStamp: one click is
  // recorded (the user's, on the label), not two.
  let recent = [];
  let stamp;
  const click = (e, t = e.timeStamp) => {
    if (stamp == (stamp = t)) return;
    const el = origin(e);
    const x = round(e.clientX);
    const y = round(e.clientY);
    recent = recent.filter((c) => t - c[0] < RAGE_MS && Math.abs(c[1] - x) < RAGE_PX && Math.abs(c[2] - y) < RAGE_PX);
    recent.push([t, x, y]);
    // Where in the element (CSS px): the heatmap places the click on that element in its screenshot.
    const data = { text: textOf(el), o: [e.offsetX, e.offsetY] };
    if (recent.length > 2) data.rage = recent.length;
    emit(
      'click',
      Object.assign(describe(el), {
        viewport_x: x,
        viewport_y: y,
        screen_x: round(e.screenX),
        screen_y: round(e.screenY),
        // pageX - clientX is the scroll offset at the click, without forcing a layout.
        scroll_x: round(e.pageX - e.clientX),
        scroll_y: round(e.pageY - e.clientY),
        mouse_button: e.button, // 0 to 4
        click_count: Math.min(100, e.detail || 1),
        event_data: data,
      }),
    );
  };
  on(D, 'click', click);
  on(D, 'auxclick', click);

  // Inputs: masked values never leave the browser. A burst of typing in one field is one
  // event (stamped when the burst started), updated while it waits in the batch. It ends
  // once sent, at its change event (Enter, or leaving the field), or when the value no
  // longer continues the burst's (the app cleared the field): the next burst is a new event.
  let last = {}; // the burst: el, ev, r (the raw value, never sent), x (ended)
  const input = (e) => {
    const el = origin(e);
    if (!isField(el)) return;
    const [value, r] = fieldValue(el);
    const change = e.type == 'change';
    let { ev, r: p, x } = last.el == el ? last : {};
    if (p == r) return change && (last.x = 1); // already recorded (and sent, maybe)
    if (x || !ctx.pending_().includes(ev) || !(r.startsWith(p) || (r && p.startsWith(r)))) {
      ev = describe(el);
      ev.event_data = { field_type: clip(el.type || ev.target_tag, 50) };
      emit('input', ev);
    }
    ev.input_value = value;
    ev.input_masked = value == null;
    last = { el, ev, r, x: change };
  };
  on(D, 'input', input);
  on(D, 'change', input);

  // Key presses: keys that type text into a field are never recorded (the input event has
  // its masked value); navigation and editing keys, and shortcuts, are.
  on(D, 'keydown', (e) => {
    const key = e.key;
    const el = origin(e);
    const mod = e.ctrlKey || e.metaKey || e.altKey;
    if (!key || e.repeat || (key.length == 1 && (isField(el) ? !mod || isMasked(el) : ctx.maskAll_))) return;
    const ev = el && el != D.body ? describe(el) : {};
    ev.key_pressed = clip(key, 50);
    if (mod || e.shiftKey) ev.event_data = { ctrl: e.ctrlKey, meta: e.metaKey, alt: e.altKey, shift: e.shiftKey };
    emit('keypress', ev);
  });

  // Scroll of the page or of an element, at most every 250 ms (and its final position).
  let scrolled = 0;
  on(D, 'scroll', (e) => {
    if (!scrolled) {
      setTimeout(
        safe(() => {
          const el = scrolled.nodeType == 1 ? scrolled : D.scrollingElement || D.documentElement;
          const ev = scrolled.nodeType == 1 ? describe(el) : {};
          scrolled = 0;
          ev.scroll_x = round(el.scrollLeft);
          ev.scroll_y = round(el.scrollTop);
          emit('scroll', ev);
        }),
        SETTLE,
      );
    }
    scrolled = e.target;
  });

  // Mouse movement, sampled at most every 100 ms.
  let moved = 0;
  on(D, 'mousemove', (e) => {
    const t = now();
    if (t - moved < MOVE_EVERY) return;
    moved = t;
    emit('mouse_move', { viewport_x: round(e.clientX), viewport_y: round(e.clientY) });
  });

  let resizing = 0;
  on(W, 'resize', () => {
    clearTimeout(resizing);
    resizing = setTimeout(safe(() => emit('resize', { event_data: { width: innerWidth, height: innerHeight } })), SETTLE);
  });

  on(D, 'visibilitychange', () => {
    emit('visibility', { event_data: { state: D.visibilityState } });
    if (D.hidden) ctx.hidden_();
  });

  // JavaScript errors, failed resources and unhandled rejections.
  const error = (e) => {
    const t = e.target;
    if (t && t.tagName) {
      const ev = describe(t);
      ev.event_data = { kind: 'resource', url: clip(bare(t.src || t.href), 2048) };
      return emit('error', ev);
    }
    const r = e.reason || {};
    emit('error', {
      event_data: {
        kind: e.type,
        message: scrub(e.message || r.message || e.reason, 1000),
        source: clip(bare(e.filename), 2048) || null,
        line: e.lineno,
        column: e.colno,
        stack: scrub((e.error || r).stack, 4000),
      },
    });
  };
  on(W, 'error', error);
  on(W, 'unhandledrejection', error);

  // Single-page-app navigations: the history API, back/forward and hash changes.
  for (const m of ['pushState', 'replaceState']) {
    const orig = history[m];
    history[m] = function () {
      const r = orig.apply(this, arguments);
      safe(ctx.navigate_)(m.slice(0, -5));
      return r;
    };
  }
  on(W, 'popstate', () => ctx.navigate_('pop'));
  on(W, 'hashchange', () => ctx.navigate_('hash'));
  on(W, 'pageshow', (e) => e.persisted && ctx.navigate_('restore', 1));
  on(W, 'pagehide', () => ctx.leave_());
}
