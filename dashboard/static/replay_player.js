// The DOM replay player. It runs in a data: document that /dashboard/player holds (built by
// hindsight.dashboard.recording.player_document, this script inline): an opaque origin,
// never the dashboard's, under /dashboard/player's CSP, which lets it fetch nothing and run
// no script but this one and rrweb's replayer (each by its SHA-256). It only replays what
// the replay page (replay.js, the top window, the dashboard's origin) posts to it:
//
//   {type: 'replayer', source, integrity}          rrweb's replayer (dashboard/static/dist/
//                                                  rrweb-replay.js, fetched by the replay
//                                                  page) and its sha256-…: run once
//   {type: 'load', segments, at, playing, speed, move, seq}
//                                                  a new window: its segments' JSON texts
//                                                  (rrweb events, from a seek point)
//   {type: 'append', segment}                      the next segment's JSON text, while it plays
//   {type: 'sync', at, playing, speed, move, seq, when}
//                                                  the replay page's clock (ms since the epoch)
//                                                  and when it read it (as 'clock' below)
//   {type: 'ping'}                                 say 'ready' again
//
// and answers {type: 'ready'}, {type: 'loaded', first, last}, {type: 'error', message}, and
// each 'load' and 'sync' with {type: 'clock', seq, move, running, at, when}: whether rrweb
// plays, and then the moment it has reached (ms since the epoch) and when it read its clock
// for that (performance.timeOrigin + performance.now(), which both documents share).
// While rrweb plays, its clock leads: it advances by the time between the browser's frames,
// however long they get on a busy machine, and the replay page's clock follows what the
// answers say (replay.js, frame). The page's clock leads only where rrweb has nothing to
// play (paused, before the window's first full snapshot, past its last event) and when the
// page moves it itself: `move` changes on a seek, a skipped inactivity, play and pause; then
// rrweb starts again at the page's moment.
// 'ready' is said at once and again, more and more rarely, until the replay page's first
// message: the replay page may start listening after the player has started (its script is
// deferred) and does not touch this frame before the player has spoken.
// rrweb's Replayer rebuilds the recorded page in an iframe of its own, sandboxed without
// allow-scripts: the recorded page's scripts never run.
(function () {
  'use strict';

  // The dashboard's origin (ours is opaque: 'null'). /dashboard/player may be framed by
  // dashboard pages only (frame-ancestors 'self'), so the top window is the dashboard; where
  // the browser names its ancestors' origins we hold it to that, else to the origin of the
  // top window's first message.
  var ancestors = location.ancestorOrigins;
  var dashboard = ancestors && ancestors.length ? ancestors[ancestors.length - 1] : null;
  if (!/^https?:\/\/[^/]+$/.test(dashboard || '')) dashboard = null;   // unknown, or hidden ('null')
  var box = document.getElementById('player');
  var message = document.getElementById('message');
  var replayer = null, base = 0, last = 0, running = false, speed = 1, size = null, shown = null;
  var move = null;      // the replay page's last move of its clock (see above)
  var finished = false; // rrweb played every event it has
  // When rrweb last read its clock: it does so once a frame (requestAnimationFrame), and so
  // does tick, in the same frames. performance.now(); the start of play when it just started.
  var sampled = 0, ticking = false;

  function tick() {
    if (!running) { ticking = false; return; }
    sampled = performance.now();
    requestAnimationFrame(tick);
  }
  var shown0 = 0;   // the earliest moment shown: just after the window's first full snapshot

  // '*' only before the dashboard's origin is known: for 'ready', which says nothing.
  function tell(data) { window.top.postMessage(data, dashboard || '*'); }

  function fit() {
    if (!replayer || !size) return;
    var w = box.clientWidth, h = box.clientHeight;
    var k = Math.min(w / size.width, h / size.height);
    var x = Math.max(0, (w - size.width * k) / 2), y = Math.max(0, (h - size.height * k) / 2);
    replayer.wrapper.style.transform = 'translate(' + x + 'px,' + y + 'px) scale(' + k + ')';
    document.body.dataset.scale = k.toFixed(4);
  }

  // rrweb's offsets count from the window's first event; the page exists from its first full
  // snapshot on (just after it: rrweb applies the events *before* an offset when it seeks).
  function offset(at) { return Math.max(at, shown0) - base; }

  function sync(m) {
    var at = m.at, moved = m.move !== move;
    move = m.move;
    if (replayer) {
      // A new speed: rrweb's clock runs at it from its next frame on (no restart).
      if (m.speed && m.speed !== speed) replayer.setConfig({ speed: (speed = m.speed) });
      // rrweb played to its last event (the page's clock may be a little behind it): it
      // stays there until the page moves its clock or more events come.
      var ended = finished && !moved;
      if (!m.playing || at >= last || at < shown0 || ended) {
        // Paused, past the last event loaded (nothing changes after it), or before the
        // window's first full snapshot (the page exists from it on): show that moment, and
        // let the page's clock run. rrweb applies the events before it at once, from the
        // last full snapshot before it when going back (last + 1: the last event itself too).
        // Moments that show the same (before the first full snapshot) are one: no rebuild.
        // At or past the last event: that event too (rrweb applies the events *before* the
        // offset; the page's End is the last event's own moment).
        var target = offset(ended || at >= last ? last + 1 : at);
        if (running || shown !== target) replayer.pause(target);
        shown = target;
        running = false;
      } else if (!running || moved) {
        // Not moved: the page's clock ran by itself up to here (before the first full
        // snapshot) and runs on while this message waits for a busy main thread: rrweb starts
        // where the page's clock is now, not where it was when it posted (it would lag
        // behind by the wait, and the page's clock never goes back). Moved: the page's clock
        // waits for this answer, at `at`.
        var now = performance.now();
        if (!moved && m.when > 0) at = Math.min(last, at + Math.max(0, performance.timeOrigin + now - m.when) * speed);
        replayer.play(offset(at));
        sampled = now;   // rrweb's clock starts now, at offset(at)
        running = true;
        finished = false;
        shown = null;
        if (!ticking) {
          ticking = true;
          requestAnimationFrame(tick);
        }
      }
    }
    document.body.dataset.at = String(Math.round(at));
    tell({ type: 'clock', seq: m.seq, move: m.move, running: running,
           at: running ? base + replayer.getCurrentTime() : at, when: performance.timeOrigin + sampled });
  }

  // rrweb's replayer, from its text. The CSP runs it only if its SHA-256 is the one the
  // server named (a script of the same version as this page). As a blob: script with that
  // hash as its integrity (CSP 3 lets a hash allow an external script by its integrity), so
  // that the browser compiles it off the main thread (script streaming), which the replay
  // page shares; where a browser does not allow that, as an inline script (compiled on the
  // main thread). Messages that need it wait meanwhile.
  var waiting = null;

  function install(source, integrity) {
    if (window.HindsightReplayer || waiting || typeof source !== 'string') return;
    waiting = [];
    var url = URL.createObjectURL(new Blob([source], { type: 'text/javascript' }));
    var script = document.createElement('script');
    script.onload = function () {
      URL.revokeObjectURL(url);
      document.body.dataset.replayer = 'blob';
      installed();
    };
    script.onerror = function () {
      URL.revokeObjectURL(url);
      var inline = document.createElement('script');
      inline.textContent = source;
      document.head.appendChild(inline);
      document.body.dataset.replayer = 'inline';
      installed();
    };
    script.integrity = String(integrity || '');
    script.src = url;
    document.head.appendChild(script);
  }

  function installed() {
    var messages = waiting;
    waiting = null;
    if (!window.HindsightReplayer) {
      fail(new Error('the replayer did not start'));
      return;
    }
    messages.forEach(handle);
  }

  function parse(segments) {
    var events = [];
    for (var i = 0; i < segments.length; i++) events = events.concat(JSON.parse(segments[i]));
    return events;
  }

  function load(events, m) {
    if (replayer) {
      replayer.destroy();
      replayer = null;
    }
    box.textContent = '';
    message.hidden = true;
    running = false;
    shown = null;
    size = null;
    if (!events.length) throw new Error('no events to replay');
    events.sort(function (a, b) { return a.timestamp - b.timestamp; });
    base = events[0].timestamp;
    last = events[events.length - 1].timestamp;
    var snapshot = events.filter(function (e) { return e.type === 2; })[0];
    shown0 = (snapshot ? snapshot.timestamp : base) + 1;
    if (events.length < 2) events = events.concat([{ type: 5, data: { tag: 'hindsight-end', payload: {} }, timestamp: last }]);
    speed = m.speed || 1;
    move = null;
    finished = false;
    replayer = new window.HindsightReplayer(events, {
      root: box,
      speed: speed,
      skipInactive: false,            // the replay page skips inactivity (its clock jumps)
      showWarning: false,
      triggerFocus: false,
      pauseAnimation: true,
      mouseTail: { duration: 500, lineWidth: 3, strokeStyle: 'rgba(30,107,214,0.6)' },
      UNSAFE_replayCanvas: false      // never: it would add allow-scripts to rrweb's iframe
    });
    replayer.on('resize', function (dimension) {
      size = { width: dimension.width, height: dimension.height };
      fit();
    });
    // Finished: every event loaded is applied, as a pause at last + 1 shows it (no rebuild).
    replayer.on('finish', function () {
      running = false;
      finished = true;
      shown = offset(last + 1);
    });
    sync(m);
    document.body.dataset.first = String(base);
    document.body.dataset.last = String(last);
    tell({ type: 'loaded', first: base, last: last });
  }

  function append(events) {
    if (!replayer) return;
    events.sort(function (a, b) { return a.timestamp - b.timestamp; });
    for (var i = 0; i < events.length; i++) replayer.addEvent(events[i]);
    if (events.length) last = Math.max(last, events[events.length - 1].timestamp);
    finished = false;
    document.body.dataset.last = String(last);
  }

  function fail(err) {
    message.hidden = false;
    message.textContent = 'Could not replay this recording (' + err.message + ').';
    tell({ type: 'error', message: String(err.message) });
  }

  function handle(m) {
    try {
      if (m.type === 'replayer') install(m.source, m.integrity);
      else if (waiting) waiting.push(m);   // the replayer is still being compiled
      else if (m.type === 'load') load(parse(m.segments), m);
      else if (m.type === 'append') append(parse([m.segment]));
      else if (m.type === 'sync') sync(m);
      else if (m.type === 'ping') tell({ type: 'ready' });   // the replay page started after us
    } catch (err) {
      fail(err);
    }
  }

  var heard = false;
  window.addEventListener('message', function (ev) {
    if (ev.source !== window.top || (dashboard && ev.origin !== dashboard)) return;   // only the replay page
    dashboard = ev.origin;
    heard = true;
    handle(ev.data || {});
  });
  window.addEventListener('resize', fit);
  // 'ready' until the replay page answers (20 ms, then twice as long each time, up to 30 s).
  (function ready(wait) {
    if (heard) return;
    tell({ type: 'ready' });
    if (wait < 30000) setTimeout(ready, wait, wait * 2);
  })(20);
})();
